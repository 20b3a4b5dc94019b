"""The git state a run starts from: commit, branch, dirty, remote, and the patch of changes.

A run must be rebuildable from what it records: a clean commit, or (with ``--ignore-dirty``)
the commit plus ``git.patch``. So a dirty tree (modified or staged tracked files, or an
untracked script) is refused unless the user says otherwise.

Every run reads the state, so that read is cheap: four read-only git commands in machine
formats (``git status --porcelain=v2 --branch`` among them), started together, about 10 ms.
Machine formats also keep the user's git config (colours, quoting, untracked-file listing)
out of what is parsed.

``git.patch`` is made by plumbing (``git diff-index``) with every option that shapes it given
on the command line, so the user's config (colours, prefixes, external diff tools, textconv,
renames, context, quoting, abbreviated hashes) can neither change its bytes nor stop it from
applying. Only the settings of a diff driver named by attributes still count: its funcname
(the text after a hunk's ``@@``) and ``binary`` (the file as a binary patch), and both apply.
The secret scan of a patch loads detect-secrets, which only a dirty run needs.
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from yanex.errors import GitStateError

# Git's empty tree: what a repository without commits is compared against.
_EMPTY_TREE = "4b825dc642cb6eb9a060e54bf8d69288fbee4904"
_SHOWN_FILES = 10
# Read-only: `git status` must not take index.lock, or concurrent runs could collide in it.
# English messages: "not a git repository" is recognised in them. Paths are literal, never
# globs (a script named exp[1].py must not match exp1.py), whatever the user's GIT_*_PATHSPECS.
_GIT_ENV = {"GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C", "GIT_LITERAL_PATHSPECS": "1"}
# Variables that change what a diff prints: GIT_DIFF_OPTS even overrides -U on the command line.
_DROPPED_ENV = ("GIT_DIFF_OPTS", "GIT_EXTERNAL_DIFF")
# Everything that shapes git.patch, so that its bytes are the same whatever the config:
# full hashes, a/ b/ prefixes, no colour, no external tool or textconv, 3 lines of context,
# a rename written as a deletion and a new file (no similarity threshold or rename limit), and
# binary files as binary patches. Config that plumbing still reads is overridden with -c.
_PATCH_CONFIG = ("-c", "core.quotePath=true", "-c", "diff.suppressBlankEmpty=false")
_PATCH_OPTIONS = (
    "--patch",
    "--binary",
    "--full-index",
    "--no-color",
    "--no-ext-diff",
    "--no-textconv",
    "--no-renames",
    "--unified=3",
    "--inter-hunk-context=0",
    "--src-prefix=a/",
    "--dst-prefix=b/",
)


@dataclass
class GitSnapshot:
    """The state of the repository that holds the script."""

    root: Path
    commit: str | None
    branch: str | None
    remote_url: str | None
    changed_files: list[str] = field(default_factory=list)
    script_untracked: str | None = None  # the script's path in the repo, when git does not track it
    # config files the run reads that git does not track (paths in the repo)
    configs_untracked: list[str] = field(default_factory=list)

    @property
    def dirty(self) -> bool:
        return (
            bool(self.changed_files)
            or self.script_untracked is not None
            or bool(self.configs_untracked)
        )

    @property
    def untracked(self) -> list[str]:
        """Every file of the run that git does not track: the script, then its configs."""
        return [
            *([self.script_untracked] if self.script_untracked else []),
            *self.configs_untracked,
        ]

    def to_metadata(self) -> dict[str, Any]:
        return {
            "commit": self.commit,
            "branch": self.branch,
            "dirty": self.dirty,
            "remote_url": self.remote_url,
        }


class NotARepository(Exception):
    """The script is not in a git repository (or git cannot be run); carries the reason."""


def strip_credentials(url: str) -> str:
    """Remove user info that may hold a secret: ``https://user:token@host/x`` -> ``https://host/x``.

    For ssh the user name is kept (``ssh://git@host/x``) but any password is dropped;
    scp-like addresses (``git@host:x``) hold no secret and are kept.
    """
    parts = urlsplit(url)
    if not parts.scheme or "@" not in parts.netloc:
        return url
    userinfo, _, hostport = parts.netloc.rpartition("@")
    if parts.scheme in ("ssh", "git+ssh", "ssh+git"):
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}@{hostport}" if user else hostport
    else:
        netloc = hostport
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _start(cwd: Path, *args: str) -> subprocess.Popen[bytes]:
    """Start one read-only git command; the caller collects it with ``_output``."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.endswith("_PATHSPECS") and key not in _DROPPED_ENV
    }
    try:
        return subprocess.Popen(
            ["git", *args],
            cwd=cwd,
            env=env | _GIT_ENV,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
    except FileNotFoundError as exc:
        raise NotARepository("git cannot be run (no `git` found on PATH)") from exc


def _output(proc: subprocess.Popen[bytes], ok: tuple[int, ...] = (0,)) -> str:
    return _output_bytes(proc, ok).decode("utf-8", "replace")  # names for messages, never opened


def _output_bytes(proc: subprocess.Popen[bytes], ok: tuple[int, ...] = (0,)) -> bytes:
    out, err = proc.communicate()
    if proc.returncode not in ok:
        message = err.decode(errors="replace").strip() or f"exit code {proc.returncode}"
        raise GitStateError(f"`git {' '.join(proc.args[1:])}` failed: {message}")
    return out


def _status(porcelain: str) -> tuple[str | None, str | None, list[str]]:
    """``(commit, branch, changed paths)`` from ``git status --porcelain=v2 --branch -z``.

    Ordinary (``1``) and unmerged (``u``) entries end with the path; a rename or copy (``2``)
    ends with the new path and is followed by the old one as an entry of its own.
    """
    commit = branch = None
    paths: list[str] = []
    entries = iter(porcelain.split("\0"))
    for entry in entries:
        if entry.startswith("# branch.oid "):
            oid = entry[len("# branch.oid ") :]
            commit = None if oid == "(initial)" else oid
        elif entry.startswith("# branch.head "):
            head = entry[len("# branch.head ") :]
            branch = None if head == "(detached)" else head
        elif entry[:2] in ("1 ", "u "):
            fields = 8 if entry[0] == "1" else 10
            paths.append(entry.split(" ", fields)[fields])
        elif entry[:2] == "2 ":
            paths.append(entry.split(" ", 9)[9])
            next(entries, None)
    return commit, branch, paths


def _remote_url(config: str) -> str | None:
    """origin's URL (else the first remote's) from ``git config -z --get-regexp``."""
    urls: dict[str, str] = {}
    for item in config.split("\0"):
        key, _, value = item.partition("\n")
        if key.startswith("remote.") and key.endswith(".url"):
            urls.setdefault(key[len("remote.") : -len(".url")], value)
    url = urls.get("origin") or next(iter(urls.values()), None)
    return strip_credentials(url) if url else None


def repo_root(path: Path) -> Path | None:
    """The working tree that holds ``path``, or None outside a git repository."""
    try:
        return _root(_start(path, "rev-parse", "--show-toplevel"), path)
    except NotARepository:
        return None


def _root(proc: subprocess.Popen[bytes], path: Path) -> Path:
    out, err = proc.communicate()
    if proc.returncode != 0:
        message = err.decode(errors="replace").strip()
        if "not a git repository" in message:
            raise NotARepository(f"{path} is not in a git repository")
        if "must be run in a work tree" in message:
            raise NotARepository(f"{path} is not in a git working tree")
        raise GitStateError(f"git cannot read the repository at {path}: {message}")
    return Path(os.fsdecode(out.rstrip(b"\n"))).resolve()


def snapshot(
    script: Path, configs: Sequence[Path] = (), reads: Callable[[Path], bool] | None = None
) -> GitSnapshot:
    """Read the state of the repository that holds ``script``; raise NotARepository outside one.

    ``configs`` are the run's config files and folders (a Hydra tree): a file of them that
    git does not track makes the tree dirty, as an untracked script does, when the run
    ``reads`` it (asked only of untracked files found in a folder)."""
    script = script.resolve()
    here = script.parent
    root_proc = _start(here, "rev-parse", "--show-toplevel")
    procs = [
        _start(here, "status", "--porcelain=v2", "--branch", "-z", "--untracked-files=no"),
        _start(here, "ls-files", "-z", "--", script.name),
        _start(here, "config", "-z", "--get-regexp", r"^remote\..*\.url$"),
    ]
    try:
        root = _root(root_proc, here)
        # Config files outside the repository are not git's (their content is recorded).
        inside = [path for path in (p.resolve() for p in configs) if path.is_relative_to(root)]
        if inside:
            relative = [path.relative_to(root).as_posix() for path in inside]
            procs.append(_start(root, "ls-files", "-z", "--others", "--full-name", "--", *relative))
        commit, branch, changed = _status(_output(procs[0]))
        tracked = _output(procs[1])
        remote_url = _remote_url(_output(procs[2], ok=(0, 1)))  # 1: no remote configured
        others = [path for path in _output(procs[3]).split("\0") if path] if inside else []
    finally:
        for proc in procs:
            if proc.returncode is None:
                proc.kill()
                proc.communicate()
    given = {path.relative_to(root).as_posix() for path in inside if not path.is_dir()}
    untracked = [
        path
        for path in others
        if path in given
        or (path.endswith((".yaml", ".yml")) and (reads is None or reads(root / path)))
    ]
    rel_script = script.relative_to(root).as_posix()
    return GitSnapshot(
        root=root,
        commit=commit,
        branch=branch,
        remote_url=remote_url,
        changed_files=changed,
        script_untracked=None if tracked else rel_script,
        configs_untracked=untracked,
    )


def _short(commit: str | None) -> str:
    return commit[:12] if commit else "no commit"


def changes_since(commit: str | None, before: bytes, now: GitSnapshot, when: str) -> str | None:
    """How the code ``now`` differs from a recorded state (its ``commit`` and the patch of its
    uncommitted changes, ``before``), or None when it is the same code. ``when`` names the
    recorded moment for the message: "at staging"."""
    if now.commit != commit:
        return f"the commit is {_short(now.commit)}, it was {_short(commit)} {when}"
    current = patch(now) if now.dirty else b""
    if current == before:
        return None
    if before:
        return f"the uncommitted changes differ from those recorded {when}"
    return f"the working tree has uncommitted changes (it was clean {when})"


def require_clean(snap: GitSnapshot) -> None:
    """Refuse a dirty tree with a message that names what changed and how to go on."""
    if not snap.dirty:
        return
    lines = [f"  {path}" for path in snap.changed_files[:_SHOWN_FILES]]
    if len(snap.changed_files) > _SHOWN_FILES:
        lines.append(f"  ... and {len(snap.changed_files) - _SHOWN_FILES} more")
    if snap.script_untracked:
        lines.append(f"  {snap.script_untracked} (the script is not tracked by git)")
    lines += [
        f"  {path} (a config file of the run, not tracked by git)"
        for path in snap.configs_untracked
    ]
    raise GitStateError(
        f"the git working tree at {snap.root} has uncommitted changes:\n" + "\n".join(lines),
        hint="Commit them so the run can be reproduced, or pass --ignore-dirty to run anyway "
        "(the changes are saved in the experiment's git.patch).",
    )


def patch(snap: GitSnapshot) -> bytes:
    """``git diff HEAD`` plus the untracked script and configs as new files: commit + patch
    rebuild the run.

    The same bytes whatever the user's git config, and always applicable with ``git apply``.
    """
    base = snap.commit or _EMPTY_TREE
    try:
        tracked = _start(snap.root, *_PATCH_CONFIG, "diff-index", *_PATCH_OPTIONS, base)
        out = _output_bytes(tracked)
        for path in snap.untracked:
            # `git diff --no-index` exits 1 when the files differ, which they always do here.
            untracked = _start(
                snap.root,
                *_PATCH_CONFIG,
                "diff",
                "--no-index",
                *_PATCH_OPTIONS,
                "--",
                "/dev/null",
                path,
            )
            out += _output_bytes(untracked, ok=(0, 1))
    except NotARepository as exc:  # git vanished from PATH since the state was read
        raise GitStateError(f"cannot write git.patch: {exc}") from exc
    return out


# The detect-secrets plugins the scan runs (class names, most specific first: a line is warned
# about once, for the first that finds something), and how a warning names what each finds.
# Left out: high-entropy strings (every checksum, git hash and base64 blob in a string) and
# public IP addresses, which are not secrets.
_SECRET_PLUGINS = {
    "PrivateKeyDetector": "a private key",
    "AWSKeyDetector": "an AWS key",
    "AzureStorageKeyDetector": "an Azure storage key",
    "GitHubTokenDetector": "a GitHub token",
    "GitLabTokenDetector": "a GitLab token",
    "SlackDetector": "a Slack token",
    "OpenAIDetector": "an OpenAI API key",
    "HuggingFaceTokenDetector": "a Hugging Face token",
    "PypiTokenDetector": "a PyPI token",
    "NpmDetector": "an npm token",
    "StripeDetector": "a Stripe key",
    "SendGridDetector": "a SendGrid key",
    "TwilioKeyDetector": "a Twilio key",
    "MailchimpDetector": "a Mailchimp key",
    "DiscordBotTokenDetector": "a Discord bot token",
    "TelegramBotTokenDetector": "a Telegram bot token",
    "SquareOAuthDetector": "a Square OAuth secret",
    "ArtifactoryDetector": "Artifactory credentials",
    "CloudantDetector": "Cloudant credentials",
    "IbmCloudIamDetector": "an IBM Cloud key",
    "IbmCosHmacDetector": "IBM COS credentials",
    "SoftlayerDetector": "SoftLayer credentials",
    "JwtTokenDetector": "a JSON web token",
    "BasicAuthDetector": "a password in a URL",
    "KeywordDetector": "a password, token or key",
    "SecretAssignmentDetector": "a password, token or key",
}
_NOT_A_SECRET = r"(?:true|false|yes|no|on|off|null|none)"
_PLUGIN_OPTIONS = {
    # `use_secret: false` names a secret but holds none
    "KeywordDetector": {"keyword_exclude": rf"[:=]\s*[\"']?{_NOT_A_SECRET}[\"']?\s*(?:#.*)?$"},
}
_SECRET_SETTINGS = {
    "plugins_used": [{"name": name, **_PLUGIN_OPTIONS.get(name, {})} for name in _SECRET_PLUGINS],
}


@functools.cache
def _yanex_detectors() -> tuple[type, ...]:
    """yanex's own detect-secrets plugins, for common forms no built-in one catches."""
    from detect_secrets.plugins.base import RegexBasedDetector
    from detect_secrets.util.filetype import FileType, determine_file_type

    class HuggingFaceTokenDetector(RegexBasedDetector):
        """Hugging Face access tokens: ``hf_`` and 34 letters."""

        secret_type = "Hugging Face Token"
        denylist = (re.compile(r"\bhf_[A-Za-z]{34}\b"),)

    class SecretAssignmentDetector(RegexBasedDetector):
        """``NAME=value`` in .env files, shell scripts and credentials files, whose values go
        unquoted: for a file of no known syntax, KeywordDetector only reads quoted values."""

        secret_type = "Secret Assignment"
        denylist = (
            re.compile(
                r"^\s*(?:export\s+)?[\w.-]*"
                r"(?:api_?key|access_?key|secret_?key|private_?key|secret|token|passw(?:or)?d)"
                rf"\s*=\s*(?!{_NOT_A_SECRET}\b)"
                r"(?:\"([^\"\s]+)\"|'([^'\s]+)'|([\w\-./+=:@~%!?*^&]+))\s*(?:#.*)?$",
                re.IGNORECASE,
            ),
        )

        def analyze_line(
            self, filename: str, line: str, line_number: int = 0, **kwargs: Any
        ) -> set[Any]:
            if determine_file_type(filename) is not FileType.OTHER:
                return set()  # code and config files: KeywordDetector knows their syntax
            return super().analyze_line(filename, line, line_number, **kwargs)

    return HuggingFaceTokenDetector, SecretAssignmentDetector


_HUNK = re.compile(rb"@@ -\d+(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
_C_ESCAPES = {b"a": 7, b"b": 8, b"t": 9, b"n": 10, b"v": 11, b"f": 12, b"r": 13}


def _unquote(name: bytes) -> bytes:
    """A path as a diff header writes it: in C quotes when it holds unusual bytes (``\\303``)."""
    if not (len(name) > 1 and name.startswith(b'"') and name.endswith(b'"')):
        return name

    def byte(escape: re.Match[bytes]) -> bytes:
        code = escape[1]
        return bytes([int(code, 8) if len(code) == 3 else _C_ESCAPES.get(code, code[0])])

    return re.sub(rb"\\([0-7]{3}|.)", byte, name[1:-1])


def _added_lines(patch: bytes) -> dict[str, list[tuple[int, str]]]:
    """The lines each file of ``patch`` gains, with their numbers in the new file.

    A hunk is read by its line counts, so an added line ``++ x`` (``+++ x`` in the patch) is
    never taken for the next file's header.
    """
    added: dict[str, list[tuple[int, str]]] = {}
    path: str | None = None
    lines = iter(patch.split(b"\n"))
    for raw in lines:
        if raw.startswith(b"+++ "):
            # git ends a name that holds a space with a tab, for patch(1)
            name = _unquote(raw[4:].removesuffix(b"\t"))
            path = None if name == b"/dev/null" else name[2:].decode("utf-8", "replace")
            continue
        hunk = _HUNK.match(raw)
        if hunk is None:
            continue
        old, number, new = int(hunk[1] or 1), int(hunk[2]), int(hunk[3] or 1)
        while old > 0 or new > 0:
            body = next(lines, None)
            if body is None:
                break
            if body.startswith(b"+"):
                if path is not None:
                    added.setdefault(path, []).append((number, body[1:].decode("utf-8", "replace")))
                number, new = number + 1, new - 1
            elif body.startswith(b"-"):
                old -= 1
            elif not body.startswith(b"\\"):  # not "\ No newline at end of file": context
                number, old, new = number + 1, old - 1, new - 1
    return added


def find_secrets(patch: bytes) -> list[tuple[str, int, str]]:
    """``(file, line, what)`` for each added line of ``patch`` that looks like a secret.

    The scan is detect-secrets' (plugins, then its filters of likely false positives) with
    the plugins of ``_SECRET_PLUGINS``; it is imported here, as only a dirty run needs it.
    """
    added = _added_lines(patch)
    if not added:
        return []
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
    from detect_secrets.core.scan import _process_line_based_plugins
    from detect_secrets.settings import get_plugins, transient_settings

    # Registered as detect-secrets registers a plugin file's classes, for this scan only: a
    # program that launched this run in its own process may use detect-secrets too.
    plugins = get_mapping_from_secret_type_to_class()
    for detector in _yanex_detectors():
        plugins[detector.secret_type] = detector
    found: dict[tuple[str, int], str] = {}
    try:
        with transient_settings(_SECRET_SETTINGS):
            names = {p.secret_type: _SECRET_PLUGINS[type(p).__name__] for p in get_plugins()}
            for path, lines in added.items():
                # The line scan detect-secrets' scan_file and scan_diff share; scan_diff
                # itself needs unidiff, which cannot read every patch git writes.
                for secret in _process_line_based_plugins(lines, filename=path):
                    found.setdefault((path, secret.line_number), names[secret.type])
    finally:
        for detector in _yanex_detectors():
            del plugins[detector.secret_type]
    return [(path, line, what) for (path, line), what in found.items()]

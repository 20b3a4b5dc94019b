"""The secret scan of a dirty run's ``git.patch``: a line the patch adds that looks like a
password, a token or a key is named in a warning before the patch is saved with the run.

The scan is detect-secrets' line scan with the plugins of ``_SECRET_PLUGINS`` (and two of
yanex's own). detect-secrets (with requests) takes longer to import than a clean run's git
state takes to read, so ``find_secrets`` imports it, and only a dirty run calls it.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from yanex.code.git import unquote

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
            name = unquote(raw[4:].removesuffix(b"\t"))
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

"""``yanex get``: one field of experiments (a parameter, a result, a metadata field, the
command line, the output), as plain values for scripts.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any

import click

from yanex import columns
from yanex.cli import CONTEXT_SETTINGS, UserError, echo_err, user_errors
from yanex.cli import output as out
from yanex.cli.command_line import cli_command, run_command
from yanex.cli.selection import (
    filter_options,
    flat_last,
    flat_params,
    refs_of,
    selected,
    synced_index,
)
from yanex.dotted import lookup
from yanex.index import Index
from yanex.record import Record, Status
from yanex.regular_files import BadRecord, read_regular

# --- get --------------------------------------------------------------------------------------

_GET_FIELDS = ("id", "name", "status", "dir", "description", "tags", "script", "args", "cwd",
               "project", "created", "started", "ended", "duration", "exit_code", "error",
               "sweep", "sweep_index", "git.commit", "git.branch", "git.dirty", "rerun_of",
               "run-command", "cli-command", "params", "results", "stdout", "stderr",
               "artifacts", "artifacts-dir", "dependencies", "upstream", "downstream",
               "lineage")  # fmt: skip
# Fields that walk the dependency graph (the index's): IDs, comma-joined, upstream first.
_LINEAGE_FIELDS = {"upstream": (True, False), "downstream": (False, True), "lineage": (True, True)}
# yanex 0.6's names of fields, and its prefixes (metric:x, metrics.x, param:x, meta:x).
_V06_FIELDS = {"experiment-dir": "dir", "metrics": "results", "script_path": "script",
               "created_at": "created", "started_at": "started", "completed_at": "ended",
               "ended_at": "ended", "error_message": "error", "git.commit_hash": "git.commit",
               "git.has_uncommitted_changes": "git.dirty"}  # fmt: skip
_V06_PREFIXES = {"metrics.": "results.", "metric:": "results.", "param:": "params.", "meta:": ""}
# Metadata read by path (``environment.python.version``, ``git.remote_url``).
_METADATA_PATHS = ("git.", "environment.", "hydra.", "cli_args.", "sweep_values.", "worktree.")
_OUTPUTS = ("stdout", "stderr")


def _get_field(field: str) -> str:
    """The field as today's ``yanex get`` names it (``metrics.acc`` -> ``results.acc``); a
    UserError for one it does not know."""
    for prefix, now in _V06_PREFIXES.items():
        if field.startswith(prefix) and len(field) > len(prefix):
            field = now + field[len(prefix) :]
            break
    field = _V06_FIELDS.get(field, field)
    if field.startswith(("params.", "results.")) and field.partition(".")[2]:
        return field
    if field in _GET_FIELDS or field.startswith(_METADATA_PATHS):
        return field
    raise UserError(
        f"unknown field {out.safe(field)!r}\n"
        "Give params.<key>, results.<name>, or one of: " + ", ".join(_GET_FIELDS)
    )


def _get_value(rec: Record, field: str) -> Any:
    meta = rec.metadata
    if field.startswith("params."):
        return lookup(rec.params, field[len("params.") :])
    if field.startswith("results."):
        return flat_last(rec).get(field[len("results.") :])
    if field == "params":
        return list(flat_params(rec))
    if field == "results":
        return list(flat_last(rec))
    if field == "artifacts":
        return [str(rec.dir / "artifacts" / artifact.name) for artifact in rec.artifacts]
    if field == "dir":
        return str(rec.dir)
    if field == "artifacts-dir":
        return str(rec.dir / "artifacts")
    if field == "tags":
        return ",".join(rec.tags)
    if field == "run-command":
        return run_command(rec)
    if field == "dependencies":
        return " ".join(f"{slot}={eid}" for slot, eid in (meta.get("dependencies") or {}).items())
    if field == "cli-command":
        return cli_command(rec)
    if field in ("created", "started", "ended"):
        return meta.get(f"{field}_at")
    if field in ("git.commit", "git.branch", "git.dirty"):
        return (meta.get("git") or {}).get(field[4:])
    if field.startswith(_METADATA_PATHS):
        return lookup(meta, field)
    if field == "args":
        return " ".join(meta.get("args") or [])
    return meta.get(field)


def _output_text(rec: Record, name: str, head: int | None, tail: int | None) -> str:
    """stdout.txt or stderr.txt as the script wrote it (--head/--tail: its first/last lines)."""
    try:
        text = read_regular(rec.dir / f"{name}.txt").decode("utf-8", "replace")
    except (OSError, BadRecord):
        return ""
    if head is None and tail is None:
        return text
    lines = text.splitlines(keepends=True)
    first = lines[:head] if head is not None else []
    last = lines[len(lines) - tail :] if tail else []
    if head is not None and tail is not None and head + tail >= len(lines):
        return "".join(lines)
    return "".join(first + last if head is not None else last)


def _follow(rec: Record, name: str, tail: int | None) -> None:
    """``get stdout ID -f``: what the script wrote (--tail: its last lines), then what it
    writes until the experiment ends (Ctrl-C stops following)."""
    import time

    from yanex.record import read_metadata

    sys.stdout.write(_output_text(rec, name, None, tail))
    sys.stdout.flush()
    path = rec.dir / f"{name}.txt"
    offset = path.stat().st_size if path.exists() else 0
    try:
        while True:
            try:
                status = read_metadata(rec.dir).get("status")
            except (OSError, BadRecord):
                status = None
            if path.exists() and path.stat().st_size > offset:
                with open(path, "rb") as handle:
                    handle.seek(offset)
                    chunk = handle.read()
                offset += len(chunk)
                sys.stdout.buffer.write(chunk)
                sys.stdout.flush()
            elif status not in Status.LIVE:
                return
            else:
                time.sleep(0.2)
    except KeyboardInterrupt:
        sys.exit(130)


@click.command(context_settings=CONTEXT_SETTINGS)
@click.argument("field")
@click.argument("refs", nargs=-1, metavar="[ID]...")
@filter_options
@click.option(
    "--depth",
    type=click.IntRange(min=1),
    help="With upstream, downstream or lineage: at most N dependencies away.",
)
@click.option("-l", "--limit", type=click.IntRange(min=1), help="At most this many experiments.")
@click.option(
    "-F",
    "--format",
    "fmt",
    type=click.Choice(["default", "json", "csv", "markdown", "sweep"], case_sensitive=False),
    default="default",
    help="sweep: the values comma-separated on one line, for "
    '-p "lr=$(yanex get params.lr -s completed -F sweep)" -m.',
)
@click.option("--default", "missing", metavar="TEXT", help="Print TEXT for a missing value.")
@click.option("--head", type=click.IntRange(min=0), help="stdout/stderr: its first N lines.")
@click.option("--tail", type=click.IntRange(min=0), help="stdout/stderr: its last N lines.")
@click.option(
    "-f", "--follow", is_flag=True, help="stdout/stderr: follow it until the experiment ends."
)
def get(
    field: str,
    refs: tuple[str, ...],
    limit: int | None,
    fmt: str,
    missing: str | None,
    head: int | None,
    tail: int | None,
    follow: bool,
    depth: int | None,
    **options: Any,
) -> None:
    """Print one FIELD of each experiment, one line each (for scripts).

    \b
    FIELD: params.<key>, results.<name> (its last value), run-command (the `yanex run`
    command line that rebuilds the experiment), cli-command (the one typed), stdout and
    stderr (--head N, --tail N, -f), params and results (their names), artifacts (their
    paths), a metadata path (environment.python.version), or one of:
      id name status dir description tags script args cwd project created started ended
      duration exit_code error sweep sweep_index git.commit git.branch git.dirty rerun_of
      artifacts-dir
    yanex 0.6's names work too: metrics.<name>, metric:<name>, param:<key>, meta:<field>,
    experiment-dir, script_path, completed_at, error_message, git.commit_hash.
    dependencies: its -D dependencies, as SLOT=ID; upstream: the IDs of the experiments it
    depends on, directly or not; downstream: of those that depend on it; lineage: both, and
    itself (comma-joined, upstream first; --depth N: at most N steps away).
    A missing value prints an empty line (--default TEXT); error prints the ID and the
    reason in one line (a tab between). Without IDs, the experiments the filters select.
    \b
    Examples:
      yanex get results.loss --sweep 81d0
      cd "$(yanex get dir 3f9a)"
      $(yanex get run-command 3f9a)
      yanex run train.py -m -p "lr=$(yanex get params.lr -s completed -t best -F sweep)"
      yanex run eval.py -D "model=list($(yanex get downstream 3f9a))" -m
    """
    field = _get_field(field)
    for flag, given in (("--head", head is not None), ("--tail", tail is not None)):
        if given and field not in _OUTPUTS:
            raise click.UsageError(f"{flag} applies to stdout and stderr, not {field}")
    if follow and (field not in _OUTPUTS or fmt != "default" or head is not None):
        raise click.UsageError("-f/--follow follows stdout or stderr (--tail N: from its end)")
    if depth is not None and field not in _LINEAGE_FIELDS:
        raise click.UsageError("--depth applies to upstream, downstream and lineage")
    fmt = fmt.lower()
    with synced_index() as index:
        records = selected(index, refs, options, limit=limit)
        if field in _LINEAGE_FIELDS:
            lineage = [_lineage_ids(index, rec, field, depth) for rec in records]
    if not records:
        echo_err("yanex: no experiments match")
        return
    if follow:
        if len(records) > 1:
            raise UserError("-f/--follow follows one experiment; name it")
        _follow(records[0], field, tail)
        return
    if field in _OUTPUTS:
        values: list[Any] = [_output_text(rec, field, head, tail) for rec in records]
    elif field in _LINEAGE_FIELDS:
        values = lineage
    elif field == "error":  # the reason in one line, as list and to_dataframe give it
        values = [columns.reason(rec) for rec in records]
    else:
        values = [_get_value(rec, field) for rec in records]
    if missing is not None:
        values = [missing if value is None else value for value in values]
    _print_values(field, records, values, fmt, single=len(refs_of(refs, options)) == 1)


def _lineage_ids(index: Index, rec: Record, field: str, depth: int | None) -> str:
    """``upstream``, ``downstream`` or ``lineage`` of one experiment: IDs, upstream first."""
    from yanex import dependencies

    up, down = _LINEAGE_FIELDS[field]
    found = dependencies.lineage(index, [rec.id], up=up, down=down, depth=depth)
    return ",".join(eid for eid in found.ids if field == "lineage" or eid != rec.id)


def _print_values(
    field: str, records: Sequence[Record], values: Sequence[Any], fmt: str, single: bool
) -> None:
    """get's values in the format asked for (0.6's json, csv, markdown and sweep too)."""
    pairs = list(zip(records, values, strict=True))
    if fmt == "json":
        found = [{"id": rec.id, "value": value} for rec, value in pairs]
        out.print_json(found[0] if single and len(found) == 1 else found)
        return

    def text(value: Any) -> str:
        if isinstance(value, list):
            return ", ".join(out.full_value(item) for item in value)
        return out.full_value(value)

    if fmt == "csv":
        out.print_csv(["id", field], [[rec.id, text(value)] for rec, value in pairs])
    elif fmt == "markdown":
        out.print_markdown(["ID", field], [[rec.id, text(value)] for rec, value in pairs])
    elif fmt == "sweep":
        missing = [rec.id for rec, value in pairs if value is None]
        if missing:  # a sweep over "nothing" is no value: left out, and said
            shown = ", ".join(missing[:5]) + (", ..." if len(missing) > 5 else "")
            echo_err(f"yanex: {len(missing)} of them have no {out.safe(field)}, left out: {shown}")
        present = [value for value in values if value is not None]
        if field.startswith(("params.", "results.")):
            # Each value as Hydra's grammar reads it back (a string with a comma quoted), so
            # that `-p "x=$(yanex get params.x ... -F sweep)" -m` sweeps over exactly these.
            from yanex.config.overrides import render_value

            with user_errors():
                click.echo(",".join(out.safe(render_value(value)) for value in present))
        else:
            flat = [
                item
                for value in present
                for item in (value if isinstance(value, list) else [value])
            ]
            click.echo(",".join(out.full_value(item) for item in flat))
    elif field in _OUTPUTS:
        for value in values:  # the script's output, as it wrote it
            sys.stdout.write(value)
        sys.stdout.flush()
    elif field == "artifacts":
        for value in values:
            for path in value:
                click.echo(out.safe(path))
    elif field == "error":  # which run, and why it failed
        for rec, value in pairs:
            click.echo(f"{rec.id}\t{out.safe(value or '')}".rstrip("\t"))
    else:
        for value in values:
            click.echo(text(value))

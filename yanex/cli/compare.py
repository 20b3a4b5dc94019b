"""``yanex compare``: experiments side by side, the parameters that differ and the results."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

from yanex import query
from yanex.cli import CONTEXT_SETTINGS, UserError, echo_err, user_errors
from yanex.cli import output as out
from yanex.cli.selection import (
    filter_options,
    flat_last,
    flat_params,
    result_names,
    selected,
    synced_index,
)
from yanex.record import Record


@click.command(context_settings=CONTEXT_SETTINGS)
@click.argument("refs", nargs=-1, metavar="[ID]...")
@filter_options
@click.option(
    "--all-params", is_flag=True, help="Show every parameter, not only those that differ."
)
@click.option(
    "--params",
    "param_spec",
    metavar="auto|all|none|KEY,...",
    help="Which parameters: auto (those that differ: the default), all, none, or these keys "
    "(globs: '*.lr').",
)
@click.option(
    "--metrics",
    "metric_spec",
    metavar="auto|all|none|NAME,...",
    help="Which results: all (the default), auto (those that differ), none, or these names.",
)
@click.option("--only-different", is_flag=True, help="Only the parameters and results that differ.")
@click.option("--max-rows", type=click.IntRange(min=1), help="Show at most this many rows.")
@click.option(
    "--export",
    "export_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the table to this file instead (.csv, .json or .md: its format).",
)
@click.option(
    "--no-interactive",
    is_flag=True,
    hidden=True,
    help="yanex 0.6's static table: the only one there is now.",
)
@click.option(
    "--sort",
    "sort_key",
    metavar="KEY",
    help="Sort rows by KEY (-KEY: descending, +KEY: ascending; a result alone: best first).",
)
@click.option(
    "--minimize", multiple=True, metavar="RESULT", help="Smaller is better for RESULT (repeatable)."
)
@click.option(
    "--maximize", multiple=True, metavar="RESULT", help="Larger is better for RESULT (repeatable)."
)
@click.option(
    "-f",
    "-F",
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "json", "markdown", "default"], case_sensitive=False),
    default="table",
    show_default=True,
)
def compare(
    refs: tuple[str, ...],
    all_params: bool,
    param_spec: str | None,
    metric_spec: str | None,
    only_different: bool,
    max_rows: int | None,
    export_path: Path | None,
    no_interactive: bool,
    sort_key: str | None,
    minimize: tuple[str, ...],
    maximize: tuple[str, ...],
    fmt: str,
    **options: Any,
) -> None:
    """Compare experiments side by side: one row each, the parameters that differ, the code
    when it differs (commit, patch, submodules), and the last value of each result, the best
    of each marked with *.

    \b
    Without IDs, the experiments the filters select (default: all of this project's).
    Best means smallest for results named like loss, error, mse, time, largest for those
    named like acc, f1, score, reward; --minimize/--maximize decide for any other (which is
    marked nowhere until they do).
    \b
    Examples:
      yanex compare 3f9a 7c2f
      yanex compare --sweep 81d0 --sort results.loss
    """
    if all_params and param_spec not in (None, "all"):
        raise click.UsageError(f"--all-params and --params {param_spec}: give one of them")
    if export_path is not None and fmt not in ("table", "default"):
        raise click.UsageError("--export takes its format from the file's suffix; drop -f")
    with synced_index() as index:
        sort = (query.parse_sort(sort_key),) if sort_key else (query.NEWEST_FIRST,)
        records = selected(index, refs, options, required=False, sort=sort)
    if not records:
        # As `list` and yanex 0.6's compare: an empty selection is an answer, not an error.
        echo_err("yanex: no experiments match; nothing to compare (`yanex list` shows them)")
        return
    if max_rows is not None and len(records) > max_rows:
        echo_err(f"(the first {max_rows} of {len(records)} experiments; --max-rows)")
        records = records[:max_rows]
    flat = [flat_params(rec) for rec in records]
    keys = _columns(
        "--params",
        "all" if all_params else param_spec or "auto",
        list(dict.fromkeys(k for params in flat for k in params)),
        flat,
    )
    lasts = [flat_last(rec) for rec in records]
    metric_default = "auto" if only_different else "all"
    names = _columns("--metrics", metric_spec or metric_default, result_names(records), lasts)
    if export_path is not None:
        suffix = export_path.suffix.lower()
        fmt = {".json": "json", ".md": "markdown", ".markdown": "markdown"}.get(suffix, "csv")
        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer):
            _print_compare(records, flat, keys, names, minimize, maximize, fmt)
        from yanex import store

        with user_errors():
            try:
                store.write_bytes_atomic(export_path, buffer.getvalue().encode())
            except OSError as exc:
                raise UserError(f"cannot write {export_path}: {exc.strerror or exc}") from exc
        echo_err(f"yanex: wrote {len(records)} experiments to {out.safe(export_path)} ({fmt})")
        return
    _print_compare(records, flat, keys, names, minimize, maximize, fmt)


def _columns(option: str, spec: str, found: list[str], rows: Sequence[dict[str, Any]]) -> list[str]:
    """``--params``/``--metrics``: the keys shown of those ``found`` (auto: those whose value
    differs between the rows; a list: the keys named, globs allowed, each matching one)."""
    import fnmatch

    if spec == "all":
        return found
    if spec == "none":
        return []
    if spec == "auto":
        return query.differing_keys(list(rows)) if len(rows) > 1 else found
    chosen: list[str] = []
    for pattern in (part.strip() for part in spec.split(",")):
        matches = [key for key in found if fnmatch.fnmatchcase(key, pattern)]
        if not pattern or not matches:
            shown = ", ".join(out.safe(k) for k in found[:10]) or "none"
            raise UserError(
                f"{option} {out.safe(pattern)!r}: none of these experiments has it\n"
                f"They have: {shown}{', ...' if len(found) > 10 else ''}."
            )
        chosen += [key for key in matches if key not in chosen]
    return chosen


def _print_compare(
    records: Sequence[Record],
    flat: Sequence[dict[str, Any]],
    keys: Sequence[str],
    names: Sequence[str],
    minimize: Sequence[str],
    maximize: Sequence[str],
    fmt: str,
) -> None:
    """compare's table (or csv, json, markdown) of ``records``."""
    best = query.best_rows(records, names, minimize, maximize)
    codes = _code_labels(records)
    show_code = len(set(codes)) > 1  # two runs of different code never look alike
    if fmt == "json":
        out.print_json(
            [
                {
                    "id": rec.id,
                    "name": rec.name,
                    "status": rec.status,
                    "code": codes[i],
                    "params": {k: params.get(k) for k in keys},
                    "results": {n: flat_last(rec).get(n) for n in names},
                    "best": [n for n in names if best.get(n) and i in best[n]],
                }
                for i, (rec, params) in enumerate(zip(records, flat, strict=True))
            ]
        )
        return
    if fmt == "csv":
        rows = [
            [rec.id, out.safe(rec.name or ""), rec.status]
            + ([out.safe(codes[i])] if show_code else [])
            + [out.full_value(params.get(k)) for k in keys]
            + [out.full_value(flat_last(rec).get(n)) for n in names]
            for i, (rec, params) in enumerate(zip(records, flat, strict=True))
        ]
        out.print_csv(
            [
                "id",
                "name",
                "status",
                *(["code"] if show_code else []),
                *(f"params.{k}" for k in keys),
                *(f"results.{n}" for n in names),
            ],
            rows,
        )
        return
    fixed = ["ID", "NAME", "STATUS", *(["CODE"] if show_code else [])]
    headers = [*fixed, *(out.safe(k) for k in keys), *(out.safe(n) for n in names)]
    if fmt == "markdown":
        rows = [
            [rec.id, out.safe(rec.name or ""), rec.status]
            + ([out.safe(codes[i])] if show_code else [])
            + [out.value(params[k]) if k in params else "-" for k in keys]
            + [out.value(flat_last(rec).get(n)) for n in names]
            for i, (rec, params) in enumerate(zip(records, flat, strict=True))
        ]
        out.print_markdown(headers, rows)
        return
    table = out.Table(headers, styles={0: "cyan"})
    first_result = len(fixed) + len(keys)
    table.numeric = set(range(first_result, len(headers)))
    for i, (rec, params) in enumerate(zip(records, flat, strict=True)):
        last = flat_last(rec)
        table.rows.append(
            [rec.id, out.safe(rec.name or ""), rec.status]
            + ([out.safe(codes[i])] if show_code else [])
            + [out.value(params[k]) if k in params else "-" for k in keys]
            + [out.value(last[n]) if n in last else "" for n in names]
        )
        for j, name in enumerate(names):
            if i in best.get(name, ()):
                table.best.add((i, first_result + j))
    table.print()
    if not keys and len(records) > 1 and not query.differing_keys(list(flat)):
        echo_err("(every parameter is the same; --all-params shows them)")
    unsure = [  # results with values to choose between, but no way to tell the best
        n
        for n in names
        if query.direction(n, minimize, maximize) is None
        and query.best_rows(records, [n], maximize=[n])
    ]
    if unsure and len(records) > 1:
        shown = ", ".join(out.safe(n) for n in unsure[:5]) + (", ..." if len(unsure) > 5 else "")
        echo_err(
            f"(no best marked for {shown}: the name does not say which way is better; "
            "--minimize NAME or --maximize NAME)"
        )


def _code_labels(records: Sequence[Record]) -> list[str]:
    """Each run's code in one cell (commit, patch hash, submodules): ``compare``'s CODE."""
    from yanex.code.diff import label, recorded_in

    return [label(recorded_in(rec.dir, rec.metadata.get("git"))) for rec in records]

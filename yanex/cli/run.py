"""``yanex run``, ``stage`` and ``rerun``: parse the flags, hand the work to the launcher,
report the end.

Messages from yanex itself go to stderr; stdout carries the script's output (or, for
``--dry-run``, the resolved config; for ``stage``, the new IDs).
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from yanex.cli import CONTEXT_SETTINGS, UserError, echo_err, user_errors
from yanex.cli.command_line import is_override, scan_args
from yanex.config.sweeps import CONFIRM_GRID
from yanex.terminal import safe

if TYPE_CHECKING:
    from yanex.launcher import Experiment, Prepared, RunRequest


class RunCommand(click.Command):
    """``yanex run`` / ``stage``: arguments before ``--`` that read as overrides are
    overrides, in the order given among the ``--param`` values; the rest, and everything
    after ``--``, reach the script verbatim. The script's own ``--flags`` may follow SCRIPT
    without ``--`` (as in yanex 0.6) when that is unambiguous (see :func:`check_script_flags`)."""

    ignore_unknown_options = True

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        items, separator = scan_args(self, args)
        check_script_flags(self, items)
        after = args[separator + 1 :] if separator is not None else []
        ctx.meta["yanex.after"] = after
        ctx.meta["yanex.items"] = items
        return super().parse_args(ctx, args)


def check_script_flags(command: click.Command, items: list[tuple[str, str]]) -> None:
    """The script's own flags given without ``--`` (``yanex run t.py --fold 0``, as yanex 0.6
    passed them) reach the script, unless that could be a mistake: an option before SCRIPT,
    one close to an option of yanex (``--tags``), or a flag followed by what reads as an
    override (``--out a=b``: its value, or an override?). Then a UsageError names ``--``."""
    import difflib

    own = sorted(
        opt
        for param in command.params
        if isinstance(param, click.Option)
        for opt in [*param.opts, *param.secondary_opts]
        if opt.startswith("--")
    )
    script_seen = False
    for i, (kind, text) in enumerate(items):
        if kind == "arg":
            script_seen = True
        if kind != "flag":
            continue
        flag = text.partition("=")[0]
        if not script_seen:
            raise click.NoSuchOption(flag, possibilities=own)
        if command is not run and any(flag in p.opts for p in run.params):
            raise click.UsageError(
                f"{flag} is an option of yanex run, not of yanex {command.name} (if it is the "
                f"script's, give it after --)"
            )
        close = difflib.get_close_matches(flag, own, n=1, cutoff=0.8)
        if close:
            raise click.UsageError(
                f"{flag} is not an option of yanex {command.name} (did you mean {close[0]}?); "
                f"if it is the script's, give it after --: yanex {command.name} SCRIPT "
                f"[OPTIONS] -- {flag} ..."
            )
        following = items[i + 1] if i + 1 < len(items) else None
        if "=" not in text and following and following[0] == "arg" and is_override(following[1]):
            raise click.UsageError(
                f"{flag} {following[1]}: is {following[1]!r} the value of the script's {flag}, or "
                f"an override? Give the script's flags after --: yanex {command.name} SCRIPT "
                f"[OVERRIDES] -- {flag} VALUE"
            )


def _overrides_and_args(
    params: tuple[str, ...], script_args: tuple[str, ...]
) -> tuple[list[str], list[str]]:
    """Split what click parsed into the overrides (``--param`` and positional ones, in the
    order typed) and the script's own arguments (the rest, then all after ``--``)."""
    ctx = click.get_current_context()
    after: list[str] = ctx.meta.get("yanex.after", [])
    items: list[tuple[str, str]] = ctx.meta.get("yanex.items", [])
    before = list(script_args[: len(script_args) - len(after)])
    scanned = [text for kind, text in items if kind in ("arg", "flag")][1:]  # first: SCRIPT
    if scanned != before or [text for kind, text in items if kind == "param"] != list(params):
        # The scan read the line differently from click: keep click's reading.
        items = [("param", text) for text in params] + [("arg", text) for text in before]
    overrides = [
        text for kind, text in items if kind == "param" or (kind == "arg" and is_override(text))
    ]
    own = [text for text in before if not is_override(text)]
    return overrides, [*own, *after]


def _dependency_places(depends_on: tuple[str, ...]) -> list[int] | None:
    """How many overrides were typed before each ``-D`` (the order of the sweeps, as
    Hydra's); None when the scan read the line otherwise than click (then: after them all)."""
    items: list[tuple[str, str]] = click.get_current_context().meta.get("yanex.items", [])
    if [text for kind, text in items if kind == "dep"] != list(depends_on):
        return None
    places, overrides, script_seen = [], 0, False
    for kind, text in items:
        if kind == "dep":
            places.append(overrides)
        elif kind == "param" or (kind == "arg" and script_seen and is_override(text)):
            overrides += 1
        script_seen = script_seen or kind == "arg"
    return places


def _complete_override(ctx: click.Context, param: click.Parameter, incomplete: str) -> list[Any]:
    """Shell completion of an override: the config's keys and each group's options."""
    from yanex.cli.completion import complete_override

    return complete_override(ctx, incomplete)


def _describe_git(prepared: Prepared) -> str:
    git = prepared.git
    if git is None:
        return "no git repository"
    commit = (git.commit or "no commit")[:12]
    where = f"branch {git.branch}" if git.branch else "detached HEAD"
    state = "dirty, allowed by --ignore-dirty" if git.dirty else "clean"
    return f"git {commit} on {where} ({state})"


def _run_options(command: Callable[..., None]) -> Callable[..., None]:
    """The options `yanex run` and `yanex stage` share, in the order --help shows them."""
    options = [
        click.argument(
            "script",
            required=False,
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
        ),
        click.argument(
            "script_args",
            nargs=-1,
            type=click.UNPROCESSED,
            metavar="[OVERRIDES]... [-- SCRIPT_ARGS...]",
            shell_complete=_complete_override,
        ),
        click.option(
            "-c",
            "--config",
            "config_paths",
            multiple=True,
            type=click.Path(exists=True, dir_okay=False, path_type=Path),
            help="YAML config file (repeatable: merged in order; one with a Hydra defaults "
            "list is composed as a tree). Default: conf/ next to SCRIPT, else ./conf, else "
            "config.yaml there.",
        ),
        click.option(
            "--config-dir",
            type=click.Path(exists=True, file_okay=False, path_type=Path),
            help="A Hydra config tree to compose (default: conf/ next to SCRIPT, else ./conf).",
        ),
        click.option(
            "--config-name",
            metavar="NAME",
            help="The primary config of the tree (default: config, i.e. config.yaml).",
        ),
        click.option(
            "-p",
            "--param",
            "params",
            multiple=True,
            metavar="KEY=VALUE",
            shell_complete=_complete_override,
            help="Set a parameter (repeatable; or give it as an argument: model.lr=0.005): "
            "model.lr=0.005, +new=1, ~remove. Values are typed: 3, 1e-3, true, null, [1, 2], "
            "'quoted text'. Sweeps: list(a, b), choice(a, b), range(start, stop, step), "
            "linspace(a, b, n), logspace(a, b, n), shuffle(...), sort(...).",
        ),
        click.option(
            "-m",
            "--multirun",
            is_flag=True,
            help="Hydra's multirun: read a bare comma list (lr=0.1,0.01) as a sweep, stage the "
            "grid and run it at once (-j N at a time), with a summary. With --stage: only stage.",
        ),
        click.option(
            "-D",
            "--depends-on",
            "depends_on",
            multiple=True,
            metavar="[SLOT=]ID",
            help="Depend on another experiment (repeatable): SLOT=ID (an ID, a unique prefix, "
            "a name), ID alone for slot dep1, dep2, ...; the script reads it with "
            'yanex.get_dependency("SLOT"). SLOT=list(ID1, ID2) (with -m: SLOT=ID1,ID2) sweeps '
            "the slot. It must be completed (or staged, when this run is staged).",
        ),
        click.option(
            "--clone-from",
            metavar="ID",
            help="Start from the parameters another experiment ran with (overrides on top); "
            "yanex rerun ID runs its script again.",
        ),
        click.option(
            "--project",
            hidden=True,
            help="yanex 0.6's project name: refused (a run's project is its repository).",
        ),
        click.option("-n", "--name", help="Name of the experiment."),
        click.option("-d", "--description", help="Description of the experiment."),
        click.option("-t", "--tag", "tags", multiple=True, help="Tag the experiment (repeatable)."),
        click.option(
            "--ignore-dirty",
            is_flag=True,
            help="Run even with uncommitted changes; they are saved in the experiment's "
            "git.patch. With --staged: run experiments whose code changed since staging.",
        ),
        click.option(
            "--dry-run",
            is_flag=True,
            help="Check everything (script, config, values, git) and print the resolved config "
            "(or the members of a sweep); create nothing.",
        ),
        click.option(
            "-y",
            "--yes",
            is_flag=True,
            help=f"Stage grids of more than {CONFIRM_GRID:,} experiments without asking.",
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@click.command(cls=RunCommand, context_settings=CONTEXT_SETTINGS)
@_run_options
@click.option(
    "--stage",
    is_flag=True,
    help="Stage the experiment (or every member of a sweep) to run later with --staged.",
)
@click.option(
    "--staged",
    is_flag=True,
    help="Run the staged experiments of this project (its git repository, else this folder), "
    "oldest first.",
)
@click.option(
    "--id",
    "staged_ref",
    metavar="ID",
    help="Run this one staged experiment (an ID, prefix or name).",
)
@click.option(
    "-j",
    "--jobs",
    "--parallel",
    "jobs",
    type=click.IntRange(min=0),
    help="With --staged or -m: how many experiments run at once (default 1; 0: one per CPU). "
    "A sweep given -j N (yanex 0.6's --parallel N) runs at once, as with -m. With "
    "--executor dask: how many are sent to the cluster at once (default: all of them).",
)
@click.option(
    "--executor",
    type=click.Choice(["local", "dask"]),
    default="local",
    show_default=True,
    help="With --staged or -m: where the experiments run: in this process (local), or on a Dask "
    'cluster (pip install "yanex[dask]").',
)
@click.option(
    "--scheduler",
    metavar="ADDRESS",
    help="With --executor dask: the cluster's scheduler (tcp://HOST:PORT); default: a local "
    "cluster of processes, started for this run.",
)
@click.option(
    "--cluster",
    type=click.Choice(["slurm", "pbs", "sge", "lsf", "htcondor", "moab", "oar"]),
    help="With --executor dask and -j N: a cluster of batch jobs for this run, built by "
    "dask-jobqueue from Dask's configuration (~/.config/dask/jobqueue.yaml), scaled to run N "
    "experiments at once, lost jobs replaced, and cancelled at the end.",
)
@click.option(
    "--cluster-option",
    "cluster_given",
    multiple=True,
    metavar="KEY=VALUE",
    help="With --cluster: one of its jobqueue.yaml options for this run (repeatable), e.g. "
    "walltime=02:00:00, queue=gpu, 'job_extra_directives=[\"--gres=gpu:1\"]'.",
)
@click.option(
    "--resources",
    "resources_given",
    multiple=True,
    metavar="NAME=N",
    help="With --executor dask: what each experiment needs of a worker (repeatable), e.g. "
    "gpu=1: it runs only on workers that advertise it (dask worker --resources gpu=2), and "
    "each gets its own CUDA_VISIBLE_DEVICES.",
)
@click.option(
    "--retries",
    type=click.IntRange(min=0),
    default=0,
    help="With --executor dask: how many times an experiment whose worker died is run again.",
)
def run(
    script: Path | None,
    script_args: tuple[str, ...],
    stage: bool,
    staged: bool,
    staged_ref: str | None,
    jobs: int | None,
    executor: str,
    scheduler: str | None,
    cluster: str | None,
    cluster_given: tuple[str, ...],
    resources_given: tuple[str, ...],
    retries: int,
    **options: Any,
) -> None:
    """Run SCRIPT as a tracked experiment.

    \b
    Parameters are merged, lowest to highest priority:
      the script's defaults (yanex.get_param(key, default))
      < the config: --config FILE, else a Hydra tree (conf/ next to SCRIPT, else ./conf,
        composed with its config groups; model=large picks an option), else config.yaml
        there; a @hydra.main app's own config_path and config_name
      < YANEX_PARAM_<key>=<value> environment variables (nested: YANEX_PARAM_model__lr)
      < overrides: --param KEY=VALUE, or KEY=VALUE arguments as Hydra takes them
    The script runs with this Python interpreter, in the current folder; arguments that
    are not overrides, and all after `--`, reach its sys.argv. A dirty git tree is refused
    unless --ignore-dirty is given. yanex exits with the script's exit code (130 after
    Ctrl-C, 143 after SIGTERM).

    \b
    A sweep value (list, choice, range, linspace, logspace; with -m a bare comma list)
    makes a grid of experiments, one per combination; -m runs it at once, --stage stages
    it to run later with --staged:
      yanex run train.py "lr=logspace(-4, -1, 4)" bs=32,64 -m -j 2
      yanex run train.py -p "lr=logspace(-4, -1, 4)" -p "bs=list(32, 64)" --stage
      yanex run --staged -j 4

    \b
    Examples:
      yanex run train.py model.lr=0.005 --tag baseline
      yanex run train.py -c configs/big.yaml -p epochs=50 -n big-run
      yanex run train.py --dry-run "title='Hello, world'"
      yanex run train.py -- --data ./data --verbose
      yanex run evaluate.py -D model=3f9a    (yanex.get_dependency("model") is 3f9a...)
      yanex run train.py --data ./data --fold 0   (the script's flags: -- is optional)
    """
    if staged_ref is not None:
        given = [name for name, value in options.items() if value and name != "ignore_dirty"]
        if stage or staged:
            given.append("stage" if stage else "staged")
        if script is not None or script_args or given or jobs is not None:
            raise click.UsageError("--id runs one staged experiment; it takes no other options")
        sys.exit(_run_staged_one(staged_ref, options["ignore_dirty"]))
    if staged:
        given = [name for name, value in options.items() if value and name != "ignore_dirty"]
        if stage:
            given.append("stage")
        if script is not None or script_args or given:
            extra = ([str(script)] if script else []) + [_option_name(name) for name in given]
            raise click.UsageError(f"--staged runs what was staged; it takes no {', '.join(extra)}")
        from yanex.executors import run_staged

        dask_options = _cluster_options(
            executor, scheduler, resources_given, retries, cluster, cluster_given, jobs
        )
        with user_errors():
            code = run_staged(
                jobs=jobs if jobs is not None else (1 if executor == "local" else 0),
                ignore_dirty=options["ignore_dirty"],
                echo=echo_err,
                executor=executor,
                **dask_options,
            )
        sys.exit(code)
    executor_options = (
        jobs is not None or executor != "local" or scheduler or resources_given or cluster
        or cluster_given or retries
    )  # fmt: skip
    if options["multirun"] and stage and executor_options:
        raise click.UsageError(
            "-m with --stage only stages; -j and the executor options apply when the grid "
            "runs: yanex run --staged -j N --executor ..."
        )
    grid_now = False  # -j N without -m: a sweep runs at once, one run as it is (yanex 0.6)
    if options["multirun"]:
        dask_options = _cluster_options(
            executor, scheduler, resources_given, retries, cluster, cluster_given, jobs
        )
    elif jobs is not None and stage:
        raise click.UsageError(
            "-j/--jobs (yanex 0.6's --parallel) applies when the grid runs: stage it, then "
            "yanex run --staged -j N"
        )
    elif jobs is not None:
        grid_now = True
        dask_options = _cluster_options(
            executor, scheduler, resources_given, retries, cluster, cluster_given, jobs
        )
    elif executor_options:
        raise click.UsageError(
            "--executor, --scheduler, --cluster, --resources and --retries apply to --staged and -m"
        )
    else:
        dask_options = {}
    at_once = {
        "jobs": jobs if jobs is not None else (1 if executor == "local" else 0),
        "executor": executor,
        **dask_options,
    }
    cli_args = _cli_args(script, options, stage=stage, staged=staged, parallel=jobs)
    _launch(
        script,
        script_args,
        stage=stage,
        at_once=at_once,
        grid_now=grid_now,
        cli_args=cli_args,
        **options,
    )


def _cli_args(
    script: Path | None,
    options: dict[str, Any],
    *,
    stage: bool,
    staged: bool = False,
    parallel: int | None = None,
) -> dict[str, Any]:
    """The yanex flags of this run in yanex 0.6's shape (``metadata.cli_args``, which
    ``yanex.get_cli_args()`` returns to the script); ``param`` is completed in ``_launch``."""
    return {
        "script": str(script) if script is not None else None,
        "config": [str(path) for path in options["config_paths"]],
        "clone_from": options["clone_from"],
        "param": [],
        "name": options["name"],
        "tag": list(options["tags"]),
        "description": options["description"],
        "depends_on": [],  # filled from the record: each SLOT=ID resolved
        "dry_run": options["dry_run"],
        "stage": stage,
        "staged": staged,
        "parallel": parallel,
        "project": None,
    }


def _cluster_options(
    executor: str,
    scheduler: str | None,
    resources_given: tuple[str, ...],
    retries: int,
    cluster: str | None,
    cluster_given: tuple[str, ...],
    jobs: int | None,
) -> dict[str, Any]:
    """The Dask executor's options, checked: they mean nothing to the local one."""
    if executor != "dask":
        if scheduler or resources_given or retries or cluster or cluster_given:
            raise click.UsageError(
                "--scheduler, --cluster, --resources and --retries need --executor dask"
            )
        return {}
    if cluster and scheduler:
        raise click.UsageError(
            "--cluster builds a cluster for this run; --scheduler uses one that runs: give one"
        )
    if cluster and not jobs:
        raise click.UsageError(
            f"--cluster {cluster} needs -j N: how many experiments run at once (its jobs are "
            "submitted for that many)"
        )
    if cluster_given and not cluster:
        raise click.UsageError("--cluster-option needs --cluster (slurm, pbs, ...)")
    cluster_options: dict[str, str] = {}
    for text in cluster_given:
        key, sep, value = text.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(
                f"{text!r} is not KEY=VALUE (e.g. walltime=02:00:00)",
                param_hint="'--cluster-option'",
            )
        cluster_options[key.strip()] = value
    resources: dict[str, float] = {}
    for text in resources_given:
        name, sep, amount = text.partition("=")
        try:
            value = float(amount)
        except ValueError:
            value = -1.0
        if not sep or not name.strip() or value <= 0:
            raise click.BadParameter(
                f"{text!r} is not NAME=N with N a positive number (e.g. gpu=1)",
                param_hint="'--resources'",
            )
        resources[name.strip()] = value
    found: dict[str, Any] = {"scheduler": scheduler, "resources": resources, "retries": retries}
    if cluster:
        found.update(cluster=cluster, cluster_options=cluster_options)
    return found


def _option_name(name: str) -> str:
    """An option as the user types it (``tags`` -> ``--tag``), from the running command."""
    for param in click.get_current_context().command.params:
        if param.name == name and param.opts:
            return max(param.opts, key=len)
    return name


@click.command(cls=RunCommand, context_settings=CONTEXT_SETTINGS)
@_run_options
def stage(script: Path | None, script_args: tuple[str, ...], **options: Any) -> None:
    """Stage SCRIPT (or every member of a sweep) to run later with `yanex run --staged`.

    The same as `yanex run SCRIPT ... --stage`: config, metadata and git state are written
    now, with status `staged`; nothing runs.
    """
    _launch(
        script, script_args, stage=True, cli_args=_cli_args(script, options, stage=True), **options
    )


def _launch(
    script: Path | None,
    script_args: tuple[str, ...],
    *,
    stage: bool,
    config_paths: tuple[Path, ...],
    config_dir: Path | None,
    config_name: str | None,
    params: tuple[str, ...],
    multirun: bool,
    depends_on: tuple[str, ...],
    name: str | None,
    description: str | None,
    tags: tuple[str, ...],
    ignore_dirty: bool,
    dry_run: bool,
    yes: bool,
    clone_from: str | None = None,
    project: str | None = None,
    at_once: dict[str, Any] | None = None,
    grid_now: bool = False,
    cli_args: dict[str, Any] | None = None,
) -> None:
    """``at_once``: how -m runs the grid it stages (run_queue's options); ``grid_now``: -j N
    without -m, which runs a sweep the same way and a single run as it is."""
    from yanex.launcher import RunRequest

    if script is None:
        raise click.UsageError("Missing argument 'SCRIPT'.")
    if project is not None:
        raise click.UsageError(
            "--project: a run's project is the git repository it runs in (yanex 0.6 took a "
            "name); run it from that repository, and see every project's with `yanex list -A`"
        )
    for tag in tags:
        if not tag.strip():
            raise click.BadParameter("a tag cannot be empty", param_hint="'--tag'")
    overrides, own_args = _overrides_and_args(params, script_args)
    for text in overrides:
        key, eq, value = text.partition("=")
        if eq and not value:
            echo_err(
                f"warning: {safe(text)} sets {safe(key)} to an empty string; if a $(...) gave "
                f"its value, that command printed nothing (write {safe(key)}='' to mean it)"
            )
    multirun = multirun or grid_now
    request = RunRequest(
        script=script,
        script_args=own_args,
        config_paths=list(config_paths),
        config_dir=config_dir,
        config_name=config_name,
        params=overrides,
        multirun=multirun,
        name=name,
        description=description,
        tags=list(tags),
        ignore_dirty=ignore_dirty,
        stage=stage or multirun,
        depends_on=list(depends_on),
        depends_on_after=_dependency_places(depends_on),
        run_at_once=multirun and not stage,
    )
    if clone_from is not None:
        request = _cloned(request, clone_from)
    if cli_args is not None:
        request.carried["cli_args"] = {**cli_args, "param": overrides}
    # -m without --stage: the grid is staged, then run at once.
    _run_request(
        request,
        dry_run=dry_run,
        yes=yes,
        at_once=at_once if multirun and not stage else None,
        single_now=grid_now,
    )


def _cloned(request: RunRequest, ref: str) -> RunRequest:
    """``--clone-from ID`` (yanex 0.6): ``request`` starting from the parameters experiment
    ID ran with, as ``yanex rerun`` starts (its overrides on top), for the script given."""
    from yanex import query
    from yanex import rerun as reruns
    from yanex.cli.selection import current_project_name, synced_index

    if request.config_paths or request.config_dir or request.config_name:
        raise click.UsageError("--clone-from starts from that experiment's config; drop -c")
    with synced_index() as index:
        original = query.Lookup(index, current_project_name, strict=True).one(ref)
    with user_errors():
        plan = reruns.prepare(original, param_texts=request.params, stage=request.stage)
    cloned = plan.request
    cloned.script, cloned.cwd, cloned.script_args = request.script, request.cwd, request.script_args
    cloned.name, cloned.description = request.name, request.description
    cloned.tags, cloned.ignore_dirty = request.tags, request.ignore_dirty
    cloned.multirun = request.multirun
    if request.depends_on:  # -D given with --clone-from: these, not the original's
        cloned.depends_on = request.depends_on
        cloned.depends_on_after = request.depends_on_after
    cloned.carried["cloned_from"] = cloned.carried.pop("rerun_of")
    return cloned


def _run_staged_one(ref: str, ignore_dirty: bool) -> int:
    """``--id ID`` (yanex 0.6): run one staged experiment now, as ``--staged`` runs it."""
    from yanex import query
    from yanex.cli.selection import current_project_name, synced_index
    from yanex.executors import run_queue
    from yanex.record import Status

    with synced_index() as index:
        found = query.Lookup(index, current_project_name, strict=True).one(ref)
    if found.status != Status.STAGED:
        raise UserError(
            f"experiment {found.id} is {found.status}, not staged; `yanex rerun {found.id}` "
            "runs it again as a new experiment"
        )
    with user_errors():
        code, _ = run_queue(
            [(found.dir, found.metadata)],
            ignore_dirty=ignore_dirty,
            echo=echo_err,
            jobs=1,
            executor="local",
            stdout=sys.stdout.buffer,
            stderr=sys.stderr.buffer,
        )
    return code


def _run_request(
    request: RunRequest,
    *,
    dry_run: bool,
    yes: bool,
    note: Callable[[Prepared], None] | None = None,
    at_once: dict[str, Any] | None = None,
    single_now: bool = False,
) -> None:
    """Prepare ``request``; then show it (dry run), stage it, or run it and exit as it did.

    ``note`` is called with the prepared run before anything is created (rerun's notices);
    ``at_once`` (-m) runs what was staged at once, with these executor options;
    ``single_now``: a request that is no sweep runs as it is instead (-j N without -m).
    """
    from yanex.launcher import Launcher

    launcher = Launcher(stdout=sys.stdout.buffer, stderr=sys.stderr.buffer, echo=echo_err)
    with user_errors():
        prepared = launcher.prepare(request, run_grid=dry_run)
        for warning in prepared.warnings:
            echo_err(f"warning: {warning}")
        if note is not None:
            note(prepared)
        if single_now and not prepared.is_sweep:
            request.stage, at_once = False, None  # one run: -j N changes nothing (as in 0.6)
        if prepared.is_sweep:
            _confirm_grid(prepared.grid.size, yes)
        if dry_run or prepared.resolved.settings.dry_run:  # a config's yanex.dry_run too
            _show_dry_run(prepared, at_once is not None)
            return
        if request.stage:
            experiments = launcher.stage(prepared)
            if at_once is not None:
                sys.exit(_run_at_once(experiments, at_once, request.ignore_dirty))
            for experiment in experiments:
                click.echo(experiment.id)
            sweep = experiments[0].metadata["sweep"]
            what = f"{len(experiments):,} experiments (sweep {sweep})" if sweep else "1 experiment"
            echo_err(f"yanex: staged {what}; run with `yanex run --staged`")
            return
        outcome = launcher.launch(prepared)
    echo_err(f"yanex: experiment {outcome.id} {_ending(outcome.status, outcome.error)}")
    sys.exit(outcome.cli_exit_code)


def _run_at_once(experiments: list[Experiment], options: dict[str, Any], ignore_dirty: bool) -> int:
    """-m: run exactly the experiments just staged, as ``yanex run --staged`` runs them
    (claims, code check, summary, the same executors); the exit code."""
    from yanex.executors import run_queue, usable_cpus

    what = f"{len(experiments):,} experiments" if len(experiments) > 1 else "1 experiment"
    if options["executor"] == "local":
        echo_err(f"yanex: running {what}, {options['jobs'] or usable_cpus()} at a time")
        if options["jobs"] == 1:  # one at a time: its output streams as in a direct run
            options = {**options, "stdout": sys.stdout.buffer, "stderr": sys.stderr.buffer}
    queue = [(experiment.dir, experiment.metadata) for experiment in experiments]
    code, _ = run_queue(queue, ignore_dirty=ignore_dirty, echo=echo_err, **options)
    return code


def _ending(status: str, error: str | None) -> str:
    """``completed``, ``failed (exited with code 1: ValueError: bad data)``, ``cancelled (...)``:
    a failure names how it ended and the last line the script wrote to stderr."""
    from yanex.record import Status

    if status == Status.COMPLETED or not error:
        return status
    lines = error.splitlines()
    head = lines[0].rstrip(":")
    if len(lines) > 1:
        head = f"{head}: {lines[-1].strip()}"
    return f"{status} ({head})"


def _confirm_grid(size: int, yes: bool) -> None:
    """Ask before a grid of more than CONFIRM_GRID experiments; without a terminal, refuse."""
    if size <= CONFIRM_GRID or yes:
        return
    if not sys.stdin.isatty():
        raise UserError(
            f"the sweeps make {size:,} experiments, more than {CONFIRM_GRID:,}; "
            "pass --yes to stage them all"
        )
    click.confirm(f"Stage {size:,} experiments?", abort=True, err=True)


def _show_dry_run(prepared: Prepared, at_once: bool = False) -> None:
    from yanex.record import config_yaml

    members = prepared.expand()
    if prepared.is_sweep:
        click.echo(f"grid of {len(members):,} experiments:")
        for index, member in enumerate(members, 1):
            click.echo(f"  {index:>{len(str(len(members)))}}. {safe(prepared.label(member))}")
    else:
        click.echo(config_yaml(members[0].config), nl=False)
    if at_once or not (prepared.request.stage or prepared.is_sweep):
        action = "run"
    else:
        action = "stage" if prepared.request.stage else "run with -m or --stage"
    depends = ""
    if prepared.depends_on and not prepared.is_sweep:
        found = prepared.dependencies_of(members[0])
        depends = ", depending on " + ", ".join(f"{s}={i}" for s, i in found.items())
    echo_err(
        f"dry run: {prepared.script.name} is ready to {action} with {_describe_git(prepared)}"
        f"{depends}; nothing was created."
    )


@click.command(context_settings=CONTEXT_SETTINGS)
@click.argument("ref", metavar="ID")
@click.option(
    "-p",
    "--param",
    "params",
    multiple=True,
    metavar="KEY=VALUE",
    help="Change a parameter of the recorded config (repeatable; a group option recomposes "
    "a Hydra tree). Sweeps make a grid, staged with --stage.",
)
@click.option(
    "-n", "--name", help="Name of the new experiment (default: the original's + -rerun-N)."
)
@click.option("-t", "--tag", "tags", multiple=True, help="Add a tag (repeatable).")
@click.option("--stage", is_flag=True, help="Stage the rerun to run later with --staged.")
@click.option(
    "--worktree",
    is_flag=True,
    help="Run the recorded code: its commit (+ git.patch) checked out in a temporary git "
    "worktree, removed afterwards.",
)
@click.option("--ignore-dirty", is_flag=True, help="Run even with uncommitted changes.")
@click.option("--dry-run", is_flag=True, help="Show the config it would run with; create nothing.")
@click.option("-y", "--yes", is_flag=True, help="Stage big grids without asking.")
def rerun(
    ref: str,
    params: tuple[str, ...],
    name: str | None,
    tags: tuple[str, ...],
    stage: bool,
    worktree: bool,
    ignore_dirty: bool,
    dry_run: bool,
    yes: bool,
) -> None:
    """Run experiment ID again, as a new experiment.

    \b
    The same script, script arguments, working folder and recorded parameters (exactly what
    the original ran with), --param changes on top, Hydra choices kept, `rerun_of: ID` in
    its metadata, and a name of its own (NAME-rerun-N). It runs on today's code (the
    clean-tree rule applies; other code than the original's is pointed out), or with
    --worktree on the code the original ran (its commit, submodules and git.patch).
    \b
    Examples:
      yanex rerun 3f9a
      yanex rerun best-run -p optimizer.lr=0.01 -n lower-lr
      yanex rerun 3f9a --worktree
    """
    from yanex import query
    from yanex import rerun as reruns
    from yanex.cli.selection import current_project_name, synced_index

    for tag in tags:
        if not tag.strip():
            raise click.BadParameter("a tag cannot be empty", param_hint="'--tag'")
    if worktree and stage:
        raise click.UsageError(
            "--worktree runs at once (its worktree is removed after); it cannot be staged"
        )
    with synced_index() as index:
        original = query.Lookup(index, current_project_name, strict=True).one(ref)
        plan = reruns.prepare(
            original,
            param_texts=params,
            name=name,
            tags=tags,
            stage=stage,
            ignore_dirty=ignore_dirty,
            taken=lambda candidate: bool(query.Lookup(index, None).named(candidate, limit=1)),
        )

    def note(prepared: Prepared) -> None:
        """Say when today's code is not the code the original ran (the rerun records its own)."""
        if worktree or not plan.commit:
            return
        now = prepared.git.commit if prepared.git else None
        if now != plan.commit:
            echo_err(
                f"yanex: {original.id} ran at commit {plan.commit[:12]}; this rerun uses "
                f"{(now or 'no commit')[:12]} (--worktree reruns its own code)"
            )
        elif prepared.git is not None:
            change = reruns.code_change(original, prepared.git)
            if change:
                echo_err(
                    f"yanex: {original.id} ran other code than there is now ({change}); this "
                    "rerun runs and records today's (--worktree reruns its own code)"
                )

    if worktree:
        with user_errors(), reruns.worktree(plan):
            _run_request(plan.request, dry_run=dry_run, yes=yes, note=note)
    else:
        _run_request(plan.request, dry_run=dry_run, yes=yes, note=note)

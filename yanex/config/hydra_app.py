"""``@hydra.main`` apps: recognised from their source, run with yanex's overrides, checked.

A script whose entry point is decorated with ``hydra.main`` composes its own config when it
runs; yanex must give it the same config it records. So yanex reads the decorator from the
source (``ast``: the script is never imported before it runs) for ``config_path`` (relative to
the script's file, as Hydra takes it), ``config_name`` and ``version_base``, composes that
tree itself (see ``compose``), and runs the app with the run's concrete overrides as Hydra
command-line overrides, plus ``hydra.run.dir`` inside the experiment folder. After the run,
the config the app composed (Hydra's own ``.hydra/config.yaml``) is compared with the one yanex
recorded; a difference (an app that changes its config or its command line at run time) is
recorded in metadata and said on stderr.

Recognising an app imports nothing (one ``ast.parse`` of a script that mentions hydra); only
running one imports Hydra's quoting and OmegaConf. ``sources`` asks this module where an app's
config is; the launcher asks it, after the config is resolved, for the app's command line and
the check of what it composed. It knows nothing of either: a recorded run is anything with
the folder and metadata of :class:`Recorded`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from yanex.config import overrides
from yanex.errors import ParamError

if TYPE_CHECKING:
    import ast

# Hydra's run directory of an app, inside the experiment folder: its `.hydra/` files, its
# log, and whatever it writes to HydraConfig's output dir (or to its cwd with chdir=True).
RUN_DIR = "hydra"
# Hydra's defaults for a version_base older than 1.2 (an unspecified one means 1.1).
_LEGACY_BASE = "1.1"
_UNSET = object()
_COMPUTED = object()


@dataclass(frozen=True)
class HydraApp:
    """What a script's ``@hydra.main(...)`` says: where its config is and how Hydra reads it."""

    script: Path
    config_path: str | None  # as written (None: no config folder)
    config_name: str | None
    version_base: str  # "1.3", or "1.1" when the decorator leaves it unspecified
    computed: tuple[str, ...] = ()  # arguments computed at run time, unknown to yanex

    @property
    def config_dir(self) -> Path | None:
        """The config folder Hydra searches: ``config_path`` relative to the script's folder."""
        if self.config_path is None:
            return None
        return (self.script.parent / self.config_path).resolve()

    def to_metadata(self) -> dict[str, Any]:
        return {
            "config_path": self.config_path,
            "config_name": self.config_name,
            "version_base": self.version_base,
        }


def find(script: Path) -> HydraApp | None:
    """The ``@hydra.main`` of ``script``, read from its source; None for any other script.

    Only literal arguments can be read; those computed when the app runs are named in
    ``computed`` (the command line must then give them: ``--config-dir``, ``--config-name``)."""
    try:
        source = script.read_bytes()
    except OSError:
        return None
    if b"hydra" not in source:
        return None
    import ast  # only for a script that mentions hydra: most runs never pay its import

    try:
        tree = ast.parse(source, filename=str(script))
    except (SyntaxError, ValueError):
        return None  # Python itself will say what is wrong when the script runs
    names = _hydra_main_names(tree)
    for node in ast.walk(tree):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for decorator in node.decorator_list:
            if isinstance(decorator, ast.Call) and _dotted(decorator.func) in names:
                return _read_decorator(script, decorator)
    return None


def _hydra_main_names(tree: ast.Module) -> set[str]:
    """How the module can name ``hydra.main``: ``hydra.main``, ``h.main`` after ``import hydra
    as h``, ``main`` (or its alias) after ``from hydra import main``."""
    import ast

    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name == "hydra":
                    names.add(f"{alias.asname or 'hydra'}.main")
        elif isinstance(node, ast.ImportFrom) and node.module == "hydra" and node.level == 0:
            for alias in node.names:
                if alias.name == "main":
                    names.add(alias.asname or "main")
    return names


def _dotted(node: ast.expr) -> str:
    import ast

    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def _read_decorator(script: Path, call: ast.Call) -> HydraApp:
    """``hydra.main(config_path, config_name, version_base)``, positional or by keyword, with
    Hydra's defaults for what is left out."""
    given: dict[str, Any] = {}
    for name, node in zip(("config_path", "config_name", "version_base"), call.args, strict=False):
        given[name] = node
    for keyword in call.keywords:
        if keyword.arg is not None:
            given[keyword.arg] = keyword.value
    values = {name: _literal(node) for name, node in given.items()}
    computed = tuple(name for name, value in values.items() if value is _COMPUTED)
    values = {name: None if value is _COMPUTED else value for name, value in values.items()}
    version_base = values.get("version_base", _UNSET)
    if version_base is _UNSET:
        version_base = _LEGACY_BASE
    elif version_base is None:
        version_base = "1.3"  # None: the installed Hydra's own defaults
    config_path = values.get("config_path", _UNSET)
    if config_path is _UNSET:
        # Hydra 1.2+ looks for no config folder; the legacy behaviour is the script's folder.
        config_path = None if _at_least_1_2(str(version_base)) else "."
    return HydraApp(
        script=script.resolve(),
        config_path=config_path,  # type: ignore[arg-type]
        config_name=values.get("config_name"),
        version_base=str(version_base),
        computed=computed,
    )


def _at_least_1_2(version: str) -> bool:
    parts = [int(p) for p in version.split(".")[:2] if p.isdigit()]
    return tuple(parts) >= (1, 2)


def _literal(node: ast.expr) -> Any:
    """A literal argument (a string or None), or ``_COMPUTED``."""
    import ast

    try:
        value = ast.literal_eval(node)
    except ValueError:
        return _COMPUTED
    return value if value is None or isinstance(value, str) else _COMPUTED


def require_known(app: HydraApp, config_dir: Path | None, config_name: str | None) -> None:
    """Refuse an app whose config yanex cannot know: its ``config_path`` or ``config_name``
    computed when it runs, and not given on the command line."""
    given = {"config_path": config_dir is not None, "config_name": config_name is not None}
    for name in app.computed:
        if not given.get(name, True):
            raise ParamError(
                f"{app.script.name}: the {name} of its @hydra.main is computed when it runs, "
                "so yanex cannot tell which config it composes",
                hint="Name it on the command line: --config-dir DIR and --config-name NAME.",
            )


# --- running an app ---------------------------------------------------------------------------


class Recorded(Protocol):
    """A recorded run, as running an app needs it (the launcher's ``Experiment`` is one)."""

    dir: Path
    metadata: dict[str, Any]

    def update(self, changes: Mapping[str, Any]) -> bool: ...


def argv(experiment: Recorded) -> list[str]:
    """The Hydra command line of a recorded run of an app: its concrete overrides (exactly
    what yanex composed), where Hydra puts the app's output, and the callback that records
    what the app composes (``yanex.hydra_callback``); none for any other script.

    The output goes where Hydra would put it when the user chose the folder (in the config
    or on the command line): a run's in ``hydra.run.dir``; a grid member's, as a job of
    Hydra's ``-m``, in ``hydra.sweep.dir``/``hydra.sweep.subdir`` with ``hydra.job.num`` its
    place in the grid (each member resolves them when it runs). Otherwise it goes in the
    experiment folder (``hydra/``)."""
    meta = experiment.metadata
    hydra = meta.get("hydra") or {}
    app = hydra.get("app")
    if not app:
        return []
    args = [str(text) for text in meta.get("overrides") or []]
    member = meta.get("sweep_index")
    if member is not None:
        args.append(f"hydra.job.num={int(member)}")  # as Hydra numbers the jobs of -m
    if member is not None and hydra.get("sweep_dir"):
        args.append("hydra.run.dir='${hydra.sweep.dir}/${hydra.sweep.subdir}'")
    elif member is not None or not hydra.get("run_dir"):
        args.append(f"hydra.run.dir={overrides.quoted(str(experiment.dir / RUN_DIR))}")
    args.append(f"++hydra.callbacks.{CALLBACK}._target_={CALLBACK_CLASS}")
    found = HydraApp(Path(meta["script"]), app["config_path"], app["config_name"], "")
    if hydra.get("config_dir") and Path(hydra["config_dir"]) != found.config_dir:
        args += ["--config-path", hydra["config_dir"]]  # --config-dir given to yanex
    if hydra.get("config_name") and hydra["config_name"] != app["config_name"]:
        args += ["--config-name", hydra["config_name"]]
    return args


# The callback's name in the app's hydra.callbacks, and the class Hydra instantiates.
CALLBACK = "yanex_record"
CALLBACK_CLASS = "yanex.hydra_callback.Recorder"
# An app that composes its config for yanex and stops (see compose._composed_by_app): the
# override that adds the callback, and the variable naming the file it writes.
COMPOSER_OVERRIDE = "++hydra.callbacks.yanex_compose._target_=yanex.hydra_callback.Composer"
COMPOSE_TO_ENV = "YANEX_COMPOSE_TO"
# What the callback reports of the app's config, in the experiment folder.
REPORT = ".hydra/app.json"
# How many keys a warning names before "...".
_SHOWN = 5


def check_config(experiment: Recorded) -> list[str]:
    """After an app ran: record in metadata what its callback reported (the app's config is
    the record: ``hydra.app_config_matches``, and where it differs from the config yanex had
    composed, ``hydra.app_config_differences`` and a warning, which is returned). No report:
    the app stopped before its job started (Hydra refused its command line), and its exit
    code says why."""
    import json

    meta = experiment.metadata
    hydra = meta.get("hydra") or {}
    if not hydra.get("app"):
        return []
    try:
        report = json.loads((experiment.dir / REPORT).read_bytes())
    except (OSError, ValueError, RecursionError):
        return []
    if not isinstance(report, dict):
        report = {"error": "its report is not a JSON object"}
    changes: dict[str, Any] = {"hydra": dict(hydra)}
    output = report.get("output_dir")
    if isinstance(output, str) and output != str(experiment.dir / RUN_DIR):
        changes["hydra"]["output_dir"] = output  # the user's hydra.run.dir or sweep.dir
    found: list[str] = []
    if report.get("error"):
        changes["hydra"]["app_config_matches"] = None
        found.append(f"the @hydra.main app's config was not recorded: {report['error']}")
    else:
        differences = [str(key) for key in report.get("differences") or []]
        changes["hydra"]["app_config_matches"] = not differences
        if report.get("unresolved"):
            found.append(
                f"the config the @hydra.main app composed cannot be resolved "
                f"({report['unresolved']}); the record holds the one yanex composed"
            )
        elif differences:
            shown = ", ".join(differences[:_SHOWN]) + (", ..." if len(differences) > _SHOWN else "")
            found.append(
                f"the config the @hydra.main app resolved differs from the one yanex composed "
                f"at {shown}; the record holds the app's (params.json, config.yaml)"
            )
        if differences:
            changes["hydra"]["app_config_differences"] = differences
    if found:
        changes["warnings"] = [*meta.get("warnings", []), *found]
    experiment.update(changes)
    return found


def differences(ours: Any, theirs: Any, where: str = "") -> list[str]:
    """The dotted keys at which two configs differ (the root is ``<config>``)."""
    if isinstance(ours, dict) and isinstance(theirs, dict):
        found = []
        for key in [*ours, *(k for k in theirs if k not in ours)]:
            path = f"{where}.{key}" if where else str(key)
            if key not in ours or key not in theirs:
                found.append(path)
            else:
                found.extend(differences(ours[key], theirs[key], path))
        return found
    if ours == theirs and type(ours) is type(theirs):
        return []
    return [where or "<config>"]

"""The Hydra callback yanex adds to a ``@hydra.main`` app's run: inside the app's process, it
records the config the app composed and resolved, before the app's task function runs.

yanex composes an app's config itself to plan a run (its grid, and its record while the run
is staged), but the app composes its own when it runs, with the environment, the clock and
the resolvers of that moment and that process: a member staged today and run on a Dask
worker tomorrow (``${oc.env:USER}``, ``${now:%H-%M-%S}``), a resolver the app registers when
it is imported, a config it stores in Hydra's ConfigStore. What the app resolved is what it
ran with, so that is the record: :class:`Recorder` (Hydra's ``on_job_start``, after Hydra set
up the job and before the task function) writes it to the experiment folder (``params.json``
and ``config.yaml`` resolved, ``.hydra/config.yaml`` as composed), so that ``yanex.get_param``
inside the app reads what ``cfg`` holds, and reports in ``.hydra/app.json`` where it differs
from what yanex had recorded. The launcher puts the report in metadata once the run ends.

Nothing in yanex imports this module: Hydra imports it in the app's process, from the
override the launcher adds to the app's command line (see ``yanex.config.hydra_app.argv``).
A callback must never stop the app: whatever goes wrong here is reported, not raised.
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig, ListConfig, OmegaConf, open_dict, read_write

from yanex import record, store
from yanex.config import compose, hydra_app, resolvers
from yanex.errors import ParamError


class Recorder(Callback):
    """Records the app's config in the experiment folder of ``YANEX_EXPERIMENT_DIR``."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        """Resolve the app's config once, in the config Hydra then copies for the task: a
        resolver whose value OmegaConf caches (``${now:}``, an app's ``use_cache=True``) then
        gives the task the very value recorded, not one a few milliseconds later."""
        for key in list(config):
            if key == "hydra":
                continue
            try:
                value = config[key]
                if isinstance(value, (DictConfig, ListConfig)):
                    OmegaConf.to_container(value, resolve=True)
            except Exception:  # the app meets it when it reads that key, as under Hydra
                continue

    def on_job_start(self, config: DictConfig, **kwargs: Any) -> None:
        folder = os.environ.get("YANEX_EXPERIMENT_DIR")
        if not folder:
            return  # not run by yanex (the override copied to another command line)
        try:
            report = _record(Path(folder), config)
        except Exception as exc:  # the app runs whatever happens here
            report = {"error": f"yanex could not record the app's config: {exc!r}"}
        try:
            text = json.dumps(report, ensure_ascii=False, default=str)
            store.write_bytes_atomic(Path(folder) / hydra_app.REPORT, text.encode(), False)
        except Exception:  # the launcher says that the report is missing
            pass


def _record(folder: Path, config: DictConfig) -> dict[str, Any]:
    """Write the app's config as the record; what the launcher needs to know of it."""
    task = copy.deepcopy(config)
    with read_write(task), open_dict(task):
        del task["hydra"]
    report: dict[str, Any] = {"output_dir": str(config.hydra.runtime.output_dir)}
    composed = OmegaConf.to_yaml(task)
    try:
        resolved = json.loads(json.dumps(resolvers.to_container(task), default=str))
    except ParamError as exc:
        report["unresolved"] = exc.message  # the app meets it when it reads that key
        resolved = None
    predicted = record.read_params(folder)
    meta = record.read_metadata(folder)
    left = (meta.get("hydra") or {}).get("resolved_by_app") or []
    if resolved is None:
        report["differences"] = ["<config>"]
    else:
        report["differences"] = [
            key
            for key in hydra_app.differences(predicted, resolved)
            if not any(key == name or key.startswith(f"{name}.") for name in left)
        ]
        store.write_bytes_atomic(folder / store.PARAMS, record.params_json(resolved).encode())
        store.write_bytes_atomic(folder / store.CONFIG, record.config_yaml(resolved).encode())
    hydra_dir = folder / ".hydra"
    hydra_dir.mkdir(exist_ok=True)
    store.write_bytes_atomic(hydra_dir / "config.yaml", composed.encode())
    return report


class Composer(Callback):
    """Composes the app's config for yanex and stops the app before its job starts: yanex
    asks the app when the config names configs only the app has (stored in Hydra's
    ConfigStore when it is imported). The composition, and what yanex records of it, go to
    the file ``YANEX_COMPOSE_TO`` names (see ``yanex.config.compose``)."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        task = copy.deepcopy(config)
        with read_write(task), open_dict(task):
            del task["hydra"]
        data = {"config": OmegaConf.to_yaml(task), **compose.describe(config)}
        target = Path(os.environ[hydra_app.COMPOSE_TO_ENV])
        store.write_bytes_atomic(target, json.dumps(data).encode(), False)
        raise SystemExit(0)  # not an Exception: Hydra lets it end the app

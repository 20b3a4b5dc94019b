"""Errors a user can cause: one small hierarchy, shown once at the edge as a short message.

Every ``YanexError`` is a refusal that names the problem and the fix; the CLI prints
``Error: <message>`` on stderr and exits with ``exit_code`` (2), the dashboard answers with
the same message. Any other exception is a bug and keeps its traceback. ::

    YanexError
    ├── ParamError              a --param, YANEX_PARAM_* value or config file
    ├── GitStateError           the repository's state (a dirty tree)
    │   └── CodeChangedError    the code changed while a yanex.launch sweep ran
    ├── StoreError              the store cannot be read or written as needed
    ├── ScriptError             no such script
    ├── DependencyError         a -D that cannot be used
    ├── QueryError              a filter, condition, sort key or name
    ├── RefusedError            a change the experiment's state does not allow
    │   └── DependentsError     a delete that would orphan dependents
    ├── RerunError              a rerun that cannot be made as asked
    ├── DaskError               the Dask executor cannot be used as asked
    ├── MissingExtra            the dashboard's extra is not installed
    ├── AmbiguousArtifactError  (yanex 0.6) an artifact found in several dependencies
    └── ExperimentContextError  (yanex 0.6) a script-API call where it cannot work
"""

from __future__ import annotations


class YanexError(Exception):
    """Base of the errors a user can cause; ``exit_code`` is what the CLI exits with."""

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def format_message(self) -> str:
        if self.hint:
            return f"{self.message}\n{self.hint}"
        return self.message


class ParamError(YanexError):
    """A ``--param``, ``YANEX_PARAM_*`` value or config file that cannot be used."""


class GitStateError(YanexError):
    """The repository is not in a state the run may start from (e.g. a dirty tree)."""


class StoreError(YanexError):
    """The experiment store cannot be written or read as needed."""


class StoreBusy(StoreError):
    """Another process holds the store's index longer than a reader waits: try again."""


class ScriptError(YanexError):
    """The script to run does not exist or is not a file."""


class DependencyError(YanexError):
    """A ``-D/--depends-on`` that cannot be used: no such experiment, an ambiguous name, a
    status a dependency cannot have, a slot named twice, a cycle."""


class AmbiguousArtifactError(YanexError):
    """``load_artifact(name)`` found the artifact in several of the run's dependencies
    (yanex 0.6's name): which one is meant must be said."""

    def __init__(self, filename: str, experiment_ids: list[str]) -> None:
        found = "\n".join(f"  {i}. {eid}" for i, eid in enumerate(experiment_ids, 1))
        super().__init__(
            f"artifact {filename!r} is in several experiments this one depends on:\n{found}",
            hint="Load it from the one you mean: "
            f"yanex.get_dependency('SLOT').load_artifact({filename!r}).",
        )
        self.filename = filename
        self.experiment_ids = experiment_ids


class ExperimentContextError(YanexError):
    """A script-API call made where it cannot work: ``completed()`` with no experiment, or
    ``create_experiment()`` inside a script that ``yanex run`` already tracks (yanex 0.6's name)."""


class CodeChangedError(GitStateError):
    """The code changed while a sweep started by ``yanex.launch`` ran; ``results`` holds the
    members that ran before the change."""

    def __init__(self, message: str, hint: str, results: list) -> None:
        super().__init__(message, hint=hint)
        self.results = results


class QueryError(YanexError):
    """A filter, condition, sort key or experiment name that cannot be used."""


class RefusedError(YanexError):
    """A change that the experiment's state does not allow (it is running, or claimed)."""


class DependentsError(RefusedError):
    """Experiments to delete that others depend on (``yanex delete --ignore-dependents``)."""


class DaskError(YanexError):
    """The Dask executor cannot be used as asked (no extra, no scheduler)."""


class RerunError(YanexError):
    """The recorded experiment cannot be run again as asked."""


class MissingExtra(YanexError):
    """The ``ui`` extra is not installed (or not whole)."""

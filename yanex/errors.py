"""Errors a user can cause: one small hierarchy, shown once by the CLI as a short message.

Every ``YanexError`` is a refusal made before anything is created or changed; the CLI prints
``Error: <message>`` on stderr and exits with ``exit_code`` (2). Any other exception is a bug
and keeps its traceback.
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

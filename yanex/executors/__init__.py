"""Where staged experiments run: ``yanex run --staged`` and ``yanex.launch(..., jobs=N)``.

- ``runner``: the staged runner (claims, the queue, signals, progress, the summary);
- ``base``: the executor seam (submit, wait, cancel);
- ``local``: members in threads of the runner's own process (the default);
- ``dask``: members on a Dask cluster (``pip install "yanex[dask]"``);
- ``member``: one member's run, the same wherever it runs (the worker-side entry point).
"""

from yanex.executors.runner import (
    make_executor,
    run_queue,
    run_staged,
    staged_experiments,
    usable_cpus,
)

__all__ = [
    "make_executor",
    "run_queue",
    "run_staged",
    "staged_experiments",
    "usable_cpus",
]

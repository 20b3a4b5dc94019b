"""The ``yanex`` command and ``python -m yanex``: the CLI, in a process of its own.

At exit the interpreter would scan every object the libraries made once more before it
quits (30-70 ms a run with OmegaConf and Hydra loaded). The process is ending and its files
are closed, so every object is frozen out of that last collection instead. This is done here,
in the program's entry point, not in ``yanex.cli``, which tests and other programs import.
"""

import atexit
import gc

from yanex.cli import main as cli


def main() -> None:
    atexit.register(gc.freeze)
    cli(prog_name="yanex")


if __name__ == "__main__":
    main()

"""``python -m yanex``: the same CLI as the ``yanex`` command."""

from yanex.cli import main

if __name__ == "__main__":
    main(prog_name="yanex")

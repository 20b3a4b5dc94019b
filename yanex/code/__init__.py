"""The code a run runs, a module per job:

- ``git``: the one git runner every git command of yanex goes through;
- ``state``: the state of a repository (commit, branch, dirty, remote, submodules) and
  ``git.patch``, the uncommitted changes a dirty run records;
- ``check``: the ONE code check every member of a batch, a ``-m`` grid and a ``yanex.launch``
  sweep goes through before it starts;
- ``diff``: two recorded code states side by side (``yanex diff``);
- ``secrets``: the secret scan of a dirty run's patch (detect-secrets).

A run must be rebuildable from what it records: a clean commit, or (with ``--ignore-dirty``)
the commit plus ``git.patch``.

Nothing is imported here: a caller imports the module that owns what it uses, so a run loads
neither the check nor the diff, and detect-secrets is loaded by a dirty run's scan only.
"""

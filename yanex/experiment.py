"""``from yanex import experiment``: the script API under the name the yanex 0.6 docs use."""

from yanex import api
from yanex.api import *  # noqa: F403

__all__ = api.__all__

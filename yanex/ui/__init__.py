"""``yanex ui``: a local web dashboard of the store, for people who would rather look than read.

It reads what ``yanex list/show/compare`` read, through the same code: the index
(``yanex.index``), the filters and lookups (``yanex.query``), the records (``yanex.record``),
the changes and their rules (``yanex.manage``), and the escaping of user text
(``yanex.terminal.safe``). Pages are rendered on the server (Starlette and Jinja2 under
uvicorn); plots are drawn by plotly.js, served from the installed ``plotly`` package, never
from a CDN, so the dashboard works offline.

The libraries come with the ``ui`` extra (``pip install "yanex[ui]"``). This module imports
none of them: :func:`require_extra` says in one line what is missing, and ``yanex.ui.server``
and ``yanex.ui.app`` import them when the dashboard starts.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

from yanex.errors import MissingExtra

# The modules the dashboard imports, and the distribution that brings each.
_NEEDED = {
    "starlette": "starlette",
    "uvicorn": "uvicorn",
    "jinja2": "jinja2",
    "multipart": "python-multipart",
    "plotly": "plotly",
}


def _missing() -> list[str]:
    missing = []
    for module, distribution in _NEEDED.items():
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):  # ValueError: a module blocked in sys.modules
            found = False
        if not found:
            missing.append(distribution)
    return missing


def plotly_js() -> Path:
    """plotly.min.js as the installed ``plotly`` package ships it (found without importing
    plotly's Python code, which the dashboard never uses)."""
    spec = importlib.util.find_spec("plotly")
    folders = list(spec.submodule_search_locations or []) if spec else []
    for folder in folders:
        path = Path(folder) / "package_data" / "plotly.min.js"
        if path.is_file():
            return path
    raise MissingExtra(
        'the installed plotly package has no plotly.min.js: reinstall it (pip install "yanex[ui]")'
    )


def require_extra() -> Path:
    """Check that the ``ui`` extra is installed; the path of plotly.min.js."""
    missing = _missing()
    if missing:
        raise MissingExtra(
            f"yanex ui needs the ui extra, and {', '.join(missing)} "
            f"{'is' if len(missing) == 1 else 'are'} not installed: "
            'pip install "yanex[ui]"'
        )
    return plotly_js()

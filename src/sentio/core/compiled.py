"""Where numba keeps its compiled kernels.

The feature engine, the accounting loop and the synthetic market are numba functions compiled
with ``cache=True``. numba caches beside the source (``__pycache__``) or, when that folder is
read-only (a system-wide install), in the user's cache folder; when neither can be written it
raises at import ("cannot cache function ...: no locator available"), which would make every
command crash for such a user. :func:`prepare_numba_cache` points numba at a private folder in
the system's temporary directory in that one case; it changes nothing when the user set
``NUMBA_CACHE_DIR`` or a default location works.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from sentio.core.files import writable

PACKAGE = Path(__file__).resolve().parents[1]


def user_cache_root() -> Path:
    """The folder numba's user-wide cache lives under (XDG, as numba's appdirs computes it)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path(os.path.expanduser("~")) / ".cache")


def prepare_numba_cache() -> str | None:
    """Set ``NUMBA_CACHE_DIR`` when numba would find no writable cache location; return it.

    >>> import os
    >>> prepare_numba_cache() is None or os.environ["NUMBA_CACHE_DIR"] != ""
    True
    """
    if os.environ.get("NUMBA_CACHE_DIR"):
        return None
    if writable(PACKAGE) or writable(user_cache_root()):
        return None
    uid = os.getuid() if hasattr(os, "getuid") else 0
    folder = str(Path(tempfile.gettempdir()) / f"sentio-numba-{uid}")
    os.environ["NUMBA_CACHE_DIR"] = folder
    if "numba" in sys.modules:  # imported before us: numba read its config already
        sys.modules["numba"].config.CACHE_DIR = folder
    return folder


__all__ = ["prepare_numba_cache", "user_cache_root"]

"""Where numba keeps the compiled JPEG kernels, chosen before numba is imported.

numba caches beside the source (``__pycache__``) when it can write there. In a
system-wide or read-only install it cannot, and every process would then compile the
kernels again (4-6 s): the cache goes to the user's cache directory instead
(``$XDG_CACHE_HOME/ustui/numba``, else ``~/.cache/ustui/numba``). A ``NUMBA_CACHE_DIR``
the user set is always kept.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from ustui.core.paths import cache_dir

MISSING_NOTICE = (
    "numba is not available on this platform: JPEG crops run as plain Python (about 15x slower)"
)


def numba_installed() -> bool:
    """Whether numba can be imported, without importing it (that costs half a second)."""
    return importlib.util.find_spec("numba") is not None


def choose(package_dir: Path) -> Path | None:
    """Point numba's cache at the user's cache directory when ``package_dir`` (where the
    kernels' source lives) cannot hold it; returns the directory set, else None.

    Call before numba is imported: it reads ``NUMBA_CACHE_DIR`` once, at import.
    """
    if os.environ.get("NUMBA_CACHE_DIR") or _writable(package_dir / "__pycache__"):
        return None
    chosen = cache_dir() / "numba"
    try:
        chosen.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None  # nowhere to cache: numba compiles per process, as before
    os.environ["NUMBA_CACHE_DIR"] = str(chosen)
    return chosen


def _writable(folder: Path) -> bool:
    """Whether files can be created in ``folder`` (or in its parent, which would create it).

    Tried for real: ``os.access`` says yes to root on a read-only mount.
    """
    target = folder if folder.is_dir() else folder.parent
    probe = target / f".ustui-probe-{os.getpid()}"
    try:
        probe.touch(exist_ok=False)
    except OSError:
        return False
    probe.unlink(missing_ok=True)
    return True

"""Where ustui keeps its files: XDG config, data, state and cache directories.

Tests and users may relocate everything by setting the XDG variables.
"""

from __future__ import annotations

import os
from pathlib import Path

APP = "ustui"


def _xdg(var: str, default: str) -> Path:
    value = os.environ.get(var)
    base = Path(value) if value and Path(value).is_absolute() else Path.home() / default
    return base / APP


def config_dir() -> Path:
    """User settings and personal profiles (``$XDG_CONFIG_HOME/ustui``)."""
    return _xdg("XDG_CONFIG_HOME", ".config")


def data_dir() -> Path:
    """Durable private data such as the pseudonym key (``$XDG_DATA_HOME/ustui``)."""
    return _xdg("XDG_DATA_HOME", ".local/share")


def state_dir() -> Path:
    """Sessions and the audit log (``$XDG_STATE_HOME/ustui``)."""
    return _xdg("XDG_STATE_HOME", ".local/state")


def cache_dir() -> Path:
    """Files that can be rebuilt, such as compiled kernels (``$XDG_CACHE_HOME/ustui``)."""
    return _xdg("XDG_CACHE_HOME", ".cache")


def private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) readable by the owner only."""
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path

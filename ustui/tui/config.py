"""The user's TUI settings, read from ``$XDG_CONFIG_HOME/ustui/config.toml``.

Example::

    image_protocol = "halfcell"   # auto, tgp, sixel, halfcell or unicode

    [keymap]                      # binding id = key(s); see `?` in the app for ids
    "file.next" = "n,down"
    "crop.accept" = "ctrl+a"
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from ustui.core.errors import UstuiError
from ustui.core.paths import config_dir

IMAGE_PROTOCOLS = ("auto", "tgp", "sixel", "halfcell", "unicode")
_KNOWN = {"image_protocol", "keymap"}


@dataclass(frozen=True)
class Settings:
    """What a user may set for the terminal UI."""

    image_protocol: str = "auto"
    """How frames are drawn: auto (detected before the app starts), tgp, sixel, halfcell or
    unicode."""
    keymap: dict[str, str] = field(default_factory=dict)
    """Binding id -> comma-separated keys, overriding the default keys (``App.set_keymap``)."""


def config_file() -> Path:
    """Where the settings live (tests relocate it through ``XDG_CONFIG_HOME``)."""
    return config_dir() / "config.toml"


def load_settings(path: Path | None = None) -> Settings:
    """The settings from ``path`` (default: :func:`config_file`); defaults when it is absent.

    Raises
    ------
    UstuiError
        When the file exists but is not valid TOML or holds a bad value.
    """
    path = path or config_file()
    if not path.is_file():
        return Settings()
    try:
        with path.open("rb") as f:
            data = tomllib.load(f)
    except OSError as exc:
        raise UstuiError(f"cannot read: {exc.strerror}", source=str(path)) from None
    except tomllib.TOMLDecodeError as exc:
        raise UstuiError(f"not valid TOML: {exc}", source=str(path)) from None
    unknown = sorted(set(data) - _KNOWN)
    if unknown:
        raise UstuiError(
            f"unknown setting {unknown[0]!r} (known: {', '.join(sorted(_KNOWN))})", source=str(path)
        )
    protocol = data.get("image_protocol", "auto")
    if protocol not in IMAGE_PROTOCOLS:
        raise UstuiError(
            f"image_protocol must be one of {', '.join(IMAGE_PROTOCOLS)}, got {protocol!r}",
            source=str(path),
        )
    keymap = data.get("keymap", {})
    if not isinstance(keymap, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and v for k, v in keymap.items()
    ):
        raise UstuiError('keymap must be a table of "binding.id" = "key,key"', source=str(path))
    return Settings(image_protocol=protocol, keymap=dict(keymap))

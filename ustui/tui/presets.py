"""``s``: the current crop as a device preset, described for the confirmation (plain Python)."""

from __future__ import annotations

import re
from pathlib import Path

from rich.text import Text

from ustui.core.cropping import CropChoice
from ustui.core.profiles import DevicePreset
from ustui.tui.model import FileInfo
from ustui.tui.status_text import box_text


def preset_from(info: FileInfo, choice: CropChoice) -> DevicePreset:
    """A preset matching the file's device, geometry and single/multi-frame kind."""
    frames = "multi" if info.frames > 1 else "single"
    described = f"{info.manufacturer} {info.model} {info.columns}x{info.rows} {frames}"
    name = re.sub(r"[^A-Za-z0-9_.+-]+", "-", described).strip("-")
    return DevicePreset(
        name=name or "device",
        crop=choice.box,
        masks=tuple(choice.masks),
        manufacturer=info.manufacturer or None,
        model=info.model or None,
        rows=info.rows,
        columns=info.columns,
        frames=frames,
    )


def preset_question(preset: DevicePreset, profile: str, target: Path) -> Text:
    """What saving ``preset`` will write, and where."""
    device = " ".join(x for x in (preset.manufacturer, preset.model) if x) or "any device"
    text = Text()
    text.append(f"Save crop {box_text(preset.crop)}", style="bold")
    if preset.masks:
        text.append(f" and {len(preset.masks)} mask(s)")
    text.append(f"\nas preset {preset.name} of profile {profile}")
    text.append(
        f"\nfor {device}, {preset.columns}x{preset.rows}, {preset.frames}-frame files?", style=""
    )
    text.append(f"\n\nOnly this preset is written, to {target};", style="dim")
    text.append("\nthe shipped profile stays as it is and still applies beneath it.", style="dim")
    return text

"""The text of the summary line (top) and the status line (under the frame), fitted to
the terminal's width; plain functions of what the screen knows."""

from __future__ import annotations

from rich.text import Text

from ustui.core.boxes import Box
from ustui.core.cropping import CropChoice
from ustui.core.profiles import Profile
from ustui.tui.model import Entry, Status, Workspace

#: rich styles of the status marks (256-colour safe).
MARK_STYLES = {
    Status.READING: "dim",
    Status.READY: "bold green",
    Status.NEEDS_TAGS: "bold yellow",
    Status.NEEDS_CROP: "bold magenta",
    Status.EXCLUDED: "dim",
    Status.UNSUPPORTED: "bold red",
}

SOURCE_NAMES = {
    "session": "yours",
    "preset": "device preset",
    "regions": "ultrasound regions",
    "analysis": "image analysis",
    "full": "whole image",
}

_COUNTED = (
    (Status.READY, "ready"),
    (Status.NEEDS_TAGS, "need tags"),
    (Status.NEEDS_CROP, "need crop"),
    (Status.EXCLUDED, "excluded"),
    (Status.UNSUPPORTED, "unsupported"),
)


def box_text(box: Box) -> str:
    """The one notation of a box everywhere in the UI, as in profiles.toml and the
    manifest: ``[left, top, right, bottom]`` in original pixels, then its size."""
    return f"{box.as_list()} {box.width}x{box.height}"


def summary_text(workspace: Workspace, progress: str, width: int) -> Text:
    """Profile and counts per status; shorter words when the line is narrow."""
    counts = workspace.counts()
    wide = width >= 100
    text = Text(no_wrap=True, overflow="ellipsis")
    text.append("ustui  " if wide else "", style="bold")
    text.append(f"profile {workspace.profile.name}" if wide else workspace.profile.name)
    files = len(workspace.entries)
    text.append(f"  ·  {files} files: " if wide else f" · {files}: ")
    parts = [
        f"{counts[s]} {s.value}" + (f" {label}" if wide else "")
        for s, label in _COUNTED
        if counts[s]
    ]
    text.append(("  " if wide else " ").join(parts) or "searching…")
    if progress and wide:
        text.append(f"  ·  {progress}", style="dim")
    return text


def tag_keys_text(profile: Profile, tags: dict[str, str]) -> Text:
    """Every tag field on one line, ``site ✓CFV`` when set, else its keys (``side l/r``)."""
    text = Text()
    for n, field in enumerate(profile.tags):
        text.append(" · " if n else "")
        value = tags.get(field.name)
        if value:
            text.append(f"{field.name} ✓{value}", style="green")
        else:
            style = "yellow" if field.required else ""
            text.append(f"{field.name} ", style=style)
            text.append(_key_list(list(field.values.values())), style="bold cyan")
    return text


def _key_list(keys: list[str]) -> str:
    """``1-6`` for a run of consecutive keys, else ``l/r``."""
    codes = [ord(k) for k in keys if len(k) == 1]
    if len(codes) == len(keys) > 2 and codes == list(range(codes[0], codes[0] + len(codes))):
        return f"{keys[0]}-{keys[-1]}"
    return "/".join(keys)


def status_text(
    *,
    workspace: Workspace,
    index: int,
    frame: int,
    frame_count: int,
    playing: bool,
    export_view: bool,
    picked: int,
    show_position: bool,
    show_tags: bool,
    choice: CropChoice | None,
    written: str = "",
    fan_mask: bool = False,
    text_found: str | None = None,
) -> Text:
    """Three lines: file and frame; status and why; crop and encoding (or the tag keys
    when the tag pane is folded away). Lines never wrap: they are cut with an ellipsis."""
    text = Text(no_wrap=True, overflow="ellipsis")
    entry: Entry = workspace.entries[index]
    status, reason = workspace.status(index)
    if show_position:
        text.append(f"{index + 1}/{len(workspace.entries)} ", style="dim")
    text.append(entry.name, style="bold")
    if entry.info is not None:  # unknown (or unreadable) until the header is read
        text.append(f"  frame {frame + 1}/{frame_count}")
    if playing:
        text.append(" ▶", style="bold green")
    if export_view:
        text.append("  EXPORT VIEW", style="bold reverse")
    if picked:
        text.append(f"  {picked} picked", style="bold reverse")
    text.append(f"\n{status.value} {reason}", style=MARK_STYLES[status])
    if text_found:  # burned-in text: what was found and whether it was reviewed
        text.append(f"  · {text_found}")
    text.append("\n")
    if show_tags:
        text.append_text(tag_keys_text(workspace.profile, workspace.peek(index).tags))
        return text
    if choice is not None and not entry.problem:
        text.append(f"crop {box_text(choice.box)} ({SOURCE_NAMES[choice.source]})")
        text.append(written, style="yellow")  # where a JPEG crop's written box differs
        if choice.masks:
            text.append(f" {len(choice.masks)} mask(s)")
        if fan_mask:
            text.append(" fan mask")
    if entry.info:
        info = entry.info
        text.append(f"  {info.columns}x{info.rows} {info.transfer_syntax}", style="dim")
    return text

"""How the review screen folds its panes as the terminal shrinks (plain Python).

Widths, in cells: 120 and more shows everything at full size; below, the side panes
narrow; below 80 the file list folds away (its file and position go to the status
line); below 60 the zoom and tag panes fold too (the tag keys go to the status
line). Below :data:`MIN_SIZE` nothing useful fits: a "too small" screen says so.
"""

from __future__ import annotations

#: The smallest terminal (columns, rows) the review screen is drawn in.
MIN_SIZE = (40, 12)

#: (CSS class, applies below this many columns).
WIDTH_CLASSES = (("-narrow", 120), ("-slim", 100), ("-compact", 80), ("-tiny", 60))
#: (CSS class, applies below this many rows).
HEIGHT_CLASSES = (("-short", 22),)


def size_classes(width: int, height: int) -> dict[str, bool]:
    """Each layout class of the review screen, and whether it applies at this size."""
    classes = {name: width < below for name, below in WIDTH_CLASSES}
    classes.update({name: height < below for name, below in HEIGHT_CLASSES})
    return classes


def too_small(width: int, height: int) -> bool:
    return width < MIN_SIZE[0] or height < MIN_SIZE[1]


def files_folded(width: int) -> bool:
    """Whether the file list is folded away (the status line then names the file)."""
    return width < 80


def tags_folded(width: int) -> bool:
    """Whether the tag pane is folded away (the status line then lists the tag keys)."""
    return width < 60

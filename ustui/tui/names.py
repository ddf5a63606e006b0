"""Short file names that stay distinguishable: where names must be cut to fit, the
part that tells a name from its neighbours is kept and the shared parts are elided.

Plain functions (no widgets), used by the file list.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

ELLIPSIS = "…"


def shortened(text: str, width: int) -> str:
    """``text`` in at most ``width`` cells, cut in the middle so the end stays visible."""
    if len(text) <= width:
        return text
    if width <= 1:
        return text[:width]
    keep = width - 1
    tail = keep * 2 // 5
    return text[: keep - tail] + ELLIPSIS + text[len(text) - tail :]


def _shared_prefix(a: str, b: str) -> int:
    """How many characters ``a`` and ``b`` share at their start."""
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return n


def _shared_suffix(a: str, b: str) -> int:
    return _shared_prefix(a[::-1], b[::-1])


def distinct_names(names: Sequence[str], width: int) -> list[str]:
    """Each name in at most ``width`` cells, distinguishable from the others: a name cut
    in the middle must still show where it differs from its most similar neighbours,
    else the differing part is kept (``jpeg…34frame.dcm`` beside ``jpeg…87frame.dcm``)."""
    shown = list(names)
    windows: dict[int, tuple[int, int]] = {}
    for i, name in enumerate(names):
        if len(name) <= width:
            continue
        others = [other for j, other in enumerate(names) if j != i and other != name]
        start = max((_shared_prefix(name, o) for o in others), default=0)
        end = len(name) - max((_shared_suffix(name, o) for o in others), default=0)
        plain = shortened(name, width)
        kept_head = plain.index(ELLIPSIS) if ELLIPSIS in plain else len(plain)
        kept_tail = len(plain) - kept_head - 1
        if not others or start < kept_head or end > len(name) - kept_tail:
            shown[i] = plain
        else:
            windows[i] = (min(start, end), max(start, end, min(start, end) + 1))
            shown[i] = _around(name, *windows[i], width)
    # Names still shown alike widen their kept part to where they differ from each other.
    for _ in range(4):
        clashes = _clashes(shown, names)
        if not clashes:
            break
        for i, j in clashes:
            for a, b in ((i, j), (j, i)):
                if len(names[a]) <= width:
                    continue
                first = _shared_prefix(names[a], names[b])
                last = max(len(names[a]) - _shared_suffix(names[a], names[b]), first + 1)
                low, high = windows.get(a, (first, last))
                windows[a] = (min(low, first), max(high, last))
                shown[a] = _around(names[a], *windows[a], width)
    return shown


def _clashes(shown: list[str], names: Sequence[str]) -> list[tuple[int, int]]:
    """Pairs of different names shown alike."""
    seen: dict[str, int] = {}
    pairs = []
    for i, text in enumerate(shown):
        if text in seen and names[seen[text]] != names[i]:
            pairs.append((seen[text], i))
        else:
            seen.setdefault(text, i)
    return pairs


def _around(name: str, start: int, end: int, width: int) -> str:
    """``name`` in ``width`` cells around ``name[start:end]`` (the differing part): a little
    of the beginning, the differing part, and the extension when there is room."""
    stem, extension = os.path.splitext(name)
    tail = extension if end <= len(stem) and len(extension) <= width // 3 else ""
    middle = name[start : len(name) - len(tail)]
    head_room = max(2, width // 5)
    room = width - min(start, head_room) - len(tail) - 1
    if len(middle) > room:
        middle = middle[: max(room - 1, 1)] + ELLIPSIS
    # Whatever room is left goes to the beginning of the name.
    head_room = max(head_room, width - len(middle) - len(tail) - 1)
    head = name[: min(start, head_room)]
    return (head + (ELLIPSIS if start > len(head) else "") + middle + tail)[:width]

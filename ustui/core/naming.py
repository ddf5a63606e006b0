"""File names inside the export, from the profile's template.

Every part comes from pseudonyms, counters and tag values: never from the inputs.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")


def safe_part(text: str) -> str:
    """``text`` reduced to characters that are safe in a file name on any system."""
    return _UNSAFE.sub("_", text).strip("._") or "_"


def tags_part(tags: Mapping[str, str], order: Iterable[str]) -> str:
    """Tag values in profile order, joined by '-', or 'untagged'."""
    values = [safe_part(tags[name]) for name in order if tags.get(name)]
    return "-".join(values) or "untagged"


def render(template: str, *, subject: str, study: str, series: str, index: int, tags: str) -> str:
    """One ZIP member name; '/' separates folders, and no part may climb out."""
    name = template.format(
        subject=safe_part(subject),
        study=safe_part(study),
        series=safe_part(series),
        index=index,
        tags=tags,
    )
    parts = [safe_part(p) for p in name.replace("\\", "/").split("/") if p not in ("", ".", "..")]
    return "/".join(parts)


def dedupe(names: list[str]) -> list[str]:
    """The same names with a counter added to any repeat, so no member is overwritten."""
    seen: set[str] = set()
    result = []
    for name in names:
        candidate, n = name, 1
        while candidate in seen:
            n += 1
            stem, dot, ext = name.rpartition(".")
            candidate = f"{stem}_{n}.{ext}" if dot else f"{name}_{n}"
        seen.add(candidate)
        result.append(candidate)
    return result

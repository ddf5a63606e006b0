"""``--shard-size``: an export as several ZIPs, ``OUT-0001.zip``, ``OUT-0002.zip``, …

Very large exports stay movable this way. A subject's files all go to one shard (a
model's train/test split by subject then needs no shard to be opened twice); a subject
larger than the size gets a shard of its own. Each shard holds its own manifest, and a
combined manifest (``OUT-manifest.json`` and ``.csv``) beside them says which shard
holds each file and the sha256 of every shard.
"""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from ustui.core import manifest
from ustui.core.atomic import write_temporary

_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(?:([KMGT])(I?))?B?\s*", re.IGNORECASE)
MEMBER_OVERHEAD = 200
"""Bytes a ZIP adds per member (headers, name, ZIP64 fields), roughly."""


def parse_size(text: str) -> int:
    """``2GB``, ``500MB``, ``1.5G`` or ``4GiB`` as bytes (KB, MB, GB: powers of 1000;
    KiB, MiB, GiB: powers of 1024).

    Raises
    ------
    ValueError
        When ``text`` is not a size, or is zero.
    """
    match = _SIZE.fullmatch(text)
    if not match:
        raise ValueError(f"not a size: {text!r} (examples: 2GB, 500MB)")
    number, unit, binary = match.groups()
    power = "KMGT".index(unit.upper()) + 1 if unit else 0
    size = int(float(number) * (1024 if binary else 1000) ** power)
    if size <= 0:
        raise ValueError("the shard size must be more than 0 bytes")
    return size


def plan(subjects: Sequence[str], sizes: Sequence[int], limit: int) -> list[list[int]]:
    """Indices of files per shard: subjects in order of first appearance, packed while
    their total stays within ``limit``; every file of a subject in one shard."""
    by_subject: dict[str, list[int]] = {}
    for i, subject in enumerate(subjects):
        by_subject.setdefault(subject, []).append(i)
    groups: list[list[int]] = []
    used = limit  # start a new shard with the first subject
    for members in by_subject.values():
        size = sum(sizes[i] + MEMBER_OVERHEAD for i in members)
        if used + size > limit:
            groups.append([])
            used = 0
        groups[-1].extend(members)
        used += size
    return [sorted(group) for group in groups]


def shard_path(out: Path, number: int) -> Path:
    """``OUT-0001.zip`` for ``OUT.zip`` and 1."""
    return out.with_name(f"{out.stem}-{number:04d}{out.suffix}")


def manifest_paths(out: Path) -> tuple[Path, Path]:
    """The combined manifest beside the shards: ``OUT-manifest.csv`` and ``.json``."""
    return out.with_name(f"{out.stem}-manifest.csv"), out.with_name(f"{out.stem}-manifest.json")


def stage_combined_manifest(
    out: Path,
    shards: Sequence[tuple[Path, Path, int]],
    rows: Callable[[], Iterable[manifest.ManifestRow]],
    *,
    profile: str,
    tag_names: Sequence[str],
) -> list[tuple[Path, Path]]:
    """Write the combined manifest under temporary names beside ``out``.

    ``shards`` holds, per shard, its written file, the name it will have and how many
    files it holds; ``rows`` gives every shard's manifest rows, shard after shard.
    Returns (temporary, final) pairs, the JSON last: it holds every shard's sha256, so
    whoever hashes it has hashed the whole export.
    """
    names = [final.name for _, final, _ in shards]
    in_shard = [
        name for name, (_, _, count) in zip(names, shards, strict=True) for _ in range(count)
    ]
    csv_path, json_path = manifest_paths(out)
    staged: list[tuple[Path, Path]] = []
    try:
        table = io.StringIO()
        manifest.write_csv(table, rows(), tag_names=tag_names, shards=in_shard)
        staged.append((write_temporary(csv_path, table.getvalue().encode()), csv_path))
        listing = [
            {"file": name, "files": count, "bytes": written.stat().st_size}
            | {"sha256": _sha256(written)}
            for name, (written, _, count) in zip(names, shards, strict=True)
        ]
        document = io.StringIO()
        manifest.write_json(
            document,
            rows(),
            profile=profile,
            tag_names=tag_names,
            shards=in_shard,
            extra={"shards": listing},
        )
        staged.append((write_temporary(json_path, document.getvalue().encode()), json_path))
    except BaseException:
        for tmp, _ in staged:
            tmp.unlink(missing_ok=True)
        raise
    return staged


def _sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()

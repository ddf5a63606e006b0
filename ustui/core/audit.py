"""The audit log: one JSON line per export, with counts and settings but no PHI."""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections import Counter
from typing import TYPE_CHECKING

from ustui import __version__
from ustui.core.paths import private_dir, state_dir
from ustui.core.profiles import Profile

if TYPE_CHECKING:
    from ustui.core.export import ExportResult


def audit_path() -> os.PathLike[str]:
    return state_dir() / "audit.jsonl"


def _reason_kind(reason: str) -> str:
    # Reasons are fixed phrases before any colon; keep only that part so nothing
    # file-specific reaches the log.
    return reason.split(":", 1)[0].split("(", 1)[0].strip()[:60]


def record_export(profile: Profile, result: ExportResult) -> None:
    """Append one line describing ``result`` to the audit log."""
    digest = hashlib.sha256()
    if result.out:
        with open(result.out, "rb") as f:
            for chunk in iter(lambda: f.read(1024 * 1024), b""):
                digest.update(chunk)
    entry = {
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "ustui": __version__,
        "profile": profile.name,
        "deid_options": list(profile.deid.options),
        "exported": len(result.exported),
        "skipped": dict(Counter(_reason_kind(s.reason) for s in result.skipped)),
        "crop_sources": dict(Counter(e.crop_source for e in result.exported)),
        "reencoded": sum(e.reencoded for e in result.exported),
        "zip_sha256": digest.hexdigest() if result.out else None,
        "crosswalk_written": result.crosswalk is not None,
    }
    private_dir(state_dir())
    fd = os.open(audit_path(), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a", encoding="utf-8") as f:
        f.write(json.dumps(entry, sort_keys=True) + "\n")

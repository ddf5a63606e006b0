"""``ustui bench --files N``: peak memory of exporting many small files.

The export's memory must not grow with the number of files (PRODUCT §9: at most
300 MB for 10,000 files). The files are one small synthetic image copied with new
SOP Instance UIDs (patched into the bytes: writing 10,000 files with pydicom would
take longer than exporting them); the export runs in a fresh process, as a user's.
"""

from __future__ import annotations

import subprocess
import sys
import time
from io import BytesIO
from pathlib import Path

from pydicom.uid import UID, generate_uid

from ustui.core.synthetic import Study, sector_frame, us_dataset

#: Size of each small image (a thumbnail-like US frame).
ROWS, COLUMNS = 64, 96
#: PRODUCT §9 target, MB, for 10,000 files.
TARGET_MB = 300

_MEASURE = """
import os, resource, sys
from ustui.cli import main
sys.stdout = open(os.devnull, "w")
main(["export", {exam!r}, "--out", {out!r}, "--no-require-tags", "--workers", "{workers}",
      "--json"])
hwm = next(line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM"))
# Spawned workers exec a fresh interpreter, so their ru_maxrss is their own peak.
sys.stderr.write(f"{{hwm}} {{resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}}\\n")
"""


def _uid(n: int) -> str:
    # 2.25.<39-digit integer>: one length for all, so patching keeps every length field.
    return f"2.25.{10**38 + n}"


def write_small_files(folder: Path, count: int) -> Path:
    """``count`` copies of one small US image in ``folder``, each its own instance."""
    folder.mkdir(parents=True, exist_ok=True)
    ds = us_dataset(
        [sector_frame(ROWS, COLUMNS, seed=1)],
        study=Study(),
        series_uid=generate_uid(),
        series_number=1,
        instance_number=1,
    )
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = UID(_uid(0))
    buffer = BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    template, old = buffer.getvalue(), _uid(0).encode()
    for n in range(count):
        (folder / f"IMG{n:05d}.dcm").write_bytes(template.replace(old, _uid(n).encode()))
    return folder


def many_files_memory(folder: Path, *, files: int, workers: int) -> dict[str, object]:
    """Export ``files`` small files with ``workers`` in a new process: seconds, and the
    peak resident memory (VmHWM) of the main process and of the largest worker."""
    exam = write_small_files(folder / "many", files)
    code = _MEASURE.format(exam=str(exam), out=str(folder / "many.zip"), workers=workers)
    start = time.perf_counter()
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - start
    main_kb, worker_kb = (int(v) for v in run.stderr.split()[-2:])
    main_mb, worker_mb = main_kb / 1024, (worker_kb / 1024 if workers > 1 else 0.0)
    return {
        "files": files,
        "workers": workers,
        "seconds": round(seconds, 1),
        "main_peak_mb": round(main_mb),
        "worker_peak_mb": round(worker_mb),
        "total_peak_mb": round(main_mb + workers * worker_mb if workers > 1 else main_mb),
        "target_mb": TARGET_MB,
    }

"""dciodvfy (dicom3tools), for tests that check outputs stay valid objects of their IOD."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

needs_dciodvfy = pytest.mark.skipif(
    shutil.which("dciodvfy") is None, reason="dciodvfy (dicom3tools) not installed"
)


def dciodvfy_errors(path: Path) -> set[str]:
    """dciodvfy's error lines for ``path``, with numbers and values blanked for comparing."""
    result = subprocess.run(["dciodvfy", str(path)], capture_output=True, text=True)
    return {
        re.sub(r"\d+", "N", re.sub(r"= <[^>]*>", "= <>", line))
        for line in (result.stdout + result.stderr).splitlines()
        if line.startswith("Error")
    }

"""Shared fixtures: every test runs with its own XDG directories."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

# The same examples on every run, for users and CI alike: a red run always reproduces.
# (Wider random fuzzing is done by hand: HYPOTHESIS_PROFILE=random.)
settings.register_profile("ustui", derandomize=True)
settings.register_profile("random", derandomize=False)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ustui"))

PROJECT = Path(__file__).resolve().parent.parent
SHARED_DATA = PROJECT.parent / "shared" / "data"
REAL_DIR = SHARED_DATA / "real"
PS315_JSON = SHARED_DATA / "ps3.15-confidentiality-profile.json"


def real_files() -> list[Path]:
    """The real ultrasound files beside the project, or [] when absent."""
    return sorted(REAL_DIR.glob("*.dcm")) if REAL_DIR.is_dir() else []


@pytest.fixture(autouse=True)
def isolated_home(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """Point config, data and state at a fresh folder so tests never touch the user's."""
    home = tmp_path_factory.mktemp("home")
    for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME"):
        monkeypatch.setenv(var, str(home / var.lower()))
    monkeypatch.delenv("USTUI_KEY_FILE", raising=False)
    return home


@pytest.fixture
def real_dir() -> Path:
    if not real_files():
        pytest.skip(f"real test files not present at {REAL_DIR}")
    return REAL_DIR

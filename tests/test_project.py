"""Project-level promises: the core stays UI-free, the README's commands are what CI
runs, and an installed ustui finds its shipped profiles."""

from __future__ import annotations

import pkgutil
import re
import subprocess
import sys
from pathlib import Path

import pytest

import ustui.core
from ustui.cli import main

PROJECT = Path(__file__).resolve().parent.parent


def test_core_never_imports_ui_libraries() -> None:
    modules = [m.name for m in pkgutil.walk_packages(ustui.core.__path__, "ustui.core.")]
    assert "ustui.core.export" in modules
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        "ui = ('textual', 'rich', 'textual_image')\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ui)\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=PROJECT
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""


def _readme_commands() -> list[str]:
    readme = (PROJECT / "README.md").read_text()
    quick = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```sh\n(.+?)\n```", quick)


def test_readme_quick_start_has_two_commands_and_ci_runs_the_test_one() -> None:
    commands = _readme_commands()
    assert len(commands) == 2
    assert commands[0].endswith("ustui demo")
    assert "pytest" in commands[1]
    ci = (PROJECT / ".ci" / "run").read_text()
    assert commands[1] in ci.splitlines()


def test_installed_package_finds_shipped_profiles(tmp_path: Path) -> None:
    code = (
        "import ustui, ustui.core.profiles as p\n"
        "print(ustui.__file__)\n"
        "print(sorted(p.load_profiles()))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path
    )
    if "No module named 'ustui'" in result.stderr:
        pytest.skip("ustui is not installed in this interpreter (run the README's test command)")
    assert result.returncode == 0, result.stderr
    assert "'dvt'" in result.stdout and "'generic-us'" in result.stdout


def test_shipped_profiles_file_is_the_top_level_one() -> None:
    from ustui.core.profiles import shipped_file

    assert shipped_file().read_bytes() == (PROJECT / "profiles.toml").read_bytes()


def test_usage_errors_exit_2_with_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["export", "x.dcm"]) == 2
    err = capsys.readouterr().err
    assert "--out" in err
    assert "Traceback" not in err

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from ustui.cli import main
from ustui.core.boxes import Box
from ustui.core.errors import ProfileError
from ustui.core.profiles import (
    DevicePreset,
    check_file,
    get_profile,
    shipped_file,
    user_file,
)


def test_shipped_profiles_are_valid_and_dvt_has_its_tags() -> None:
    assert check_file(shipped_file()) == []
    dvt = get_profile("dvt")
    assert dvt.required_tags == ("site", "side", "purpose")
    site = next(t for t in dvt.tags if t.name == "site")
    assert list(site.values) == ["CFV", "GSV", "FV-proximal", "FV-distal", "PV", "other"]
    side = next(t for t in dvt.tags if t.name == "side")
    assert side.dicom == "ImageLaterality" and side.dicom_value("left") == "L"


def test_unknown_profile_is_a_clear_error() -> None:
    with pytest.raises(ProfileError, match="no profile named 'nope'"):
        get_profile("nope")


def test_check_explains_each_problem_in_one_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(
        """
[p]
colour = "blue"
[p.deid]
options = ["retain-everything"]
[p.export]
template = "{patient}/{index}.dcm"
[[p.tags]]
name = "side"
values = { left = "l", right = "l" }
dicom = "NotAnAttribute"
[[p.tags]]
name = "view"
values = { long = "j" }
[[p.devices]]
name = "scanner"
rows = 100
columns = 100
crop = [10, 10, 200, 50]
masks = [[5, 5, 5, 9]]
"""
    )
    problems = check_file(bad)
    text = "\n".join(problems)
    assert "unknown setting 'colour'" in text
    assert "unknown option 'retain-everything'" in text
    assert "template field {patient} unknown" in text
    assert "hotkey 'l' for right collides with side=left" in text
    assert "unknown DICOM attribute 'NotAnAttribute'" in text
    assert "hotkey 'j' for long is a reserved ustui key" in text
    assert "crop [10, 10, 200, 50] lies outside the 100x100 image" in text
    assert "masks[0] [5, 5, 5, 9] is empty or negative" in text
    assert all("\n" not in p for p in problems)
    assert main(["profiles", "check", str(bad)]) == 1


def test_saving_a_preset_keeps_the_rest_of_the_user_file() -> None:
    path = user_file()
    path.parent.mkdir(parents=True)
    path.write_text(
        '[mine]\ndescription = "my study"\n[[mine.tags]]\nname = "view"\nvalues = { long = "1" }\n'
    )
    profile = get_profile("mine")
    preset = DevicePreset(
        name="probe-A",
        crop=Box(10, 20, 300, 400),
        masks=(Box(0, 0, 5, 5),),
        manufacturer="ACME",
        rows=480,
        columns=640,
        frames="multi",
    )
    assert profile.source == path
    from ustui.core.profiles import save_device_preset

    save_device_preset(profile, preset)
    data = tomllib.loads(path.read_text())
    assert data["mine"]["description"] == "my study"
    assert data["mine"]["tags"][0]["values"] == {"long": "1"}
    reloaded = get_profile("mine")
    assert reloaded.devices[0].crop == Box(10, 20, 300, 400)
    assert (
        reloaded.preset_for(
            manufacturer="ACME", model="x", serial="", rows=480, columns=640, multi_frame=True
        )
        == reloaded.devices[0]
    )
    assert (
        reloaded.preset_for(
            manufacturer="ACME", model="x", serial="", rows=480, columns=640, multi_frame=False
        )
        is None
    )


def test_saving_a_preset_for_a_shipped_profile_writes_the_user_file_only() -> None:
    before = shipped_file().read_bytes()
    from ustui.core.profiles import save_device_preset

    target = save_device_preset(get_profile("dvt"), DevicePreset(name="d", crop=Box(0, 0, 10, 10)))
    assert target == user_file()
    assert shipped_file().read_bytes() == before
    dvt = get_profile("dvt")
    assert dvt.source == user_file()
    assert dvt.required_tags == ("site", "side", "purpose")
    assert [d.name for d in dvt.devices] == ["d"]

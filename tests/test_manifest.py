"""The manifest's two forms: the CSV agrees with the JSON column by column, and the
JSON written row by row is the document ``json.dumps`` would give."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict

import pytest

from ustui import __version__
from ustui.core.manifest import SCHEMA_VERSION, ManifestRow, csv_columns, write_csv, write_json

TAGS = ["site", "side"]


def _row(n: int) -> ManifestRow:
    return ManifestRow(
        path=f"S1/ST1/SE1/{n:04d}_cfv.dcm",
        subject="S1",
        study_uid="2.25.1",
        series_uid="2.25.2",
        sop_instance_uid=f"2.25.{10 + n}",
        sop_class_uid="1.2.840.10008.5.1.4.1.1.6.1",
        frames=3,
        rows=160,
        columns=200,
        crop=[50, 30, 250, 190],
        crop_requested=[52, 30, 250, 190],
        crop_source="regions",
        masks=[[0, 0, 10, 10]],
        fan={"apex_x": 100.0, "left_deg": -40.0},
        tags={"site": "CFV", "side": "left"},
        transfer_syntax_in="1.2.840.10008.1.2.1",
        transfer_syntax_out="1.2.840.10008.1.2.1",
        lossy=False,
        reencoded=False,
        note="",
        sha256="ab" * 32,
        pixel_text="checked",
        text_masks=[[0, 0, 10, 10]],
        text_kept=[{"box": [5, 5, 40, 15], "text": "4.0cm µ"}],
        still=False,
        photometric="MONOCHROME2",
        regions=[{"box": [0, 0, 150, 120], "data_type": "tissue"}],
        spacing_mm=[0.2, 0.25],
        frame_time_ms=40.0,
        cine_rate=25.0,
        time_offset_s=None,
        device={"manufacturer": "M", "model": "X", "transducer_type": "LINEAR"},
        tag_codes={"site": {"code": "397363009", "scheme": "SCT", "meaning": "CFV"}},
        tag_sources={"site": "user", "side": "header"},
        tag_notes=["Laterality L replaced by ImageLaterality"],
    )


def test_every_csv_column_is_named_once_and_holds_its_field() -> None:
    rows = [_row(1), _row(2)]
    out = io.StringIO()
    write_csv(out, rows, tag_names=TAGS)
    table = list(csv.reader(io.StringIO(out.getvalue())))
    header = table[0]
    assert len(header) == len(set(header)) == len(csv_columns(TAGS))
    assert all(len(line) == len(header) for line in table[1:])
    flat = dict(zip(header, table[1], strict=True))
    row = asdict(rows[0])
    for field in ("path", "sop_instance_uid", "pixel_text", "photometric", "sha256"):
        assert flat[field] == row[field]
    for field in ("text_masks", "text_kept", "regions", "tag_codes", "tag_sources", "tag_notes"):
        assert json.loads(flat[field]) == row[field], field
    assert [flat[f"crop_{side}"] for side in ("left", "top", "right", "bottom")] == [
        "50",
        "30",
        "250",
        "190",
    ]
    assert (flat["tag_site"], flat["tag_side"], flat["spacing_y_mm"]) == ("CFV", "left", "0.25")
    assert (flat["still"], flat["time_offset_s"], flat["device_model"]) == ("0", "", "X")


@pytest.mark.parametrize("count", [0, 1, 3])
def test_the_json_written_row_by_row_is_the_whole_document(count: int) -> None:
    rows = [_row(n) for n in range(count)]
    shards = [f"out-{n:04d}.zip" for n in range(count)]
    extra = {"shards": [{"file": "out-0001.zip", "files": count}]}
    out = io.StringIO()
    write_json(out, rows, profile="dvt", tag_names=TAGS, shards=shards, extra=extra)
    document = {
        "schema_version": SCHEMA_VERSION,
        "generator": f"ustui {__version__}",
        "profile": "dvt",
        "tags": TAGS,
        "files": [asdict(r) | {"shard": s} for r, s in zip(rows, shards, strict=True)],
        **extra,
    }
    assert out.getvalue() == json.dumps(document, indent=1)
    plain = io.StringIO()
    write_json(plain, rows, profile="dvt", tag_names=[])
    assert json.loads(plain.getvalue())["files"] == [asdict(r) for r in rows]

from __future__ import annotations

import json
import stat
from pathlib import Path

from ustui.core.boxes import Box
from ustui.core.session import Session, session_path


def test_decisions_survive_a_reload(tmp_path: Path) -> None:
    inputs = [str(tmp_path / "exam")]
    session = Session.load(inputs)
    d = session.decision("file-1")
    d.crop = Box(1, 2, 30, 40)
    d.masks.append(Box(5, 5, 10, 10))
    d.tags["side"] = "left"
    session.decision("file-2").excluded = True
    session.cursor_file, session.cursor_frame = "file-2", 7
    session.save()

    again = Session.load([tmp_path / "exam"])
    assert again.files["file-1"].crop == Box(1, 2, 30, 40)
    assert again.files["file-1"].masks == [Box(5, 5, 10, 10)]
    assert again.files["file-1"].tags == {"side": "left"}
    assert again.files["file-2"].excluded
    assert (again.cursor_file, again.cursor_frame) == ("file-2", 7)
    assert stat.S_IMODE(session.path.stat().st_mode) == 0o600


def test_session_key_ignores_order_and_spelling(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    assert session_path([a, b]) == session_path([str(b), f"{a}/../a"])
    assert session_path([a]) != session_path([a, b])


def test_corrupt_session_is_moved_aside_with_a_notice(tmp_path: Path) -> None:
    path = session_path([tmp_path])
    path.parent.mkdir(parents=True)
    path.write_text("{ not json")
    session = Session.load([tmp_path])
    assert session.files == {}
    assert session.notice and "moved aside" in session.notice
    aside = list(path.parent.glob("*.unusable-*.json"))
    assert len(aside) == 1 and aside[0].read_text() == "{ not json"


def test_newer_session_format_is_kept_not_discarded(tmp_path: Path) -> None:
    path = session_path([tmp_path])
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"version": 99, "files": {}}))
    session = Session.load([tmp_path])
    assert session.notice and "newer" in session.notice
    assert len(list(path.parent.glob("*.unusable-*.json"))) == 1

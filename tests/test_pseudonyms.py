"""Keys and keyed pseudonyms."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import pytest
from pydicom import Dataset
from pydicom.uid import UID

from ustui.core.errors import UstuiError
from ustui.core.paths import data_dir
from ustui.core.pseudonyms import KEY_BYTES, Pseudonyms, load_key

KEY_A = bytes(range(32))
KEY_B = bytes(range(1, 33))


def _patient(patient_id: str = "", issuer: str = "", name: str = "") -> Dataset:
    ds = Dataset()
    if patient_id:
        ds.PatientID = patient_id
    if issuer:
        ds.IssuerOfPatientID = issuer
    if name:
        ds.PatientName = name
    return ds


def test_personal_key_is_created_once_with_private_modes() -> None:
    key = load_key()
    path = data_dir() / "key"
    assert len(key) == KEY_BYTES
    assert path.read_bytes() == key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert load_key() == key
    assert [p.name for p in path.parent.iterdir()] == ["key"]  # no staging file left


def test_existing_personal_key_is_never_replaced() -> None:
    path = data_dir() / "key"
    path.parent.mkdir(parents=True)
    path.write_bytes(b"x" * 40)
    assert load_key() == b"x" * 40


def test_team_key_from_profile_wins_over_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    team, env = tmp_path / "team.key", tmp_path / "env.key"
    team.write_bytes(b"t" * 32)
    env.write_bytes(b"e" * 32)
    monkeypatch.setenv("USTUI_KEY_FILE", str(env))
    assert load_key(team) == b"t" * 32
    assert load_key() == b"e" * 32
    assert not (data_dir() / "key").exists()


def test_team_key_is_used_as_raw_bytes(tmp_path: Path) -> None:
    team = tmp_path / "team.key"
    team.write_bytes(b"0123456789abcdef" * 4 + b"\n")
    assert load_key(team) == b"0123456789abcdef" * 4 + b"\n"


def test_missing_team_key_is_a_one_line_error(tmp_path: Path) -> None:
    missing = tmp_path / "nope.key"
    with pytest.raises(UstuiError) as caught:
        load_key(missing)
    assert caught.value.source == str(missing)
    assert "cannot read the team key" in caught.value.reason
    assert "\n" not in str(caught.value)


def test_short_team_key_is_refused(tmp_path: Path) -> None:
    short = tmp_path / "short.key"
    short.write_bytes(b"secret\n")
    with pytest.raises(UstuiError, match="holds 7 bytes, at least 32 are needed"):
        load_key(short)


def test_team_key_that_is_a_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(UstuiError, match="cannot read the team key"):
        load_key(tmp_path)


def test_short_key_cannot_make_pseudonyms() -> None:
    with pytest.raises(ValueError):
        Pseudonyms(b"short")


def test_uid_is_deterministic_valid_and_keyed() -> None:
    a1, a2, b = Pseudonyms(KEY_A), Pseudonyms(KEY_A), Pseudonyms(KEY_B)
    original = "1.2.840.113619.2.1.1.322987881.621.736170080.681"
    new = a1.uid(original)
    assert new == a2.uid(original)
    assert new != b.uid(original)
    assert new != a1.uid(original + "1")
    assert re.fullmatch(r"2\.25\.[1-9]\d*", new)
    assert len(new) <= 64
    assert UID(new).is_valid
    assert a1.uid(original + "\x00") == new == a1.uid(original + " ")


def test_uids_do_not_collide_over_many_inputs() -> None:
    pseudonyms = Pseudonyms(KEY_A)
    uids = {pseudonyms.uid(f"1.2.3.{i}") for i in range(5000)}
    assert len(uids) == 5000


def test_subject_uses_id_else_name_else_unknown() -> None:
    p = Pseudonyms(KEY_A)
    by_id = p.subject(_patient("12345", "HOSP", "DOE^JOHN"), "S-")
    assert re.fullmatch(r"S-[A-Z2-7]{8}", by_id)
    assert by_id == p.subject(_patient("12345", "HOSP", "OTHER^NAME"), "S-")
    # An issuer alone does not split a patient (subjects.py qualifies competing issuers).
    assert by_id == p.subject(_patient("12345", "", "DOE^JOHN"), "S-")
    assert by_id != p.subject(_patient("12346", "HOSP", "DOE^JOHN"), "S-")
    by_name = p.subject(_patient(name="DOE^JOHN"), "S-")
    assert by_name == p.subject(_patient(name="DOE^JOHN"), "S-")
    assert by_name != p.subject(_patient(name="DOE^JANE"), "S-")
    assert p.subject(Dataset(), "S-") == p.subject(_patient(patient_id="  "), "S-")
    assert p.subject(Dataset(), "DVT").startswith("DVT")
    assert by_id != Pseudonyms(KEY_B).subject(_patient("12345", "HOSP"), "S-")


def test_date_offset_is_per_subject_and_in_range() -> None:
    p = Pseudonyms(KEY_A)
    offsets = [p.date_offset_days(f"S-{i}", (1, 30)) for i in range(600)]
    assert all(1 <= o <= 30 for o in offsets)
    assert set(offsets) == set(range(1, 31))
    assert p.date_offset_days("S-1", (1, 30)) == offsets[1]
    assert Pseudonyms(KEY_A).date_offset_days("S-1", (1, 3650)) == p.date_offset_days(
        "S-1", (1, 3650)
    )
    assert p.date_offset_days("S-1", (7, 7)) == 7
    with pytest.raises(ValueError):
        p.date_offset_days("S-1", (5, 4))


def test_tokens_are_short_keyed_and_separated_by_kind() -> None:
    p = Pseudonyms(KEY_A)
    token = p.token("study", "1.2.3")
    assert re.fullmatch(r"[A-Z2-7]{8}", token)
    assert token == Pseudonyms(KEY_A).token("study", "1.2.3")
    assert token != p.token("series", "1.2.3")
    assert token != Pseudonyms(KEY_B).token("study", "1.2.3")
    assert len(p.token("study", "1.2.3", length=12)) == 12
    assert p.token("study", "1.2.3", length=12).startswith(token)
    with pytest.raises(ValueError):
        p.token("study", "1.2.3", length=0)


def test_unwritable_data_directory_is_a_one_line_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("XDG_DATA_HOME", str(blocker))
    with pytest.raises(UstuiError, match="cannot create the personal key"):
        load_key()

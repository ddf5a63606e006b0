"""Keyed pseudonyms: replacement UIDs, subject IDs, date shifts and name tokens.

Everything is derived with HMAC-SHA256 from one secret key, so the same input
and the same key give the same pseudonym in every file, run and machine, while
nobody without the key can link a pseudonym back to its original. Each kind of
pseudonym hashes its own prefix, so values of different kinds never collide.

The key is the team's (named by the profile or ``$USTUI_KEY_FILE``) or a
personal one created on first use in the user's data directory.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
import os
from collections.abc import Collection
from pathlib import Path

from pydicom import Dataset

from ustui.core.atomic import write_atomic
from ustui.core.errors import UstuiError
from ustui.core.paths import data_dir, private_dir

#: Bytes of a newly created key; also the least a key file must hold.
KEY_BYTES = 32
KEY_ENV = "USTUI_KEY_FILE"
#: UIDs under this root are derived from a 128-bit integer (PS3.5 B.2).
UUID_ROOT = "2.25."


def load_key(key_file: Path | None = None) -> bytes:
    """The secret key for pseudonyms.

    Parameters
    ----------
    key_file
        A team key shared by everyone on a study (from the profile). When None,
        ``$USTUI_KEY_FILE`` names the key if set, else the personal key
        ``data_dir()/key`` is used, created on first use with 32 random bytes,
        mode 0600, in a 0700 directory.

    Returns
    -------
    bytes
        The raw bytes of the key file (no stripping: the file is the key).

    Raises
    ------
    UstuiError
        When a named key file is missing, unreadable or shorter than 32 bytes.
    """
    if key_file is None and os.environ.get(KEY_ENV):
        key_file = Path(os.environ[KEY_ENV])
    if key_file is not None:
        return _read_key(key_file, what="team key")
    path = data_dir() / "key"
    if not path.exists():
        _create_key(path)
    return _read_key(path, what="personal key")


def find_key(key_file: Path | None = None) -> bytes | None:
    """The key :func:`load_key` would use, or None when there is none yet: unlike
    ``load_key`` it never creates a personal key (for readers such as ``verify``)."""
    if key_file is None and not os.environ.get(KEY_ENV) and not (data_dir() / "key").exists():
        return None
    return load_key(key_file)


def _read_key(path: Path, *, what: str) -> bytes:
    try:
        key = path.read_bytes()
    except OSError as exc:
        reason = f"cannot read the {what}: {exc.strerror or exc}"
        raise UstuiError(reason, source=str(path)) from None
    if len(key) < KEY_BYTES:
        raise UstuiError(
            f"the {what} holds {len(key)} bytes, at least {KEY_BYTES} are needed "
            f"(make one with: head -c {KEY_BYTES} /dev/urandom > FILE)",
            source=str(path),
        )
    return key


def _create_key(path: Path) -> None:
    """Write a new random key without ever replacing one another process made first."""
    staged = path.with_name(f".{path.name}.{os.getpid()}.new")
    try:
        private_dir(path.parent)
        write_atomic(staged, os.urandom(KEY_BYTES), mode=0o600)
        os.link(staged, path)  # fails if the key appeared meanwhile: that one wins
    except FileExistsError:
        pass
    except OSError as exc:
        reason = f"cannot create the personal key: {exc.strerror or exc}"
        raise UstuiError(reason, source=str(path)) from None
    finally:
        with contextlib.suppress(OSError):
            staged.unlink(missing_ok=True)


class Pseudonyms:
    """Deterministic keyed replacements; safe to share between threads."""

    def __init__(self, key: bytes) -> None:
        if len(key) < KEY_BYTES:
            raise ValueError(f"a pseudonym key needs at least {KEY_BYTES} bytes")
        self._key = key

    def _digest(self, kind: str, value: str) -> bytes:
        message = kind.encode() + b"\x00" + value.encode("utf-8", "surrogateescape")
        return hmac.new(self._key, message, hashlib.sha256).digest()

    def uid(self, original: str) -> str:
        """The replacement for a UID: ``2.25.<integer>`` of at most 44 characters.

        The integer is the first 128 bits of HMAC-SHA256(key, uid); padding
        (spaces, NULs) of the original does not change the result.
        """
        number = int.from_bytes(self._digest("uid", original.strip(" \x00"))[:16], "big")
        return f"{UUID_ROOT}{number}"

    def subject(self, ds: Dataset, prefix: str) -> str:
        """The subject pseudonym of one dataset's patient (see :func:`patient_identity`).

        An export groups its inputs first (``subjects.assign_subjects``), so that
        every file of one patient or study gets the same subject.
        """
        return self.subject_of(patient_identity(ds), prefix)

    def subject_of(self, identity: str, prefix: str) -> str:
        """The subject pseudonym of a patient identity: ``prefix`` + 8 base32 characters."""
        return prefix + _base32(self._digest("subject", identity))[:8]

    def date_offset_days(self, subject: str, days_range: tuple[int, int]) -> int:
        """How many days this subject's dates move back, in ``days_range`` (inclusive)."""
        low, high = days_range
        if low > high:
            raise ValueError(f"empty date shift range {days_range}")
        number = int.from_bytes(self._digest("date", subject)[:8], "big")
        return low + number % (high - low + 1)

    def token(self, kind: str, value: str, length: int = 8) -> str:
        """A short upper-case alphanumeric token for ``value`` (e.g. a study's folder name)."""
        if not 1 <= length <= 52:
            raise ValueError("a token has 1 to 52 characters")
        return _base32(self._digest(f"token:{kind}", value))[:length]


def patient_identity(ds: Dataset, *, qualify: Collection[str] = ()) -> str:
    """What identifies a dataset's patient: its PatientID, else its PatientName, else
    "unknown" (all such files share one subject).

    IssuerOfPatientID qualifies the ID only for IDs in ``qualify`` (those that the
    inputs hold under two different issuers): an issuer present in some files of a
    patient only must not split the patient in two.
    """
    patient_id = dataset_text(ds, "PatientID")
    if patient_id:
        issuer = dataset_text(ds, "IssuerOfPatientID") if patient_id in qualify else ""
        return f"id:{patient_id}\x00{issuer}"
    if dataset_text(ds, "PatientName"):
        return f"name:{dataset_text(ds, 'PatientName')}"
    return "unknown"


def dataset_text(ds: Dataset, keyword: str) -> str:
    """A top-level value as stripped text; "" when absent or undecodable."""
    try:
        value = ds.get(keyword)
    except Exception:  # an undecodable value identifies nobody; fall through to the next
        return ""
    return "" if value is None else str(value).strip(" \x00")


def _base32(digest: bytes) -> str:
    return base64.b32encode(digest).decode("ascii").rstrip("=")

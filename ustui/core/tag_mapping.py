"""How a profile's tag field maps to DICOM, and the checks ``ustui profiles check`` makes.

Two kinds of mapping: a plain attribute whose value is the tag value spelled as the
profile's ``dicom_values`` say (``side`` -> ImageLaterality ``L``), or a coded
concept written as one item of a code sequence (``site`` -> AnatomicRegionSequence
with code value, coding scheme and meaning, plus a modifier item where one is given).

Kept free of ``ustui.core.profiles`` so that module can use these checks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pydicom.datadict import dictionary_VR, tag_for_keyword

#: Enumerated values (PS3.3) of the attributes a tag may be written to; others take any text.
ENUMERATED: dict[str, frozenset[str]] = {
    "Laterality": frozenset({"R", "L"}),
    "ImageLaterality": frozenset({"R", "L", "U", "B"}),
    "FrameLaterality": frozenset({"R", "L", "U", "B"}),
    "QualityControlImage": frozenset({"YES", "NO", "BOTH"}),
}

#: Attributes that say the same thing as a tag's attribute at another level: read as the
#: header's answer too, and removed when the tag is written (the series' Laterality is
#: for images without an image laterality, PS3.3 C.7.3.1).
RELATED: dict[str, tuple[str, ...]] = {
    "ImageLaterality": ("Laterality",),
    "FrameLaterality": ("Laterality",),
}

#: Text VRs a plain mapping may write, with their maximum length in characters.
_TEXT_VRS = {"CS": 16, "SH": 16, "LO": 64, "ST": 1024, "LT": 10240, "UT": 2**32 - 2}
_CS = re.compile(r"^[A-Z0-9_ ]*$")
_CODE_KEYS = {"code", "scheme", "meaning", "modifier"}


@dataclass(frozen=True)
class Code:
    """A coded concept as DICOM writes it (PS3.3 Table 8.8-1 Code Sequence Macro)."""

    value: str
    scheme: str
    meaning: str
    modifier: Code | None = None
    """Written in the sequence's modifier sequence (e.g. AnatomicRegionModifierSequence)."""

    def as_manifest(self) -> dict[str, str]:
        entry = {"code": self.value, "scheme": self.scheme, "meaning": self.meaning}
        if self.modifier:
            entry["modifier_code"] = self.modifier.value
            entry["modifier_scheme"] = self.modifier.scheme
            entry["modifier_meaning"] = self.modifier.meaning
        return entry


def parse_code(table: dict[str, Any]) -> Code:
    modifier = table.get("modifier")
    return Code(
        value=str(table["code"]),
        scheme=str(table["scheme"]),
        meaning=str(table["meaning"]),
        modifier=parse_code(modifier) if modifier else None,
    )


def modifier_keyword(sequence: str) -> str | None:
    """The modifier sequence nested in ``sequence``'s items, if the dictionary has one."""
    keyword = sequence.removesuffix("Sequence") + "ModifierSequence"
    return keyword if tag_for_keyword(keyword) is not None else None


def is_code_sequence(keyword: str) -> bool:
    tag = tag_for_keyword(keyword)
    return tag is not None and dictionary_VR(tag) == "SQ" and keyword.endswith("Sequence")


def check_mapping(name: str, tag: dict[str, Any], values: dict[str, Any]) -> list[str]:
    """Problems with a tag field's ``dicom``, ``dicom_values`` and ``codes`` settings."""
    dicom = tag.get("dicom")
    codes = tag.get("codes")
    where = f"tag {name}:"
    if dicom is None:
        if codes or tag.get("dicom_values"):
            return [f"{where} dicom_values and codes need a dicom attribute"]
        return []
    tag_number = tag_for_keyword(dicom) if isinstance(dicom, str) else None
    if tag_number is None:
        return [f"{where} unknown DICOM attribute {dicom!r}"]
    vr = dictionary_VR(tag_number)
    if codes is not None:
        if not is_code_sequence(dicom):
            return [f"{where} codes need a code sequence attribute, but {dicom} has VR {vr}"]
        return _check_codes(where, dicom, codes, values)
    if vr not in _TEXT_VRS:
        return [f"{where} DICOM attribute {dicom} does not hold text (VR {vr}); give codes"]
    problems = []
    spelled = tag.get("dicom_values", {})
    for value in spelled:
        if value not in values:
            problems.append(f"{where} dicom_values names unknown value {value!r}")
    allowed = ENUMERATED.get(dicom)
    for value in values:
        written = spelled.get(value, value)
        if not isinstance(written, str):
            problems.append(f"{where} dicom_values for {value} must be text")
        elif allowed is not None and written not in allowed:
            problems.append(
                f"{where} {dicom} may hold only {', '.join(sorted(allowed))}, "
                f"not {written!r} (for {value}); set dicom_values"
            )
        elif vr == "CS" and not _CS.match(written):
            problems.append(
                f"{where} {written!r} (for {value}) is not a valid {dicom} value: "
                "code strings hold A-Z, 0-9, space and _"
            )
        elif len(written) > _TEXT_VRS[vr]:
            problems.append(f"{where} {written!r} is longer than {dicom} allows ({_TEXT_VRS[vr]})")
    return problems


def _check_codes(where: str, dicom: str, codes: Any, values: dict[str, Any]) -> list[str]:
    if not isinstance(codes, dict):
        return [f"{where} codes must be a table of value = {{ code, scheme, meaning }}"]
    problems = [f"{where} codes names unknown value {v!r}" for v in codes if v not in values]
    problems += [f"{where} no code for value {v!r}" for v in values if v not in codes]
    modifier_seq = modifier_keyword(dicom)
    for value, table in codes.items():
        problems += [f"{where} code for {value}: {p}" for p in _check_code(table)]
        if isinstance(table, dict) and table.get("modifier") is not None:
            if modifier_seq is None:
                problems.append(f"{where} code for {value}: {dicom} has no modifier sequence")
            else:
                problems += [
                    f"{where} modifier for {value}: {p}" for p in _check_code(table["modifier"])
                ]
    return problems


def _check_code(table: Any) -> list[str]:
    if not isinstance(table, dict):
        return ["must be a table { code, scheme, meaning }"]
    problems = [f"unknown setting {k!r}" for k in table if k not in _CODE_KEYS]
    code, scheme, meaning = table.get("code"), table.get("scheme"), table.get("meaning")
    if not isinstance(code, str) or not code or len(code) > 16 or code != code.strip():
        problems.append(f"code value {code!r} must be text of 1-16 characters (CodeValue, SH)")
    elif scheme == "SCT" and not _is_sctid(code):
        problems.append(f"{code!r} is not a SNOMED CT identifier (check digit or format)")
    if not isinstance(scheme, str) or not scheme or len(scheme) > 16 or not _CS.match(scheme):
        problems.append(f"coding scheme {scheme!r} must be a designator such as SCT, DCM or LN")
    if not isinstance(meaning, str) or not meaning.strip() or len(meaning) > 64:
        problems.append(f"code meaning {meaning!r} must be text of 1-64 characters (LO)")
    return problems


# Verhoeff check digit tables (SNOMED CT identifiers end with one).
_VERHOEFF_D = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 2, 3, 4, 0, 6, 7, 8, 9, 5),
    (2, 3, 4, 0, 1, 7, 8, 9, 5, 6),
    (3, 4, 0, 1, 2, 8, 9, 5, 6, 7),
    (4, 0, 1, 2, 3, 9, 5, 6, 7, 8),
    (5, 9, 8, 7, 6, 0, 4, 3, 2, 1),
    (6, 5, 9, 8, 7, 1, 0, 4, 3, 2),
    (7, 6, 5, 9, 8, 2, 1, 0, 4, 3),
    (8, 7, 6, 5, 9, 3, 2, 1, 0, 4),
    (9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
)
_VERHOEFF_P = (
    (0, 1, 2, 3, 4, 5, 6, 7, 8, 9),
    (1, 5, 7, 6, 2, 8, 3, 0, 9, 4),
    (5, 8, 0, 3, 7, 9, 6, 1, 4, 2),
    (8, 9, 1, 6, 0, 4, 3, 5, 2, 7),
    (9, 4, 5, 3, 1, 2, 6, 8, 7, 0),
    (4, 2, 8, 6, 5, 7, 3, 9, 0, 1),
    (2, 7, 9, 3, 8, 0, 6, 4, 1, 5),
    (7, 0, 4, 6, 9, 1, 3, 2, 5, 8),
)


def _is_sctid(code: str) -> bool:
    """6-18 digits, no leading zero, a valid Verhoeff check digit (SNOMED CT identifiers)."""
    if not re.fullmatch(r"[1-9][0-9]{5,17}", code):
        return False
    check = 0
    for i, digit in enumerate(reversed(code)):
        check = _VERHOEFF_D[check][_VERHOEFF_P[i % 8][int(digit)]]
    return check == 0

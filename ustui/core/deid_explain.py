"""What de-identification does to each attribute of one header, and why.

For the header inspector: the header is de-identified for real (a copy, with
:func:`ustui.core.deid.deidentify`), so what each attribute *becomes* is exactly
what the export writes; *why* names the rule of ``deid`` that decides it (the
row of PS3.15 Table E.1-1 and the profile option that changes it, or the rule
for what the table does not list).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

from pydicom import Dataset
from pydicom.dataelem import DataElement
from pydicom.tag import BaseTag, Tag

from ustui.core.deid import EXTRA_REMOVED, TABLE, TYPE_2, deidentify
from ustui.core.profiles import DEID_OPTIONS, DeidSettings
from ustui.core.pseudonyms import Pseudonyms

_BINARY_VRS = {"OB", "OW", "OF", "OD", "OL", "OV", "UN"}
#: Values longer than this are shown with their length (the inspector scrolls sideways).
MAX_VALUE = 2000

#: Attributes the de-identification writes itself after applying the table (PS3.15 E.1.1).
_RECORDED = {
    "PatientName": "set to the subject pseudonym",
    "PatientID": "set to the subject pseudonym",
    "PatientIdentityRemoved": "records that the identity was removed",
    "DeidentificationMethod": "records how it was de-identified",
    "DeidentificationMethodCodeSequence": "records the profile and options as CID 7050 codes",
    "LongitudinalTemporalInformationModified": "records what happened to the dates",
    "BurnedInAnnotation": "NO only when a reviewed crop and masks cleaned the pixels",
}
_DATES = {
    "retain-full-dates": "kept (retain-full-dates)",
    "retain-modified-dates": "shifted back by the subject's offset (retain-modified-dates)",
}


@dataclass(frozen=True)
class Fate:
    """One attribute before and after de-identification."""

    tag: str
    """As ``(gggg,eeee)``."""
    keyword: str
    original: str
    """The original value as text ("" when the attribute is added)."""
    becomes: str
    """The value written, or "removed", "emptied", "kept"."""
    why: str


def element_text(element: DataElement) -> str:
    """An element's value as one line of text (sequences and binary data summarised)."""
    if element.VR == "SQ":
        return f"{len(element.value)} item(s)"
    if element.VR in _BINARY_VRS or element.tag == 0x7FE00010:
        length = len(element.value) if element.value is not None else 0
        return f"<{length} bytes>"
    value = str(element.value)
    if len(value) > MAX_VALUE:
        return f"{value[:MAX_VALUE]}… ({len(value) - MAX_VALUE} more characters)"
    return value


def explain(
    header: Dataset,
    settings: DeidSettings,
    *,
    pseudonyms: Pseudonyms,
    subject: str,
    pixels_cleaned: bool,
) -> list[Fate]:
    """Each attribute of ``header`` (file meta first, then the top level; sequences as a
    whole), then each attribute the de-identification adds, with what it becomes and why.
    ``header`` itself is not changed."""
    after = copy.deepcopy(header)
    deidentify(
        after,
        settings=settings,
        pseudonyms=pseudonyms,
        subject=subject,
        pixels_cleaned=pixels_cleaned,
    )
    fates: list[Fate] = []
    for before, result in (
        (getattr(header, "file_meta", None) or Dataset(), after.file_meta),
        (header, after),
    ):
        for element in before:
            new = result.get(element.tag)
            fates.append(_fate(element, new, settings))
        for element in result:
            if element.tag not in before:
                why = _recorded(element.keyword) or "written by the de-identification"
                fates.append(
                    Fate(_tag(element.tag), element.keyword, "", element_text(element), why)
                )
    return fates


def _tag(tag: BaseTag) -> str:
    return f"({tag.group:04X},{tag.element:04X})"


def _fate(element: DataElement, new: DataElement | None, settings: DeidSettings) -> Fate:
    original = element_text(element)
    if new is None:
        becomes = "removed"
    elif new.is_empty and not element.is_empty:
        becomes = "emptied"
    else:
        text = element_text(new)
        becomes = "kept" if text == original else text
    why = reason(element.tag, str(element.VR), settings, changed=becomes != "kept")
    recorded = _recorded(element.keyword)
    if recorded and new is not None:
        why += f"; then {recorded}"
    return Fate(_tag(element.tag), element.keyword or element.name, original, becomes, why)


def _recorded(keyword: str) -> str:
    return _RECORDED.get(keyword, "")


def reason(tag: BaseTag, vr: str, settings: DeidSettings, *, changed: bool) -> str:
    """Why the de-identification treats the attribute ``tag`` (of ``vr``) as it does."""
    group, element = tag.group, tag.element
    if group == 0x0002:
        if tag == Tag("MediaStorageSOPInstanceUID"):
            return "file meta: always equals the new SOPInstanceUID"
        if not changed:
            return "file meta: version, SOP class and transfer syntax are kept"
        return "file meta: only version, SOP class and transfer syntax stay; the rest is ustui's"
    if group % 2:
        return "private attribute: removed (ustui has no list of safe private attributes)"
    if element == 0:
        return "group length: removed (recomputed when written)"
    if group >> 8 in (0x50, 0x60):
        return "curve or overlay: removed (may hold burned-in text)"
    if vr == "AE":
        return "application entity title (names a device or site): removed"
    if Tag(tag) in EXTRA_REMOVED:
        keeper = EXTRA_REMOVED[Tag(tag)]
        why = "not in Table E.1-1 but identifies a person or device: removed"
        if keeper is not None and keeper in settings.options:
            why = f"not in Table E.1-1, identifies a device; kept by option {keeper}"
        return why
    row = TABLE.get(int(tag))
    if row is not None:
        return _table_reason(int(tag), row.name, row.action, dict(row.options), settings)
    if vr == "UI":
        return (
            "UID not in the table: replaced by a keyed 2.25 UID"
            if changed
            else "UID not in the table that names a definition (class, syntax, scheme): kept"
        )
    if vr == "PN":
        return "person name not in the table: removed"
    if vr in ("DA", "DT", "TM"):
        modes = [text for option, text in _DATES.items() if option in settings.options]
        return "date or time not in the table: " + (modes[0] if modes else "removed")
    return "not in the table and not identifying: kept"


def _table_reason(
    tag: int, name: str, action: str, options: dict[str, str], settings: DeidSettings
) -> str:
    why = f"Table E.1-1 “{name}”: {action} in the Basic Profile"
    columns = {DEID_OPTIONS[o]: o for o in settings.options if o in DEID_OPTIONS}
    applied = [(columns[c], code) for c, code in options.items() if c in columns]
    if applied:
        why += "; " + ", ".join(f"option {option}: {code}" for option, code in applied)
    elif action.startswith("X") and Tag(tag) in TYPE_2:
        why += "; emptied rather than removed (Type 2 in the US and SC IODs)"
    return why

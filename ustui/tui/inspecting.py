"""The inspector's de-identified view: each attribute of the open file as the export
will write it, and why (plain Python over ``core.deid_explain``)."""

from __future__ import annotations

from pydicom import Dataset
from pydicom.datadict import tag_for_keyword
from pydicom.tag import Tag

from ustui.core.deid_explain import Fate, explain
from ustui.core.pseudonyms import Pseudonyms, load_key
from ustui.tui.model import Workspace, effective_crop


def header_fates(workspace: Workspace, index: int, header: Dataset) -> list[Fate]:
    """What the export writes for each attribute of file ``index`` with the session's
    decisions: the de-identification (same key, subject and pixel review as the
    export), then the tags the profile writes and the size the crop gives."""
    profile = workspace.profile
    pseudonyms = Pseudonyms(load_key(profile.deid.key_file))
    entry = workspace.entries[index]
    decision = workspace.peek(index)
    choice = effective_crop(entry, decision)
    fates = explain(
        header,
        profile.deid,
        pseudonyms=pseudonyms,
        subject=pseudonyms.subject(header, profile.deid.subject_prefix),
        pixels_cleaned=choice is not None and choice.reviewed,
    )
    written: dict[str, tuple[str, str]] = {}
    for field in profile.tags:
        value = decision.tags.get(field.name)
        if field.dicom and value:
            written[field.dicom] = (field.dicom_value(value), f"tag {field.name} = {value}")
    if choice is not None:
        box = choice.box
        written["Rows"] = (str(box.height), f"crop {box.as_list()}")
        written["Columns"] = (str(box.width), f"crop {box.as_list()}")
    for n, fate in enumerate(fates):
        if fate.keyword in written:
            value, why = written.pop(fate.keyword)
            becomes = "kept" if value == fate.original else value
            fates[n] = Fate(fate.tag, fate.keyword, fate.original, becomes, why)
    for keyword, (value, why) in written.items():
        tag = Tag(tag_for_keyword(keyword) or 0)
        fates.append(Fate(f"({tag.group:04X},{tag.element:04X})", keyword, "", value, why))
    return fates

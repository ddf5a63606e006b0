"""Tags in the DICOM itself: written as the profile maps them, and read back from a header.

Writing makes the output agree with itself: an attribute that says the same thing at
another level (the series' Laterality for ImageLaterality, see ``tag_mapping.RELATED``)
is removed, since the US Image IOD wants Laterality only where no image laterality is
given (PS3.3 C.7.3.1, Type 2C; dciodvfy reports both together as an error).
"""

from __future__ import annotations

from pydicom import Dataset
from pydicom.sequence import Sequence

from ustui.core.profiles import Profile, TagField
from ustui.core.tag_mapping import RELATED, Code, modifier_keyword


def _code_item(code: Code, modifier_sequence: str | None) -> Dataset:
    item = Dataset()
    item.CodeValue = code.value
    item.CodingSchemeDesignator = code.scheme
    item.CodeMeaning = code.meaning
    if code.modifier and modifier_sequence:
        setattr(item, modifier_sequence, Sequence([_code_item(code.modifier, None)]))
    return item


def write_tags(out: Dataset, profile: Profile, tags: dict[str, str]) -> list[str]:
    """Write every mapped tag into ``out``; say what else had to change to agree with it."""
    notes: list[str] = []
    for field in profile.tags:
        value = tags.get(field.name)
        if not field.dicom or not value:
            continue
        code = field.codes.get(value)
        if code is not None:
            item = _code_item(code, modifier_keyword(field.dicom))
            setattr(out, field.dicom, Sequence([item]))
            continue
        spelled = field.dicom_value(value)
        setattr(out, field.dicom, spelled)
        for related in RELATED.get(field.dicom, ()):
            if related in out:
                before = str(out[related].value or "")
                del out[related]
                if before and before != spelled:
                    notes.append(f"{related} {before} removed: {field.dicom} {spelled} holds it")
    return notes


def describe_mapping(field: TagField) -> str:
    """One line for ``ustui profiles show``: the attribute and each value as written."""
    if field.codes:
        spelled = [
            f"{v} {c.scheme} {c.value}" + (f" ({c.modifier.meaning})" if c.modifier else "")
            for v, c in field.codes.items()
        ]
    else:
        spelled = [f"{v} {field.dicom_value(v)!r}" for v in field.values]
    return f"{field.dicom}: {', '.join(spelled)}"


def attribute_answer(header: Dataset, field: TagField, keyword: str) -> str | None:
    """The tag value that ``keyword`` in ``header`` stands for, or None if it says none
    of the field's values (absent, empty, free text, an unknown or ambiguous code)."""
    try:
        element = header.get(keyword)
    except Exception:  # a malformed value in a foreign header answers nothing
        return None
    if element is None or element == "":
        return None
    if field.codes:
        return _code_answer(element, field, keyword)
    written = str(element).strip()
    spelled = {field.dicom_value(v): v for v in field.values}
    return spelled.get(written)


def _code_answer(sequence: object, field: TagField, keyword: str) -> str | None:
    if not isinstance(sequence, Sequence) or not sequence:
        return None
    item = sequence[0]
    modifier_seq = modifier_keyword(keyword)
    modifiers = {
        (str(m.get("CodeValue", "")), str(m.get("CodingSchemeDesignator", "")))
        for m in (item.get(modifier_seq) or [] if modifier_seq else [])
    }
    base = (str(item.get("CodeValue", "")), str(item.get("CodingSchemeDesignator", "")))
    fits = [
        value
        for value, code in field.codes.items()
        if (code.value, code.scheme) == base
        and (code.modifier is None or (code.modifier.value, code.modifier.scheme) in modifiers)
    ]
    # The most specific reading wins (FV + Proximal over FV); a tie answers nothing.
    fits.sort(key=lambda v: field.codes[v].modifier is None)
    if len(fits) > 1 and (field.codes[fits[0]].modifier is None) == (
        field.codes[fits[1]].modifier is None
    ):
        return None
    return fits[0] if fits else None

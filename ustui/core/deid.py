"""Header de-identification: the DICOM PS3.15 Basic Application Level
Confidentiality Profile (Table E.1-1, all rows, see ``_ps315``) with its options,
applied at every depth of every sequence, plus what the table misses.

Each element meets the first rule that matches:

1. Removed unread: private elements (odd groups; the Retain Safe Private option
   keeps none, since ustui ships no list of safe private attributes yet), group
   lengths (gggg,0000), the command group (0000), curves (50xx,xxxx) and
   overlays (60xx,xxxx) (also with Clean Graphics: an overlay bitmap cannot be
   cleaned), item/padding tags (FFFE/FFFC) and elements pydicom cannot decode.
2. Removed: Application Entity titles (VR AE), elements of unknown standard tags
   (VR UN, so they cannot be judged), and the identity-bearing attributes the
   table lacks (``EXTRA_REMOVED``; a retain option keeps the ones it covers).
3. An attribute of the table: its Basic Profile action, or the code of an
   option column of a chosen option (when two options apply, K wins over C).
4. Any other attribute: UIDs U (but K for UIDs that name a definition, such as
   SOP classes, transfer syntaxes and coding schemes), person names X, dates
   and times like the table's dates (X, K with full dates, C with modified
   dates), the rest K.

What the actions do:

- X removes; Z empties; D writes a dummy valid for the VR (PN "ANONYMOUS", other
  text "ANON", DA "19000101", DT "19000101000000", TM "000000", numbers 0,
  UI a pseudonymous UID). D on a sequence empties it: its items may carry free
  text the table does not list (e.g. TextValue in a Content Sequence), and no
  such sequence is Type 1 in the US, US Multi-frame or Secondary Capture IODs.
- K keeps; a kept sequence has its items de-identified.
- U maps every UID through ``Pseudonyms.uid`` except well-known ones (SOP classes,
  transfer syntaxes, coding schemes: those in pydicom's UID dictionary or under
  the DICOM root 1.2.840.10008, reserved for UIDs the standard defines, which
  pydicom's dictionary lags behind). U on a sequence (X/Z/U*) keeps it, with
  its references mapped.
- C cleans. Dates (DA, DT) move back by the subject's offset; times (TM) stay,
  as a whole-day shift leaves them right. Text stays only when a rule proves it
  safe (``safe_values``): structured attributes in their form (a ``±HHMM`` UTC
  offset, an allowed enumerated value, a Code String free of the file's
  identifying values), the attributes of a code item of a standard coding
  scheme, free text made only of the shipped vocabulary; with the profile's
  ``free_text = "keep-unidentified"`` also free text that contains none of the
  file's identifying values (``identifying_values``, but for other descriptors
  and private text, which often repeat it), no part of any person name in the
  file and nothing shaped like a date. A sequence keeps its items, in which
  free text of attributes missing from the table is cleaned too. Whatever
  cannot be cleaned goes as X (Type 1 in the IOD: D; Type 2: Z).
- Compound codes take their first action (X/Z, X/D, X/Z/D -> X; Z/D -> Z;
  X/Z/U* -> U), but D where the file's IOD makes the attribute Type 1
  (``iod_rules.TYPE_1``, e.g. DeviceSerialNumber in Enhanced General
  Equipment), and X becomes Z for the attributes of Type 2 in the US, US
  Multi-frame or Secondary Capture IODs (``TYPE_2``), so they stay present.

Enumerated attributes keep only values the standard allows (``iod_rules.ENUMERATED``:
a retain option keeps, say, Smoking Status as written), and BurnedInAnnotation is
NO where the IOD allows no other value.

The file meta group keeps only its version, SOP class and transfer syntax; the
instance UID is the new SOPInstanceUID and the implementation is ustui's.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import lru_cache

from pydicom import Dataset
from pydicom._dicom_dict import DicomDictionary
from pydicom._uid_dict import UID_dictionary
from pydicom.datadict import dictionary_VR, keyword_for_tag
from pydicom.dataelem import DataElement
from pydicom.dataset import FileMetaDataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag, Tag
from pydicom.uid import PYDICOM_IMPLEMENTATION_UID

from ustui import __version__
from ustui.core._ps315 import ROWS, Row
from ustui.core.errors import UstuiError
from ustui.core.iod_rules import BURNED_IN_NO_ONLY, ENUMERATED, TYPE_1
from ustui.core.profiles import DEID_OPTIONS, FREE_TEXT_POLICIES, DeidSettings
from ustui.core.pseudonyms import Pseudonyms
from ustui.core.safe_values import CODE_ATTRIBUTES, STANDARD_SCHEMES, fits_form, in_vocabulary

IMPLEMENTATION_VERSION_NAME = f"USTUI_{__version__}"[:16]
DUMMY_NAME = "ANONYMOUS"
DUMMY_TEXT = "ANON"
DUMMY_DATE = "19000101"
DUMMY_TIME = "000000"

_TAG = re.compile(r"\(([0-9A-F]{4}),([0-9A-F]{4})\)")
#: The rows of Table E.1-1 with a concrete tag; the masked rows (curves,
#: overlays, private attributes) are rule 1 of the module docstring.
TABLE: dict[int, Row] = {
    int(m[1] + m[2], 16): row for row in ROWS if (m := _TAG.fullmatch(row.tag))
}

#: Attributes of Type 2 (or 2C) in the US Image, US Multi-frame Image or Secondary
#: Capture IODs that the table may remove: they are emptied instead.
TYPE_2: frozenset[BaseTag] = frozenset(
    Tag(keyword)
    for keyword in (
        "PatientName",
        "PatientID",
        "PatientBirthDate",
        "PatientSex",
        "PatientSexNeutered",
        "StudyDate",
        "StudyTime",
        "ReferringPhysicianName",
        "StudyID",
        "AccessionNumber",
        "ContentDate",
        "ContentTime",
        "AcquisitionContextSequence",
        "ContrastBolusAgent",
    )
)
#: Type 2 attributes of the Patient and General Study modules, added empty when absent.
_ENSURED = (
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
    "StudyID",
    "AccessionNumber",
)

#: Attributes missing from Table E.1-1 that identify a person or a device, with
#: the option that keeps them (None: always removed).
EXTRA_REMOVED: dict[BaseTag, str | None] = {
    Tag("TransducerData"): "retain-device-identity",  # probe model and serial number
    Tag("HardcopyCreationDeviceID"): "retain-device-identity",
    Tag("NTPSourceAddress"): None,  # a network address of the site
    Tag("PatientBirthDateInAlternativeCalendar"): None,
    Tag("PatientDeathDateInAlternativeCalendar"): None,
    Tag("PatientBodyMassIndex"): "retain-patient-characteristics",  # like size and weight
    Tag("IdentificationDescriptionTrial"): None,
}

#: Free-text VRs, cleaned inside sequences the Clean options keep.
TEXT_VRS = frozenset({"LO", "SH", "ST", "LT", "UT", "UC", "CS", "UR"})
_NUMBER_VRS = frozenset({"US", "SS", "UL", "SL", "UV", "SV", "FL", "FD"})
_BINARY_VRS = frozenset({"OB", "OW", "OD", "OF", "OL", "OV", "UN"})
_DATE_MODES = {"retain-full-dates": "keep", "retain-modified-dates": "shift"}
#: Meta elements kept unchanged; the rest is replaced or removed.
_META_KEPT = frozenset(
    Tag(k) for k in ("FileMetaInformationVersion", "MediaStorageSOPClassUID", "TransferSyntaxUID")
)

#: CID 7050 (De-identification Method) codes, DCM scheme, by what they record.
METHOD_CODES: dict[str, tuple[str, str]] = {
    "basic": ("113100", "Basic Application Confidentiality Profile"),
    "clean-pixels": ("113101", "Clean Pixel Data Option"),
    "clean-graphics": ("113103", "Clean Graphics Option"),
    "clean-structured-content": ("113104", "Clean Structured Content Option"),
    "clean-descriptors": ("113105", "Clean Descriptors Option"),
    "retain-full-dates": ("113106", "Retain Longitudinal Temporal Information Full Dates Option"),
    "retain-modified-dates": (
        "113107",
        "Retain Longitudinal Temporal Information Modified Dates Option",
    ),
    "retain-patient-characteristics": ("113108", "Retain Patient Characteristics Option"),
    "retain-device-identity": ("113109", "Retain Device Identity Option"),
    "retain-safe-private": ("113111", "Retain Safe Private Option"),
    "retain-institution-identity": ("113112", "Retain Institution Identity Option"),
}

#: What ustui writes itself (a name part found in these is no evidence of a leak).
_OWN_TEXTS = (
    f"ustui {__version__}",
    IMPLEMENTATION_VERSION_NAME,
    DUMMY_NAME,
    DUMMY_TEXT,
    "MODIFIED",
    "UNMODIFIED",
    "REMOVED",
    *(meaning for _, meaning in METHOD_CODES.values()),
)
#: UIDs that name a definition, never an instance: SOP classes, transfer syntaxes,
#: coding schemes, context groups and mapping resources (kept when not in the table).
_DEFINITION_UIDS = frozenset(
    Tag(tag)
    for tag, (vr, _vm, _name, _retired, keyword) in DicomDictionary.items()
    if vr == "UI"
    and (
        keyword.endswith(("ClassUID", "TransferSyntaxUID"))
        or keyword in ("CodingSchemeUID", "ContextUID", "MappingResourceUID")
    )
)


# --- the policy: which action each attribute gets ------------------------------------


@dataclass(frozen=True)
class _Policy:
    options: frozenset[str]
    columns: frozenset[str]
    dates: str
    """keep, shift or remove."""
    free_text: str
    """What C keeps of free text (``DeidSettings.free_text``)."""


def _policy(settings: DeidSettings) -> _Policy:
    unknown = [o for o in settings.options if o not in DEID_OPTIONS]
    if unknown:
        raise UstuiError(f"unknown de-identification option {unknown[0]!r}")
    if settings.free_text not in FREE_TEXT_POLICIES:
        raise UstuiError(f"unknown free_text policy {settings.free_text!r}")
    options = frozenset(settings.options)
    modes = [_DATE_MODES[o] for o in options if o in _DATE_MODES]
    if len(modes) > 1:
        raise UstuiError("retain-full-dates and retain-modified-dates exclude each other")
    columns = frozenset(DEID_OPTIONS[o] for o in options)
    return _Policy(
        options=options,
        columns=columns,
        dates=modes[0] if modes else "remove",
        free_text=settings.free_text,
    )


def _removed_unread(tag: int) -> bool:
    group, element = tag >> 16, tag & 0xFFFF
    return (
        group % 2 == 1
        or element == 0
        or group == 0
        or group >> 8 in (0x50, 0x60)
        or group in (0xFFFC, 0xFFFE)
    )


@lru_cache(maxsize=8192)
def _action(policy: _Policy, tag: int, vr: str, strict: bool, sop_class: str) -> str:
    """The single action (X, Z, D, K, C or U) for one attribute of an instance of
    ``sop_class``; rules 2-4 of the docstring."""
    if vr in ("AE", "UN"):
        return "X"
    if tag in EXTRA_REMOVED:
        keeper = EXTRA_REMOVED[Tag(tag)]
        return "K" if keeper is not None and keeper in policy.options else "X"
    row = TABLE.get(tag)
    if row is not None:
        codes = {code for column, code in row.options.items() if column in policy.columns}
        code = "K" if "K" in codes else "C" if "C" in codes else row.action
    elif vr == "UI":
        code = "K" if tag in _DEFINITION_UIDS else "U"
    elif vr == "PN":
        code = "X"
    elif vr in ("DA", "DT", "TM"):
        code = {"keep": "K", "shift": "C", "remove": "X"}[policy.dates]
    elif strict and vr in TEXT_VRS:
        code = "C"
    else:
        code = "K"
    if code == "X/Z/U*":
        return "U"
    if "D" in code.split("/") and _type_1(tag, sop_class):
        return "D"
    code = code.split("/")[0]
    return "Z" if code == "X" and tag in TYPE_2 else code


def _type_1(tag: int, sop_class: str) -> bool:
    """Whether the IOD of ``sop_class`` requires a value (``iod_rules.TYPE_1``)."""
    return sop_class in TYPE_1.get(keyword_for_tag(tag), ())


def _sop_class(ds: Dataset) -> str:
    try:
        return str(ds.get("SOPClassUID", "") or "").strip(" \x00")
    except Exception:  # an undecodable class is no known IOD
        return ""


def _vr(elem: DataElement) -> str:
    """The element's VR, from the dictionary when the file did not say (UN)."""
    vr = str(elem.VR)
    if vr == "UN":
        try:
            vr = dictionary_VR(elem.tag)
        except KeyError:
            return "UN"
    return vr.split(" or ")[0]  # ambiguous VRs ("US or SS") are numbers or binary alike


def _element(ds: Dataset, tag: BaseTag) -> DataElement | None:
    """The decoded element, or None when pydicom cannot decode it."""
    try:
        return ds[tag]
    except Exception:  # any decoding failure: the element cannot be judged
        return None


# --- the values of the original that must not survive -------------------------------


def identifying_values(ds: Dataset, *, settings: DeidSettings | None = None) -> set[str]:
    """Every identifying value of an original dataset, for the verifier to search.

    Kept are the string forms of the values of every element that ``deidentify``
    removes, empties or replaces under the Basic Profile (or under ``settings``,
    whose retain and clean options then exclude what they keep): all UIDs,
    dates, times, names, IDs and descriptions of Table E.1-1, person names,
    AE titles and the ``EXTRA_REMOVED`` attributes, at any depth, everything
    inside a removed or emptied sequence, the file meta group (except its
    version, SOP class and transfer syntax) and text values of private
    elements. Multiple values count one by one; person names also by component
    (family, given, ... of each representation).

    Skipped, because searching them would flag innocent matches everywhere:

    - values shorter than 4 characters; numbers with fewer than 6 digits (sizes,
      counts, short times); CS values (coded terms such as "YES", "MONOCHROME2",
      never names or IDs); well-known UIDs (kept by design); binary values that
      are not printable text; ustui's own dummy values and implementation
      name, and "NONE", "NULL", "UNKNOWN";
    - "soft" values (descriptors, device and institution identity: attributes
      with a Clean Descriptors, Retain Device Identity or Retain Institution
      Identity column and what sequences with such a column hold, AE titles,
      Issuer of Patient ID, Requesting Service, private elements) that occur
      within a value the profile keeps elsewhere in the same file. The standard
      judges that text harmless there (e.g. a Station Name equal to the
      Manufacturer's Model Name, a Series Description equal to a Procedure Code
      Meaning, a private copy of Processing Function). Components of person
      names count as soft too (a given name "MARY" within "PRIMARY"), as does
      any text ustui writes itself. Whole names, IDs, dates, UIDs and addresses
      are always kept.
    """
    return corpus_identifying_values([ds], settings=settings)[0]


def corpus_identifying_values(
    datasets: list[Dataset], *, settings: DeidSettings | None = None
) -> list[set[str]]:
    """:func:`identifying_values` of each dataset, judging "soft" values against the
    texts the profile keeps in any of them: an export of many files may legitimately
    hold, say, one scanner's software version that equals another file's station name.
    """
    policy = _policy(settings or DeidSettings())
    found = [_identifying(ds, policy) for ds in datasets]
    kept = [text for f in found for text in f.kept] + [text.lower() for text in _OWN_TEXTS]
    result = []
    for f in found:
        soft = f.identity | f.descriptive
        result.append(f.hard | {v for v in soft if not any(v.lower() in text for text in kept)})
    return result


@dataclass
class _Found:
    """The identifying values of an original, by kind."""

    hard: set[str] = field(default_factory=set)
    """Patients' and persons' names, IDs, dates, UIDs, addresses..."""
    identity: set[str] = field(default_factory=set)
    """Device and institution identity, AE titles, components of person names."""
    descriptive: set[str] = field(default_factory=set)
    """Descriptors (Clean Descriptors column) and text of private elements."""
    kept: list[str] = field(default_factory=list)
    """Lower-case texts the policy keeps."""

    def add(self, elem: DataElement, origin: int, vr: str) -> None:
        values, parts = _searchable(elem)
        row = TABLE.get(origin)
        options = row.options if row is not None else {}
        if origin >> 16 & 1 or not _DESCRIPTIVE.isdisjoint(options):
            self.descriptive.update(values)
        elif vr == "AE" or origin in _INSTITUTION_LIKE or not _IDENTITY.isdisjoint(options):
            self.identity.update(values)
        else:
            self.hard.update(values)
        self.identity.update(parts)


_IDENTITY = frozenset({"rtnDevIdOpt", "rtnInstIdOpt"})
_DESCRIPTIVE = frozenset({"cleanDescOpt", "cleanStructContOpt", "cleanGraphOpt"})
#: Attributes without an identity column that name an institution or one of its services.
_INSTITUTION_LIKE = frozenset({Tag("IssuerOfPatientID"), Tag("RequestingService")})


def _identifying(ds: Dataset, policy: _Policy) -> _Found:
    found = _Found()
    meta: Dataset = getattr(ds, "file_meta", None) or Dataset()
    for tag in list(meta.keys()):
        elem = _element(meta, tag)
        if elem is not None and tag not in _META_KEPT:
            found.add(elem, int(tag), _vr(elem))
    for elem, action, remover, cleaned_in in _walk(ds, policy):
        vr = _vr(elem)
        # C keeps times, and text only by a rule that makes it unsearchable (vocabulary,
        # form) unless the profile opts in to keeping unidentified free text.
        kept_text = vr in TEXT_VRS and policy.free_text == "keep-unidentified"
        keeps = action == "K" or (action == "C" and (vr == "TM" or kept_text))
        if remover is None and keeps:
            found.kept.extend(text.lower() for text in _strings(elem.value))
        elif remover is None:
            # Text cleaned only because a cleaned sequence holds it counts as that sequence's.
            by_sequence = cleaned_in is not None and int(elem.tag) not in TABLE
            found.add(elem, cleaned_in if by_sequence and cleaned_in else int(elem.tag), vr)
        else:
            found.add(elem, remover, "SQ")
    return found


def _walk(
    ds: Dataset, policy: _Policy
) -> Iterator[tuple[DataElement, str, int | None, int | None]]:
    """(element, action, the removed sequence it is in, the cleaned (C) sequence it is
    in) for each non-sequence element; the outermost such sequences, or None."""
    sop_class = _sop_class(ds)
    stack: list[tuple[Dataset, int | None, int | None]] = [(ds, None, None)]
    while stack:
        item, cleaned_in, remover = stack.pop()
        strict = cleaned_in is not None
        for tag in list(item.keys()):
            elem = _element(item, tag)
            if elem is None:
                continue
            unread = _removed_unread(tag)
            action = "X" if unread else _action(policy, int(tag), _vr(elem), strict, sop_class)
            if elem.VR != "SQ":
                yield elem, action, remover, cleaned_in
                continue
            removes = remover is None and action in ("X", "Z", "D")
            child_remover = int(tag) if removes else remover
            child_cleaned = int(tag) if cleaned_in is None and action == "C" else cleaned_in
            stack.extend((child, child_cleaned, child_remover) for child in elem.value)


_GENERIC = frozenset(
    {
        DUMMY_NAME,
        DUMMY_TEXT,
        DUMMY_DATE,
        DUMMY_TIME,
        DUMMY_DATE + DUMMY_TIME,
        PYDICOM_IMPLEMENTATION_UID,
        IMPLEMENTATION_VERSION_NAME,
        "NONE",
        "NULL",
        "UNKNOWN",
        *(text.upper() for text in _OWN_TEXTS),
    }
)
_NUMBER = re.compile(r"[-+]?[\d.]+")


def _searchable(elem: DataElement) -> tuple[set[str], set[str]]:
    """The values worth searching, and the components of person names."""
    vr = _vr(elem)
    if vr in ("CS", "SQ"):
        return set(), set()
    values = set(_strings(elem.value))
    parts = {p.strip() for v in values for p in re.split(r"[\^=]", v)} if vr == "PN" else set()
    return {v for v in values if _worth_searching(v)}, {p for p in parts if _worth_searching(p)}


def _worth_searching(value: str) -> bool:
    if len(value) < 4 or value.upper() in _GENERIC or _well_known(value):
        return False
    if in_vocabulary(value):  # common words and flags ("ABDOMEN", "FALSE") identify nobody
        return False
    return not (_NUMBER.fullmatch(value) and sum(c.isdigit() for c in value) < 6)


def _strings(value: object) -> list[str]:
    """Each value as stripped text; binary values only when they are printable text."""
    if value is None:
        return []
    if isinstance(value, bytes):
        text = value.decode("latin-1").strip(" \x00")
        return [t.strip() for t in text.split("\\")] if text.isprintable() else []
    if isinstance(value, list | tuple | MultiValue):
        return [str(v).strip(" \x00") for v in value]
    return [str(value).strip(" \x00")]


def _well_known(uid: str) -> bool:
    return uid in UID_dictionary or uid.startswith("1.2.840.10008.")


# --- cleaning free text -----------------------------------------------------------------

_DATE_LIKE = re.compile(r"\b\d{1,4}[./-]\d{1,2}[./-]\d{1,4}\b|\b(?:1[89]|20)\d{6}\b")
_WORD = re.compile(r"[^\W_]+")


@dataclass(frozen=True)
class _Cleaner:
    """Decides whether free text may stay (the C action)."""

    values: frozenset[str]
    """Identifying values of the file but descriptors, lower case."""
    words: frozenset[str]
    """Parts of every person name in the file, lower case, two letters or more."""

    @classmethod
    def of(cls, ds: Dataset, policy: _Policy) -> _Cleaner:
        words: set[str] = set()
        for elem, *_ in _walk(ds, policy):
            if _vr(elem) == "PN":
                for text in _strings(elem.value):
                    words.update(w for w in _WORD.findall(text.lower()) if len(w) > 1)
        found = _identifying(ds, policy)  # descriptors are what gets cleaned: not counted
        values = found.hard | found.identity
        return cls(frozenset(v.lower() for v in values), frozenset(words))

    def is_clean(self, texts: list[str]) -> bool:
        for text in texts:
            lowered = text.lower()
            if _DATE_LIKE.search(text) or any(v in lowered for v in self.values):
                return False
            if self.words.intersection(_WORD.findall(lowered)):
                return False
        return True


# --- applying the actions ---------------------------------------------------------------


@dataclass(frozen=True)
class _Run:
    policy: _Policy
    pseudonyms: Pseudonyms
    offset: int
    """Days the subject's dates move back (modified-dates option)."""
    cleaner: _Cleaner | None
    """None when no option can clean text (then no C action arises on text)."""
    sop_class: str


def deidentify(
    ds: Dataset,
    *,
    settings: DeidSettings,
    pseudonyms: Pseudonyms,
    subject: str,
    pixels_cleaned: bool,
) -> None:
    """De-identify a header in place (see the module docstring for the rules).

    Parameters
    ----------
    ds
        A dataset read with ``stop_before_pixels=True``, usually with ``file_meta``.
    settings
        The profile's options and date-shift range.
    pseudonyms
        Keyed replacements for UIDs and the subject's date offset.
    subject
        The subject pseudonym, written as PatientName and PatientID.
    pixels_cleaned
        Whether crop and masks removed burned-in text (sets BurnedInAnnotation
        and the Clean Pixel Data code).
    """
    policy = _policy(settings)
    run = _Run(
        policy=policy,
        pseudonyms=pseudonyms,
        offset=pseudonyms.date_offset_days(subject, settings.date_shift_days),
        cleaner=_Cleaner.of(ds, policy) if policy.options else None,
        sop_class=_sop_class(ds),
    )
    stack: list[tuple[Dataset, bool]] = [(ds, False)]
    while stack:
        item, strict = stack.pop()
        for tag in list(item.keys()):
            stack.extend(_apply(item, tag, run, strict))
    _replace_meta(ds, pseudonyms)
    _conform_enumerated(ds)
    _record(ds, policy, subject, pixels_cleaned)


def _apply(ds: Dataset, tag: BaseTag, run: _Run, strict: bool) -> list[tuple[Dataset, bool]]:
    """De-identify one element; the sequence items still to visit."""
    elem = None if _removed_unread(tag) else _element(ds, tag)
    if elem is None:
        del ds[tag]
        return []
    vr = _vr(elem)
    action = _action(run.policy, int(tag), vr, strict, run.sop_class)
    if elem.VR == "UN" and (action != "K" or vr == "SQ"):
        action = "X"  # undecoded bytes can be kept or dropped, never rewritten
    if action == "X":
        del ds[tag]
    elif elem.VR == "SQ":
        if action in ("Z", "D"):
            elem.value = Sequence()
            return []
        return [(item, strict or action == "C") for item in elem.value]
    elif action == "Z":
        elem.value = elem.empty_value
    elif action in ("U", "D") and vr == "UI":
        elem.value = _one_or_many([_new_uid(v, run.pseudonyms) for v in _strings(elem.value)])
    elif action == "U":
        del ds[tag]  # a UID stored under another VR cannot be mapped: never keep it
    elif action == "D":
        elem.value = _dummy(vr)
    elif action == "C":
        _clean(ds, elem, vr, run)
    return []


def _new_uid(uid: str, pseudonyms: Pseudonyms) -> str:
    return uid if not uid or _well_known(uid) else pseudonyms.uid(uid)


def _one_or_many(values: list[str]) -> str | list[str]:
    return values[0] if len(values) == 1 else values


def _dummy(vr: str) -> object:
    if vr in _NUMBER_VRS:
        return 0
    if vr in _BINARY_VRS:
        return bytes(8)
    return {
        "PN": DUMMY_NAME,
        "DA": DUMMY_DATE,
        "DT": DUMMY_DATE + DUMMY_TIME,
        "TM": DUMMY_TIME,
        "AS": "000Y",
        "IS": "0",
        "DS": "0",
    }.get(vr, DUMMY_TEXT)


def _clean(ds: Dataset, elem: DataElement, vr: str, run: _Run) -> None:
    texts = _strings(elem.value)
    if vr == "TM":
        return
    if vr in ("DA", "DT") and run.policy.dates == "shift":
        shifted = [shift_date(text, vr, run.offset) for text in texts]
        if all(s is not None for s in shifted):
            elem.value = _one_or_many([s for s in shifted if s is not None])
            return
    elif vr in TEXT_VRS and _safe_text(ds, elem, vr, texts, run):
        return
    if _type_1(elem.tag, run.sop_class):
        elem.value = _dummy(vr)
    elif elem.tag in TYPE_2:
        elem.value = elem.empty_value
    else:
        del ds[elem.tag]


def _safe_text(ds: Dataset, elem: DataElement, vr: str, texts: list[str], run: _Run) -> bool:
    """Whether a rule proves text safe to keep under C (see ``safe_values``).

    Structured attributes stay only in their form (a CS also only without the file's
    identifying values); the attributes of a code item of a standard coding scheme
    stay; free text stays when made of the shipped vocabulary, or, with
    ``free_text = "keep-unidentified"``, when it holds no identifying value.
    """
    cleaner = run.cleaner
    if cleaner is None:
        return False
    forms = [fits_form(int(elem.tag), vr, text) for text in texts]
    if any(form is not None for form in forms):
        return all(forms) and (vr != "CS" or cleaner.is_clean(texts))
    if elem.keyword in CODE_ATTRIBUTES and _text(ds, "CodingSchemeDesignator") in STANDARD_SCHEMES:
        return cleaner.is_clean(texts)
    if all(in_vocabulary(text) for text in texts):
        return True
    return run.policy.free_text == "keep-unidentified" and cleaner.is_clean(texts)


def _text(ds: Dataset, keyword: str) -> str:
    elem = _element(ds, Tag(keyword)) if keyword in ds else None
    return str(elem.value or "").strip() if elem is not None else ""


_DA = re.compile(r"(\d{4})\.?(\d{2})\.?(\d{2})")  # with dots: the old ACR-NEMA form
#: A DT: the date to the year, month or day, then the time and UTC offset, which stay.
_DT = re.compile(r"(\d{4})(\d{2})?(\d{2})?(\d{0,6}(?:\.\d{1,6})?(?:[+-]\d{4})?)")


def shift_date(text: str, vr: str, days: int) -> str | None:
    """A DA or DT value moved back by ``days``, keeping its precision; None if unparsable."""
    if not text:
        return text
    match = (_DA if vr == "DA" else _DT).fullmatch(text)
    if match is None or (vr == "DT" and match[4] and not match[3]):
        return None
    try:
        moved = dt.date(int(match[1]), int(match[2] or 1), int(match[3] or 1))
        moved -= dt.timedelta(days=days)
    except (ValueError, OverflowError):
        return None
    digits = f"{moved.year:04d}{moved.month:02d}{moved.day:02d}"
    if vr == "DA":
        return digits
    precision = 4 + 2 * bool(match[2]) + 2 * bool(match[3])
    return digits[:precision] + match[4]


def _replace_meta(ds: Dataset, pseudonyms: Pseudonyms) -> None:
    meta = getattr(ds, "file_meta", None)
    if meta is None:
        meta = ds.file_meta = FileMetaDataset()
    original = _element(meta, Tag("MediaStorageSOPInstanceUID"))
    for tag in list(meta.keys()):
        if tag not in _META_KEPT:
            del meta[tag]
    if "SOPInstanceUID" in ds:
        meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    elif original is not None:
        meta.MediaStorageSOPInstanceUID = _new_uid(str(original.value or ""), pseudonyms)
    if "MediaStorageSOPClassUID" not in meta and "SOPClassUID" in ds:
        meta.MediaStorageSOPClassUID = ds.SOPClassUID
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    meta.ImplementationVersionName = IMPLEMENTATION_VERSION_NAME
    if getattr(ds, "preamble", None):
        ds.preamble = bytes(128)  # a preamble can hold anything (e.g. a TIFF header)


def _conform_enumerated(ds: Dataset) -> None:
    """Enumerated attributes keep only values their IOD allows (a retain option keeps
    e.g. Smoking Status as it was written, which may be anything); others are removed,
    or emptied when Type 2."""
    for keyword, allowed in ENUMERATED.items():
        elem = _element(ds, Tag(keyword)) if keyword in ds else None
        if elem is None or all(not v or v.upper() in allowed for v in _strings(elem.value)):
            continue
        if elem.tag in TYPE_2:
            elem.value = elem.empty_value
        else:
            del ds[elem.tag]


def _record(ds: Dataset, policy: _Policy, subject: str, pixels_cleaned: bool) -> None:
    """Write the subject and what was done (PS3.15 E.1.1, PS3.3 C.7.1.1)."""
    for keyword in _ENSURED:
        if keyword not in ds:
            setattr(ds, keyword, None)
    ds.PatientName = subject
    ds.PatientID = subject
    ds.PatientIdentityRemoved = "YES"
    applied = ["basic", *(["clean-pixels"] if pixels_cleaned else []), *policy.options]
    codes = sorted(METHOD_CODES[name] for name in applied)
    ds.DeidentificationMethod = [f"ustui {__version__}", *(meaning for _, meaning in codes)]
    items = []
    for value, meaning in codes:
        item = Dataset()
        item.CodeValue = value
        item.CodingSchemeDesignator = "DCM"
        item.CodeMeaning = meaning
        items.append(item)
    ds.DeidentificationMethodCodeSequence = Sequence(items)
    ds.LongitudinalTemporalInformationModified = {
        "shift": "MODIFIED",
        "keep": "UNMODIFIED",
        "remove": "REMOVED",
    }[policy.dates]
    # Some IODs allow NO only: their images carry no burned-in text by definition.
    no_text = pixels_cleaned or _sop_class(ds) in BURNED_IN_NO_ONLY
    ds.BurnedInAnnotation = "NO" if no_text else "YES"

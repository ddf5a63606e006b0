"""What the IODs require of the attributes de-identification touches, so that an
output stays a valid object of its IOD (checked with dciodvfy, dicom3tools 2024).

PS3.15's compound actions (X/Z, X/D, Z/D, X/Z/D) pick a dummy (D) only where the
IOD makes the attribute Type 1 and an empty value (Z) where it is Type 2; these
tables say where. They list the image storage classes in which dciodvfy requires
the attribute; ``tests/test_deid_edges.py`` re-derives them with dciodvfy.
"""

from __future__ import annotations

_ENHANCED_XA = "1.2.840.10008.5.1.4.1.1.12.1.1"
_ENHANCED_XRF = "1.2.840.10008.5.1.4.1.1.12.2.1"
_ENHANCED_US_VOLUME = "1.2.840.10008.5.1.4.1.1.6.2"
_OPHTHALMIC_TOMOGRAPHY = "1.2.840.10008.5.1.4.1.1.77.1.5.4"
_OCT_EN_FACE = "1.2.840.10008.5.1.4.1.1.77.1.5.7"
_OCT_BSCAN_ANALYSIS = "1.2.840.10008.5.1.4.1.1.77.1.5.8"
_PET = "1.2.840.10008.5.1.4.1.1.128"
#: Enhanced CT, MR, MR colour, PET, legacy-converted CT/MR/PET, X-Ray 3D, tomosynthesis.
_FUNCTIONAL_GROUPS = frozenset(
    {
        "1.2.840.10008.5.1.4.1.1.2.1",
        "1.2.840.10008.5.1.4.1.1.2.2",
        "1.2.840.10008.5.1.4.1.1.4.1",
        "1.2.840.10008.5.1.4.1.1.4.3",
        "1.2.840.10008.5.1.4.1.1.4.4",
        "1.2.840.10008.5.1.4.1.1.128.1",
        "1.2.840.10008.5.1.4.1.1.130",
        "1.2.840.10008.5.1.4.1.1.13.1.1",
        "1.2.840.10008.5.1.4.1.1.13.1.2",
        "1.2.840.10008.5.1.4.1.1.13.1.3",
        _ENHANCED_XA,
        _ENHANCED_XRF,
        _ENHANCED_US_VOLUME,
    }
)
_LEGACY_CONVERTED = frozenset(
    {
        "1.2.840.10008.5.1.4.1.1.2.2",
        "1.2.840.10008.5.1.4.1.1.4.4",
        "1.2.840.10008.5.1.4.1.1.128.1",
    }
)
_DERMOSCOPIC_PHOTOGRAPHY = "1.2.840.10008.5.1.4.1.1.77.1.7"
_OPHTHALMIC_PHOTOGRAPHY = frozenset(
    {"1.2.840.10008.5.1.4.1.1.77.1.5.1", "1.2.840.10008.5.1.4.1.1.77.1.5.2"}
)

#: The enhanced (not legacy-converted) multi-frame IODs, with Enhanced General Equipment.
_ENHANCED = _FUNCTIONAL_GROUPS - _LEGACY_CONVERTED
_OPHTHALMIC_OCT = frozenset({_OPHTHALMIC_TOMOGRAPHY, _OCT_EN_FACE, _OCT_BSCAN_ANALYSIS})

#: Keyword -> the storage classes where it is Type 1 although the table removes it.
TYPE_1: dict[str, frozenset[str]] = {
    "AcquisitionDateTime": frozenset(
        {_ENHANCED_XA, _ENHANCED_XRF, _ENHANCED_US_VOLUME, _OPHTHALMIC_TOMOGRAPHY}
    ),
    "ContentDate": _FUNCTIONAL_GROUPS | _OPHTHALMIC_PHOTOGRAPHY | _OPHTHALMIC_OCT,
    "ContentTime": _FUNCTIONAL_GROUPS | _OPHTHALMIC_PHOTOGRAPHY | _OPHTHALMIC_OCT,
    # Enhanced General Equipment module.
    "DeviceSerialNumber": _ENHANCED | _OPHTHALMIC_OCT | {_DERMOSCOPIC_PHOTOGRAPHY},
    # PET Series module.
    "SeriesDate": frozenset({_PET}),
    "SeriesTime": frozenset({_PET}),
}

#: Storage classes whose IOD allows only NO for Burned In Annotation.
BURNED_IN_NO_ONLY = _ENHANCED | _OPHTHALMIC_OCT

#: Values allowed for enumerated attributes (PS3.3) that a profile may keep or clean,
#: or that ustui writes; other values are removed (Type 2 ones emptied).
ENUMERATED: dict[str, frozenset[str]] = {
    "BurnedInAnnotation": frozenset({"YES", "NO"}),
    "RecognizableVisualFeatures": frozenset({"YES", "NO"}),
    "PatientSexNeutered": frozenset({"ALTERED", "UNALTERED"}),
    "SmokingStatus": frozenset({"YES", "NO", "UNKNOWN"}),
    "PregnancyStatus": frozenset({"1", "2", "3", "4"}),
    "PatientSex": frozenset({"M", "F", "O"}),
    "ReasonForTheAttributeModification": frozenset({"COERCE", "CORRECT"}),
    "ImageLaterality": frozenset({"R", "L", "U", "B"}),
    "Laterality": frozenset({"R", "L"}),
}

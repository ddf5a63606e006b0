"""One source patient, one subject: grouping the inputs of an export by patient.

The rule, applied to the whole input set before any file is processed (so that
every worker gets the same answer):

1. Files of one study (same StudyInstanceUID) belong to one patient.
2. Files with the same PatientID belong to one patient, whatever
   IssuerOfPatientID each carries, unless the inputs hold that PatientID under
   two or more different issuers: then the issuer tells the patients apart, and
   the files without an issuer form a patient of their own.
3. Files without a PatientID but with the same PatientName belong to one patient.

Linked files form one group (union-find), so a study whose files carry the
issuer in some files only, or a patient whose studies are linked by their IDs,
get one subject, hence one date shift. The group's subject is the keyed hash of
its smallest identity (PatientID, else PatientName), the same as
:meth:`Pseudonyms.subject` gives any of its files when no two issuers compete.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydicom import Dataset

from ustui.core.pseudonyms import Pseudonyms, dataset_text, patient_identity

#: The attributes the grouping reads.
IDENTITY_KEYWORDS = ("PatientID", "IssuerOfPatientID", "PatientName", "StudyInstanceUID")


def group_patients(headers: Sequence[Dataset | None]) -> list[int]:
    """For each header (None: unreadable), the index of the first header of its patient."""
    parent = list(range(len(headers)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(i: int, j: int) -> None:
        a, b = find(i), find(j)
        if a != b:
            parent[max(a, b)] = min(a, b)

    first: dict[str, int] = {}
    for i, key in enumerate(_link_keys(headers)):
        for k in key:
            union(first.setdefault(k, i), i)
    return [find(i) for i in range(len(headers))]


def assign_subjects(
    headers: Sequence[Dataset | None], pseudonyms: Pseudonyms, prefix: str
) -> list[str | None]:
    """The subject pseudonym of each header's patient (None for unreadable headers)."""
    groups = group_patients(headers)
    identities = _identities(headers)
    best: dict[int, str] = {}
    for i, identity in enumerate(identities):
        if headers[i] is not None:
            best[groups[i]] = min(best.get(groups[i], identity), identity)
    return [
        pseudonyms.subject_of(best[groups[i]], prefix) if headers[i] is not None else None
        for i in range(len(headers))
    ]


def _competing_issuers(headers: Sequence[Dataset | None]) -> set[str]:
    """PatientIDs that occur under two or more different issuers."""
    issuers: dict[str, set[str]] = {}
    for ds in headers:
        if ds is not None and dataset_text(ds, "PatientID"):
            issuer = dataset_text(ds, "IssuerOfPatientID")
            if issuer:
                issuers.setdefault(dataset_text(ds, "PatientID"), set()).add(issuer)
    return {pid for pid, found in issuers.items() if len(found) > 1}


def _identities(headers: Sequence[Dataset | None]) -> list[str]:
    competing = _competing_issuers(headers)
    return [patient_identity(ds, qualify=competing) if ds is not None else "" for ds in headers]


def _link_keys(headers: Sequence[Dataset | None]) -> list[list[str]]:
    """What links each file to others: its study and its patient identity."""
    keys: list[list[str]] = []
    for ds, identity in zip(headers, _identities(headers), strict=True):
        if ds is None:
            keys.append([])
            continue
        study = dataset_text(ds, "StudyInstanceUID")
        keys.append(
            [*([f"study:{study}"] if study else []), *([identity] if identity != "unknown" else [])]
        )
    return keys

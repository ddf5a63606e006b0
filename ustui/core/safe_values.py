"""Values known not to identify anyone: the shipped vocabulary, coded values and the
forms of structured attributes.

PS3.15's C (clean) action means "replace with values of similar meaning known not
to contain identifying information". ustui cannot rewrite text, so it keeps a
value only when a rule proves it safe:

- free text whose every word is in :data:`VOCABULARY` (clinical, anatomical and
  ultrasound words, booleans, units; no word that is also a common given name or
  surname), so "NKDA", "LEFT LOWER LIMB" or "NONE" stay and "ALLERGIC TO
  DR SMITH'S DOG" goes;
- structured attributes only in their attribute's form (:func:`fits_form`): a
  ``±HHMM`` UTC offset, an enumerated value the standard allows.

The same vocabulary tells ``ustui verify`` which values are too common to
identify anyone (a Study Description "ABDOMEN", a flag "FALSE").
"""

from __future__ import annotations

import re

from pydicom.datadict import keyword_for_tag

from ustui.core.iod_rules import ENUMERATED

#: Lower-case words that identify nobody. Kept deliberately small and reviewed by
#: hand: colours, months, places, professions and adjectives that are common
#: surnames are left out (WHITE, MAY, LINCOLN, BAKER, LONG, SMALL, POWER).
_WORDS = """
    a an and as at by for from in into no none nil not of on or per the to with without
    yes true false unknown other n/a na null unspecified normal abnormal
    nka nkda nkfa known allergy allergies allergic drug drugs food latex iodine contrast
    penicillin sulfa aspirin nsaid nsaids shellfish egg eggs nuts peanut peanuts medication
    medications premedication sedation sedated sedative anesthesia anaesthesia
    fasting fasted nil-by-mouth npo stable unstable critical conscious unconscious alert
    ventilated intubated pregnant pregnancy lactating breastfeeding
    wheelchair stretcher bed bedside bedbound bariatric interpreter hearing visual impaired
    impairment deaf blind mobility assistance isolation infectious infection precautions
    contact droplet airborne oxygen diabetic diabetes allergy-free claustrophobic
    ultrasound us doppler color colour spectral pulsed continuous wave duplex mode
    b-mode m-mode 2d 3d 4d cine loop image images frame frames elastography
    contrast-enhanced harmonic harmonics compound compression transducer probe linear
    convex curved sector phased array endocavity transvaginal transrectal transabdominal
    transthoracic transesophageal intraoperative
    study series exam examination scan scans view views screening follow-up followup
    diagnostic non-diagnostic routine urgent emergency baseline preliminary final report
    abdomen abdominal pelvis pelvic thorax thoracic chest neck head limb limbs
    arm arms leg legs upper lower extremity extremities whole body
    liver hepatic gallbladder biliary bile duct ducts pancreas spleen kidney kidneys renal
    bladder urinary prostate testis testes scrotum scrotal uterus uterine ovary ovaries
    adnexa adnexal cervix endometrium placenta fetal fetus foetal foetus obstetric
    obstetrical gynecological gynaecological breast breasts axilla axillary thyroid
    parathyroid salivary parotid submandibular lymph node nodes muscle muscles tendon
    tendons joint joints shoulder elbow wrist hand hands hip hips knee knees ankle foot feet
    aorta aortic carotid vertebral artery arteries arterial vein veins venous vessel vessels
    vascular femoral popliteal saphenous common superficial deep proximal
    distal mid middle cfv gsv ssv fv pv iliac jugular subclavian brachial radial ulnar
    tibial peroneal posterior anterior portal hepatic mesenteric cardiac heart echo
    echocardiography echocardiogram ventricle ventricular atrium atrial valve valves mitral
    tricuspid pulmonary lung lungs pleural pericardial bowel appendix soft tissue tissues
    skin subcutaneous mass masses lesion lesions cyst cysts nodule nodules fluid collection
    thrombus thrombosis dvt reflux stenosis occlusion flow velocity
    left right bilateral unilateral both side sides transverse longitudinal sagittal
    coronal axial oblique axis
    first second third fourth trimester weeks week days day
    mm cm m ml l s ms hz khz mhz db bpm mg kg g
"""
VOCABULARY = frozenset(_WORDS.split())

_WORD = re.compile(r"[a-z0-9]+(?:[-/][a-z0-9]+)*")
#: A small number ("5 MG", "2 WEEKS"); longer digit runs may be IDs, years or dates.
_NUMBER = re.compile(r"\d{1,3}(?:\.\d{1,3})?")


def in_vocabulary(text: str) -> bool:
    """Whether ``text`` is made only of vocabulary words, small numbers and punctuation.

    Empty text is safe; text of numbers alone is not (an ID or a date may be
    written that way).
    """
    words = _WORD.findall(text.lower())
    if not words:
        return not any(c.isalnum() for c in text)
    if all(_NUMBER.fullmatch(w) for w in words):
        return False
    return all(w in VOCABULARY or _NUMBER.fullmatch(w) for w in words)


#: Structured attributes a C action may keep, with the form of their values.
FORMS: dict[str, re.Pattern[str]] = {
    "TimezoneOffsetFromUTC": re.compile(r"[+-](?:0\d|1[0-4])[0-5]\d"),
}
#: A Code String (PS3.5 6.2): upper-case letters, digits, space and underscore.
_CODE_STRING = re.compile(r"[A-Z0-9 _]{0,16}")


def fits_form(tag: int, vr: str, value: str) -> bool | None:
    """Whether ``value`` has the form of attribute ``tag``; None when the attribute has
    no form (free text), so only the vocabulary can prove it safe."""
    keyword = keyword_for_tag(tag)
    if keyword in ENUMERATED:
        return value in ENUMERATED[keyword]
    if keyword in FORMS:
        return FORMS[keyword].fullmatch(value) is not None
    if vr == "CS":
        return _CODE_STRING.fullmatch(value) is not None
    return None


#: Coding schemes whose code meanings are fixed by the scheme (PS3.16 8.1), so a
#: code item of one of them holds no free text.
STANDARD_SCHEMES = frozenset(
    {"DCM", "SCT", "SRT", "LN", "UCUM", "FMA", "RADLEX", "NCIT", "ICD10", "I10", "UMLS", "MDC"}
)
#: The attributes of a code item (PS3.3 Table 8.8-1) besides its meaning.
CODE_ATTRIBUTES = frozenset(
    {
        "CodeValue",
        "LongCodeValue",
        "URNCodeValue",
        "CodingSchemeDesignator",
        "CodingSchemeVersion",
        "CodeMeaning",
        "ContextIdentifier",
        "ContextUID",
        "MappingResource",
        "ContextGroupVersion",
    }
)

"""Coded vocabularies of the domain (see the domain brief, §1-§7).

Codes are the values stored in events: MHSDS codes keep their national two-digit values so
extracts need no mapping; school, children's-home and Welsh types have stable prefixed codes.
"""

from __future__ import annotations

from enum import StrEnum


class Setting(StrEnum):
    MENTAL_HEALTH_UNIT = "mental-health-unit"
    LD_AUTISM_UNIT = "ld-autism-unit"
    SECURE_UNIT = "secure-unit"
    ACUTE_HOSPITAL = "acute-hospital"
    CHILDRENS_HOME = "childrens-home"
    SECURE_CHILDRENS_HOME = "secure-childrens-home"
    SCHOOL = "school"
    SPECIAL_SCHOOL = "special-school"
    RESIDENTIAL_SCHOOL = "residential-school"
    ADULT_RESIDENTIAL = "adult-residential"
    CARE_HOME = "care-home"


class Profile(StrEnum):
    """Jurisdiction profiles: which statutory rules a service's records must satisfy."""

    UK_ENG_MH_UNIT = "uk-eng-mh-unit"  # Use of Force Act 2018, MHA Code of Practice, NICE NG10
    UK_ENG_SCHOOL = "uk-eng-school"  # DfE restrictive interventions guidance (2026)
    UK_SCO_SCHOOL = "uk-sco-school"  # Included, Engaged and Involved Part 3 (2024)
    UK_WAL_SCHOOL = "uk-wal-school"  # Reducing Restrictive Practices Framework (2021)
    UK_ENG_CHILDRENS_HOME = "uk-eng-childrens-home"  # Children's Homes Regulations 2015
    UK_ENG_CQC = "uk-eng-cqc"  # CQC notifications (health and adult social care)
    US_CMS_HOSPITAL = "us-cms-hospital"  # 42 CFR 482.13(e)-(g)


class InterventionType(StrEnum):
    """MHSDS RESTRICTIVE INTERVENTION TYPE codes, then setting-specific types."""

    PRONE = "01"
    MECHANICAL = "04"
    SECLUSION = "05"
    SEGREGATION = "06"
    STANDING = "07"
    RESTRICTIVE_ESCORT = "08"
    SUPINE = "09"
    SIDE = "10"
    SEATED = "11"
    KNEELING = "12"
    PHYSICAL_OTHER = "13"
    RAPID_TRANQUILLISATION = "14"
    INJECTION_NON_RT = "15"
    CHEMICAL_ORAL = "16"
    CHEMICAL_OTHER = "17"
    SCHOOL_RESTRAINT = "SCH-RESTRAINT"  # holding, binding, securing to a fixed object
    SCHOOL_SECLUSION = "SCH-SECLUSION"
    SCHOOL_MOBILITY_AID_REMOVED = "SCH-MOBILITY-AID"
    SCHOOL_REASONABLE_FORCE = "SCH-REASONABLE-FORCE"  # other significant physical contact
    HOME_RESTRAINT = "CH-RESTRAINT"
    HOME_LIBERTY_RESTRICTED = "CH-LIBERTY"  # e.g. high door handles, wheelchair turned off
    WALES_ENVIRONMENTAL = "WAL-ENVIRONMENTAL"
    WALES_COERCION = "WAL-COERCION"

    @property
    def category(self) -> Category:
        return _CATEGORY[self]

    @property
    def is_physical(self) -> bool:
        return self.category is Category.PHYSICAL

    @property
    def is_prone(self) -> bool:
        return self is InterventionType.PRONE


class Category(StrEnum):
    PHYSICAL = "physical"
    MECHANICAL = "mechanical"
    CHEMICAL = "chemical"
    SECLUSION = "seclusion"
    SEGREGATION = "segregation"
    ENVIRONMENTAL = "environmental"


_T = InterventionType
_CATEGORY = {
    **dict.fromkeys(
        (
            _T.PRONE,
            _T.STANDING,
            _T.RESTRICTIVE_ESCORT,
            _T.SUPINE,
            _T.SIDE,
            _T.SEATED,
            _T.KNEELING,
            _T.PHYSICAL_OTHER,
            _T.SCHOOL_RESTRAINT,
            _T.SCHOOL_REASONABLE_FORCE,
            _T.HOME_RESTRAINT,
            _T.WALES_COERCION,
        ),
        Category.PHYSICAL,
    ),
    _T.MECHANICAL: Category.MECHANICAL,
    _T.SCHOOL_MOBILITY_AID_REMOVED: Category.MECHANICAL,
    **dict.fromkeys(
        (_T.RAPID_TRANQUILLISATION, _T.INJECTION_NON_RT, _T.CHEMICAL_ORAL, _T.CHEMICAL_OTHER),
        Category.CHEMICAL,
    ),
    _T.SECLUSION: Category.SECLUSION,
    _T.SCHOOL_SECLUSION: Category.SECLUSION,
    _T.SEGREGATION: Category.SEGREGATION,
    _T.HOME_LIBERTY_RESTRICTED: Category.ENVIRONMENTAL,
    _T.WALES_ENVIRONMENTAL: Category.ENVIRONMENTAL,
}


class Position(StrEnum):
    PRONE = "prone"
    SUPINE = "supine"
    SIDE = "side"
    SEATED = "seated"
    STANDING = "standing"
    KNEELING = "kneeling"
    RESTRICTIVE_ESCORT = "restrictive-escort"
    OTHER = "other"


POSITION_OF_TYPE = {
    _T.PRONE: Position.PRONE,
    _T.SUPINE: Position.SUPINE,
    _T.SIDE: Position.SIDE,
    _T.SEATED: Position.SEATED,
    _T.STANDING: Position.STANDING,
    _T.KNEELING: Position.KNEELING,
    _T.RESTRICTIVE_ESCORT: Position.RESTRICTIVE_ESCORT,
}


class Reason(StrEnum):
    """MHSDS RestrictiveIntReason codes, then school and children's-home grounds."""

    VIOLENCE_TO_OTHERS = "10"
    SELF_HARM_INTENTIONAL = "11"
    SELF_INJURY_ACCIDENTAL = "12"
    ADMINISTER_TREATMENT = "13"
    PERSONAL_CARE = "14"
    NG_FEEDING = "15"
    OVER_ACTIVITY = "16"
    DANGEROUS_BEHAVIOUR = "17"
    SEARCH = "18"
    ABSCONDING_LAWFUL_CUSTODY = "19"
    OTHER = "98"
    NOT_KNOWN = "99"
    SCHOOL_INJURY = "SCH-INJURY"
    SCHOOL_OFFENCE = "SCH-OFFENCE"
    SCHOOL_DAMAGE = "SCH-DAMAGE"
    SCHOOL_DISORDER = "SCH-DISORDER"
    HOME_INJURY = "CH-INJURY"
    HOME_SERIOUS_DAMAGE = "CH-DAMAGE"
    HOME_ABSCONDING_SECURE = "CH-ABSCONDING"


class Route(StrEnum):
    """Chemical restraint routes."""

    ORAL = "oral"
    INTRAMUSCULAR = "im"
    INTRAVENOUS = "iv"
    OTHER = "other"


class InjuredPerson(StrEnum):
    SUBJECT = "subject"
    STAFF = "staff"
    OTHER = "other"


class Severity(StrEnum):
    MINOR = "minor"
    SERIOUS = "serious"  # CQC reg 18(2)(a)/(b); UoF s.6(5)(n)
    DEATH = "death"


class DebriefType(StrEnum):
    IMMEDIATE = "immediate"  # hot / safety debrief
    PERSON = "person"  # with the person subject to the intervention
    STAFF = "staff"
    POST_INCIDENT_REVIEW = "post-incident-review"  # formal
    EXTERNAL_REVIEW = "external-review"
    AFTER_ACTION_REVIEW = "after-action-review"


class Recipient(StrEnum):
    PARENT_CARER = "parent-carer"
    NEAREST_RELATIVE = "nearest-relative"
    PERSON = "person"
    LOCAL_AUTHORITY = "local-authority"
    PLACING_AUTHORITY = "placing-authority"
    SOCIAL_WORKER = "social-worker"
    COMMISSIONER = "commissioner"
    CQC = "cqc"
    OFSTED = "ofsted"
    CARE_INSPECTORATE = "care-inspectorate"
    CMS = "cms"
    POLICE = "police"


REGULATORS = frozenset(
    {Recipient.CQC, Recipient.OFSTED, Recipient.CARE_INSPECTORATE, Recipient.CMS}
)


class AuthorisationKind(StrEnum):
    PLANNED = "planned"  # part of the person's behaviour support / care / EHC plan
    EMERGENCY = "emergency"
    ORDER = "order"  # a time-limited order (US physician / LIP order)


class SeclusionReview(StrEnum):
    MEDICAL_1H = "medical-1h"
    NURSING_2H = "nursing-2h"
    MEDICAL_4H = "medical-4h"
    INTERNAL_MDT = "internal-mdt"
    INDEPENDENT_MDT = "independent-mdt"


class AgeBand(StrEnum):
    """Bands that age-dependent rules need (CMS order lengths: <9, 9-17, 18+)."""

    UNDER_9 = "under-9"
    AGE_9_TO_17 = "9-17"
    ADULT = "18-plus"

"""What evidence an analysis admits (a spec's ``[evidence]`` table): the evidence set, product
classes, exclusions, and the rules that read a trial's mortality day and oxygenation change.

The one home of the evidence sets' names (``--evidence``; their meaning:
:mod:`bayes_msc.evidence.selection`) and of the other choices an ``[evidence]`` table offers.
A record is valid once built: construction checks every field.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..io.errors import CONSTRUCTED, InputError, Location
from .schema import PRODUCT_CLASSES

# Evidence sets (see bayes_msc.evidence.selection): pool randomised trials only (default), all
# controlled evidence with a design-bias adjustment, the seed documents' studies, or a named
# list "studies:ID1,ID2,...".
EVIDENCE_SETS = ("randomised", "all", "seed")
STUDY_LIST_PREFIX = "studies:"
MEDIAN_IQR_METHODS = ("wan2014", "luo2018")
PREFER = ("arms", "contrast")


@dataclass(frozen=True)
class EvidenceSelection:
    """Which studies and arms enter the analysis."""

    evidence_set: str = "randomised"  # "randomised", "all", "seed" or "studies:ID1,ID2"
    product_classes: tuple[str, ...] = ()  # cell-arm product classes admitted
    exclude_studies: tuple[str, ...] = ()
    # Mortality timepoint rule: the reported day inside this window closest to its start;
    # otherwise the trial's own endpoint (its latest row), flagged in the inclusion report.
    timepoint_window_days: tuple[int, int] = (28, 31)
    # Oxygenation: the day a PaO2/FiO2 change is read at (closest reported day inside the
    # window; rows without a stated day enter flagged), how a median/IQR becomes a mean, and
    # whether a trial that reports both arm summaries and a contrast enters by its "arms"
    # (so its control arm informs the natural course) or by its "contrast" (e.g. adjusted).
    oxygenation_day: int = 7
    oxygenation_day_window: tuple[int, int] = (3, 14)
    median_iqr_method: str = "wan2014"
    prefer: str = "arms"

    def __post_init__(self):  # construction is the validation: no EvidenceSelection is invalid
        for key in ("product_classes", "exclude_studies", "timepoint_window_days", "oxygenation_day_window"):
            object.__setattr__(self, key, tuple(getattr(self, key)))
        check_evidence(self, CONSTRUCTED)


def check_evidence(e: EvidenceSelection, where: Location) -> None:
    unknown = [c for c in e.product_classes if c not in PRODUCT_CLASSES]
    if unknown:
        raise InputError(f"unknown product class {unknown[0]!r}; known: {', '.join(PRODUCT_CLASSES)}",
                         replace(where, field="evidence.product_classes"))
    listed = e.evidence_set.startswith(STUDY_LIST_PREFIX)
    if e.evidence_set not in EVIDENCE_SETS and not listed:
        raise InputError(
            f"unknown evidence set {e.evidence_set!r}; known: {', '.join(EVIDENCE_SETS)}, "
            f"or {STUDY_LIST_PREFIX}ID1,ID2,... (a named list of studies)",
            replace(where, field="evidence.evidence_set"),
        )
    if listed and not any(part.strip() for part in e.evidence_set[len(STUDY_LIST_PREFIX):].split(",")):
        raise InputError(
            f"{STUDY_LIST_PREFIX} needs at least one study id, e.g. {STUDY_LIST_PREFIX}lanzoni2021,monsel2022",
            replace(where, field="evidence.evidence_set"),
        )
    for key in ("timepoint_window_days", "oxygenation_day_window"):
        window = tuple(getattr(e, key))
        lo, hi = (window + (None, None))[:2]
        if len(window) != 2 or any(isinstance(d, bool) or not isinstance(d, int) for d in window) or not 0 < lo <= hi:
            raise InputError(
                "must be two whole days [first, last] with first <= last",
                replace(where, field=f"evidence.{key}"),
            )
    if e.median_iqr_method not in MEDIAN_IQR_METHODS:
        raise InputError(
            f"unknown method {e.median_iqr_method!r}; known: {', '.join(MEDIAN_IQR_METHODS)}",
            replace(where, field="evidence.median_iqr_method"),
        )
    if e.prefer not in PREFER:
        raise InputError(f"must be one of {', '.join(PREFER)}, got {e.prefer!r}", replace(where, field="evidence.prefer"))

"""The register's tables, declared once: columns, kinds, keys.

The validator (:mod:`bayes_msc.evidence.register`) reads these declarations; no table has
hand-written parsing of its own. A user's register must use the same columns.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

QUALITY = ("primary", "secondary", "inferred", "assumption")
PRODUCT_CLASSES = (
    "umbilical_cord", "bone_marrow", "adipose", "wharton_jelly", "perinatal",
    "cd362_umbilical_cord", "mapc", "msc_plus_ev", "none",
    "menstrual_blood", "msc_unspecified", "extracellular_vesicles", "secretome",
)
DESIGNS = (
    "rct_double_blind", "rct_open_label", "rct", "nonrandomised_controlled",
    "dose_escalation_single_arm", "withdrawn_registration", "rct_single_blind",
)
# How patients came to be in the cell or the control arm: what the design-aware selection
# (:mod:`bayes_msc.evidence.selection`) and the bias-adjusted mortality model read.
ALLOCATIONS = ("randomised", "nonrandomised_concurrent", "historical_or_matched", "single_arm", "not_applicable")
NONRANDOMISED_CONTROLLED = ("nonrandomised_concurrent", "historical_or_matched")
ARDS_CAUSES = ("covid", "non_covid", "mixed", "severe_covid_no_ards_definition", "h7n9_influenza", "unknown")


# The smallest SD or SE accepted anywhere: 1/SE^2 must stay finite in a normal likelihood.
MIN_SPREAD = 1e-6


@dataclass(frozen=True)
class Column:
    name: str
    kind: str  # "text" | "id" | "int" | "float" | "enum"
    required: bool = False
    choices: tuple[str, ...] = ()
    positive: bool = False  # numbers must be > 0 (otherwise >= 0)
    signed: bool = False  # numbers may be negative (changes, differences, interval bounds)
    # Largest magnitude accepted: far beyond any trial (a million patients, a million mmHg or
    # million cells), small enough that sums, squares and logs stay finite in the model.
    maximum: float = 1e6
    # Smallest size a non-zero value may have (a spread: an SD or SE of 1e-300 makes the
    # likelihood's precision infinite and the sampler cannot start).
    minimum: float = 0.0


@dataclass(frozen=True)
class Table:
    name: str  # file stem: <name>.csv
    columns: tuple[Column, ...]
    key: tuple[str, ...]  # no two rows may share these values
    required: bool = True
    # Whether an absent file still enters the register's content hash (as empty bytes). Tables
    # added to the format later say False, so a register without them keeps the hash it had.
    hashed_when_absent: bool = True

    @property
    def file_name(self) -> str:
        return f"{self.name}.csv"

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)


_PROVENANCE = (
    Column("source", "text", required=True),
    Column("quality", "enum", required=True, choices=QUALITY),
    Column("notes", "text"),
)

STUDIES = Table(
    "studies",
    (
        Column("study_id", "id", required=True),
        Column("label", "text", required=True),
        Column("design", "enum", required=True, choices=DESIGNS),
        Column("allocation", "enum", required=True, choices=ALLOCATIONS),
        Column("population", "text"),
        Column("ards_cause", "enum", choices=ARDS_CAUSES),
        Column("registration", "text"),
        Column("reference", "text"),
        Column("seed_file", "text"),
        Column("n_total", "int"),
        Column("status", "enum", required=True, choices=("published", "withdrawn")),
        *_PROVENANCE,
    ),
    key=("study_id",),
)

ARMS = Table(
    "arms",
    (
        Column("study_id", "id", required=True),
        Column("arm_id", "id", required=True),
        Column("label", "text", required=True),
        Column("role", "enum", required=True, choices=("cells", "control")),
        Column("product_class", "enum", required=True, choices=PRODUCT_CLASSES),
        Column("control_type", "enum", choices=("placebo", "vehicle", "standard_care", "not_stated")),
        Column("n", "int"),
        Column("n_allowed", "text"),
        *_PROVENANCE,
    ),
    key=("study_id", "arm_id"),
)

DOSES = Table(
    "doses",
    (
        Column("study_id", "id", required=True),
        Column("arm_id", "id", required=True),
        Column("dose_per_kg", "float", positive=True),
        Column("fixed_dose", "float", positive=True),
        Column("infusions", "int", positive=True),
        *_PROVENANCE,
    ),
    key=("study_id", "arm_id"),
    required=False,
)

MORTALITY = Table(
    "mortality",
    (
        Column("study_id", "id", required=True),
        Column("arms", "text", required=True),
        Column("day", "int", positive=True),
        Column("timepoint", "text", required=True),
        Column("deaths", "int"),
        Column("deaths_min", "int"),
        Column("deaths_max", "int"),
        *_PROVENANCE,
    ),
    key=("study_id", "arms", "day", "timepoint"),
)

# Oxygenation in the form each trial reported it; :mod:`bayes_msc.evidence.oxygenation`
# derives an estimate and standard error from whichever statistic a row carries.
OXYGENATION_MEASURES = ("pf_ratio", "sf_ratio", "pao2", "oxygenation_index")
OXYGENATION_QUANTITIES = ("change_from_baseline", "baseline", "at_day")
OXYGENATION_STATISTICS = (
    "mean_sd", "mean_se", "median_iqr", "estimate_ci", "estimate_p", "direction_only", "estimate_no_spread",
)
# The fields each statistic needs (besides n, which mean_sd and median_iqr take from the
# row or the arm).
STATISTIC_FIELDS = {
    "mean_sd": ("estimate", "sd"),
    "mean_se": ("estimate", "se"),
    "median_iqr": ("estimate", "q1", "q3"),
    "estimate_ci": ("estimate", "ci_lower", "ci_upper"),
    "estimate_p": ("estimate", "p_value"),
    "direction_only": (),
    # a central value with no SD, IQR, CI or P value (Martínez-Muñoz 2024): its spread is a
    # model parameter borrowed from the trials that report one
    "estimate_no_spread": ("estimate",),
}

OXYGENATION = Table(
    "oxygenation",
    (
        Column("study_id", "id", required=True),
        Column("arm", "id", required=True),  # the arm; for a contrast, its cell arm
        Column("comparator", "id"),  # set: the row is a contrast, arm minus comparator
        Column("measure", "enum", required=True, choices=OXYGENATION_MEASURES),
        Column("quantity", "enum", required=True, choices=OXYGENATION_QUANTITIES),
        Column("day", "int"),
        Column("timepoint", "text", required=True),
        Column("statistic", "enum", required=True, choices=OXYGENATION_STATISTICS),
        Column("estimate", "float", signed=True),  # mean, median or contrast estimate
        Column("sd", "float", positive=True, minimum=MIN_SPREAD),
        Column("se", "float", positive=True, minimum=MIN_SPREAD),
        Column("q1", "float", signed=True),
        Column("q3", "float", signed=True),
        Column("ci_lower", "float", signed=True),
        Column("ci_upper", "float", signed=True),
        Column("ci_prob", "float", positive=True),
        Column("p_value", "float", positive=True),
        Column("p_relation", "enum", choices=("=", "<")),
        Column("n", "int", positive=True),
        *_PROVENANCE,
    ),
    key=("study_id", "arm", "comparator", "measure", "quantity", "timepoint"),
    required=False,
)

# Study-level covariates, one value per row (long format) so that each value carries its own
# source and quality. What each covariate is (its kind, levels or range, unit) is declared in
# COVARIATES below; :mod:`bayes_msc.evidence.covariates` validates values against it and adds
# the covariates derived from other tables (ards_cause, cell_source, infusions).
COVARIATE_TABLE = Table(
    "covariates",
    (
        Column("study_id", "id", required=True),
        Column("covariate", "id", required=True),
        Column("value", "text"),  # empty: not reported (notes say where it was looked for)
        *_PROVENANCE,
    ),
    key=("study_id", "covariate"),
    required=False,
    hashed_when_absent=False,
)


@dataclass(frozen=True)
class Covariate:
    """What a study-level covariate is: ``numeric`` (with a unit and a plausible range) or
    ``categorical`` (with its levels; the first is the reference level of a regression)."""

    name: str
    kind: str  # "numeric" | "categorical"
    description: str
    unit: str = ""
    levels: tuple[str, ...] = ()
    minimum: float = -math.inf
    maximum: float = math.inf
    derived_from: str = ""  # "": a row of covariates.csv; otherwise the table it is read from


COVARIATES: tuple[Covariate, ...] = (
    Covariate("publication_year", "numeric", "year of the trial's main publication (or results posting)",
              unit="year", minimum=1900, maximum=2100),
    Covariate("severity_definition", "categorical", "how the trial defined its population's severity",
              levels=("berlin_ards", "covid_severe_who", "other", "not_stated")),
    Covariate("days_to_first_infusion", "numeric",
              "days from the reference event (notes: onset, admission, intubation, ARDS diagnosis or "
              "randomisation) to the first cell infusion", unit="days", minimum=0, maximum=365),
    Covariate("baseline_pf_ratio", "numeric", "baseline PaO2/FiO2 of the randomised patients (mean or median)",
              unit="mmHg", minimum=0, maximum=700),
    Covariate("share_ventilated", "numeric", "share of patients on invasive mechanical ventilation at baseline",
              unit="proportion", minimum=0, maximum=1),
    Covariate("rob2_overall", "categorical", "overall RoB 2 risk-of-bias judgement (randomised trials)",
              levels=("low", "some_concerns", "high")),
    Covariate("ards_cause", "categorical", "cause of the respiratory failure (studies.csv)",
              levels=ARDS_CAUSES, derived_from="studies"),
    Covariate("cell_source", "categorical", "product class of the cell arm(s) (arms.csv); mixed when several",
              levels=(*PRODUCT_CLASSES, "mixed"), derived_from="arms"),
    Covariate("infusions", "numeric", "number of cell infusions (doses.csv; the cell arms' largest)",
              unit="infusions", minimum=1, maximum=100, derived_from="doses"),
)
COVARIATES_BY_NAME = {c.name: c for c in COVARIATES}

TABLES: tuple[Table, ...] = (STUDIES, ARMS, DOSES, MORTALITY, OXYGENATION, COVARIATE_TABLE)

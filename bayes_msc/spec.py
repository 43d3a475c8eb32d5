"""Analysis specs: the declarative description of one named analysis (``models/*.toml``).

A spec says which evidence enters, how the model is shaped, which priors are used, what
counts as a decision-relevant effect and how to sample. It is immutable; command-line and
library overrides produce a new spec (``spec.with_...``), and the spec's hash is stored with
every result so a reload against a different spec is caught.
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from .errors import InputError, Location
from .paths import resolve_spec_path
from .models.sparse import DEFAULT_BASELINES, DEFAULT_LIKELIHOOD
from .priors import PriorSet, priors_from_table

OUTCOME_SCALES = {"mortality": "log_odds_ratio", "oxygenation": "mmhg", "normal_normal": "generic"}
EVIDENCE_SETS = ("full", "seed")
DOSE_RESPONSE_FORMS = ("none", "loglinear", "emax")
DOSE_METRICS = ("per_infusion", "cumulative")
BODY_WEIGHT_MODES = ("prior", "plugin")


@dataclass(frozen=True)
class EvidenceSelection:
    """Which studies and arms enter the analysis."""

    evidence_set: str = "full"  # "full" register, or "seed": the four seed trials alone
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


@dataclass(frozen=True)
class ModelSettings:
    """Model shape: the dose-response form and how doses are put on one axis.

    Doses are in million cells per kg. Fixed doses (cells per infusion) become per kg through
    the trial's mean body weight, which no trial reports: by default an uncertain quantity,
    log-normal with median ``body_weight_kg`` and log-SD ``body_weight_log_sd`` (an
    ASSUMPTION: adult ICU patients' mean weight ~80 kg; 95% 54-118 kg for a trial's mean),
    or a fixed ``body_weight_kg`` with ``body_weight = "plugin"``.
    """

    dose_response: str = "none"  # "none" (one pooled effect), "loglinear", "emax"
    dose_metric: str = "per_infusion"  # or "cumulative" (per-infusion dose x infusions)
    use_assumed_doses: bool = True  # False: leave out arms whose dose is an assumption (BC-U001)
    body_weight: str = "prior"  # "prior" (uncertain) or "plugin"
    body_weight_kg: float = 80.0
    body_weight_log_sd: float = 0.2
    reference_dose: float = 1.0  # the dose at which the headline effect is stated
    dose_grid: tuple[float, ...] = (0.5, 1.0, 2.0, 5.0, 10.0)
    # Mortality: how each study's arms inform the odds ratio (bayes_msc.models.sparse):
    # "arm", "symmetric" or "conditional"; and the baselines' prior.
    likelihood: str = DEFAULT_LIKELIHOOD
    baselines: str = DEFAULT_BASELINES


@dataclass(frozen=True)
class DecisionSettings:
    """What the decision summaries are computed against."""

    clinically_meaningful_or: float = 0.8  # P(OR < this) is reported as "clinically meaningful"
    baseline_risk: float = 0.43  # control-arm risk at which ARR and NNT are stated
    baseline_risk_source: str = ""
    ci_prob: float = 0.95
    # Continuous outcomes: P(difference beyond this) is "clinically meaningful", in the
    # outcome's units, and which direction of change is benefit.
    clinically_meaningful_difference: float = 20.0
    benefit_direction: str = "increase"


@dataclass(frozen=True)
class SamplerSettings:
    chains: int = 4
    draws: int = 1000
    tune: int = 1000
    target_accept: float = 0.95
    maxdepth: int = 10
    seed: int = 20261122


# Which settings each outcome reads; the others are not part of its spec (nor its hash).
EVIDENCE_KEYS = {
    "mortality": ("evidence_set", "product_classes", "exclude_studies", "timepoint_window_days"),
    "oxygenation": (
        "evidence_set", "product_classes", "exclude_studies", "oxygenation_day",
        "oxygenation_day_window", "median_iqr_method", "prefer",
    ),
    "normal_normal": ("exclude_studies",),
}
DECISION_KEYS = {
    "mortality": ("clinically_meaningful_or", "baseline_risk", "baseline_risk_source", "ci_prob"),
    "oxygenation": ("clinically_meaningful_difference", "benefit_direction", "ci_prob"),
    "normal_normal": ("clinically_meaningful_difference", "benefit_direction", "ci_prob"),
}
MEDIAN_IQR_METHODS = ("wan2014", "luo2018")
PREFER = ("arms", "contrast")
BENEFIT_DIRECTIONS = ("increase", "decrease")


@dataclass(frozen=True)
class AnalysisSpec:
    name: str
    outcome: str
    title: str
    priors: PriorSet
    evidence: EvidenceSelection = field(default_factory=EvidenceSelection)
    model: ModelSettings = field(default_factory=ModelSettings)
    decision: DecisionSettings = field(default_factory=DecisionSettings)
    sampler: SamplerSettings = field(default_factory=SamplerSettings)
    path: str = ""  # where it was read from (not part of the hash)

    @property
    def scale(self) -> str:
        return OUTCOME_SCALES[self.outcome]

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "outcome": self.outcome,
            "title": self.title,
            "evidence": _only(_plain(asdict(self.evidence)), EVIDENCE_KEYS[self.outcome]),
            "model": _only(_plain(asdict(self.model)), _model_keys(self.outcome)),
            "priors": self.priors.to_dict(),
            "decision": _only(asdict(self.decision), DECISION_KEYS[self.outcome]),
            "sampler": asdict(self.sampler),
        }

    def differences(self, other: dict[str, Any]) -> list[str]:
        """Dotted names of the settings in which ``other`` (a :meth:`to_dict`) differs."""
        return _dict_differences(self.to_dict(), other)

    def content_hash(self) -> str:
        """SHA-256 of the canonical JSON of everything that affects the numbers."""
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()

    # -- overrides (each returns a new spec) ---------------------------------------------
    def with_sampler(self, **changes: Any) -> "AnalysisSpec":
        changes = {k: v for k, v in changes.items() if v is not None}
        sampler = replace(self.sampler, **changes)
        _check_sampler(sampler, Location("command line"))
        return replace(self, sampler=sampler)

    def with_evidence(self, **changes: Any) -> "AnalysisSpec":
        changes = {k: v for k, v in changes.items() if v is not None}
        evidence = replace(self.evidence, **changes)
        _check_evidence(evidence, Location("command line"))
        return replace(self, evidence=evidence)

    def with_model(self, **changes: Any) -> "AnalysisSpec":
        changes = {k: v for k, v in changes.items() if v is not None}
        model = replace(self.model, **changes)
        _check_model(model, self.outcome, Location("command line"))
        return replace(self, model=model, priors=_model_priors(self.priors, self.scale, model))

    def with_priors(self, priors: PriorSet) -> "AnalysisSpec":
        return replace(self, priors=_model_priors(priors, self.scale, self.model))

    def with_decision(self, **changes: Any) -> "AnalysisSpec":
        changes = {k: v for k, v in changes.items() if v is not None}
        decision = replace(self.decision, **changes)
        _check_decision(decision, Location("command line"))
        return replace(self, decision=decision)


MORTALITY_MODEL_KEYS = ("likelihood", "baselines")  # settings only the mortality model reads


def _model_keys(outcome: str) -> tuple[str, ...]:
    keys = tuple(f.name for f in fields(ModelSettings))
    return keys if outcome == "mortality" else tuple(k for k in keys if k not in MORTALITY_MODEL_KEYS)


def _model_priors(priors: PriorSet, scale: str, model: ModelSettings) -> PriorSet:
    """The priors the model's shape needs: dose-response roles, the baselines' SD."""
    return priors.with_dose_defaults(scale, model.dose_response).with_baseline_defaults(scale, model.baselines)


def _only(table: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {k: v for k, v in table.items() if k in keys}


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


# -- reading ----------------------------------------------------------------------------

_TOP_KEYS = {"name", "outcome", "title", "evidence", "model", "priors", "decision", "sampler"}


def load_spec(name_or_path: str | Path) -> AnalysisSpec:
    """Read a spec by analysis name (``mortality`` → ``models/mortality.toml``) or by path."""
    path = resolve_spec_path(name_or_path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"not valid TOML: {exc}", Location(str(path))) from None
    return spec_from_dict(raw, str(path))


def spec_from_dict(raw: dict[str, Any], where: str) -> AnalysisSpec:
    unknown = set(raw) - _TOP_KEYS
    if unknown:
        raise InputError("unknown key", Location(where, field=sorted(unknown)[0]))
    for key in ("name", "outcome"):
        if not isinstance(raw.get(key), str):
            raise InputError("required text value missing", Location(where, field=key))
    outcome = raw["outcome"]
    if outcome not in OUTCOME_SCALES:
        raise InputError(
            f"unknown outcome {outcome!r}; known: {', '.join(OUTCOME_SCALES)}",
            Location(where, field="outcome"),
        )
    if "priors" not in raw:
        raise InputError("a [priors] table is required", Location(where, field="priors"))
    priors = priors_from_table(OUTCOME_SCALES[outcome], raw["priors"], where)
    evidence = _section(EvidenceSelection, raw.get("evidence", {}), where, "evidence", EVIDENCE_KEYS[outcome])
    evidence = replace(
        evidence,
        product_classes=tuple(evidence.product_classes),
        exclude_studies=tuple(evidence.exclude_studies),
        timepoint_window_days=tuple(evidence.timepoint_window_days),
        oxygenation_day_window=tuple(evidence.oxygenation_day_window),
    )
    _check_evidence(evidence, Location(where))
    model = _section(ModelSettings, raw.get("model", {}), where, "model")
    model = replace(model, dose_grid=tuple(float(d) for d in model.dose_grid))
    _check_model(model, outcome, Location(where))
    priors = _model_priors(priors, OUTCOME_SCALES[outcome], model)
    decision = _section(DecisionSettings, raw.get("decision", {}), where, "decision", DECISION_KEYS[outcome])
    _check_decision(decision, Location(where))
    sampler = _section(SamplerSettings, raw.get("sampler", {}), where, "sampler")
    _check_sampler(sampler, Location(where))
    return AnalysisSpec(
        name=raw["name"],
        outcome=outcome,
        title=str(raw.get("title", raw["name"])),
        priors=priors,
        evidence=evidence,
        model=model,
        decision=decision,
        sampler=sampler,
        path=where,
    )


def _section(cls, table: Any, where: str, name: str, allowed: tuple[str, ...] | None = None):
    if not isinstance(table, dict):
        raise InputError("must be a table", Location(where, field=name))
    defaults = cls()
    known = asdict(defaults)
    for key, value in table.items():
        if key not in known or (allowed is not None and key not in allowed):
            raise InputError("unknown key for this outcome", Location(where, field=f"{name}.{key}"))
        expected = type(known[key])
        ok = isinstance(value, expected) or (expected is float and isinstance(value, int))
        if expected in (tuple, list):
            ok = isinstance(value, list)
        if isinstance(value, bool) and expected is not bool:
            ok = False
        if not ok:
            raise InputError(
                f"expected {expected.__name__}, got {value!r}", Location(where, field=f"{name}.{key}")
            )
    return replace(defaults, **{k: (float(v) if isinstance(known[k], float) else v) for k, v in table.items()})


def _check_model(m: ModelSettings, outcome: str, where: Location) -> None:
    def fail(field_name: str, problem: str):
        raise InputError(problem, replace(where, field=f"model.{field_name}"))

    if m.dose_response not in DOSE_RESPONSE_FORMS:
        fail("dose_response", f"unknown dose-response form {m.dose_response!r}; known: {', '.join(DOSE_RESPONSE_FORMS)}")
    if outcome == "normal_normal" and m.dose_response != "none":
        fail("dose_response", "the normal-normal analysis has no doses; use mortality or oxygenation")
    if outcome != "mortality" and (m.likelihood, m.baselines) != (DEFAULT_LIKELIHOOD, DEFAULT_BASELINES):
        fail("likelihood", f"the likelihood choice is for the mortality analysis; {outcome} has one likelihood")
    if outcome == "mortality":
        from .models.sparse import likelihood_problem

        setting, problem = likelihood_problem(m.likelihood, m.baselines, m.dose_response)
        if problem:
            fail(setting, problem)
    if m.dose_metric not in DOSE_METRICS:
        fail("dose_metric", f"must be one of {', '.join(DOSE_METRICS)}, got {m.dose_metric!r}")
    if m.body_weight not in BODY_WEIGHT_MODES:
        fail("body_weight", f"must be one of {', '.join(BODY_WEIGHT_MODES)}, got {m.body_weight!r}")
    if not m.body_weight_kg > 0:
        fail("body_weight_kg", f"must be > 0, got {m.body_weight_kg}")
    if not m.body_weight_log_sd > 0:
        fail("body_weight_log_sd", f"must be > 0, got {m.body_weight_log_sd}")
    if not m.reference_dose > 0:
        fail("reference_dose", f"must be > 0, got {m.reference_dose}")
    if not m.dose_grid or any(not d > 0 for d in m.dose_grid):
        fail("dose_grid", "must be a list of doses > 0 (million cells/kg)")


def _check_sampler(s: SamplerSettings, where: Location) -> None:
    for key in ("chains", "draws", "tune", "maxdepth"):
        if getattr(s, key) < 1:
            raise InputError(f"must be >= 1, got {getattr(s, key)}", replace(where, field=f"sampler.{key}"))
    if not 0.5 <= s.target_accept < 1:
        raise InputError(
            f"must be in [0.5, 1), got {s.target_accept}", replace(where, field="sampler.target_accept")
        )
    if s.seed < 0:
        raise InputError(f"must be >= 0, got {s.seed}", replace(where, field="sampler.seed"))


def _check_evidence(e: EvidenceSelection, where: Location) -> None:
    if e.evidence_set not in EVIDENCE_SETS:
        raise InputError(
            f"unknown evidence set {e.evidence_set!r}; known: {', '.join(EVIDENCE_SETS)}",
            replace(where, field="evidence.evidence_set"),
        )
    for key in ("timepoint_window_days", "oxygenation_day_window"):
        lo, hi = (tuple(getattr(e, key)) + (None, None))[:2]
        if not (isinstance(lo, int) and isinstance(hi, int) and 0 < lo <= hi):
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


def _check_decision(d: DecisionSettings, where: Location) -> None:
    if not 0 < d.baseline_risk < 1:
        raise InputError(f"must be in (0, 1), got {d.baseline_risk}", replace(where, field="decision.baseline_risk"))
    if not d.clinically_meaningful_or > 0:
        raise InputError(
            f"must be > 0, got {d.clinically_meaningful_or}",
            replace(where, field="decision.clinically_meaningful_or"),
        )
    if not d.clinically_meaningful_difference >= 0:
        raise InputError(
            f"must be >= 0 (a size of benefit, in the outcome's units), got {d.clinically_meaningful_difference}",
            replace(where, field="decision.clinically_meaningful_difference"),
        )
    if d.benefit_direction not in BENEFIT_DIRECTIONS:
        raise InputError(
            f"must be one of {', '.join(BENEFIT_DIRECTIONS)}, got {d.benefit_direction!r}",
            replace(where, field="decision.benefit_direction"),
        )
    if not 0 < d.ci_prob < 1:
        raise InputError(f"must be in (0, 1), got {d.ci_prob}", replace(where, field="decision.ci_prob"))


def _dict_differences(mine: Any, theirs: Any, prefix: str = "") -> list[str]:
    if isinstance(mine, dict) and isinstance(theirs, dict):
        found: list[str] = []
        for key in sorted(set(mine) | set(theirs), key=str):
            found += _dict_differences(mine.get(key), theirs.get(key), f"{prefix}{key}.")
        return found
    return [] if mine == theirs else [prefix.rstrip(".")]

"""Analysis specs: the declarative description of one named analysis (``models/*.toml``).

A spec says which evidence enters, how the model is shaped, which priors are used, what
counts as a decision-relevant effect and how to sample. It is immutable; command-line and
library overrides produce a new spec (``spec.with_...``), and the spec's hash is stored with
every result so a reload against a different spec is caught.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import tomllib
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .models.settings import FamilySettings
    from .outcomes import Outcome

from .evidence.settings import EvidenceSelection
from .io.errors import CONSTRUCTED, InputError, Location
from .io.paths import resolve_spec_path
from .models.choices import BODY_WEIGHT_MODES, DOSE_METRICS, DOSE_RESPONSE_FORMS
from .models.populations import PopulationSelector, parse_population
from .priors import PriorSet, priors_from_table

MAX_BODY_WEIGHT_KG = 500.0
MAX_LOG_SD = 5.0
MAX_DOSE = 1e4  # million cells/kg: a thousand times the largest dose any trial gave
# Upper bounds on sampler settings: far above any useful run, below what overflows nutpie.
# A target population adds a between-population SD over 2-4 populations: at 0.95 the default
# analysis diverged in some chains (the funnel of population_z against population_sd); at 0.99 none.
POPULATION_TARGET_ACCEPT = 0.99
SAMPLER_LIMITS = {"chains": 1024, "draws": 10_000_000, "tune": 10_000_000, "maxdepth": 30}


@dataclass(frozen=True)
class ModelSettings:
    """Model shape: the dose-response form and how doses are put on one axis, the settings every
    model family reads; and ``family``, the table of settings only the outcome's model family
    reads, with their defaults and checks (:mod:`bayes_msc.models.settings`, e.g. mortality's
    ``likelihood``). A family's setting reads as an attribute (``model.likelihood``); one the
    outcome's family does not read reads as its owning family's default. In the spec file and its
    hash both parts are one flat ``[model]`` table.

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
    # Study-level covariates of a meta-regression (bayes_msc.models.regression); empty: none.
    # Left out of the spec's table (and hash) while empty, so specs without one keep their hash.
    covariates: tuple[str, ...] = ()
    # The outcome's family's own settings (None: the defaults of whichever family owns one).
    family: FamilySettings | None = None
    # A target population (mortality): trials partially pooled within and across populations
    # (bayes_msc.models.populations). None: the pooled analysis, and no key in the table or hash.
    population: PopulationSelector | None = None

    def __post_init__(self):
        object.__setattr__(self, "dose_grid", tuple(self.dose_grid))
        object.__setattr__(self, "covariates", tuple(self.covariates))
        _check_model(self, None, _CONSTRUCTED)

    def __getattr__(self, name: str) -> Any:
        # only called for names that are not shared settings: a family's own setting
        if name.startswith("_") or name in ("family", "population"):
            raise AttributeError(name)
        family = self.__dict__.get("family")
        if family is not None and name in family.keys():
            return getattr(family, name)
        for table in _family_tables():
            if name in table.keys():
                return getattr(table(), name)
        raise AttributeError(f"{type(self).__name__!r} has no setting {name!r}")

    def table(self, family_keys: tuple[str, ...]) -> dict[str, Any]:
        """The flat ``[model]`` table of a spec whose outcome's family reads ``family_keys``."""
        shared = {f.name: getattr(self, f.name) for f in fields(self)
                  if f.name not in ("family", "population")
                  and not (f.name in OMITTED_WHEN_EMPTY and not getattr(self, f.name))}
        population = {} if self.population is None else {"population": self.population.to_list()}
        family = {key: getattr(self, key) for key in family_keys}
        # a setting added after specs were hashed is written only when stated (FamilySettings.stated_only)
        family = {key: value for key, value in family.items()
                  if not any(table.left_out(key, value) for table in _family_tables() if key in table.keys())}
        return shared | family | population


# The shared settings every spec's table lists; "covariates" is shared too, but listed only when set
# (a spec without covariates keeps its table and hash), and a target population only when stated.
OMITTED_WHEN_EMPTY = ("covariates",)
SHARED_MODEL_KEYS = tuple(f.name for f in fields(ModelSettings) if f.name not in ("family", "population", *OMITTED_WHEN_EMPTY))


def _family_tables() -> list[type]:
    """Every registered outcome's own model-settings table (asked of the outcome registry)."""
    from .outcomes import known_outcomes

    tables = []
    for outcome in known_outcomes().values():
        table = outcome.model_settings
        if table is not None and table not in tables:
            tables.append(table)
    return tables


def _with_family_changes(model: ModelSettings, outcome: str, changes: dict[str, Any]) -> ModelSettings:
    """``model`` with ``changes`` to shared settings and to the outcome's family's own; a setting
    another family owns is refused where that family says so, else left out of this spec."""
    from .outcomes import get_outcome

    table = get_outcome(outcome).model_settings
    own = table.keys() if table is not None else ()
    shared = {k: v for k, v in changes.items() if k in SHARED_MODEL_KEYS + OMITTED_WHEN_EMPTY}
    family_changes = {k: v for k, v in changes.items() if k in own}
    foreign = {k: v for k, v in changes.items() if k not in shared and k not in family_changes}
    for other in _family_tables():
        mine = {k: v for k, v in foreign.items() if k in other.keys()}
        if other is not table and mine:
            setting, problem = other.foreign_problem(mine, outcome)
            if problem:
                raise InputError(problem, replace(_CONSTRUCTED, field=f"model.{setting}"))
            foreign = {k: v for k, v in foreign.items() if k not in mine}
    if foreign:
        raise TypeError(f"unknown model setting {sorted(foreign)[0]!r}")
    family = model.family if model.family is not None or table is None else table()
    if family_changes:
        family = replace(family, **family_changes)
    return replace(model, **shared, family=family)


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
    # Binary outcomes stated as a risk ratio or risk difference (model.effect_measure "rr", "rd";
    # cells vs control at baseline_risk): P(RR < this), P(RD < this) is "clinically meaningful".
    # No default (NaN: not stated): a threshold is not converted from another scale.
    clinically_meaningful_rr: float = math.nan
    clinically_meaningful_rd: float = math.nan

    def __post_init__(self):
        _check_decision(self, _CONSTRUCTED)


@dataclass(frozen=True)
class SamplerSettings:
    chains: int = 4
    draws: int = 1000
    tune: int = 1000
    target_accept: float = 0.95
    maxdepth: int = 10
    seed: int = 20261122

    def __post_init__(self):
        _check_sampler(self, _CONSTRUCTED)


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
    # Settings the spec file or an override states, rather than leaves at their default
    # ("measure", "benefit_direction"): an outcome that cannot guess them asks for them.
    stated: frozenset[str] = frozenset()

    @property
    def outcome_type(self) -> "Outcome":
        """The :class:`~bayes_msc.outcomes.Outcome` this spec's ``outcome`` names, on the
        scale its model settings state (``model.measure``)."""
        from .outcomes import get_outcome

        return get_outcome(self.outcome).specialise(self.model, self.decision)

    @property
    def scale(self) -> str:
        """Which prior presets apply (see :mod:`bayes_msc.priors`)."""
        return self.outcome_type.prior_scale

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "outcome": self.outcome,
            "title": self.title,
            "evidence": _only(_plain(asdict(self.evidence)), self.outcome_type.evidence_keys),
            "model": _plain(self.model.table(self.outcome_type.model_keys)),
            "priors": self.priors.to_dict(),
            "decision": _only(asdict(self.decision), self.outcome_type.decision_keys),
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
        sampler = _located(lambda: replace(self.sampler, **changes), OVERRIDE)
        return replace(self, sampler=sampler)

    def with_evidence(self, **changes: Any) -> "AnalysisSpec":
        changes = {k: v for k, v in changes.items() if v is not None}
        evidence = _located(lambda: replace(self.evidence, **changes), OVERRIDE)
        priors = self.priors.with_bias_defaults(self.scale, evidence.evidence_set)
        return replace(self, evidence=evidence, priors=priors)

    def with_model(self, **changes: Any) -> "AnalysisSpec":
        changes = {k: v for k, v in changes.items() if v is not None}
        model = _located(lambda: _with_family_changes(self.model, self.outcome, changes), OVERRIDE)
        _check_model(model, self.outcome, OVERRIDE)
        scale = replace(self, model=model).scale
        priors = self.priors if scale == self.scale else _default_priors(scale, self.priors)
        return replace(self, model=model, priors=_model_priors(priors, scale, model),
                       stated=self.stated | (set(changes) & {"measure", "unit"}))

    def with_population(self, selector: "PopulationSelector | list[str] | tuple[str, ...] | None") -> "AnalysisSpec":
        """The spec for a target population (``KEY=VALUE[,VALUE]`` texts or a selector; None:
        the pooled analysis): mortality only, and the between-population SD prior added."""
        if selector is not None and not isinstance(selector, PopulationSelector):
            selector = parse_population(selector, OVERRIDE)
        if selector is not None and "likelihood" not in self.outcome_type.model_keys:
            raise InputError(f"a target population (--population) is modelled for the mortality analysis only; "
                             f"{self.name} is {self.outcome} (fit it per population with --evidence studies:...)",
                             replace(OVERRIDE, field="model.population"))
        model = replace(self.model, population=selector)
        sampler = self.sampler
        if selector is not None and sampler.target_accept < POPULATION_TARGET_ACCEPT:
            sampler = replace(sampler, target_accept=POPULATION_TARGET_ACCEPT)
        return replace(self, model=model, priors=_model_priors(self.priors, self.scale, model), sampler=sampler)

    def check_priors_stated(self) -> None:
        """Refuse priors left over from another scale (see :func:`_default_priors`)."""
        for role, name in self.priors.names.items():
            if name == UNSTATED:
                unit = f" in {self.model.unit}" if self.model.unit else ""
                raise InputError(
                    f"the {self.outcome} analysis with measure {self.model.measure}{unit} has no default "
                    f"{role} prior: state one, e.g. --prior '{role}=" + (
                        "normal(mu=0,sigma=50)" if role in ("effect", "covariate") else "halfnormal(sigma=25)")
                    + "' in the outcome's units" + (" (per SD of a numeric covariate)" if role == "covariate" else ""),
                    Location(self.path or OVERRIDE.file, field=f"priors.{role}"),
                )

    def with_priors(self, priors: PriorSet) -> "AnalysisSpec":
        priors = _model_priors(priors, self.scale, self.model)
        return replace(self, priors=priors.with_bias_defaults(self.scale, self.evidence.evidence_set))

    def with_decision(self, **changes: Any) -> "AnalysisSpec":
        changes = {k: v for k, v in changes.items() if v is not None}
        decision = _located(lambda: replace(self.decision, **changes), OVERRIDE)
        return replace(self, decision=decision, stated=self.stated | (set(changes) & {"benefit_direction"}))


def _default_priors(scale: str, previous: PriorSet) -> PriorSet:
    """The default presets of ``scale``'s roles; where the scale has none (a mean difference
    in the outcome's own units), the previous priors stay, marked as stated for another scale
    so that a fit refuses them until they are restated (see ``check_priors_stated``)."""
    from .priors import ROLES_BY_SCALE, presets_for

    chosen, names = {}, {}
    for role in ROLES_BY_SCALE[scale]:
        preset = next((p for p in presets_for(scale) if p.role == role), None)
        if preset is not None:
            chosen[role], names[role] = preset.prior, preset.name
        else:
            chosen[role], names[role] = getattr(previous, role), UNSTATED
    return PriorSet(**chosen, names=names)


from .priors import UNSTATED_PRIOR as UNSTATED  # noqa: E402  (one name for a placeholder prior)


def _model_priors(priors: PriorSet, scale: str, model: ModelSettings) -> PriorSet:
    """The priors the model's shape needs: dose-response roles, the baselines' SD, the
    meta-regression's covariate effects, the between-population SD."""
    return (priors.with_dose_defaults(scale, model.dose_response).with_baseline_defaults(scale, model.baselines)
            .with_covariate_defaults(scale, model.covariates).with_population_defaults(scale, model.population))


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
    if not isinstance(name_or_path, (str, os.PathLike)):
        raise InputError(f"load_spec(name_or_path=...): expected an analysis name or a spec path, "
                         f"got {type(name_or_path).__name__}")
    path = resolve_spec_path(name_or_path)
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text (byte {exc.start})", Location(str(path))) from None
    except OSError as exc:
        raise InputError(f"cannot read the spec ({exc.strerror})", Location(str(path))) from None
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
    _check_name(raw["name"], Location(where, field="name"))
    if "title" in raw and not isinstance(raw["title"], str):
        raise InputError(f"expected text, got {raw['title']!r}", Location(where, field="title"))
    from .outcomes import known_outcomes

    outcomes = known_outcomes()
    outcome = raw["outcome"]
    if outcome not in outcomes:
        raise InputError(
            f"unknown outcome {outcome!r}; known: {', '.join(outcomes)}",
            Location(where, field="outcome"),
        )
    model = _model_section(raw.get("model", {}), where, outcomes[outcome].model_settings)
    _check_model(model, outcome, Location(where))  # the rules that need the outcome
    kind = outcomes[outcome].specialise(model)
    if "priors" not in raw:
        raise InputError("a [priors] table is required", Location(where, field="priors"))
    priors = priors_from_table(kind.prior_scale, raw["priors"], where)
    evidence = _section(EvidenceSelection, raw.get("evidence", {}), where, "evidence", kind.evidence_keys)
    priors = _model_priors(priors, kind.prior_scale, model)
    priors = priors.with_bias_defaults(kind.prior_scale, evidence.evidence_set)
    decision = _section(DecisionSettings, raw.get("decision", {}), where, "decision", kind.decision_keys,
                        kind.unread_setting)
    sampler = _section(SamplerSettings, raw.get("sampler", {}), where, "sampler")
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
        stated=frozenset({"measure", "unit"} & set(raw.get("model", {}))
                         | {"benefit_direction"} & set(raw.get("decision", {}))),
    )


# Where a settings object built directly (not from a file or an override) went wrong;
# :func:`_located` replaces it with the file or OVERRIDE.
_CONSTRUCTED = CONSTRUCTED
# An override of a spec's setting: a command-line option or a keyword argument of the library
# (``fit(draws=...)``); the field named with it is the spec's (``sampler.draws``).
OVERRIDE = Location("spec override")


def _located(build, where: Location):
    """Build a settings object (its construction validates it); a failure names ``where``."""
    try:
        return build()
    except InputError as exc:
        if exc.location is None or exc.location.file != _CONSTRUCTED.file:
            raise
        raise InputError(exc.problem, replace(where, field=exc.location.field)) from None


def _section(cls, table: Any, where: str, name: str, allowed: tuple[str, ...] | None = None, why=None):
    """Read one ``[name]`` table into ``cls``: known keys only, each of its declared kind;
    the object's construction checks ranges and choices. ``why(key)``: why the outcome does not
    read a setting it could read under other settings ("" when it has nothing to say)."""
    if not isinstance(table, dict):
        raise InputError("must be a table", Location(where, field=name))
    defaults = cls()
    known = asdict(defaults)
    for key, value in table.items():
        if key not in known or (allowed is not None and key not in allowed):
            raise InputError((why and key in known and why(key)) or "unknown key for this outcome",
                             Location(where, field=f"{name}.{key}"))
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
        if expected in (tuple, list):
            _check_items(value, known[key], Location(where, field=f"{name}.{key}"))
        elif expected is float and not math.isfinite(value):
            raise InputError(f"must be a finite number, got {value!r}", Location(where, field=f"{name}.{key}"))
    converted = {k: (float(v) if isinstance(known[k], float) else v) for k, v in table.items()}
    converted.update({k: tuple(float(x) if isinstance(x, int | float) else x for x in v)
                      for k, v in table.items() if isinstance(known[k], tuple) and known[k]
                      and isinstance(known[k][0], float)})
    return _located(lambda: replace(defaults, **converted), Location(where))


def _model_section(table: Any, where: str, family_table: type | None) -> ModelSettings:
    """Read the ``[model]`` table: the shared settings, and those the outcome's family owns
    into its own table (which checks them)."""
    if not isinstance(table, dict):
        raise InputError("must be a table", Location(where, field="model"))
    own = family_table.keys() if family_table is not None else ()
    population = None
    if "population" in table:  # a target population: KEY=VALUE texts (bayes_msc.models.populations)
        if "likelihood" not in own:
            raise InputError("a target population is modelled for the mortality analysis only",
                             Location(where, field="model.population"))
        population = parse_population(table["population"], Location(where))
        table = {k: v for k, v in table.items() if k != "population"}
    shared = _section(ModelSettings, {k: v for k, v in table.items() if k not in own}, where, "model",
                      SHARED_MODEL_KEYS + OMITTED_WHEN_EMPTY)
    family = (_section(family_table, {k: v for k, v in table.items() if k in own}, where, "model")
              if family_table is not None else None)
    return _located(lambda: replace(shared, family=family, population=population), Location(where))


def _check_items(values: list, default: tuple, where: Location) -> None:
    """Every item of a list setting has the kind of the default's items (numbers or text)."""
    kind = type(default[0]) if default else str
    for item in values:
        if kind is float:
            ok = isinstance(item, int | float) and not isinstance(item, bool) and math.isfinite(item)
        elif kind is int:
            ok = isinstance(item, int) and not isinstance(item, bool)
        else:
            ok = isinstance(item, kind)
        if not ok:
            what = {float: "finite numbers", int: "whole numbers", str: "text"}.get(kind, kind.__name__)
            raise InputError(f"must be a list of {what}, got {item!r}", where)
    if kind is str and len(set(values)) != len(values):
        raise InputError(f"lists {sorted(v for v in set(values) if values.count(v) > 1)[0]!r} twice", where)


def _check_name(name: str, where: Location) -> None:
    """An analysis name names files (``reports/<name>.html``): a plain name, never a path."""
    if not name.strip():
        raise InputError("must not be empty", where)
    if any(ch in name for ch in "/\\") or name.startswith(".") or any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        raise InputError(f"{name!r} must be a plain name (no path separators, leading dot or control characters)",
                         where)


def _check_model(m: ModelSettings, outcome: str | None, where: Location) -> None:
    def fail(field_name: str, problem: str):
        raise InputError(problem, replace(where, field=f"model.{field_name}"))

    if m.dose_response not in DOSE_RESPONSE_FORMS:
        fail("dose_response", f"unknown dose-response form {m.dose_response!r}; known: {', '.join(DOSE_RESPONSE_FORMS)}")
    if outcome is not None:  # the rules that need the outcome
        from .models.regression import covariates_problem
        from .outcomes import Outcome, get_outcome

        kind = get_outcome(outcome)
        # an outcome that reads data other than a register (an estimates file) may name the file's columns
        problem = covariates_problem(m.covariates, outcome, m, arm_counts="likelihood" in kind.model_keys,
                                     file_columns=type(kind).load_data is not Outcome.load_data)
        if problem:
            fail("covariates", problem)
        if m.dose_response != "none" and not kind.has_doses:
            fail("dose_response", f"the {outcome} analysis has no doses; use mortality or oxygenation")
        if m.family is not None:  # the family's rules that need the shared settings
            setting, problem = m.family.problem(m)
            if problem:
                fail(setting, problem)
    if m.dose_metric not in DOSE_METRICS:
        fail("dose_metric", f"must be one of {', '.join(DOSE_METRICS)}, got {m.dose_metric!r}")
    if m.body_weight not in BODY_WEIGHT_MODES:
        fail("body_weight", f"must be one of {', '.join(BODY_WEIGHT_MODES)}, got {m.body_weight!r}")
    # bounds wide enough for any real trial, narrow enough that no overflow reaches the sampler
    if not 0 < m.body_weight_kg <= MAX_BODY_WEIGHT_KG:
        fail("body_weight_kg", f"must be in (0, {MAX_BODY_WEIGHT_KG:g}] kg, got {m.body_weight_kg}")
    if not 0 < m.body_weight_log_sd <= MAX_LOG_SD:
        fail("body_weight_log_sd", f"must be in (0, {MAX_LOG_SD:g}], got {m.body_weight_log_sd}")
    if not 0 < m.reference_dose <= MAX_DOSE:
        fail("reference_dose", f"must be in (0, {MAX_DOSE:g}] million cells/kg, got {m.reference_dose}")
    if not m.dose_grid or any(not 0 < d <= MAX_DOSE for d in m.dose_grid):
        fail("dose_grid", f"must be a list of doses in (0, {MAX_DOSE:g}] (million cells/kg)")


def _check_sampler(s: SamplerSettings, where: Location) -> None:
    for key, most in SAMPLER_LIMITS.items():
        value = getattr(s, key)
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= most:
            raise InputError(f"must be a whole number in [1, {most:,}], got {value!r}",
                             replace(where, field=f"sampler.{key}"))
    if isinstance(s.target_accept, bool) or not 0.5 <= s.target_accept < 1:
        raise InputError(
            f"must be in [0.5, 1), got {s.target_accept}", replace(where, field="sampler.target_accept")
        )
    if isinstance(s.seed, bool) or not isinstance(s.seed, int) or not 0 <= s.seed < 2**63:
        raise InputError(f"must be a whole number in [0, 2^63), got {s.seed!r}", replace(where, field="sampler.seed"))


def _check_decision(d: DecisionSettings, where: Location) -> None:
    for key in ("clinically_meaningful_or", "baseline_risk", "ci_prob", "clinically_meaningful_difference"):
        if not math.isfinite(getattr(d, key)):
            raise InputError(f"must be a finite number, got {getattr(d, key)}", replace(where, field=f"decision.{key}"))
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
    if not (math.isnan(d.clinically_meaningful_rr) or 0 < d.clinically_meaningful_rr):
        raise InputError(f"a risk ratio must be > 0, got {d.clinically_meaningful_rr}",
                         replace(where, field="decision.clinically_meaningful_rr"))
    if not (math.isnan(d.clinically_meaningful_rd) or -1 < d.clinically_meaningful_rd <= 0):
        raise InputError(f"a risk difference of cells minus control, benefit = fewer deaths: a meaningful benefit "
                         f"is a reduction in (-1, 0], e.g. -0.05; got {d.clinically_meaningful_rd}",
                         replace(where, field="decision.clinically_meaningful_rd"))
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

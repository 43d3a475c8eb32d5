"""Who benefits: the mortality effect per level of a categorical covariate (``subgroups --by``).

One fit of the population model (:mod:`bayes_msc.models.populations`) in which every level of
the covariate is a population: each level's mean log OR is partially pooled towards the
others through the between-level SD, so a level with one small trial is not read as its own
finding. A level resting on one trial is printed, marked "one trial: not a subgroup finding",
and never reported as a finding (:attr:`SubgroupLevel.finding` is False). With 11 trials the
between-level SD is mostly its prior: its prior and posterior SD are shown side by side
(:func:`bayes_msc.models.populations.contraction`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from ..io.errors import InputError, Location

ONE_TRIAL = "one trial: not a subgroup finding"


@dataclass(frozen=True)
class SubgroupLevel:
    level: str
    studies: tuple[str, ...]
    n_trials: int
    n_patients: int
    odds_ratio_median: float
    odds_ratio_lower: float
    odds_ratio_upper: float
    prob_benefit: float
    prob_benefit_mcse: float

    @property
    def finding(self) -> bool:
        """Whether this level may be reported as a subgroup finding (more than one trial)."""
        return self.n_trials > 1

    def to_dict(self) -> dict:
        return {**asdict(self), "studies": list(self.studies), "finding": self.finding,
                "note": "" if self.finding else ONE_TRIAL}


@dataclass(frozen=True)
class Subgroups:
    by: str
    levels: tuple[SubgroupLevel, ...]
    between_level_sd: dict  # interval of population_sd (log OR) with its prior and contraction
    ci_prob: float
    spec_hash: str
    register_hash: str
    diagnostics: str
    notes: tuple[str, ...] = field(default_factory=tuple)

    def to_dict(self) -> dict:
        return {"by": self.by, "levels": [lv.to_dict() for lv in self.levels],
                "between_level_sd": self.between_level_sd, "ci_prob": self.ci_prob, "spec_hash": self.spec_hash,
                "register_hash": self.register_hash, "diagnostics": self.diagnostics, "notes": list(self.notes),
                "measure": "odds ratio of death, cells vs control (partially pooled across levels)"}


def subgroup_spec(spec, register, by: str):
    """``spec`` with the population model over the levels of ``by`` (every level its own
    population): refused for an unknown or numeric covariate, or when no included trial has
    a stated value."""
    from ..evidence.covariates import covariate, study_covariates

    declared = covariate(by)  # an unknown name: InputError listing the known ones
    if declared.kind != "categorical":
        raise InputError(f"{by!r} is numeric; subgroups are levels of a categorical covariate "
                         f"({', '.join(c for c in _categorical())})", Location("--by"))
    if "likelihood" not in spec.outcome_type.model_keys:
        raise InputError(f"subgroups are modelled for the mortality analysis only; {spec.name} is {spec.outcome}",
                         Location("--by"))
    evidence = spec.outcome_type.build_evidence(register, spec)
    values = study_covariates(register, [by])[by]
    present = [values.get(s) for s in evidence.studies if values.get(s) is not None]
    if not present:
        raise InputError(f"no included trial states {by!r}: there are no subgroups to show", Location("--by"))
    first = sorted(set(present))[0]  # any one level as the "target": the partition is the same
    return spec.with_population([f"{by}={first}"])


def _categorical() -> list[str]:
    from ..evidence.schema import COVARIATES

    return [c.name for c in COVARIATES if c.kind == "categorical"]


def subgroups_from_result(result) -> Subgroups:
    """The per-level table of a fit of the population model (any target population: each
    level is read from the fit's ``populations``; a grouped target is one row)."""
    from ..decisions import probability
    from ..models.populations import population_effects, population_summary

    block = population_summary(result)
    if block is None:
        raise InputError("this fit has no populations: fit with --population KEY=VALUE or run `subgroups --by KEY`")
    arms = result.evidence.arms
    effects = population_effects(result.posterior)
    levels = []
    for name, entry in block["populations"].items():
        members = tuple(entry["studies"])
        patients = int(np.nansum(arms[arms["study_id"].isin(members)]["n"].astype(float)))
        prob = probability(effects.sel(population=name) < 0)
        iv = entry["odds_ratio"]
        levels.append(SubgroupLevel(name, members, len(members), patients, iv["median"], iv["lower"], iv["upper"],
                                    prob.prob, prob.mcse))
    notes = []
    sd = block["between_population_sd"]
    if sd["mostly_prior"]:
        notes.append("The between-level SD is mostly its prior: how different the levels' effects are is assumed "
                     "more than learnt, and each level's OR leans on the others by as much as that prior allows.")
    single = [lv.level for lv in levels if not lv.finding]
    if single:
        notes.append(f"{', '.join(single)}: {ONE_TRIAL} (shown, never reported as a finding).")
    return Subgroups(block["key"], tuple(levels), sd, result.spec.decision.ci_prob, result.spec.content_hash(),
                     result.evidence.register_hash, result.diagnostics.verdict(), tuple(notes))


def run_subgroups(spec, register, by: str, *, progress_bar: bool = False):
    """(fit, subgroups) of ``spec``'s analysis over the levels of ``by``; ``register`` a loaded
    register, a register directory, or None (the embedded one)."""
    from ..api import fit_spec, load_data

    if not hasattr(register, "studies"):
        register = load_data(spec, register)
    result = fit_spec(subgroup_spec(spec, register, by), register, progress_bar=progress_bar)
    return result, subgroups_from_result(result)


def render_subgroups(sub: Subgroups) -> str:
    """The per-level table as text (the CLI's output)."""
    pct = round(100 * sub.ci_prob)
    lines = [f"Who benefits: mortality by {sub.by} (levels partially pooled; odds ratio of death, cells vs control)",
             f"{'level':<34} {'trials':>6} {'patients':>8}   {'OR median (' + str(pct) + '% CrI)':<24} {'P(OR<1)':>8}"]
    for lv in sub.levels:
        band = f"{lv.odds_ratio_median:.2f} ({lv.odds_ratio_lower:.2f} to {lv.odds_ratio_upper:.2f})"
        mark = "" if lv.finding else f"  [{ONE_TRIAL}]"
        lines.append(f"{lv.level:<34} {lv.n_trials:>6} {lv.n_patients:>8}   {band:<24} {lv.prob_benefit:>8.3f}{mark}")
    sd = sub.between_level_sd
    lines.append(f"between-level SD (log OR): median {sd['median']:.2f} ({pct}% CrI {sd['lower']:.2f} to "
                 f"{sd['upper']:.2f}); prior {sd['prior']}: {sd['words']}")
    lines.extend(sub.notes)
    lines.append(f"diagnostics: {sub.diagnostics}")
    return "\n".join(lines)


def render_population(block: dict) -> str:
    """The ``population`` block of a fit (``fit --population``) as text."""
    pooled, new = block["pooled_effect"], block["predictive_effect"]
    pct = round(100 * pooled["ci_prob"])
    sd = block["between_population_sd"]
    return "\n".join([
        f"Target population {block['selector']}: {block['n_studies']} trials, {block['n_patients']} patients "
        f"({', '.join(block['studies'])})",
        f"  pooled OR in the population {pooled['median']:.2f} ({pct}% ETI {pooled['lower']:.2f} to {pooled['upper']:.2f}); "
        f"new trial in it {new['median']:.2f} ({new['lower']:.2f} to {new['upper']:.2f})",
        f"  P(OR < 1) {block['prob_benefit']['prob']:.3f} (MCSE {block['prob_benefit']['mcse']:.3f}); "
        f"P(clinically meaningful) {block['prob_meaningful']['prob']:.3f}; new trial P(OR < 1) "
        f"{block['predictive_prob_benefit']['prob']:.3f}",
        f"  between-population SD (log OR) {sd['median']:.2f} ({sd['lower']:.2f} to {sd['upper']:.2f}); prior "
        f"{sd['prior']}: {sd['words']}",
    ])

"""Target populations: trials within populations, populations' mean effects exchangeable.

The pooled analysis answers "do cells reduce mortality on average over these trials?". A new
trial is run in one population (classic, non-COVID ARDS, say), and the trials of another
(COVID-19) may say less about it than about their own. With a target population
(``model.population``, ``--population ards_cause=non_covid``) the mortality model becomes
three-level::

    study_log_or_j = log_or + population_sd * population_z_g(j) + tau * z_j
    population_z_g ~ Normal(0, 1),   population_sd ~ the population_heterogeneity prior

``g(j)`` is trial j's population: the target (the selected levels of one categorical
covariate of :mod:`bayes_msc.evidence.covariates`, several levels grouped into one), and each
other level of that covariate as a population of its own (a trial whose value is not stated:
the population "not stated"). ``log_or`` is then the mean over populations; the target's own
effect is ``population_log_or[target] = log_or + population_sd * population_z_target`` and a
new trial in it ``population_log_or[target] + tau * eps``. ``population_sd`` -> 0 gives the
pooled analysis; a very large ``population_sd`` gives separate analyses per population.

Why exchangeable populations and not an EXNEX mixture (Neuenschwander, Wandel, Roychoudhury &
Bailey, Pharm Stat 2016): on the register's design (reports/mortality.populations.choice.json)
the exchangeable model had the smaller error when populations are alike and about the same when
the target differs (there through a bias towards the other populations, which the docs state),
with narrower intervals and no divergences; the mixture's weight is a second prior choice the
register cannot inform. See docs/methods/populations.md.

The term enters the mortality model through two hooks (model data in
:func:`bayes_msc.models.mortality.mortality_inputs`, the deviation in
:func:`~bayes_msc.models.mortality.build_mortality_model`); with no target population neither
changes anything, so the pooled analysis' graph, numbers and hashes are as before.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from ..io.errors import InputError, Location

NOT_STATED = "not stated"  # the population of trials whose covariate value is missing


@dataclass(frozen=True)
class PopulationSelector:
    """A target population: levels of one categorical covariate.

    ``study_groups`` ((study_id, population) for every study of the register) is filled in
    from a register by :func:`resolve_population`; it is not part of the spec or its hash
    (the register has its own hash)."""

    key: str
    levels: tuple[str, ...]
    study_groups: tuple[tuple[str, str], ...] = field(default=(), compare=False, repr=False)

    @property
    def target(self) -> str:
        """The target population's name: its levels joined by '+'."""
        return "+".join(self.levels)

    @property
    def label(self) -> str:
        """As written on the command line: ``key=level1,level2``."""
        return f"{self.key}={','.join(self.levels)}"

    def to_list(self) -> list[str]:
        return [self.label]

    def group_of(self) -> dict[str, str]:
        return dict(self.study_groups)


def parse_population(texts: Any, where: Location) -> PopulationSelector | None:
    """``KEY=VALUE[,VALUE...]`` texts (repeatable; the values of one key are grouped into one
    target population) -> a selector; None for no text. One covariate at a time: a population
    defined by two covariates has too few trials per cell to model."""
    if texts is None:
        return None
    if isinstance(texts, str):
        texts = [texts]
    if not isinstance(texts, (list, tuple)) or not all(isinstance(t, str) for t in texts):
        raise InputError("must be a list of KEY=VALUE texts, e.g. [\"ards_cause=non_covid\"]",
                         replace(where, field="model.population"))
    if not texts:
        return None
    from ..evidence.covariates import covariate

    key, levels = None, []
    for text in texts:
        name, sep, values = text.partition("=")
        name = name.strip()
        parts = [v.strip() for v in values.split(",") if v.strip()]
        if not sep or not name or not parts:
            raise InputError(f"{text!r}: expected KEY=VALUE[,VALUE...], e.g. ards_cause=non_covid",
                             replace(where, field="model.population"))
        try:
            declared = covariate(name)
        except InputError as exc:
            raise InputError(exc.problem, replace(where, field="model.population")) from None
        if declared.kind != "categorical":
            raise InputError(f"{name!r} is a numeric covariate; a population is a level (or levels) of a "
                             "categorical one (the covariate regression models numeric covariates)",
                             replace(where, field="model.population"))
        if key is not None and name != key:
            raise InputError(f"one covariate at a time: {key!r} and {name!r} given (group the levels of one "
                             "covariate instead)", replace(where, field="model.population"))
        key = name
        for value in parts:
            if value not in declared.levels:
                raise InputError(f"{name} has no level {value!r}; its levels: {', '.join(declared.levels)}",
                                 replace(where, field="model.population"))
            if value not in levels:
                levels.append(value)
    return PopulationSelector(key, tuple(levels))


def study_population(selector: PopulationSelector, value) -> str:
    """The population a covariate ``value`` (None: missing) belongs to."""
    import numpy as np

    if value is None or (isinstance(value, float) and np.isnan(value)):
        return NOT_STATED
    return selector.target if value in selector.levels else str(value)


def resolve_population(spec, register):
    """``spec`` with its target population's study groups read from ``register``
    (unchanged without a target population, or when no register is given)."""
    selector = getattr(spec.model, "population", None)
    if selector is None or register is None or not hasattr(register, "studies"):
        return spec
    from ..evidence.covariates import study_covariates

    values = study_covariates(register, [selector.key])[selector.key]
    groups = tuple((str(sid), study_population(selector, v)) for sid, v in values.items())
    return replace(spec, model=replace(spec.model, population=replace(selector, study_groups=groups)))


def population_layout(studies, selector: PopulationSelector) -> tuple[tuple[str, ...], np.ndarray]:
    """(populations, index of each study's population): the target first, the other levels
    in name order, "not stated" last; only populations with an included study."""
    import numpy as np

    if not selector.study_groups:
        raise InputError(f"the target population {selector.label} has not been read from a register: fit through "
                         "bayes_msc.fit (or resolve_population(spec, register)) so each trial's population is known")
    groups = selector.group_of()
    missing = [s for s in studies if s not in groups]
    if missing:
        raise InputError(f"study {missing[0]!r} is not in the register the target population was read from")
    present = {groups[s] for s in studies}
    if selector.target not in present:
        raise InputError(f"no included trial is in the population {selector.label} (included trials' "
                         f"{selector.key}: {', '.join(sorted(present))}): there is nothing to borrow for, and "
                         "nothing in the population to check the borrowing against")
    others = sorted(p for p in present if p not in (selector.target, NOT_STATED))
    order = (selector.target, *others, *((NOT_STATED,) if NOT_STATED in present else ()))
    return order, np.array([order.index(groups[s]) for s in studies], dtype="int64")


# -- hooks into the mortality model ---------------------------------------------------------------


# The EXNEX-style alternative (Neuenschwander et al. 2016) the simulation study compared the
# exchangeable model with: each population's deviation is exchangeable (Normal(0, population_sd))
# with prior probability EXNEX_WEIGHT, else vague, Normal(0, EXNEX_NEX_SD).
EXNEX_WEIGHT = 0.5
EXNEX_NEX_SD = 1.5  # the default effect prior's SD: weakly informative on a population's own log OR
FORMS = ("exchangeable", "exnex")


def with_population(evidence, model, values: dict, coords: dict, structure: dict, form: str = "exchangeable"):
    """Model data of the population term (hook of :func:`~bayes_msc.models.mortality.mortality_inputs`):
    each study's population (layout) and the ``population`` coordinate. Unchanged without a
    target population. ``form``: "exchangeable" (the model) or "exnex" (compared with it in the
    simulation study only)."""
    selector = getattr(model, "population", None)
    if selector is None:
        return values, coords, structure
    if getattr(model, "dose_response", "none") != "none":
        raise InputError("a target population is modelled with one pooled effect (dose_response = none)",
                         Location("spec", field="model.population"))
    order, index = population_layout(evidence.studies, selector)
    return ({**values, "study_population": index}, {**coords, "population": order},
            {**structure, "population": form})


def with_study_deviation(deviation, data, inputs, priors):
    """Each study's deviation plus its population's (hook of
    :func:`~bayes_msc.models.mortality.build_mortality_model`): ``population_sd *
    population_z[g(j)]``, non-centred. Unchanged without a target population."""
    if inputs.structure.get("population") is None:
        return deviation
    import pymc as pm

    from .inputs import prior_data

    if priors.population_heterogeneity is None:
        raise InputError("a target population needs the population_heterogeneity prior")
    sd = priors.population_heterogeneity.build(
        "population_sd", prior_data(data, "population_heterogeneity", priors.population_heterogeneity))
    if inputs.structure["population"] == "exnex":
        return deviation + _exnex_population_deviation(data, sd)[data["study_population"]]
    z = pm.Normal("population_z", 0.0, 1.0, dims="population")
    return deviation + (sd * z)[data["study_population"]]


def _exnex_population_deviation(data, sd):
    """EXNEX-style: each population's deviation from ``log_or`` is, marginally, a two-component
    mixture: EX, Normal(0, sd) with weight EXNEX_WEIGHT; NEX, a vague Normal(0, EXNEX_NEX_SD)
    deviation (the model builds ``log_or`` after the deviations, so the NEX component is a vague
    deviation from the mean rather than a prior independent of it). Centred; the mixture's
    indicator summed out."""
    import pymc as pm

    return pm.NormalMixture("population_deviation", w=[EXNEX_WEIGHT, 1 - EXNEX_WEIGHT],
                            mu=[0.0, 0.0], sigma=pm.math.stack([sd, EXNEX_NEX_SD + 0.0 * sd]),
                            dims="population")


# -- what a fit says about the populations ---------------------------------------------------------


def population_effects(posterior):
    """Each population's mean log OR per draw: ``log_or + population_sd * population_z``
    (EXNEX-style fits: ``log_or + population_deviation``)."""
    if "population_deviation" in posterior:
        return posterior["log_or"] + posterior["population_deviation"]
    return posterior["log_or"] + posterior["population_sd"] * posterior["population_z"]


def prior_sd_of(prior) -> float:
    return float(prior.scipy().std())


def contraction(prior, draws) -> dict:
    """How much the data moved a parameter: prior SD, posterior SD and 1 - (posterior/prior)^2
    variance (Schad, Betancourt & Vasishth 2021's posterior contraction); near 0: mostly prior."""
    import numpy as np

    prior_sd = prior_sd_of(prior)
    post_sd = float(np.asarray(draws).std())
    shrink = 1.0 - (post_sd / prior_sd) ** 2
    return {"prior_sd": prior_sd, "posterior_sd": post_sd, "contraction": shrink,
            "mostly_prior": bool(shrink < 0.5),
            "words": (f"posterior SD {post_sd:.2f} against prior SD {prior_sd:.2f} (contraction {shrink:.2f}): "
                      + ("the data say little about how much populations differ; this SD is mostly its prior"
                         if shrink < 0.5 else "the data inform how much populations differ"))}


def population_summary(result) -> dict | None:
    """The ``population`` block of summary.json (None without a target population)."""
    import numpy as np

    selector = getattr(result.spec.model, "population", None)
    post = result.posterior
    if selector is None or "population_sd" not in post:
        return None
    from ..decisions import interval, predictive_effect, probability

    spec = result.spec
    ci = spec.decision.ci_prob
    effects = population_effects(post)
    target = effects.sel(population=selector.target)
    new = predictive_effect(target, post["tau"], spec.sampler.seed)
    groups = selector.group_of()
    arms = result.evidence.arms
    in_target = [s for s in result.evidence.studies if groups.get(s) == selector.target]
    patients = int(np.nansum(arms[arms["study_id"].isin(in_target)]["n"].astype(float)))
    meaningful = np.log(spec.decision.clinically_meaningful_or)

    def stated(iv) -> dict:  # an interval of odds ratios (the draws are exponentiated first)
        return iv.to_dict()

    per_population = {}
    for name in effects["population"].values:
        draws = effects.sel(population=name)
        members = [s for s in result.evidence.studies if groups.get(s) == name]
        per_population[str(name)] = {
            "studies": members, "n_studies": len(members),
            "odds_ratio": stated(interval(np.exp(draws), ci)),
            "prob_benefit": probability(draws < 0).prob,
        }
    sd = post["population_sd"]
    return {
        "selector": selector.label,
        "key": selector.key,
        "levels": list(selector.levels),
        "studies": in_target,
        "n_studies": len(in_target),
        "n_patients": patients,
        "pooled_effect": stated(interval(np.exp(target), ci)),
        "predictive_effect": stated(interval(np.exp(new), ci)),
        "prob_benefit": probability(target < 0).to_dict(),
        "prob_meaningful": probability(target < meaningful).to_dict(),
        "predictive_prob_benefit": probability(new < 0).to_dict(),
        "between_population_sd": {**interval(sd, ci).to_dict(), "scale": "log odds ratio",
                                  "prior": spec.priors.population_heterogeneity.describe(),
                                  **contraction(spec.priors.population_heterogeneity, sd.values.ravel())},
        "populations": per_population,
        "measure": "odds ratio",
        "model": ("study_log_or_j = log_or + population_sd * population_z[g(j)] + tau * z_j; the target's effect "
                  "log_or + population_sd * population_z[target]"),
    }


# -- simulation on the register's design ------------------------------------------------------------


def draw_population_truth(spec, evidence, index: np.ndarray, rng, population_sd: float | None = None) -> dict:
    """A truth for the population model, drawn from the spec's priors: the mortality outcome's
    (log_or, tau, z, baselines) plus ``population_sd``, ``population_z`` (one per population of
    ``index``) and ``target_log_or`` (population 0's mean log OR). ``population_sd`` fixes the
    SD (default: a prior draw)."""
    import numpy as np

    outcome = spec.outcome_type
    truth = outcome.draw_truth(spec, evidence, rng)
    n_pop = int(index.max()) + 1
    sd = (float(spec.priors.population_heterogeneity.scipy().rvs(random_state=rng))
          if population_sd is None else float(population_sd))
    z = rng.standard_normal(n_pop)
    truth.update(population_sd=sd, population_z=z, target_log_or=truth["log_or"] + sd * z[0])
    return truth


def simulate_population(spec, evidence, truth, index: np.ndarray, rng):
    """Deaths on the register's design under a population truth (the outcome's simulator with
    each study's mean ``log_or + population_sd * population_z[g(j)]``)."""
    import numpy as np

    per_study = truth["log_or"] + truth["population_sd"] * np.asarray(truth["population_z"])[index]
    return spec.outcome_type.simulate(evidence, {**truth, "log_or": per_study}, rng)


__all__ = [
    "NOT_STATED", "PopulationSelector", "contraction", "draw_population_truth", "parse_population",
    "population_effects", "population_layout", "population_summary", "resolve_population", "simulate_population",
    "with_population", "with_study_deviation",
]

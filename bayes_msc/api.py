"""The library entry point: :func:`fit`.

``fit`` is the same pipeline the CLI runs — spec, register, evidence, model inputs,
compiled model (reused when the structure was seen before), sampling, log-likelihood and
log-prior, derived quantities, diagnostics, decisions — so a script and the command line
give identical numbers for identical settings.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .io.arguments import check_arguments, check_data
from .io.errors import InputError, Location
from .priors import PriorSet
from .results import FitResult, provenance_attrs
from .spec import AnalysisSpec, load_spec

if TYPE_CHECKING:
    from .evidence.register import Register


_UNSET: Any = object()  # resolve_spec(data=...) not given: the spec alone, no data read


def resolve_spec(
    analysis: str | Path | AnalysisSpec,
    *,
    data: Any = _UNSET,
    evidence: str | None = None,
    priors: PriorSet | Iterable[str] | None = None,
    prior_params: dict[str, float] | None = None,
    seed: int | None = None,
    chains: int | None = None,
    draws: int | None = None,
    tune: int | None = None,
    clinically_meaningful: float | None = None,
    dose_response: str | None = None,
    measure: str | None = None,
    unit: str | None = None,
    target_accept: float | None = None,
    likelihood: str | None = None,
    benefit_direction: str | None = None,
    effect_measure: str | None = None,
    covariates: Iterable[str] | None = None,
    population: str | Iterable[str] | None = None,
    _caller: str = "resolve_spec",
) -> AnalysisSpec:
    """Load a spec and apply overrides; ``prior_params`` keys are ``role.parameter``.

    ``clinically_meaningful`` is the outcome's decision threshold: an odds ratio for
    mortality, a difference in the outcome's units otherwise. ``measure`` and ``unit`` say what
    a normal-normal analysis' estimates are (``"log_ratio"``, ``"smd"``, ``"mean_difference"``
    with a unit), ``benefit_direction`` which way is better (``"increase"``, ``"decrease"``);
    a scale without default priors needs both priors stated. ``effect_measure`` (binary outcomes:
    ``"or"``, ``"rr"``, ``"rd"``) states the effect as an odds ratio, or as a risk ratio or risk
    difference at the spec's baseline risk; ``clinically_meaningful`` is then on that scale.

    ``data`` (a register, an estimates file, or None for the embedded register): the spec is
    resolved for a fit on it. What the data state about themselves fills what the spec leaves
    open (a register's contrasts are mean differences in mmHg); a setting the outcome cannot
    guess (:attr:`Outcome.must_state`) that nobody states is refused; priors whose scale does
    not fit the measure are warned about.
    """
    if isinstance(priors, Iterator):  # a generator is read once: here, not by the type check
        priors = list(priors)
    check_arguments(_caller, analysis=analysis, evidence=evidence, priors=priors, prior_params=prior_params,
                    seed=seed, chains=chains, draws=draws, tune=tune, clinically_meaningful=clinically_meaningful,
                    dose_response=dose_response, measure=measure, unit=unit, target_accept=target_accept,
                    likelihood=likelihood, benefit_direction=benefit_direction, effect_measure=effect_measure)
    spec = analysis if isinstance(analysis, AnalysisSpec) else load_spec(analysis)
    spec = spec.with_sampler(seed=seed, chains=chains, draws=draws, tune=tune, target_accept=target_accept)
    from_data: dict[str, str] = {}
    if data is not _UNSET and spec.outcome_type.must_state:
        from_data = spec.outcome_type.data_statement(load_data(spec, data, _caller))
        if measure is None and "measure" not in spec.stated and "measure" in from_data:
            measure = from_data["measure"]
            unit = from_data.get("unit", "") if unit is None else unit
        if benefit_direction is None and "benefit_direction" not in spec.stated and "benefit_direction" in from_data:
            benefit_direction = from_data["benefit_direction"]
    if benefit_direction is not None:
        if "benefit_direction" not in spec.outcome_type.decision_keys:
            raise InputError(f"the {spec.outcome} analysis' direction of benefit is fixed by its outcome "
                             f"({spec.outcome_type.benefit_words(spec)}); leave benefit_direction out")
        spec = spec.with_decision(benefit_direction=benefit_direction)
    if (measure is not None or unit is not None) and "measure" not in spec.outcome_type.model_keys:
        raise InputError(f"the {spec.outcome} analysis has one measure ({spec.outcome_type.measure.label()}); "
                         "leave measure and unit out")
    if covariates is not None:  # a meta-regression (bayes_msc.models.regression)
        if isinstance(covariates, str) or not all(isinstance(c, str) for c in covariates):
            raise InputError(f"{_caller}(covariates=...): expected a list of covariate names, got {covariates!r}")
        covariates = tuple(dict.fromkeys(covariates))
    if (dose_response is not None or measure is not None or unit is not None or likelihood is not None
            or covariates is not None):
        # before priors, so overrides of dose priors and priors on the measure's scale apply;
        # likelihood (mortality): arm, symmetric or conditional (bayes_msc.models.sparse)
        spec = spec.with_model(dose_response=dose_response, measure=measure, unit=unit, likelihood=likelihood,
                               covariates=covariates)
    if effect_measure is not None:  # before the threshold, which is on the scale it chooses
        spec = spec.with_model(effect_measure=effect_measure)
    if clinically_meaningful is not None:
        spec = spec.with_decision(**{spec.outcome_type.meaningful_key: clinically_meaningful})
    if evidence is not None:
        spec = spec.with_evidence(evidence_set=evidence)
    if population is not None:  # before priors: it adds the population_heterogeneity role they may set
        spec = spec.with_population(population)
    if isinstance(priors, PriorSet):
        spec = spec.with_priors(priors)
    elif priors is not None:
        from .priors import parse_prior_assignment

        prior_set = spec.priors
        for name in ([priors] if isinstance(priors, str) else priors):
            if "=" in name:  # role=family(param=value, ...)
                prior_set = prior_set.with_prior(*parse_prior_assignment(name))
            else:
                prior_set = prior_set.with_preset(spec.scale, name)
        spec = spec.with_priors(prior_set)
    for key, value in (prior_params or {}).items():
        role, _, parameter = key.partition(".")
        if not parameter:
            raise InputError(f"prior parameter {key!r} must look like role.parameter, e.g. effect.sigma")
        try:
            spec = spec.with_priors(spec.priors.with_parameter(role, parameter, value))
        except InputError as exc:  # say which override was wrong
            raise InputError(exc.problem, Location("prior_params (--prior-param)", field=key)) from None
    if data is not _UNSET:
        _check_statements(spec, from_data)
    spec.check_priors_stated()
    spec.outcome_type.check_decision(spec, _caller)
    if data is not _UNSET:
        for warning in spec.outcome_type.prior_warnings(spec.priors):
            _warn_once(warning)
    return spec


# How each setting an outcome cannot guess is stated, for the message that asks for it.
_HOW_TO_STATE = {
    "measure": ("what the estimates are", "--measure log_ratio|smd|mean_difference (library: measure=...), "
                "model.measure in the spec, or a 'measure' column in the estimates file"),
    "benefit_direction": ("which direction of the effect is benefit",
                          "--benefit-direction increase|decrease (library: benefit_direction=...), "
                          "decision.benefit_direction in the spec, or a 'benefit_direction' column in the data "
                          "file (e.g. decrease for log odds ratios of death, increase for a gain in PaO2/FiO2)"),
}


def _check_statements(spec: AnalysisSpec, from_data: dict[str, str]) -> None:
    """Refuse a fit whose outcome cannot guess a setting nobody stated, or whose data state
    something else than the analysis."""
    current = {"measure": spec.model.measure, "unit": spec.model.unit,
               "benefit_direction": spec.decision.benefit_direction}
    source = from_data.get("_source", "the data")
    for key, value in from_data.items():
        if key.startswith("_") or (key == "unit" and current["measure"] != "mean_difference"):
            continue
        if current.get(key) != value:
            raise InputError(f"{source} state {key} {value!r}, but the analysis says {current.get(key)!r}: "
                             f"leave {key} out or make them agree")
    for key in spec.outcome_type.must_state:
        if key not in spec.stated and key not in from_data:
            what, how = _HOW_TO_STATE.get(key, (key, key))
            raise InputError(f"the {spec.outcome} analysis cannot guess {what}: state it with {how}",
                             Location(spec.path or "spec", field=("model." if key == "measure" else "decision.") + key))


_WARNED: set[str] = set()


def _warn_once(message: str) -> None:
    """A warning on stderr (``bayes_msc: WARNING: ...`` from the CLI), once per process."""
    import logging

    if message not in _WARNED:
        _WARNED.add(message)
        logging.getLogger("bayes_msc").warning("WARNING: %s", message)


def fit(
    analysis: str | Path | AnalysisSpec = "mortality",
    *,
    data: "str | Path | Register | None" = None,
    evidence: str | None = None,
    priors: PriorSet | Iterable[str] | None = None,
    prior_params: dict[str, float] | None = None,
    seed: int | None = None,
    chains: int | None = None,
    draws: int | None = None,
    tune: int | None = None,
    clinically_meaningful: float | None = None,
    dose_response: str | None = None,
    measure: str | None = None,
    unit: str | None = None,
    target_accept: float | None = None,
    likelihood: str | None = None,
    benefit_direction: str | None = None,
    effect_measure: str | None = None,
    covariates: Iterable[str] | None = None,
    population: str | Iterable[str] | None = None,
    progress_bar: bool = False,
) -> FitResult:
    """Fit a named analysis (``"mortality"``), a spec path, or an :class:`AnalysisSpec`.

    Parameters
    ----------
    data
        A register directory (same schema as the package's ``data/``) or a loaded
        :class:`Register`; default: the embedded register. The ``normal_normal`` analysis
        also takes a CSV file of ``study, estimate, se``.
    evidence
        Which studies enter: ``"randomised"`` (default: the randomised trials), ``"all"``
        (non-randomised studies too, through the bias model), ``"seed"`` (the four trials the
        project started from) or ``"studies:ID1,ID2,..."`` (a named subset).
    priors
        Preset names (e.g. ``["sceptical", "halfnormal_1.0"]``) or a :class:`PriorSet`.
    prior_params
        Hyperparameter overrides, e.g. ``{"effect.sigma": 1.0}``. A prior's family is changed
        with an entry of ``priors`` such as ``"heterogeneity=halfcauchy(beta=25)"``.
    clinically_meaningful
        The decision threshold: an odds ratio (mortality), or a risk ratio or risk difference
        under ``effect_measure`` "rr" or "rd", or a difference in the outcome's units
        (oxygenation: mmHg).
    effect_measure
        Binary outcomes: ``"or"`` (odds ratio, default), ``"rr"`` (risk ratio) or ``"rd"`` (risk
        difference, cells minus control), the last two at the spec's ``decision.baseline_risk``;
        the model is the same logit model, and the decisions are on the chosen scale (the
        threshold too: it has no default on a risk scale). Overrides ``model.effect_measure``.
    likelihood
        Mortality: ``"arm"``, ``"symmetric"`` or ``"conditional"`` (how sparse arms enter; see
        :mod:`bayes_msc.models.sparse`); overrides the spec's ``model.likelihood``.
    dose_response
        ``"none"``, ``"loglinear"`` or ``"emax"``; overrides the spec's ``model.dose_response``.
        The result's ``dose_response`` then holds the curve (xarray), the dose table
        (DataFrame) and the best dose.
    measure, unit, benefit_direction
        Normal-normal analyses: what the estimates are (``"log_ratio"``, ``"smd"``,
        ``"mean_difference"`` in ``unit``) and which way is benefit (``"increase"``,
        ``"decrease"``); override the spec's ``model.measure`` and ``decision.benefit_direction``.
        A fit refuses to guess them: the spec, these arguments or the data must state them.
    population
        Mortality: a target population, ``"KEY=VALUE[,VALUE]"`` texts on one categorical covariate
        (e.g. ``"ards_cause=non_covid"``); trials are partially pooled within and across
        populations (:mod:`bayes_msc.models.populations`) and ``summary_dict()["population"]``
        holds the target's effect.
    seed, chains, draws, tune, target_accept
        Sampler overrides; the same seed gives bit-identical numbers. Raise ``target_accept``
        (e.g. 0.99) when a fit reports divergences.
    """
    spec = resolve_spec(
        analysis, data=data, evidence=evidence, priors=priors, prior_params=prior_params,
        seed=seed, chains=chains, draws=draws, tune=tune, clinically_meaningful=clinically_meaningful,
        dose_response=dose_response, measure=measure, unit=unit, target_accept=target_accept, likelihood=likelihood,
        benefit_direction=benefit_direction, effect_measure=effect_measure, covariates=covariates,
        population=population, _caller="fit",
    )
    return fit_spec(spec, load_data(spec, data, "fit"), progress_bar=progress_bar)


def load_data(spec: AnalysisSpec, data: Any = None, _caller: str = "load_data"):
    """What ``data`` means for this analysis: a register (directory or loaded), or for the
    normal-normal analysis also a ``study, estimate, se`` CSV file."""
    check_data(_caller, spec, data)
    return spec.outcome_type.load_data(data)


_EVIDENCE_MEMO: dict = {}  # (outcome, register fingerprint, evidence and model settings) -> evidence
_EVIDENCE_MEMO_SIZE = 8


def _evidence(outcome, register, spec: AnalysisSpec):
    """The outcome's evidence from ``register`` for ``spec``, built once per register content
    and evidence-relevant settings in a process: a script that refits under other priors or
    sampler settings (a sweep) does not rebuild it each time (65 ms for the embedded register).
    The key fingerprints the register's tables as they are now, so a table edited in place is
    rebuilt; a copy is returned, so a caller that edits its evidence does not edit the memo."""
    import copy

    from .evidence.register import Register

    if not isinstance(register, Register):
        return outcome.build_evidence(register, spec)
    try:
        key = (type(outcome), register.fingerprint(), spec.evidence, spec.model)
        hash(key)
    except TypeError:  # settings that do not hash: build as before
        return outcome.build_evidence(register, spec)
    if key not in _EVIDENCE_MEMO:
        while len(_EVIDENCE_MEMO) >= _EVIDENCE_MEMO_SIZE:
            _EVIDENCE_MEMO.pop(next(iter(_EVIDENCE_MEMO)))
        _EVIDENCE_MEMO[key] = outcome.build_evidence(register, spec)
    return copy.deepcopy(_EVIDENCE_MEMO[key])


def fit_spec(
    spec: AnalysisSpec, register: "Register | None" = None, *, evidence: Any = None, progress_bar: bool = False,
    compare_designs: bool = True,
) -> FitResult:
    """Run the pipeline for a resolved spec on a register, or on pre-built ``evidence``
    (simulated, or masked for leave-one-study-out).

    ``compare_designs``: when non-randomised studies entered (mortality), also refit with them
    masked and record how far they moved P(OR < 1) (``result.design_shift``).
    """
    from .engine.diagnostics import diagnose

    spec.check_priors_stated()
    from .models.populations import resolve_population

    spec = resolve_population(spec, register)  # each trial's population, when the spec names a target one
    outcome = spec.outcome_type
    outcome.check_decision(spec, "fit_spec")
    evidence, inputs = _evidence_and_inputs(spec, register, evidence)

    timings = {}
    start = time.perf_counter()
    import nutpie  # noqa: F401  (first use in a process pays the import; timed for `bench`)
    import pymc  # noqa: F401

    timings["import"] = time.perf_counter() - start
    start = time.perf_counter()
    compiled = _compile(spec, inputs)
    timings["compile"] = time.perf_counter() - start

    start = time.perf_counter()
    tree = compiled.sample(spec.sampler, progress_bar=progress_bar)
    timings["sample"] = time.perf_counter() - start

    start = time.perf_counter()
    tree["posterior"] = outcome.derive(tree["posterior"].to_dataset(), spec, inputs)
    log_likelihood, log_prior = outcome.pointwise(tree["posterior"].to_dataset(), inputs, spec.priors)
    tree["log_likelihood"] = log_likelihood
    tree["log_prior"] = log_prior
    tree.attrs.update(provenance_attrs(spec, evidence.register_hash))
    present = set(tree["posterior"].data_vars)
    diagnostics = diagnose(tree, [v for v in outcome.diagnostic_vars() if v in present])
    decisions = outcome.decide(tree["posterior"].to_dataset(), spec)
    dose = None
    if spec.model.dose_response != "none":
        from .analyses.dosing import dose_response

        dose = dose_response(tree["posterior"].to_dataset(), inputs, spec)
    timings["postprocess"] = time.perf_counter() - start
    summary_vars = tuple(v for v in outcome.summary_vars() if v in present)
    result = FitResult(spec, evidence, tree, diagnostics, decisions, summary_vars, timings, dose)
    if spec.model.covariates and compare_designs:  # meta-regression: its terms, and tau against the fit without
        from dataclasses import replace

        from .models.regression import covariate_summary

        without = fit_spec(replace(spec, model=replace(spec.model, covariates=()),
                                   priors=spec.priors.with_covariate_defaults(spec.scale, ())),
                           evidence=evidence, compare_designs=False)
        result = replace(result, covariates=covariate_summary(result, without))
    elif spec.model.covariates:
        from dataclasses import replace

        from .models.regression import covariate_summary

        result = replace(result, covariates=covariate_summary(result))
    if compare_designs:
        from dataclasses import replace

        from .analyses.nonrandomised_bias import design_shift

        shift = design_shift(spec, evidence, result,
                             refit=lambda masked: fit_spec(spec, evidence=masked, compare_designs=False))
        if shift is not None:
            result = replace(result, design_shift=shift)
    return result


def _evidence_and_inputs(spec: AnalysisSpec, register, evidence=None):
    """The evidence (built from ``register`` unless given) and the model inputs of ``spec``."""
    outcome = spec.outcome_type
    if evidence is None:
        evidence = _evidence(outcome, register, spec)
    if not evidence.studies:
        raise InputError(f"no study in the register enters the {spec.name} analysis; see `bayes_msc data show`")
    return evidence, outcome.make_inputs(evidence, spec.priors, spec.model)


def _compile(spec: AnalysisSpec, inputs):
    from .engine.sampling import compile_analysis

    return compile_analysis(inputs, lambda i: spec.outcome_type.build_model(i, spec.priors))


# The shipped analyses that run on the embedded register as they are (normal_normal's model
# is shaped by the user's own estimates file, so there is nothing to compile ahead for it).
WARM_BY_DEFAULT = ("mortality", "oxygenation")


def warm(
    analysis: str | Path | AnalysisSpec = "mortality",
    *,
    data: "str | Path | Register | None" = None,
    evidence: str | None = None,
    priors: PriorSet | Iterable[str] | None = None,
    dose_response: str | None = None,
    likelihood: str | None = None,
    measure: str | None = None,
    unit: str | None = None,
) -> str:
    """Compile ``analysis``'s model into the compile cache, without sampling.

    A model is compiled once per structure (the number of studies and arms, the likelihood,
    the prior families, the dose-response form) and the compiled code is cached on disk, so
    the first fit of a structure in any later process starts warm. Run this once after
    installing, or after changing a register's shape, when the first fit's compile time
    matters (a cold compile takes seconds; see the performance notes). Prior
    hyperparameters and sampler settings do not change the structure.

    Returns the structure key that was compiled (or found compiled already).
    """
    spec = resolve_spec(analysis, evidence=evidence, priors=priors, dose_response=dose_response,
                        likelihood=likelihood, measure=measure, unit=unit)
    _, inputs = _evidence_and_inputs(spec, load_data(spec, data))
    return _compile(spec, inputs).key

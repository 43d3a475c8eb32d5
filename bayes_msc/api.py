"""The library entry point: :func:`fit`.

``fit`` is the same pipeline the CLI runs — spec, register, evidence, model inputs,
compiled model (reused when the structure was seen before), sampling, log-likelihood and
log-prior, derived quantities, diagnostics, decisions — so a script and the command line
give identical numbers for identical settings.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from typing import TYPE_CHECKING

from .errors import InputError
from .priors import PriorSet
from .results import FitResult, provenance_attrs
from .spec import AnalysisSpec, load_spec

if TYPE_CHECKING:
    from .evidence.register import Register


# Dose-response parameters, present when the spec's form has them.
DOSE_VARS = ("emax", "ed50", "dose_slope", "body_weight")


@dataclass(frozen=True)
class Analysis:
    """The outcome-specific pieces of the pipeline."""

    build_evidence: Callable
    make_inputs: Callable
    build_model: Callable
    derive: Callable  # (posterior Dataset, spec) -> posterior with derived variables
    decide: Callable  # (posterior Dataset, spec) -> decisions
    diagnostic_vars: tuple[str, ...]
    summary_vars: tuple[str, ...]
    # (posterior, inputs, priors) -> (log_likelihood, log_prior) Datasets; None: use PyMC's
    pointwise: Callable | None = None
    # data argument of fit() -> what build_evidence reads; None: an evidence register
    load_data: Callable | None = None


def _mortality_analysis() -> Analysis:
    from .decisions import mortality_decisions, predictive_effect
    from .evidence.mortality import build_mortality_evidence
    from .models.mortality import build_mortality_model, mortality_inputs, pointwise_log_density

    def derive(posterior, spec):
        new = predictive_effect(posterior["log_or"], posterior["tau"], spec.sampler.seed)
        return posterior.assign(log_or_new=new)

    def decide(posterior, spec):
        return mortality_decisions(
            posterior,
            threshold_or=spec.decision.clinically_meaningful_or,
            baseline_risk=spec.decision.baseline_risk,
            ci_prob=spec.decision.ci_prob,
        )

    return Analysis(
        build_evidence=build_mortality_evidence,
        make_inputs=mortality_inputs,
        build_model=build_mortality_model,
        derive=derive,
        decide=decide,
        diagnostic_vars=("log_or", "tau", "baseline_logit", "study_effect_z", "study_log_or", *DOSE_VARS),
        summary_vars=("log_or", "tau", "study_log_or", "log_or_new", *DOSE_VARS[:3]),
        pointwise=pointwise_log_density,
    )


def _continuous_analysis(outcome: str) -> Analysis:
    """Oxygenation (arm and contrast terms, natural course) or the normal-normal model."""
    from .decisions import continuous_decisions, predictive_effect
    from .evidence.oxygenation import build_oxygenation_evidence
    from .models.continuous import build_continuous_model, continuous_inputs, pointwise_log_density

    unit = "mmHg" if outcome == "oxygenation" else ""

    def derive(posterior, spec):
        return posterior.assign(mu_new=predictive_effect(posterior["mu"], posterior["tau"], spec.sampler.seed))

    def decide(posterior, spec):
        return continuous_decisions(
            posterior,
            meaningful=spec.decision.clinically_meaningful_difference,
            direction=spec.decision.benefit_direction,
            ci_prob=spec.decision.ci_prob,
            unit=unit,
        )

    natural = ("nc_mean", "nc_sd", "natural_course_z", "natural_course") if outcome == "oxygenation" else ()
    return Analysis(
        build_evidence=build_oxygenation_evidence if outcome == "oxygenation" else _normal_normal_evidence,
        make_inputs=continuous_inputs,
        build_model=build_continuous_model,
        derive=derive,
        decide=decide,
        diagnostic_vars=("mu", "tau", "study_effect_z", "study_effect", *natural, *DOSE_VARS),
        summary_vars=("mu", "tau", "study_effect", "mu_new", *natural[:2], *DOSE_VARS[:3]),
        pointwise=pointwise_log_density,
        load_data=None if outcome == "oxygenation" else _load_estimates_or_register,
    )


def _load_estimates_or_register(data):
    """A ``study, estimate, se`` CSV file, or a register (directory or loaded)."""
    from .evidence.estimates import EstimateTable, load_estimates
    from .evidence.register import Register, load_register

    if isinstance(data, (EstimateTable, Register)):
        return data
    if data is not None and Path(data).is_file():
        return load_estimates(data)
    return load_register(data)


def _normal_normal_evidence(source, spec):
    from .evidence.estimates import EstimateTable, estimates_evidence, register_contrasts

    if isinstance(source, EstimateTable):
        return estimates_evidence(source, spec)
    return register_contrasts(source, spec)


ANALYSES: dict[str, Callable[[], Analysis]] = {
    "mortality": _mortality_analysis,
    "oxygenation": lambda: _continuous_analysis("oxygenation"),
    "normal_normal": lambda: _continuous_analysis("normal_normal"),
}


def analysis_for(outcome: str) -> Analysis:
    return ANALYSES[outcome]()


def resolve_spec(
    analysis: str | Path | AnalysisSpec,
    *,
    evidence: str | None = None,
    priors: PriorSet | Iterable[str] | None = None,
    prior_params: dict[str, float] | None = None,
    seed: int | None = None,
    chains: int | None = None,
    draws: int | None = None,
    tune: int | None = None,
    clinically_meaningful: float | None = None,
    dose_response: str | None = None,
    likelihood: str | None = None,
) -> AnalysisSpec:
    """Load a spec and apply overrides; ``prior_params`` keys are ``role.parameter``.

    ``clinically_meaningful`` is the outcome's decision threshold: an odds ratio for
    mortality, a difference in the outcome's units otherwise.
    """
    spec = analysis if isinstance(analysis, AnalysisSpec) else load_spec(analysis)
    spec = spec.with_sampler(seed=seed, chains=chains, draws=draws, tune=tune)
    if dose_response is not None:  # before priors, so overrides of dose priors apply
        spec = spec.with_model(dose_response=dose_response)
    if likelihood is not None:  # mortality: arm, symmetric or conditional (bayes_msc.models.sparse)
        spec = spec.with_model(likelihood=likelihood)
    if clinically_meaningful is not None:
        key = "clinically_meaningful_or" if spec.outcome == "mortality" else "clinically_meaningful_difference"
        spec = spec.with_decision(**{key: clinically_meaningful})
    if evidence is not None:
        spec = spec.with_evidence(evidence_set=evidence)
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
        spec = spec.with_priors(spec.priors.with_parameter(role, parameter, value))
    return spec


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
    likelihood: str | None = None,
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
        ``"full"`` (default) or ``"seed"`` (the four seed trials alone).
    priors
        Preset names (e.g. ``["sceptical", "halfnormal_1.0"]``) or a :class:`PriorSet`.
    prior_params
        Hyperparameter overrides, e.g. ``{"effect.sigma": 1.0}``. A prior's family is changed
        with an entry of ``priors`` such as ``"heterogeneity=halfcauchy(beta=25)"``.
    clinically_meaningful
        The decision threshold: an odds ratio (mortality) or a difference in the outcome's
        units (oxygenation: mmHg).
    likelihood
        Mortality: ``"arm"``, ``"symmetric"`` or ``"conditional"`` (how sparse arms enter; see
        :mod:`bayes_msc.models.sparse`); overrides the spec's ``model.likelihood``.
    dose_response
        ``"none"``, ``"loglinear"`` or ``"emax"``; overrides the spec's ``model.dose_response``.
        The result's ``dose_response`` then holds the curve (xarray), the dose table
        (DataFrame) and the best dose.
    seed, chains, draws, tune
        Sampler overrides; the same seed gives bit-identical numbers.
    """
    spec = resolve_spec(
        analysis, evidence=evidence, priors=priors, prior_params=prior_params,
        seed=seed, chains=chains, draws=draws, tune=tune, clinically_meaningful=clinically_meaningful,
        dose_response=dose_response, likelihood=likelihood,
    )
    return fit_spec(spec, load_data(spec, data), progress_bar=progress_bar)


def load_data(spec: AnalysisSpec, data: Any = None):
    """What ``data`` means for this analysis: a register (directory or loaded), or for the
    normal-normal analysis also a ``study, estimate, se`` CSV file."""
    from .evidence.register import Register, load_register

    loader = analysis_for(spec.outcome).load_data
    if loader is not None:
        return loader(data)
    return data if isinstance(data, Register) else load_register(data)


def fit_spec(
    spec: AnalysisSpec, register: "Register | None" = None, *, evidence: Any = None, progress_bar: bool = False
) -> FitResult:
    """Run the pipeline for a resolved spec on a register, or on pre-built ``evidence``
    (simulated, or masked for leave-one-study-out)."""
    from .diagnostics import diagnose
    from .sampling import add_pointwise_groups, compile_analysis

    parts = analysis_for(spec.outcome)
    if evidence is None:
        evidence = parts.build_evidence(register, spec)
    if not evidence.studies:
        raise InputError(f"no study in the register enters the {spec.name} analysis; see `bayes_msc data show`")
    inputs = parts.make_inputs(evidence, spec.priors, spec.model)

    timings = {}
    start = time.perf_counter()
    import nutpie  # noqa: F401  (first use in a process pays the import; timed for `bench`)
    import pymc  # noqa: F401

    timings["import"] = time.perf_counter() - start
    start = time.perf_counter()
    compiled = compile_analysis(inputs, lambda i: parts.build_model(i, spec.priors))
    timings["compile"] = time.perf_counter() - start

    start = time.perf_counter()
    tree = compiled.sample(spec.sampler, progress_bar=progress_bar)
    timings["sample"] = time.perf_counter() - start

    start = time.perf_counter()
    tree["posterior"] = tree["posterior"].to_dataset().pipe(parts.derive, spec)
    if parts.pointwise is None:
        add_pointwise_groups(tree, compiled)
    else:
        log_likelihood, log_prior = parts.pointwise(tree["posterior"].to_dataset(), inputs, spec.priors)
        tree["log_likelihood"] = log_likelihood
        tree["log_prior"] = log_prior
    tree.attrs.update(provenance_attrs(spec, evidence.register_hash))
    present = set(tree["posterior"].data_vars)
    diagnostics = diagnose(tree, [v for v in parts.diagnostic_vars if v in present])
    decisions = parts.decide(tree["posterior"].to_dataset(), spec)
    dose = None
    if spec.model.dose_response != "none":
        from .dosing import dose_response

        dose = dose_response(tree["posterior"].to_dataset(), inputs, spec)
    timings["postprocess"] = time.perf_counter() - start
    summary_vars = tuple(v for v in parts.summary_vars if v in present)
    return FitResult(spec, evidence, tree, diagnostics, decisions, summary_vars, timings, dose)

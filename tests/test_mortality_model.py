"""The mortality model: recovery of known parameters and equivalence of the two code paths."""

import math

import numpy as np
import pytest

from bayes_msc.api import fit_spec
from bayes_msc.evidence.mortality import ArmCount, Configuration, MortalityEvidence, PartialReport
from bayes_msc.models.mortality import build_mortality_model, mortality_inputs
from simulated import simulate_mortality_evidence

TRUE_LOG_OR = -0.5
TRUE_TAU = 0.2


def _simulated(seed: int) -> MortalityEvidence:
    return simulate_mortality_evidence(
        [(60, 60), (40, 40), (30, 30), (80, 80), (50, 50), (25, 25), (70, 70), (45, 45)],
        log_or=TRUE_LOG_OR,
        tau=TRUE_TAU,
        baseline_logit=np.linspace(-1.5, 0.0, 8),
        seed=seed,
    )


def _as_partial(evidence: MortalityEvidence) -> MortalityEvidence:
    """Every exact count re-expressed as a degenerate bound (deaths_min = deaths_max)."""
    reports = tuple(
        PartialReport(
            row.study_id, "bounded", (row.arm_id,), "degenerate bound",
            (Configuration(0.0, (ArmCount(int(row.arm_index), int(row.deaths), int(row.n)),)),),
        )
        for row in evidence.exact.itertuples()
    )
    empty = evidence.exact.iloc[0:0]
    return MortalityEvidence(evidence.studies, evidence.arms, empty, reports, evidence.inclusion, evidence.register_hash)


def test_model_recovers_known_pooled_effect(quick_spec):
    result = fit_spec(quick_spec, evidence=_simulated(seed=11))
    pooled = result.decisions.pooled_effect
    assert pooled.lower < math.exp(TRUE_LOG_OR) < pooled.upper
    assert result.decisions.tau.lower < TRUE_TAU < result.decisions.tau.upper
    assert result.diagnostics.checks[3].name == "divergences" and result.diagnostics.checks[3].value == 0
    # The data carry real information: the interval excludes the prior's wide range.
    assert pooled.upper / pooled.lower < 10


def test_partial_and_exact_paths_give_the_same_log_density(quick_spec):
    evidence = _simulated(seed=5)
    priors = quick_spec.priors
    exact_model = build_mortality_model(mortality_inputs(evidence, priors), priors)
    partial_model = build_mortality_model(mortality_inputs(_as_partial(evidence), priors), priors)
    assert "deaths_partial" in partial_model.named_vars and "deaths_partial" not in exact_model.named_vars
    exact_logp = exact_model.compile_logp()
    partial_logp = partial_model.compile_logp()
    rng = np.random.default_rng(0)
    for _ in range(5):
        point = {
            "baseline_logit": rng.normal(-1, 1, evidence.n_studies),
            "log_or": rng.normal(),
            "tau_log__": rng.normal(-1, 0.5),
            "study_effect_z": rng.normal(size=evidence.n_studies),
        }
        assert partial_logp(point) == pytest.approx(exact_logp(point), rel=1e-10, abs=1e-10)


def test_partial_and_exact_paths_give_the_same_posterior(quick_spec):
    evidence = _simulated(seed=5)
    exact = fit_spec(quick_spec, evidence=evidence)
    partial = fit_spec(quick_spec, evidence=_as_partial(evidence))
    for var in ("log_or", "tau"):
        a, b = exact.summary([var], raw=True).iloc[0], partial.summary([var], raw=True).iloc[0]
        tolerance = 4 * math.hypot(a["mcse_mean"], b["mcse_mean"])
        assert abs(a["mean"] - b["mean"]) < tolerance, (var, a["mean"], b["mean"], tolerance)


def test_masking_a_study_removes_its_likelihood_exactly(quick_spec):
    evidence = _simulated(seed=5)
    priors = quick_spec.priors
    full = build_mortality_model(mortality_inputs(evidence, priors), priors)
    masked = build_mortality_model(mortality_inputs(evidence.masked({"sim03"}), priors), priors)
    point = full.initial_point()
    loglik = {name: full.compile_fn(full.logp(vars=[full[name]], sum=False)[0])(point) for name in ["deaths"]}
    masked_loglik = masked.compile_fn(masked.logp(vars=[masked["deaths"]], sum=False)[0])(point)
    rows = evidence.exact["study_id"] == "sim03"
    np.testing.assert_allclose(masked_loglik[rows.to_numpy()], 0.0)
    np.testing.assert_allclose(masked_loglik[~rows.to_numpy()], loglik["deaths"][~rows.to_numpy()])


def test_same_seed_gives_identical_numbers_in_process(quick_spec):
    evidence = _simulated(seed=2)
    first = fit_spec(quick_spec, evidence=evidence).posterior["log_or"].values
    second = fit_spec(quick_spec, evidence=evidence).posterior["log_or"].values
    np.testing.assert_array_equal(first, second)
    other = fit_spec(quick_spec.with_sampler(seed=8), evidence=evidence).posterior["log_or"].values
    assert not np.array_equal(first, other)


def test_scipy_pointwise_log_density_equals_pymc(quick_spec):
    """The post-processing shortcut computes exactly what PyMC's own functions compute."""
    from bayes_msc.api import fit_spec
    from bayes_msc.evidence.register import load_register
    from bayes_msc.engine.sampling import add_pointwise_groups, compile_analysis

    spec = quick_spec.with_sampler(draws=100, tune=200)
    result = fit_spec(spec, load_register())
    assert "deaths_partial" in result.tree["log_likelihood"]  # Shi 2021's bound is in there
    inputs = mortality_inputs(result.evidence, spec.priors)
    analysis = compile_analysis(inputs, lambda i: build_mortality_model(i, spec.priors))
    reference = result.tree.copy()
    del reference["log_likelihood"], reference["log_prior"]
    add_pointwise_groups(reference, analysis)  # PyMC's compute_log_likelihood / compute_log_prior
    for group in ("log_likelihood", "log_prior"):
        ours, theirs = result.tree[group].to_dataset(), reference[group].to_dataset()
        assert set(ours.data_vars) == set(theirs.data_vars)
        for name in ours.data_vars:
            np.testing.assert_allclose(ours[name].values, theirs[name].transpose(*ours[name].dims).values, rtol=1e-7, atol=1e-9)

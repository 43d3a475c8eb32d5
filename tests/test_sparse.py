"""The sparse-data likelihoods (arm, symmetric, conditional) against scipy and enumeration."""

import itertools
import math

import numpy as np
import pandas as pd
import pytest
from scipy import special, stats

from bayes_msc.evidence.mortality import ArmCount, Configuration, MortalityEvidence, PartialReport
from bayes_msc.models import sparse

THETAS = np.array([-4.0, -1.3, 0.0, 0.7, 3.5])


def _evidence(arms, exact, partial=()):
    """Evidence from (study_index, treated, n) arms and (arm_index, deaths) exact counts."""
    studies = tuple(f"s{j}" for j in sorted({a[0] for a in arms}))
    arm_frame = pd.DataFrame([{"study_id": studies[s], "arm_id": f"a{i}", "label": f"a{i}", "study_index": s,
                               "treated": t, "n": n} for i, (s, t, n) in enumerate(arms)])
    exact_frame = pd.DataFrame([{"arm_index": a, "study_id": studies[arms[a][0]], "arm_id": f"a{a}", "deaths": d,
                                 "n": arms[a][2]} for a, d in exact],
                               columns=["arm_index", "study_id", "arm_id", "deaths", "n"])
    return MortalityEvidence(studies, arm_frame, exact_frame, tuple(partial), pd.DataFrame(), "test")


def _pytensor(arrays, theta):
    import pytensor.tensor as pt

    out = sparse.conditional_logp(pt.zeros(len(arrays.study)), pt.as_tensor(theta), arrays.const,
                                  arrays.treated_deaths, arrays.norm_u, arrays.norm_log)
    return out.eval()


EDGE = [(d1, d0, n1, n0) for n1, n0 in [(1, 1), (3, 5), (12, 29), (65, 35)]
        for d1, d0 in {(0, 0), (n1, n0), (0, n0), (n1, 0), (1, 0), (0, 1), (n1 // 2, n0 // 3)}]


@pytest.mark.parametrize("d1,d0,n1,n0", EDGE)
def test_conditional_two_arm_study_is_fishers_noncentral_hypergeometric(d1, d0, n1, n0):
    evidence = _evidence([(0, 1, n1), (0, 0, n0)], [(0, d1), (1, d0)])
    arrays = sparse.pack_conditional(evidence, [0], n_conf=3, n_norm=70)  # padded on purpose
    for theta in THETAS:
        expected = stats.nchypergeom_fisher.logpmf(d1, n1 + n0, n1, d1 + d0, math.exp(theta))
        assert sparse.conditional_logp_numpy(arrays, np.array([theta]))[0] == pytest.approx(expected, abs=1e-10)
        assert _pytensor(arrays, np.array([theta]))[0] == pytest.approx(expected, abs=1e-9)


def test_double_zero_and_all_dead_studies_drop_out_exactly():
    evidence = _evidence([(0, 1, 65), (0, 0, 35), (1, 1, 7), (1, 0, 4)], [(0, 0), (1, 0), (2, 7), (3, 4)])
    arrays = sparse.pack_conditional(evidence, [0, 1])
    values = sparse.conditional_logp_numpy(arrays, np.stack([THETAS, THETAS], axis=-1))
    assert np.all(values == 0.0)


def _enumerated(configs, arms, theta):
    """log sum_c w_c P(d_c | t_c, psi) by brute force over every joint split of t_c over arms."""
    total = 0.0
    for log_w, counts in configs:
        t = sum(d for _, d in counts)
        num = math.exp(log_w) * math.prod(math.comb(arms[a][2], d) for a, d in counts) * math.exp(
            theta * sum(d for a, d in counts if arms[a][1]))
        den = 0.0
        for split in itertools.product(*(range(arms[a][2] + 1) for a, _ in counts)):
            if sum(split) == t:
                den += math.prod(math.comb(arms[a][2], u) for (a, _), u in zip(counts, split)) * math.exp(
                    theta * sum(u for (a, _), u in zip(counts, split) if arms[a][1]))
        total += num / den
    return math.log(total)


def test_conditional_partial_reports_match_direct_enumeration():
    # Study 0: a bound of 0-2 deaths in the treated arm, control exact (Shi 2021's shape);
    # study 1: two treated arms and a control, the treated arms reported as one total.
    arms = [(0, 1, 9), (0, 0, 6), (1, 1, 4), (1, 1, 5), (1, 0, 7)]
    bound = PartialReport("s0", "bounded", ("a0",), "bound",
                          tuple(Configuration(0.0, (ArmCount(0, d, 9),)) for d in range(3)))
    total = PartialReport("s1", "total", ("a2", "a3"), "total", tuple(
        Configuration(-math.log(2) + 0.1 * d2, (ArmCount(2, d2, 4), ArmCount(3, 3 - d2, 5))) for d2 in range(4)))
    evidence = _evidence(arms, [(1, 1), (4, 2)], [bound, total])
    arrays = sparse.pack_conditional(evidence, [0, 1], n_conf=20)
    for theta in THETAS:
        got = sparse.conditional_logp_numpy(arrays, np.array([theta, theta]))
        want0 = _enumerated([(0.0, [(0, d), (1, 1)]) for d in range(3)], arms, theta)
        want1 = _enumerated([(-math.log(2) + 0.1 * d2, [(2, d2), (3, 3 - d2), (4, 2)]) for d2 in range(4)], arms, theta)
        np.testing.assert_allclose(got, [want0, want1], rtol=1e-10)
        np.testing.assert_allclose(_pytensor(arrays, np.array([theta, theta])), got, rtol=1e-9)


def test_total_across_treated_and_control_carries_no_information_on_the_odds_ratio():
    arms = [(0, 1, 8), (0, 0, 6)]
    total = PartialReport("s0", "total", ("a0", "a1"), "total", tuple(
        Configuration(0.0, (ArmCount(0, d, 8), ArmCount(1, 3 - d, 6))) for d in range(4)))
    arrays = sparse.pack_conditional(_evidence(arms, [], [total]), [0])
    np.testing.assert_allclose(sparse.conditional_logp_numpy(arrays, THETAS[:, None])[:, 0], 0.0, atol=1e-12)


def test_padding_conditional_inputs_keeps_values():
    arms = [(0, 1, 9), (0, 0, 6)]
    bound = PartialReport("s0", "bounded", ("a0",), "bound",
                          tuple(Configuration(0.0, (ArmCount(0, d, 9),)) for d in range(2)))
    evidence = _evidence(arms, [(1, 0)], [bound])
    small = sparse.pack_conditional(evidence, [0])
    big = sparse.pack_conditional(evidence, [0], n_conf=7, n_norm=12)
    np.testing.assert_allclose(sparse.conditional_logp_numpy(small, THETAS[:, None]),
                               sparse.conditional_logp_numpy(big, THETAS[:, None]), rtol=1e-14)


def test_symmetric_coding_moves_both_arms_by_half_the_effect():
    weights = sparse.arm_centre_weights([0, 0, 1, 1, 1], [1, 0, 1, 1, 0], 2)
    np.testing.assert_allclose(weights, [[1, 0, 0, 0, 0], [0, 0, 0.5, 0.5, 0]])
    a, theta = np.array([-1.0, 0.5]), np.array([0.8, -0.4])
    effect = np.array([theta[0], 0.0, theta[1] + 0.2, theta[1] - 0.2, 0.0])
    treated = np.array([1, 0, 1, 1, 0])
    study = np.array([0, 0, 1, 1, 1])
    centre = (weights @ (treated * effect))[study]
    logit = sparse.coded_arm_logit(a[study], treated, effect, centre)
    np.testing.assert_allclose(logit, [-1 + 0.4, -1 - 0.4, 0.5 - 0.4 + 0.2 + 0.2, 0.5 - 0.4 - 0.2 + 0.2, 0.5 + 0.2])


@pytest.mark.parametrize("likelihood,baselines", [("symmetric", "independent"), ("conditional", "independent"),
                                                  ("symmetric", "exchangeable")])
def test_model_log_density_equals_scipy_pointwise(quick_spec, likelihood, baselines):
    """PyMC's log-likelihood of the compiled model equals the scipy pointwise one, which the
    tests above tie to scipy's distributions (register data: Shi 2021's bound included)."""
    from bayes_msc.api import fit_spec
    from bayes_msc.evidence.register import load_register
    from bayes_msc.models.mortality import build_mortality_model, mortality_inputs
    from bayes_msc.engine.sampling import add_pointwise_groups, compile_analysis

    spec = quick_spec.with_model(likelihood=likelihood, baselines=baselines).with_sampler(draws=100, tune=200)
    if baselines == "exchangeable":  # its SD prior is added by default, and its parameters are sampled
        assert spec.priors.names["baseline_heterogeneity"] == "baseline_sd_1.0"
    result = fit_spec(spec, load_register())
    assert "deaths_partial" in result.tree["log_likelihood"]
    inputs = mortality_inputs(result.evidence, spec.priors, spec.model)
    analysis = compile_analysis(inputs, lambda i: build_mortality_model(i, spec.priors))
    reference = result.tree.copy()
    del reference["log_likelihood"], reference["log_prior"]
    add_pointwise_groups(reference, analysis)
    for group in ("log_likelihood", "log_prior"):
        ours, theirs = result.tree[group].to_dataset(), reference[group].to_dataset()
        assert set(ours.data_vars) == set(theirs.data_vars)
        for name in ours.data_vars:
            np.testing.assert_allclose(ours[name].values, theirs[name].transpose(*ours[name].dims).values,
                                       rtol=1e-7, atol=1e-9)
    if baselines == "exchangeable":
        post = result.posterior
        np.testing.assert_allclose(post["baseline_logit"].values,
                                   post["baseline_mean"].values[..., None]
                                   + post["baseline_sd"].values[..., None] * post["baseline_z"].values)
        assert {"baseline_mean", "baseline_sd", "baseline_z"} <= set(result.tree["log_prior"].data_vars)
    if likelihood == "symmetric":  # the arm binomials at the coded log-odds, by hand
        post = result.posterior
        a = post["baseline_logit"].values
        theta = post["study_log_or"].values
        exact = result.evidence.exact
        study = result.evidence.arms["study_index"].to_numpy()[exact["arm_index"]]
        treated = result.evidence.arms["treated"].to_numpy()[exact["arm_index"]]
        logit = a[..., study] + (treated - 0.5) * theta[..., study]
        want = stats.binom.logpmf(exact["deaths"].to_numpy(), exact["n"].to_numpy(), special.expit(logit))
        np.testing.assert_allclose(result.tree["log_likelihood"]["deaths"].values, want, rtol=1e-9)


def test_spec_rejects_unknown_likelihood_and_conditional_dose_response(tmp_path):
    from bayes_msc.io.errors import InputError
    from bayes_msc.spec import load_spec

    spec = load_spec("mortality")
    with pytest.raises(InputError, match="model.likelihood"):
        spec.with_model(likelihood="exact")
    with pytest.raises(InputError, match="one effect per study"):
        spec.with_model(likelihood="conditional", dose_response="emax")
    assert spec.with_model(likelihood="arm").content_hash() != spec.content_hash()
    with pytest.raises(InputError, match="no baselines"):
        spec.with_model(likelihood="conditional", baselines="exchangeable")
    # back to independent baselines: the SD prior is dropped again
    back = spec.with_model(baselines="exchangeable").with_model(baselines="independent")
    assert back.priors.baseline_heterogeneity is None and back.content_hash() == spec.content_hash()


def test_likelihood_override_reaches_the_spec_and_is_mortality_only():
    from bayes_msc.api import resolve_spec
    from bayes_msc.cli import build_parser
    from bayes_msc.io.errors import InputError

    assert resolve_spec("mortality", likelihood="conditional").model.likelihood == "conditional"
    assert resolve_spec("mortality").model.likelihood == sparse.DEFAULT_LIKELIHOOD
    assert build_parser().parse_args(["fit", "mortality", "--likelihood", "arm"]).likelihood == "arm"
    with pytest.raises(InputError, match="mortality"):
        resolve_spec("oxygenation", likelihood="arm")
    # the oxygenation spec's hash does not carry the mortality-only settings
    from bayes_msc.spec import load_spec

    assert "likelihood" not in load_spec("oxygenation").to_dict()["model"]


def test_symmetric_model_has_no_matrix_product(quick_spec):
    """The symmetric coding's study centres are a sum of products, not ``arm_centre @ x``:
    numba compiles BLAS's dot and its gradient in about 2 s of a cold compile (bench), and the
    sum gives the same numbers (the log-density test above checks its values)."""
    from pytensor.graph.traversal import ancestors
    from pytensor.tensor.math import Dot

    from bayes_msc.evidence.register import load_register
    from bayes_msc.models.mortality import build_mortality_model, mortality_inputs

    spec = quick_spec.with_model(likelihood="symmetric")
    evidence = spec.outcome_type.build_evidence(load_register(), spec)
    model = build_mortality_model(mortality_inputs(evidence, spec.priors, spec.model), spec.priors)
    ops = [v.owner.op for v in ancestors([model.logp(), model.dlogp()]) if v.owner is not None]
    assert ops and not [op for op in ops if isinstance(op, Dot)]


def test_baseline_prior_is_described_as_what_it_is_a_prior_on_in_each_coding():
    """In the symmetric coding the study baseline is the midpoint of the control-arm and
    cell-arm log-odds (so its prior is a prior on that midpoint); in the arm coding it is the
    control arm's log-odds. The words the report, the preset and the spec use say so."""
    from pathlib import Path

    from bayes_msc.priors import find_preset

    a, theta = 0.3, -1.1
    control, cells = (sparse.coded_arm_logit(a, t, theta, theta if coding == "symmetric" else 0.0)
                      for coding in ("symmetric",) for t in (0, 1))
    assert (control + cells) / 2 == pytest.approx(a) and control != pytest.approx(a)
    arm_control = sparse.coded_arm_logit(a, 0, theta, 0.0)
    assert arm_control == pytest.approx(a)
    assert "midpoint of its control-arm and cell-arm log-odds" in sparse.baseline_prior_target("symmetric")
    assert "control-arm log-odds" in sparse.baseline_prior_target("arm") and "midpoint" not in sparse.baseline_prior_target("arm")
    assert "not used" in sparse.baseline_prior_target("conditional")
    assert "mean m" in sparse.baseline_prior_target("symmetric", "exchangeable")
    description = find_preset("log_odds_ratio", "default_baseline").rationale
    assert "in the symmetric coding (the default) the midpoint" in description
    spec_text = (Path(__file__).resolve().parents[1] / "models" / "mortality.toml").read_text()
    comment = spec_text[:spec_text.index('baseline = "default_baseline"')].rsplit("[priors]", 1)[1]
    assert "midpoint of its control-arm and cell-arm log-odds" in " ".join(comment.replace("#", " ").split())


def _bound_probability(theta, n1, n0, d0, top, sd=2.0):
    """P(control deaths = d0, cell deaths <= top | theta) with the baseline a ~ N(0, sd^2)
    integrated out by adaptive quadrature (arms at a -/+ theta / 2)."""
    from scipy import integrate

    def f(a):
        return (stats.binom.pmf(d0, n0, special.expit(a - theta / 2))
                * stats.binom.cdf(top, n1, special.expit(a + theta / 2)) * stats.norm.pdf(a, 0, sd))

    return integrate.quad(f, -30, 30, points=[-6, -4, -2, 0, 2], limit=400, epsabs=1e-14)[0]


def test_bounded_report_under_the_conditional_likelihood_is_its_exact_probability():
    """Shi 2021's shape: control 0/35, cell arm 0 or 1 death of 65. With each configuration
    weighted by the probability of its total (baseline integrated over N(0, 2)), the study's
    term is the exact probability of the report, by quadrature; counting each configuration
    once instead is not a probability (it exceeds 1) and pulls towards harm: it rises with
    the log odds ratio everywhere (from 1 to 2), where the exact term peaks at no effect; from
    a log OR of -0.5 up its excess over the exact term rises."""
    from bayes_msc.priors import Normal

    arms = [(0, 1, 65), (0, 0, 35)]
    bound = PartialReport("s0", "bounded", ("a0",), "bound",
                          tuple(Configuration(0.0, (ArmCount(0, d, 65),)) for d in range(2)))
    evidence = _evidence(arms, [(1, 0)], [bound])
    values, _ = sparse.conditional_values(evidence, n_conf=3, baseline_prior=Normal(0.0, 2.0))
    assert values["cond_partial_by_total"].tolist() == [1.0]
    theta = np.array([-3.0, -1.0, -0.5, 0.0, 0.5, 2.0])[:, None]
    weighted = sparse.conditional_bounded_logp_numpy(values, "cond_partial", theta)[:, 0]
    unweighted = sparse.conditional_bounded_logp_numpy(values, "cond_partial", theta, weighted=False)[:, 0]
    want = np.log([_bound_probability(t, 65, 35, 0, 1) for t in theta[:, 0]])
    np.testing.assert_allclose(weighted, want, rtol=1e-7)
    assert (unweighted > 0).all()  # log of a "probability" above 1
    assert (np.diff(unweighted) > 0).all() and 0 < np.log(2) - unweighted[-1] < np.log(2)
    assert np.argmax(weighted) == 3  # theta = 0
    excess = unweighted - weighted
    assert excess[2] < excess[3] < excess[4] < excess[5]  # from -0.5 on (the posterior's bulk) it favours harm


def test_a_total_with_one_known_sum_keeps_the_plain_conditional_term():
    """A total across arms has one total in every configuration: no weighting, and the term
    is the unweighted conditional sum (uninformative given the total)."""
    arms = [(0, 1, 8), (0, 0, 6)]
    total = PartialReport("s0", "total", ("a0", "a1"), "total", tuple(
        Configuration(0.0, (ArmCount(0, d, 8), ArmCount(1, 3 - d, 6))) for d in range(4)))
    values, _ = sparse.conditional_values(_evidence(arms, [], [total]))
    assert values["cond_partial_by_total"].tolist() == [0.0]
    theta = np.array([[-1.0], [0.0], [2.0]])
    np.testing.assert_allclose(sparse.conditional_bounded_logp_numpy(values, "cond_partial", theta), 0.0, atol=1e-12)

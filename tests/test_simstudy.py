"""The simulation study and the operating characteristics: summaries against hand counts, the
simulated design against the register, and one small end-to-end run."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from bayes_msc.analyses import simstudy


def _rows():
    # two likelihoods, one truth (OR 1, tau 0), four replicates each, numbers chosen by hand
    base = {"odds_ratio": 1.0, "tau_cell": 0.0, "tau": 0.0, "true_log_or": 0.0, "divergences": 0,
            "double_zero_studies": 1, "seconds": 0.1}
    rows = []
    for i, (median, lower, upper, p) in enumerate([(0.2, -0.1, 0.5, 0.2), (-0.4, -0.9, -0.05, 0.97),
                                                    (0.0, -0.5, 0.5, 0.5), (-0.2, -0.6, 0.3, 0.96)]):
        rows.append({**base, "item": i, "likelihood": "a", "median": median, "lower": lower, "upper": upper,
                     "prob_benefit": p, "prob_meaningful": p / 2})
        rows.append({**base, "item": i, "likelihood": "b", "median": 0.0, "lower": -1.0, "upper": 1.0,
                     "prob_benefit": 0.5, "prob_meaningful": 0.2})
    return pd.DataFrame(rows)


def test_summary_counts_bias_coverage_and_false_claims_by_hand():
    table = simstudy.summarise_study(_rows()).set_index("likelihood")
    a = table.loc["a"]
    assert a["bias"] == pytest.approx(-0.1)
    assert a["bias_mcse"] == pytest.approx(np.std([0.2, -0.4, 0.0, -0.2], ddof=1) / 2)
    assert a["rmse"] == pytest.approx(math.sqrt((0.04 + 0.16 + 0 + 0.04) / 4))
    assert a["coverage"] == pytest.approx(0.75)  # replicate 1's interval excludes 0
    assert a["coverage_mcse"] == pytest.approx(math.sqrt(0.75 * 0.25 / 4))
    assert a["declare_benefit"] == pytest.approx(0.5)  # 0.97 and 0.96 exceed 0.95
    b = table.loc["b"]
    assert b["declare_benefit"] == 0.0 and b["declare_benefit_mcse"] == pytest.approx(math.sqrt(0.25 / 4) / 2)
    overall = simstudy.overall(simstudy.summarise_study(_rows())).set_index("likelihood")
    assert overall.loc["a", "max_false_claim"] == pytest.approx(0.5)


def test_oc_table_counts_each_rule_and_gamma():
    table = simstudy.oc_table(_rows()[lambda r: r["likelihood"] == "a"], 0.8)
    got = table.set_index(["rule", "gamma"])["rate"]
    assert got[("P(OR < 1) > gamma", 0.8)] == pytest.approx(0.5)
    assert got[("P(OR < 1) > gamma", 0.975)] == 0.0
    assert got[("P(OR < 0.8) > gamma", 0.8)] == 0.0  # prob_meaningful is at most 0.485
    assert len(table) == 2 * len(simstudy.GAMMAS)


def _independent_control_posterior(arms, mean_prior=(0.0, 2.0), sd_scale=1.0, predictive=False):
    """E[expit(a_j) | data] under the exchangeable control-arm model, by another route than the
    package's binned grid: a = m + s * t integrated by the trapezoid rule in t (so the grid in a
    narrows with s), the binomial likelihood written out with its coefficients, and a coarser,
    shifted (m, s) grid."""
    from scipy import special, stats

    t = np.linspace(-8.0, 8.0, 801)
    wt = stats.norm.pdf(t) * np.gradient(t)
    m = np.arange(-6.0, 5.0, 0.07) + 0.013
    s = np.arange(0.02, 4.5, 0.035)
    log_post = np.zeros((len(m), len(s)))
    expect = np.zeros((len(arms), len(m), len(s)))
    new_trial = np.zeros((len(m), len(s)))
    for k, sk in enumerate(s):
        a = m[:, None] + sk * t[None, :]
        p = special.expit(a)
        new_trial[:, k] = p @ wt
        for j, arm in enumerate(arms):
            lik = sum(np.exp(special.gammaln(arm.n + 1) - special.gammaln(d + 1) - special.gammaln(arm.n - d + 1)
                             + special.xlogy(d, p) + special.xlog1py(arm.n - d, -p)) for d in arm.deaths)
            marginal = lik @ wt
            log_post[:, k] += np.log(marginal)
            expect[j, :, k] = (lik * p) @ wt / marginal
    log_post += stats.norm.logpdf(m, *mean_prior)[:, None] + stats.halfnorm.logpdf(s, scale=sd_scale)[None, :]
    w = np.exp(log_post - log_post.max())
    w /= w.sum()
    if predictive:  # a new trial's control risk
        return float((new_trial * w).sum())
    return (expect * w[None]).sum(axis=(1, 2))


@pytest.fixture(scope="module")
def register_evidence():
    from bayes_msc.evidence.register import load_register
    from bayes_msc.spec import load_spec

    spec = load_spec("mortality")
    return spec, spec.outcome_type.build_evidence(load_register(), spec)


def test_each_trials_control_risk_is_drawn_from_its_posterior(register_evidence):
    """The "register" null: each trial's control risk, averaged over draws, is its posterior mean
    under the control arms' hierarchical model, computed independently by quadrature; a 2/6
    control arm stays near a third, not at 2%."""
    from scipy.special import expit

    from bayes_msc.design.control_risk import fit_control_risk
    from bayes_msc.priors import HalfNormal, Normal

    spec, evidence = register_evidence
    priors = spec.priors
    model = fit_control_risk(evidence, priors)
    rng = np.random.default_rng(2026)
    draws = expit(np.array([model.trial_draws(rng)[0] for _ in range(4000)]))
    mean_prior = priors.baseline if isinstance(priors.baseline, Normal) else Normal(0.0, 2.0)
    sd_prior = getattr(priors, "baseline_heterogeneity", None)
    sd_scale = sd_prior.sigma if isinstance(sd_prior, HalfNormal) else 1.0
    expected = _independent_control_posterior(model.arms, (mean_prior.mu, mean_prior.sigma), sd_scale)
    mcse = draws.std(axis=0) / math.sqrt(len(draws))
    for arm, got, want, se in zip(model.arms, draws.mean(axis=0), expected, mcse):
        assert abs(got - want) < 4.5 * se + 0.003, (arm.study_id, got, want, se)
    by_study = dict(zip([a.study_id for a in model.arms], draws.mean(axis=0)))
    assert by_study["zheng2014"] > 0.2 and by_study["rebelatto2022"] > 0.1  # 2/6 and 1/6, shrunk, not 2%


def test_new_trials_sensitivity_gives_every_trial_a_new_trials_control_risk(register_evidence):
    """control_risk="new_trials": every study's control risk averages the predictive mean for a
    new trial (independent quadrature), whatever its own count."""
    from scipy.special import expit

    spec, evidence = register_evidence
    model = simstudy.control_risk_model(spec, evidence)
    rng = np.random.default_rng(5)
    draws = expit(np.array([simstudy.register_control_logits(model, evidence, rng, new_trials=True)
                            for _ in range(4000)]))
    want = _independent_control_posterior(model.arms, (model.mean_prior.mu, model.mean_prior.sigma),
                                          model.sd_prior.sigma, predictive=True)
    se = draws.std(axis=0) / math.sqrt(len(draws))
    assert np.all(np.abs(draws.mean(axis=0) - want) < 4.5 * se + 0.003), (draws.mean(axis=0), want)


def test_null_registers_simulate_control_deaths_at_their_posterior_mean(register_evidence):
    """Control deaths of simulated null registers average n_j x E[p_j | data] (independent
    quadrature), within Monte Carlo error: the simulation follows the real register."""
    spec, evidence = register_evidence
    model = simstudy.control_risk_model(spec, evidence)
    expected = dict(zip([a.study_id for a in model.arms],
                        _independent_control_posterior(model.arms, (model.mean_prior.mu, model.mean_prior.sigma),
                                                       model.sd_prior.sigma)))
    sizes = {a.study_id: a.n for a in model.arms}
    deaths = {study: [] for study in expected}
    for item in range(600):
        _, truth, simulated = simstudy.simulate_register(spec, evidence, simstudy.Cell(1.0, None), item, 11, "register")
        exact = simulated.exact.merge(simulated.arms[["study_index", "treated"]], left_on="arm_index", right_index=True)
        control = exact[exact["treated"] == 0].groupby("study_id")["deaths"].sum()
        for study, d in control.items():
            deaths[study].append(d)
    checked = 0
    for study, values in deaths.items():
        if len(values) < 500:
            continue
        values = np.asarray(values, float)
        se = values.std(ddof=1) / math.sqrt(len(values))
        assert abs(values.mean() - sizes[study] * expected[study]) < 4.5 * se + 0.02, (study, values.mean())
        checked += 1
    assert checked >= 8


def test_oc_null_counts_false_claims_on_enough_registers():
    """The shipped operating characteristics follow the register (not a fixed 2% control risk)
    and ran enough null registers for a Monte Carlo SE of at most 0.005 at every threshold of
    the headline rule where the rate is below 0.1."""
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "reports" / "mortality.oc.json"
    payload = json.loads(path.read_text(encoding="utf-8"))
    assert payload["settings"]["control_risk"] == simstudy.CONTROL_RISKS["register"]
    table = pd.DataFrame(payload["table"])
    null = table[(table["true_or"] == 1.0) & (table["rule"] == "P(OR < 1) > gamma")]
    assert set(null["gamma"]) == set(simstudy.GAMMAS)
    rate, mcse = simstudy.null_false_claim(table)
    assert mcse <= simstudy.OC_TARGET_MCSE
    assert (null[null["rate"] < 0.1]["mcse"] <= simstudy.OC_TARGET_MCSE).all()
    assert mcse == pytest.approx(math.sqrt(rate * (1 - rate) / payload["null_reps"]))
    assert (null["reps"] == payload["null_reps"]).all()


def test_oc_cells_repeat_in_the_ratio_of_their_counts():
    cells, rounds = simstudy.oc_cells((1.0, 0.8), 4000, 1000)
    assert rounds == 1000 and [c.odds_ratio for c in cells] == [1.0] * 4 + [0.8]
    cells, rounds = simstudy.oc_cells((1.0, 0.8), 7, 3)
    assert rounds == 1 and len(cells) == 10 and sum(c.odds_ratio == 1.0 for c in cells) == 7


def test_sparse_design_control_risks(quick_spec):
    from scipy.special import expit

    from bayes_msc.evidence.register import load_register

    evidence = quick_spec.outcome_type.build_evidence(load_register(), quick_spec)
    risk = dict(zip(evidence.studies, expit(simstudy.control_logits(evidence))))
    assert risk["bowdish2023"] == pytest.approx(47.5 / 111)
    assert risk["shi2021"] == pytest.approx(0.5 / 36)
    # the two smallest trials (Zheng 2014: 12 patients, Rebelatto 2022: 17) are made rare-event
    assert risk["zheng2014"] == pytest.approx(simstudy.RARE_CONTROL_RISK)
    assert risk["rebelatto2022"] == pytest.approx(simstudy.RARE_CONTROL_RISK)


def test_small_simulation_study_end_to_end(tmp_path, quick_spec):
    """Two registers per truth, serially: every likelihood fits each, rows are reproducible."""
    study = simstudy.simulation_study(quick_spec, reps=2, likelihoods=("arm", "symmetric"), ors=(1.0, 0.5),
                                      taus=(0.0,), draws=100, tune=150, journal=tmp_path / "j.jsonl")
    assert len(study.rows) == 2 * 2 * 2
    assert set(study.table["likelihood"]) == {"arm", "symmetric"} and (study.table["reps"] == 2).all()
    assert study.register_hash and json.dumps(study.to_dict(), default=float)
    again = simstudy.fit_replicates(quick_spec.with_sampler(chains=2, draws=100, tune=150), None, [3],
                                    cells=(simstudy.Cell(1.0, 0.0), simstudy.Cell(0.5, 0.0)), reps=2,
                                    likelihoods=("arm", "symmetric"), seed=quick_spec.sampler.seed)
    mine = study.rows[study.rows["item"] == 3].sort_values("likelihood")
    (row,) = again
    np.testing.assert_array_equal(mine["median"].to_numpy(),
                                  [r["median"] for r in sorted(row["fits"], key=lambda r: r["likelihood"])])


def test_oc_command_writes_its_table(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "oc.json"
    result = subprocess.run([sys.executable, "-m", "bayes_msc", "oc", "mortality", "--reps", "3", "--alternative-reps", "2", "--draws", "100",
                             "--tune", "150", "--out", str(out)], capture_output=True, text=True, cwd=root,
                            env={**os.environ, "PYTHONPATH": str(root)}, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "P(OR < 0.8) > gamma" in result.stdout and "true OR 1" in result.stdout
    table = simstudy.oc_report_table(out)
    assert set(table["true_or"]) == {1.0, 0.8} and len(table) == 4
    assert dict(zip(table["true_or"], table["registers"])) == {1.0: 3, 0.8: 2}
    assert list(table.columns[3:]) == [f"gamma {g:g}" for g in simstudy.GAMMAS]
    assert table.attrs["control_risk"] == simstudy.CONTROL_RISKS["register"]
    assert "control risks: each trial's control risk drawn afresh" in result.stdout
    assert "false claims of benefit (P(OR < 1) > 0.95 when OR = 1)" in result.stdout
    assert not list(tmp_path.glob("*.partial.jsonl"))  # the journal is removed once the result is saved


@pytest.mark.parametrize("kwargs, fragment", [
    ({"reps": 1}, "operating_characteristics(reps=...)"),
    ({"alternative_reps": "100"}, "operating_characteristics(alternative_reps=...)"),
    ({"ors": (0.8,)}, "including the null"),
    ({"ors": (1.0, float("nan"))}, "operating_characteristics(ors=...)"),
])
def test_oc_library_arguments_are_refused_before_any_fit(quick_spec, kwargs, fragment):
    from bayes_msc.io.errors import InputError

    with pytest.raises(InputError, match=fragment.replace("(", r"\(").replace(")", r"\)").replace(".", r"\.")):
        simstudy.operating_characteristics(quick_spec, **kwargs)

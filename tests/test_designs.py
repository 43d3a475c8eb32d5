"""Design-aware evidence: selection by allocation class, the bias-adjusted and power-prior
models on simulated registers with a known design bias, and decision by provenance."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

import bayes_msc
from bayes_msc.engine import sampling
from bayes_msc.api import fit_spec
from bayes_msc.io.errors import InputError
from bayes_msc.evidence.mortality import MortalityEvidence
from bayes_msc.evidence.selection import design_sentence
from bayes_msc.analyses.provenance import provenance_levels, study_provenance
from simulated import simulate_mortality_evidence
from bayes_msc.spec import load_spec

NONRANDOMISED = ("shu2020", "adas2021", "xu2021", "chen2020", "haberle2021", "leng2020", "meng2020", "gregoire2022")


# -- selection on the embedded register (no sampling) ---------------------------------------


def _inclusion(evidence_set: str):
    spec = load_spec("mortality").with_evidence(evidence_set=evidence_set)
    evidence = spec.outcome_type.build_evidence(bayes_msc.load_register(), spec)
    return evidence, evidence.inclusion.set_index("study_id")


def test_default_pools_randomised_trials_only_and_says_why_the_others_are_out():
    evidence, inclusion = _inclusion("randomised")
    assert load_spec("mortality").evidence.evidence_set == "randomised"
    assert "zhu2021" in evidence.studies and "shu2020" not in evidence.studies
    assert set(evidence.allocations) == {"randomised"}
    for study in NONRANDOMISED:
        assert inclusion.loc[study, "reason"].startswith("design:"), study
    assert design_sentence(evidence.inclusion) == "10 randomised trials; 8 non-randomised studies not pooled: design"


def test_all_evidence_admits_the_non_randomised_studies_with_their_class():
    evidence, _ = _inclusion("all")
    allocation = dict(zip(evidence.studies, evidence.allocations))
    assert set(NONRANDOMISED) <= set(evidence.studies)
    assert allocation["gregoire2022"] == "historical_or_matched" and allocation["shu2020"] == "nonrandomised_concurrent"
    # Grégoire's day-28 count (inside the window) enters, not its day-60 one
    assert set(evidence.exact.loc[evidence.exact["study_id"] == "gregoire2022", "deaths"]) == {0, 5}
    assert design_sentence(evidence.inclusion).startswith("10 randomised trials; 8 non-randomised controlled studies")


def test_named_study_list_and_its_errors():
    evidence, inclusion = _inclusion("studies:zhu2021,shu2020")
    assert evidence.studies == ("shu2020", "zhu2021") and len(inclusion) == 2
    with pytest.raises(InputError, match="nosuch2020"):
        _inclusion("studies:zhu2021,nosuch2020")
    with pytest.raises(InputError, match="at least one study"):
        load_spec("mortality").with_evidence(evidence_set="studies:")
    with pytest.raises(InputError, match="unknown evidence set"):
        load_spec("mortality").with_evidence(evidence_set="full")


def test_design_bias_priors_exist_only_where_non_randomised_studies_can_enter():
    spec = load_spec("mortality")
    assert spec.priors.design_bias is None
    wide = spec.with_evidence(evidence_set="all")
    assert wide.priors.names["design_bias"] == "bias_neutral_0.5"
    assert wide.priors.design_heterogeneity is not None
    assert wide.with_evidence(evidence_set="randomised").priors.design_bias is None
    assert load_spec("oxygenation").with_evidence(evidence_set="all").priors.design_bias is None


def test_cli_data_show_lists_allocation_classes(capsys):
    from bayes_msc.cli import main

    assert main(["data", "show"]) == 0
    out = capsys.readouterr().out
    assert "10 randomised trials; 8 non-randomised studies not pooled: design" in out
    assert "Shu 2020 (nonrandomised_concurrent): excluded" in out
    assert "Grégoire 2022 (historical_or_matched): excluded" in out


def test_provenance_counts_arm_sizes_as_well_as_deaths():
    spec = load_spec("mortality").with_evidence(evidence_set="all")
    register = bayes_msc.load_register()
    evidence = spec.outcome_type.build_evidence(register, spec)
    provenance = study_provenance(register, evidence)
    assert provenance["bowdish2023"] == "primary"
    assert provenance["zhu2021"] == "inferred"  # deaths primary (Table 4), arm sizes inferred
    assert provenance["lanzoni2021"] == "inferred"
    levels = dict(provenance_levels(provenance, {"shu2020"}))
    assert "bowdish2023" in levels["primary numbers only"] and "zhu2021" not in levels["+ secondary"]
    assert "zhu2021" in levels["+ inferred"] and "shu2020" not in levels["+ assumption"]
    assert levels["+ non-randomised designs"] == set(evidence.studies)


# -- simulated registers with a known design bias ---------------------------------------------


def mixed_design_evidence(*, log_or: float, bias: float, seed: int, n: int = 150) -> MortalityEvidence:
    """Four randomised and four non-randomised two-arm trials; the non-randomised ones'
    effect is ``log_or + bias`` (simulated with the project's own generator, design by design)."""
    sizes = [(n, n)] * 4
    baselines = [-1.0, -0.6, -0.9, -0.7]
    parts = [
        simulate_mortality_evidence(sizes, log_or=log_or, tau=0.05, baseline_logit=baselines, seed=seed),
        simulate_mortality_evidence(sizes, log_or=log_or + bias, tau=0.05, baseline_logit=baselines, seed=seed + 1),
    ]
    studies, arms, exact, inclusion = [], [], [], []
    for k, part in enumerate(parts):
        rename = {s: f"{'rct' if k == 0 else 'nrs'}{s}" for s in part.studies}
        arm_offset = sum(len(a) for a in arms)
        study_offset = len(studies)
        studies += [rename[s] for s in part.studies]
        arms.append(part.arms.assign(study_id=part.arms["study_id"].map(rename),
                                     study_index=part.arms["study_index"] + study_offset))
        exact.append(part.exact.assign(study_id=part.exact["study_id"].map(rename),
                                       arm_index=part.exact["arm_index"] + arm_offset))
        inclusion.append(part.inclusion.assign(study_id=part.inclusion["study_id"].map(rename),
                                               allocation="randomised" if k == 0 else "nonrandomised_concurrent"))
    allocations = ("randomised",) * 4 + ("nonrandomised_concurrent",) * 4
    return MortalityEvidence(tuple(studies), pd.concat(arms, ignore_index=True), pd.concat(exact, ignore_index=True),
                             (), pd.concat(inclusion, ignore_index=True), f"mixed-{seed}", allocations)


def randomised_only(evidence: MortalityEvidence) -> MortalityEvidence:
    keep = [s for s, a in zip(evidence.studies, evidence.allocations) if a == "randomised"]
    arms = evidence.arms[evidence.arms["study_id"].isin(keep)].reset_index(drop=True)
    exact = evidence.exact[evidence.exact["study_id"].isin(keep)].reset_index(drop=True)
    return replace(evidence, studies=tuple(keep), arms=arms, exact=exact, allocations=("randomised",) * len(keep),
                   inclusion=evidence.inclusion[evidence.inclusion["study_id"].isin(keep)])


def _mean_and_se(result) -> tuple[float, float]:
    from bayes_msc.decisions import probability  # noqa: F401  (same MCSE machinery as P(benefit))
    import arviz as az

    draws = result.posterior["log_or"]
    summary = az.summary(result.tree, var_names=["log_or"], ci_prob=0.95, ci_kind="eti", round_to="none")
    return float(draws.mean()), float(summary["mcse_mean"].iloc[0])


@pytest.fixture(scope="module")
def all_spec():
    return load_spec("mortality").with_evidence(evidence_set="all").with_sampler(chains=2, draws=2000, tune=1000, seed=3)


TRUE_LOG_OR, TRUE_BIAS = -0.4, -0.7


@pytest.mark.slow
def test_bias_model_recovers_a_known_design_bias(all_spec):
    evidence = mixed_design_evidence(log_or=TRUE_LOG_OR, bias=TRUE_BIAS, seed=21)
    spec = all_spec.with_priors(all_spec.priors.with_parameter("design_bias", "sigma", 1.0))
    result = fit_spec(spec, evidence=evidence, compare_designs=False)
    bias = result.posterior["design_bias"].values.ravel()
    lower, upper = np.quantile(bias, [0.025, 0.975])
    assert lower < TRUE_BIAS < upper
    assert upper < 0  # the data, not the prior (Normal(0, 1)), place it: the interval excludes no bias
    pooled = result.decisions.pooled_effect
    assert pooled.lower < np.exp(TRUE_LOG_OR) < pooled.upper
    checks = {c.name: c for c in result.diagnostics.checks}
    assert checks["divergences"].value == 0 and checks["R-hat"].passed


@pytest.mark.slow
def test_power_prior_weight_one_pools_everything_and_zero_keeps_the_randomised_trials(all_spec):
    evidence = mixed_design_evidence(log_or=TRUE_LOG_OR, bias=TRUE_BIAS, seed=22)
    power = all_spec.with_model(nonrandomised="power_prior", power_prior_weight=1.0)
    full_weight = fit_spec(power, evidence=evidence, compare_designs=False)
    before = sampling.COMPILE_COUNT["nutpie"]
    zero_weight = fit_spec(power.with_model(power_prior_weight=0.0), evidence=evidence, compare_designs=False)
    assert sampling.COMPILE_COUNT["nutpie"] == before  # the weight is data: no recompile

    as_randomised = replace(evidence, allocations=("randomised",) * 8)
    pooled_all = fit_spec(all_spec, evidence=as_randomised, compare_designs=False)
    rct_only = fit_spec(all_spec, evidence=randomised_only(evidence), compare_designs=False)
    for weighted, reference in ((full_weight, pooled_all), (zero_weight, rct_only)):
        (m1, se1), (m2, se2) = _mean_and_se(weighted), _mean_and_se(reference)
        assert abs(m1 - m2) < 4 * np.hypot(se1, se2), (m1, m2, se1, se2)
    # and the two references differ by far more than that: the test can tell them apart
    (a, _), (b, _) = _mean_and_se(pooled_all), _mean_and_se(rct_only)
    assert abs(a - b) > 0.15


# -- a continuous outcome reported without any spread ------------------------------------------


def test_martinez_munoz_enters_with_a_borrowed_sd_and_a_stated_assumption():
    from bayes_msc.evidence.oxygenation import build_oxygenation_evidence

    evidence = build_oxygenation_evidence(bayes_msc.load_register(), load_spec("oxygenation").evidence)
    assert evidence.studies == ("monsel2022", "martinezmunoz2024")
    terms = evidence.terms.set_index(["study_id", "arm"])
    assert terms.loc[("martinezmunoz2024", "msc"), "estimate"] == 83.3
    assert terms.loc[("martinezmunoz2024", "control"), "estimate"] == 57.6
    assert terms["sd_missing"].astype(bool).sum() == 2 and not terms.loc["monsel2022", "sd_missing"].any()
    # the SDs it borrows from: Monsel's arm SDs from their IQRs (Wan 2014), days 7 and 14
    assert len(evidence.reported_sds) == 4 and 50 < min(evidence.reported_sds) < max(evidence.reported_sds) < 120
    entry = evidence.inclusion.set_index("study_id").loc["martinezmunoz2024"]
    assert entry["quality"] == "assumption" and "analysed as a mean (assumption)" in entry["reason"]


def test_borrowed_sd_is_learnt_from_the_reported_sds_not_the_plug_in():
    """A study whose SD is missing, with many reported SDs tightly around the true SD, gives
    the same pooled effect as the same study with its true SE, although the SE column it
    carries (a display plug-in) is deliberately wrong."""
    from bayes_msc.evidence.estimates import EstimateTable  # noqa: F401  (the normal-normal path stays unchanged)
    from bayes_msc.evidence.oxygenation import OxygenationEvidence, TERM_COLUMNS

    rng = np.random.default_rng(4)
    true_sd, n = 80.0, 10
    rows = []
    for j, (sid, nc, effect) in enumerate((("a", 40.0, 20.0), ("b", 50.0, 35.0), ("c", 45.0, 30.0))):
        for arm, treated in (("msc", 1), ("control", 0)):
            rows.append({"study_id": sid, "study_index": j, "kind": "arm", "arm": arm, "comparator": "",
                         "treated": treated, "estimate": nc + treated * effect, "se": true_sd / np.sqrt(n),
                         "se_is_bound": False, "day": 7, "timepoint": "day 7", "derivation": "", "quality": "primary",
                         "source": "test", "dose": None, "sd_missing": False, "n": n})
    known = pd.DataFrame(rows, columns=TERM_COLUMNS)
    missing = known.copy()
    last = missing["study_id"] == "c"
    missing.loc[last, "sd_missing"] = True
    missing.loc[last, "se"] = 1.0  # a wrong plug-in: the model must not use it
    inclusion = pd.DataFrame({"study_id": ["a", "b", "c"], "label": ["a", "b", "c"], "status": "included"})
    reported = tuple(true_sd * np.exp(0.03 * rng.standard_normal(40)))
    spec = load_spec("oxygenation").with_sampler(chains=2, draws=1000, tune=1000, seed=9)
    results = [
        fit_spec(spec, evidence=OxygenationEvidence(("a", "b", "c"), terms, pd.DataFrame(), inclusion, "t",
                                                    reported_sds=reported))
        for terms in (known, missing)
    ]
    assert "borrowed_sd" in results[1].posterior and "borrowed_sd" not in results[0].posterior
    borrowed = results[1].posterior["borrowed_sd"].values.ravel()
    assert 0.9 * true_sd < np.median(borrowed) < 1.1 * true_sd
    (m1, se1), (m2, se2) = (
        (float(r.posterior["mu"].mean()), float(r.summary(["mu"], raw=True)["mcse_mean"].iloc[0])) for r in results
    )
    assert abs(m1 - m2) < 4 * np.hypot(se1, se2) + 1.0, (m1, m2)
    # study c's own effect is as uncertain as with its true SE (the plug-in 1.0 would make it ~25x surer)
    spread = [float(r.posterior["study_effect"].sel(study="c").std()) for r in results]
    assert 0.85 < spread[1] / spread[0] < 1.2, spread


def test_flow_section_counts_and_escapes(relabelled_register):
    """The study flow's numbers come from the register and the inclusion table, and a
    study label with markup cannot break out of the SVG."""
    from types import SimpleNamespace

    from bayes_msc.report.flow import flow_counts, flow_section

    register = bayes_msc.load_register(relabelled_register("shu2020", "Shu <script>x</script>"))
    spec = load_spec("mortality")
    evidence = spec.outcome_type.build_evidence(register, spec)
    counts = flow_counts(register, evidence.inclusion)
    assert counts["register"] == 31 and counts["listed"] == 31 and counts["included"] == 10
    assert counts["register_by_allocation"]["randomised"] == 19  # 12 first-pass RCTs + 6 of §7 + Fathi-Kazerooni 2022
    assert counts["excluded_by_reason"]["design: not randomised (pooled only with --evidence all)"] == 8
    assert counts["included"] + counts["excluded"] == counts["listed"]
    ctx = SimpleNamespace(result=SimpleNamespace(evidence=evidence, design_shift=None, outcome=spec.outcome_type),
                          register=register, spec=spec)
    html = flow_section(ctx)
    assert "<svg" in html and "<script>" not in html
    assert "10 randomised trials; 8 non-randomised studies not pooled: design" in html


def test_design_bias_presets_enter_the_sensitivity_grid():
    from bayes_msc.analyses.sensitivity import prior_combinations

    plain = prior_combinations(load_spec("mortality"))
    mixed = prior_combinations(load_spec("mortality").with_evidence(evidence_set="all"))
    assert all("design_bias" not in c for c in plain)
    grid_plain = [c for c in plain if "baseline" not in c]  # the baseline-prior rows come after the grid
    grid_mixed = [c for c in mixed if "baseline" not in c]
    assert len(grid_mixed) == 3 * len(grid_plain)
    assert {c["design_bias"] for c in grid_mixed} == {"bias_neutral_0.5", "bias_brando_mortality", "bias_vague"}


@pytest.mark.slow
def test_provenance_table_widens_the_evidence_one_class_at_a_time():
    from bayes_msc.analyses.provenance import provenance_table, render_provenance

    spec = load_spec("mortality").with_sampler(chains=2, draws=500, tune=500, seed=5)
    before = sampling.COMPILE_COUNT["nutpie"]
    provenance = provenance_table(spec)
    assert sampling.COMPILE_COUNT["nutpie"] - before <= 1  # one structure; every restriction is a masked refit
    table = provenance.table.set_index("evidence")
    # read off the register: only Bowdish 2023 and Zarrabi 2023 enter with primary numbers alone
    assert table.loc["primary numbers only", "study_ids"] == "bowdish2023, zarrabi2023"
    assert list(table["studies"]) == [2, 5, 10, 10, 18]
    assert table["effect_lower"].lt(table["effect_median"]).all() and table["effect_median"].lt(table["effect_upper"]).all()
    assert "primary numbers only" in render_provenance(provenance)


@pytest.mark.slow
def test_provenance_table_for_oxygenation_speaks_its_units():
    """The provenance table is not mortality's alone: oxygenation widens by quality flag, then
    adds the single-arm study, all in mmHg words (one compiled model, masked refits)."""
    from bayes_msc.analyses.provenance import provenance_table, render_provenance, study_provenance

    spec = load_spec("oxygenation").with_sampler(chains=2, draws=500, tune=500, seed=4)
    table = provenance_table(spec)
    rows = table.table.set_index("evidence")
    every = spec.with_evidence(evidence_set="all")
    evidence = every.outcome_type.build_evidence(bayes_msc.load_register(), every)
    flags = study_provenance(bayes_msc.load_register(), evidence)
    # each level keeps exactly the randomised studies whose worst flag is allowed, then everything
    assert rows.loc["+ non-randomised designs", "studies"] == len(evidence.studies) == len(flags)
    assert rows.loc["+ assumption", "studies"] == sum(
        1 for s in evidence.studies if evidence.inclusion.set_index("study_id").loc[s, "allocation"] == "randomised")
    assert table.words["benefit"] == "P(difference > 0)" and "mmHg" in table.words["effect"]
    text = render_provenance(table)
    assert "P(difference > 20)" in text and "OR" not in text.replace("ORDER", "")


# -- the three-level bias model, term by term --------------------------------------------------


def test_bias_model_keeps_the_extra_heterogeneity_of_non_randomised_studies():
    """study_log_or_j = log_or + tau z_j + [j non-randomised] (bias_design(j) + kappa w_j), at a
    point chosen by hand: each non-randomised study has its design's bias and its own extra
    deviation kappa w_j; randomised studies have neither. (A recovery test that simulates one
    common bias cannot see kappa; this can.)"""
    from bayes_msc.models.mortality import build_mortality_model, mortality_inputs

    spec = load_spec("mortality").with_evidence(evidence_set="all")
    evidence = spec.outcome_type.build_evidence(bayes_msc.load_register(), spec)
    inputs = mortality_inputs(evidence, spec.priors, spec.model)
    model = build_mortality_model(inputs, spec.priors)
    designs = sorted({a for a in evidence.allocations if a != "randomised"})
    n = evidence.n_studies
    rng = np.random.default_rng(4)
    log_or, tau, kappa = -0.3, 0.2, 0.45
    z, w = rng.standard_normal(n), rng.standard_normal(n)
    bias = np.array([-0.6, 0.25])[: len(designs)]
    given = {model["log_or"]: np.asarray(log_or), model["tau"]: np.asarray(tau), model["study_effect_z"]: z,
             model["design_bias"]: bias, model["design_kappa"]: np.asarray(kappa), model["design_study_z"]: w}
    got = model["study_log_or"].eval(given)
    want = np.array([log_or + tau * z[j] + ((bias[designs.index(a)] + kappa * w[j]) if a != "randomised" else 0.0)
                     for j, a in enumerate(evidence.allocations)])
    np.testing.assert_allclose(got, want, rtol=1e-12)
    nonrandomised = np.array([a != "randomised" for a in evidence.allocations])
    assert nonrandomised.sum() == 8 and len(designs) == 2
    # and kappa moves exactly the non-randomised studies
    moved = model["study_log_or"].eval({**given, model["design_kappa"]: np.asarray(0.0)}) != got
    assert (moved == nonrandomised).all()

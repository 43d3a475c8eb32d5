"""Target populations (bayes_msc.models.populations): the selector, hostile inputs, the pooled
analysis left as it was, and the model's two limits against independent fits of the register.

Limits (expectations from other fits, not from the population model):

* population_sd -> 0: the population model is the pooled model, so the target's effect equals
  the pooled analysis' log OR (fit without a target population);
* population_sd huge (fixed near 20 on the log OR): each population is analysed on its own, so
  the COVID-19 population's effect equals a fit of the register restricted to its trials, with
  the effect prior the population model implies for it (Normal(0, sqrt(1.5^2 + 20^2))). With tau
  held near 0 in both (Half-normal(0.01)), the shared tau does not couple the populations.
"""

import html
import json
import math

import numpy as np
import pandas as pd
import pytest

from bayes_msc.api import fit, load_data, resolve_spec
from bayes_msc.cli import main
from bayes_msc.io.errors import InputError
from bayes_msc.models.populations import parse_population, population_effects, resolve_population
from bayes_msc.spec import load_spec, spec_from_dict
from bayes_msc.io.errors import Location

DATA = "data"


def _studies_by_cause() -> pd.Series:
    """ards_cause of each study, read from the register file directly (not through the package)."""
    return pd.read_csv(f"{DATA}/studies.csv").set_index("study_id")["ards_cause"]


# -- the selector and hostile inputs (no sampling) -------------------------------------------------


@pytest.mark.parametrize("text, words", [
    ("colour=blue", "unknown covariate"),
    ("publication_year=2020", "numeric covariate"),
    ("ards_cause=influenza", "has no level 'influenza'"),
    ("ards_cause=", "expected KEY=VALUE"),
    ("ards_cause", "expected KEY=VALUE"),
])
def test_bad_population_is_refused_with_the_reason(text, words):
    with pytest.raises(InputError, match=words):
        resolve_spec("mortality", population=text)


def test_two_covariates_at_once_are_refused():
    with pytest.raises(InputError, match="one covariate at a time"):
        resolve_spec("mortality", population=["ards_cause=covid", "rob2_overall=low"])


def test_values_of_one_key_are_grouped_into_one_population():
    selector = parse_population(["ards_cause=covid", "ards_cause=severe_covid_no_ards_definition,covid"],
                                Location("test"))
    assert selector.levels == ("covid", "severe_covid_no_ards_definition")
    assert selector.target == "covid+severe_covid_no_ards_definition"


def test_a_population_without_included_trials_is_refused_before_sampling():
    # h7n9_influenza is a declared level; no randomised trial of the register is in it
    causes = _studies_by_cause()
    assert "h7n9_influenza" not in set(causes[causes.index.isin(["zheng2014", "matthay2019", "bowdish2023"])])
    with pytest.raises(InputError, match="no included trial is in the population ards_cause=h7n9_influenza"):
        fit("mortality", population="ards_cause=h7n9_influenza", draws=10, tune=10, chains=1)


def test_cli_refuses_a_bad_population_in_one_line(capsys):
    assert main(["fit", "mortality", "--population", "ards_cause=influenza"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no level 'influenza'" in err[0]


@pytest.mark.parametrize("analysis", ["oxygenation"])
def test_other_outcomes_refuse_a_population(analysis):
    with pytest.raises(InputError, match="mortality analysis only"):
        resolve_spec(analysis, population="ards_cause=non_covid")


def test_the_spec_file_may_name_a_population_and_its_hash_records_it():
    raw = {"name": "m", "outcome": "mortality", "priors": {"effect": "default", "heterogeneity": "halfnormal_0.5",
                                                            "baseline": "default_baseline"},
           "model": {"population": ["ards_cause=non_covid"]}}
    spec = spec_from_dict(raw, "test.toml")
    assert spec.model.population.label == "ards_cause=non_covid"
    assert spec.to_dict()["model"]["population"] == ["ards_cause=non_covid"]
    assert spec.priors.population_heterogeneity.describe() == "HalfNormal(sigma=0.5)"
    del raw["model"]
    plain = spec_from_dict(raw, "test.toml")
    assert "population" not in plain.to_dict()["model"] and "population_heterogeneity" not in plain.to_dict()["priors"]
    assert plain.content_hash() != spec.content_hash()
    bad = {**raw, "model": {"population": ["ards_cause=flu"]}}
    with pytest.raises(InputError, match="test.toml.*model.population|no level 'flu'"):
        spec_from_dict(bad, "test.toml")


def test_the_pooled_analysis_is_unchanged():
    spec = load_spec("mortality")
    assert spec.model.population is None and spec.priors.population_heterogeneity is None
    assert "population" not in spec.to_dict()["model"]
    register = load_data(spec, None)
    evidence = spec.outcome_type.build_evidence(register, spec)
    inputs = spec.outcome_type.make_inputs(evidence, spec.priors, spec.model)
    assert "population" not in inputs.structure and "population" not in inputs.coords
    model = spec.outcome_type.build_model(inputs, spec.priors)
    assert not {"population_sd", "population_z"} & set(model.named_vars)


def test_population_prior_presets_and_overrides():
    spec = resolve_spec("mortality", population="ards_cause=non_covid", priors=["population_sd_1.0"])
    assert spec.priors.population_heterogeneity.sigma == 1.0
    spec = resolve_spec("mortality", population="ards_cause=non_covid",
                        priors=["population_heterogeneity=halfcauchy(beta=0.3)"])
    assert spec.priors.population_heterogeneity.family == "halfcauchy"
    # without a population the role does not exist
    with pytest.raises(InputError, match="unknown prior role"):
        resolve_spec("mortality", priors=["population_heterogeneity=halfnormal(sigma=1)"])


def test_each_trial_is_assigned_its_population_from_the_register():
    spec = resolve_spec("mortality", population="ards_cause=covid,severe_covid_no_ards_definition")
    resolved = resolve_population(spec, load_data(spec, None))
    causes = _studies_by_cause()
    groups = resolved.model.population.group_of()
    for study, cause in causes.items():
        expected = ("covid+severe_covid_no_ards_definition" if cause in ("covid", "severe_covid_no_ards_definition")
                    else cause)
        assert groups[study] == expected


# -- the two limits ------------------------------------------------------------------------------------


def _mean_and_mcse(draws) -> tuple[float, float]:
    import arviz_stats as azs
    import xarray as xr

    da = xr.DataArray(np.asarray(draws), dims=("chain", "draw"))
    return float(da.mean()), float(azs.mcse(da, method="mean"))


def _agree(a, b, what):
    (ma, sa), (mb, sb) = _mean_and_mcse(a), _mean_and_mcse(b)
    assert abs(ma - mb) < 4 * math.hypot(sa, sb) + 1e-3, f"{what}: {ma:.4f} vs {mb:.4f} (MCSE {sa:.4f}, {sb:.4f})"


@pytest.mark.slow
def test_no_between_population_sd_reproduces_the_pooled_analysis():
    pooled = fit("mortality")
    tight = fit("mortality", population="ards_cause=non_covid",
                priors=["population_heterogeneity=halfnormal(sigma=0.0001)"], target_accept=0.95)
    target = population_effects(tight.posterior).sel(population="non_covid").transpose("chain", "draw").values
    _agree(target, pooled.posterior["log_or"].transpose("chain", "draw").values, "target log OR vs pooled log OR")
    _agree(tight.posterior["tau"].values, pooled.posterior["tau"].values, "tau")


@pytest.mark.slow
def test_a_huge_between_population_sd_reproduces_separate_analyses():
    near_fixed = ["heterogeneity=halfnormal(sigma=0.01)"]
    wide = fit("mortality", population="ards_cause=covid",
               priors=near_fixed + [f"population_heterogeneity=lognormal(mu={math.log(20.0)},sigma=0.01)"])
    causes = _studies_by_cause()
    covid = [s for s in wide.evidence.studies if causes[s] == "covid"]
    assert len(covid) >= 5
    alone = fit("mortality", evidence="studies:" + ",".join(covid),
                priors=near_fixed + [f"effect=normal(mu=0,sigma={math.hypot(1.5, 20.0)})"])
    assert set(alone.evidence.studies) == set(covid)
    target = population_effects(wide.posterior).sel(population="covid").transpose("chain", "draw").values
    _agree(target, alone.posterior["log_or"].transpose("chain", "draw").values, "COVID-19 population vs its trials alone")
    p_wide = float((target < 0).mean())
    p_alone = float((alone.posterior["log_or"].values < 0).mean())
    assert abs(p_wide - p_alone) < 0.03


def test_the_population_sbc_runs_and_ranks_every_parameter():
    """The committed population SBC's code path, on two replicates: every ranked parameter
    (the target's log OR among them) has a rank in [0, N] per replicate."""
    from bayes_msc.analyses import population_checks

    result = population_checks.population_sbc(["ards_cause=non_covid"], n=2, seed=3, minutes=10)
    ranks = result["ranks"]
    assert result["n"] == 2 and list(ranks["replicate"]) == [0, 1]
    for name in population_checks.RANKED:
        values = list(ranks[name])
        assert len(values) == 2 and all(0 <= v <= result["n_draws"] for v in values), name
    json.dumps(result, default=str)  # what the script writes


def test_a_report_of_a_target_population_answers_for_that_population_first():
    """The report's headline effect of a population fit is the mean over populations; the
    target's own answer comes first, with its numbers from summary.json's population block."""
    from bayes_msc.report import render_report

    result = fit("mortality", population="ards_cause=non_covid", chains=2, draws=150, tune=300, seed=4)
    block = result.summary_dict()["population"]
    text = html.unescape(render_report(result))
    first = text.index("Target population ards_cause=non_covid")
    assert first < text.index("The numbers below are the mean over populations") < text.index("Pooling ")
    assert f"P(OR < 1) {100 * block['prob_benefit']['prob']:.1f}%" in text or \
        f"P(OR < 1) {round(100 * block['prob_benefit']['prob'])}%" in text

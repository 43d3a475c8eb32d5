"""Who benefits (bayes_msc.analyses.subgroups): the per-level table, one-trial levels marked and
never findings, hostile --by values, and the report section."""

import json

import pandas as pd
import pytest

from bayes_msc.analyses.subgroups import ONE_TRIAL, SubgroupLevel, Subgroups, render_subgroups, subgroup_spec
from bayes_msc.api import load_data, resolve_spec
from bayes_msc.cli import main
from bayes_msc.io.errors import InputError


def _level(name: str, trials: int) -> SubgroupLevel:
    return SubgroupLevel(name, tuple(f"s{i}" for i in range(trials)), trials, 50 * trials, 0.7, 0.4, 1.2, 0.9, 0.01)


def test_a_level_on_one_trial_is_shown_but_never_a_finding():
    sd = {"median": 0.3, "lower": 0.01, "upper": 1.0, "prior": "HalfNormal(sigma=0.5)", "prior_sd": 0.3,
          "posterior_sd": 0.28, "contraction": 0.1, "mostly_prior": True, "words": "mostly its prior"}
    table = Subgroups("cell_source", (_level("umbilical_cord", 5), _level("adipose", 1)), sd, 0.95, "h", "r", "PASS")
    text = render_subgroups(table)
    one_line = [line for line in text.splitlines() if line.startswith("adipose")][0]
    many_line = [line for line in text.splitlines() if line.startswith("umbilical_cord")][0]
    assert ONE_TRIAL in one_line and ONE_TRIAL not in many_line
    data = table.to_dict()
    assert [lv["finding"] for lv in data["levels"]] == [True, False]
    assert data["levels"][1]["note"] == ONE_TRIAL


@pytest.mark.parametrize("by, words", [("colour", "unknown covariate"), ("publication_year", "numeric")])
def test_bad_by_is_refused(by, words):
    spec = resolve_spec("mortality")
    with pytest.raises(InputError, match=words):
        subgroup_spec(spec, load_data(spec, None), by)


def test_cli_bad_by_is_one_line(capsys):
    assert main(["subgroups", "mortality", "--by", "baseline_pf_ratio"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "numeric" in err[0]


@pytest.mark.slow
def test_subgroups_by_cause_counts_trials_and_patients_from_the_register(capsys):
    assert main(["subgroups", "mortality", "--by", "ards_cause", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    studies = pd.read_csv("data/studies.csv").set_index("study_id")
    arms = pd.read_csv("data/arms.csv")
    spec = resolve_spec("mortality")
    included = spec.outcome_type.build_evidence(load_data(spec, None), spec)
    used_arms = {(s, a) for s, a in zip(included.arms["study_id"], included.arms["arm_id"])}
    for level in data["levels"]:
        expected = [s for s in included.studies if studies.loc[s, "ards_cause"] == level["level"]]
        assert sorted(level["studies"]) == sorted(expected)
        used = pd.Series([(s, a) in used_arms for s, a in zip(arms["study_id"], arms["arm_id"])], index=arms.index)
        n = arms[used & arms["study_id"].isin(expected)]["n"].sum()
        assert level["n_patients"] == int(n)
        assert 0 < level["odds_ratio_lower"] < level["odds_ratio_median"] < level["odds_ratio_upper"]
        assert level["finding"] == (len(expected) > 1)
    sd = data["between_level_sd"]
    assert sd["prior_sd"] == pytest.approx(0.5 * (1 - 2 / 3.141592653589793) ** 0.5, rel=1e-6)  # half-normal SD
    assert sd["mostly_prior"] == (sd["contraction"] < 0.5)

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


def test_simulated_control_risks_follow_the_register(quick_spec):
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
    result = subprocess.run([sys.executable, "-m", "bayes_msc", "oc", "mortality", "--reps", "3", "--draws", "100",
                             "--tune", "150", "--out", str(out)], capture_output=True, text=True, cwd=root,
                            env={**os.environ, "PYTHONPATH": str(root)}, timeout=600)
    assert result.returncode == 0, result.stderr
    assert "P(OR < 0.8) > gamma" in result.stdout and "true OR 1" in result.stdout
    table = simstudy.oc_report_table(out)
    assert set(table["true_or"]) == {1.0, 0.8} and len(table) == 4
    assert list(table.columns[2:]) == [f"gamma {g:g}" for g in simstudy.GAMMAS]
    assert not list(tmp_path.glob("*.partial.jsonl"))  # the journal is removed once the result is saved

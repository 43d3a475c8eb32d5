"""Outcomes are objects in a registry: the documented example outcome (docs/developers/
adding-an-outcome.md), written as a user would, registers and fits; every shipped outcome states
its roles and words."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


DEVELOPER_PAGE = ROOT / "docs" / "developers" / "adding-an-outcome.md"


def readme_block(first_line: str) -> str:
    """The code block of the developer page "Adding an outcome" whose first line is ``first_line``."""
    text = DEVELOPER_PAGE.read_text(encoding="utf-8")
    for block in re.findall(r"```(?:python|toml)\n(.*?)```", text, flags=re.S):
        if block.splitlines()[0].strip() == first_line:
            return block
    raise AssertionError(f"no block starting {first_line!r} in {DEVELOPER_PAGE.name}")


# Eight schools' estimates, read as days (Rubin 1981): per-study estimates with known SEs
EIGHT_SCHOOLS_Y = [28.39, 7.94, -2.75, 6.82, -0.64, 0.63, 18.01, 12.16]
EIGHT_SCHOOLS_SE = [14.9, 10.2, 16.3, 11.0, 9.4, 11.4, 10.4, 17.6]


def write_eight_schools(path):
    """Write the eight schools' estimates as a ``study,estimate,se`` file; return (y, se)."""
    rows = "\n".join(f"s{i},{a},{b}" for i, (a, b) in enumerate(zip(EIGHT_SCHOOLS_Y, EIGHT_SCHOOLS_SE)))
    path.write_text("study,estimate,se\n" + rows + "\n", encoding="utf-8")
    return EIGHT_SCHOOLS_Y, EIGHT_SCHOOLS_SE


def test_readme_outcome_example_registers_and_fits(tmp_path):
    """The documented ventilator-free-days outcome, run as written (in its own process, so its
    registration does not leak into other tests), on estimates whose pooled mean is known."""
    (tmp_path / "vfd.py").write_text(readme_block("# vfd.py"), encoding="utf-8")
    (tmp_path / "vfd.toml").write_text(readme_block("# vfd.toml"), encoding="utf-8")
    # Eight schools' estimates read as days: with nearly no heterogeneity allowed the pooled
    # mean is close to the precision-weighted mean (an independent number, computed here).
    y, se = write_eight_schools(tmp_path / "vfd_estimates.csv")
    code = (
        "import json, vfd, bayes_msc\n"
        "result = bayes_msc.fit('vfd.toml', data='vfd_estimates.csv', chains=2, draws=1000, tune=500, seed=3)\n"
        "d = result.decisions\n"
        "print(json.dumps({'measure': d.measure, 'unit': d.unit, 'mean': d.pooled_effect.mean,\n"
        "                  'p2': result.prob_benefit(2.0).prob, 'meaningful': d.prob_meaningful.prob,\n"
        "                  'roles': result.summary_dict()['parameters'], 'scale': result.spec.scale}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert (got["measure"], got["unit"], got["scale"]) == ("mean difference", "days", "days")
    assert got["roles"]["pooled_effect"] == "mu" and got["roles"]["model_scale"] == "days"
    assert got["p2"] == pytest.approx(got["meaningful"])
    weights = [1 / s**2 for s in se]
    fixed = sum(w * v for w, v in zip(weights, y)) / sum(weights)
    fixed_se = math.sqrt(1 / sum(weights))
    # tau's prior (half-normal 5 days) allows some heterogeneity, so allow 1 fixed-effect SE
    assert abs(got["mean"] - fixed) < fixed_se


def test_outcome_with_its_own_likelihood_is_one_module(tmp_path):
    """The documented robust outcome (its own Student-t likelihood, one module) and its report
    layout, run as written in their own process: it fits, its PyMC model and its NumPy pointwise
    twin agree on the log-likelihood at the posterior draws, and its report layout is found."""
    for name in ("robust_vfd.py", "robust_vfd_report.py"):
        (tmp_path / name).write_text(readme_block(f"# {name}"), encoding="utf-8")
    (tmp_path / "robust_vfd.toml").write_text(readme_block("# robust_vfd.toml"), encoding="utf-8")
    write_eight_schools(tmp_path / "vfd_estimates.csv")
    code = (
        "import json, numpy as np, pymc as pm, robust_vfd, robust_vfd_report, bayes_msc\n"
        "from bayes_msc.report.presentations import layout_for\n"
        "result = bayes_msc.fit('robust_vfd.toml', data='vfd_estimates.csv', chains=2, draws=300, tune=300, seed=3)\n"
        "outcome = result.outcome\n"
        "post = result.tree['posterior'].to_dataset()\n"
        "inputs = outcome.make_inputs(result.evidence, result.spec.priors, result.spec.model)\n"
        "model = outcome.build_model(inputs, result.spec.priors)\n"
        "point = {}\n"
        "for rv in model.free_RVs:\n"
        "    x, tr = post[rv.name][0, 0].values, model.rvs_to_transforms.get(rv)\n"
        "    point[model.rvs_to_values[rv].name] = tr.forward(x, *rv.owner.inputs).eval() if tr is not None else x\n"
        "pymc_loglik = float(model.compile_fn(model.logp(vars=model.potentials), on_unused_input='ignore')(point))\n"
        "print(json.dumps({'measure': result.decisions.measure, 'unit': result.decisions.unit,\n"
        "                  'pymc': pymc_loglik, 'numpy': float(result.tree['log_likelihood'].to_dataset()['estimate'][0, 0].sum()),\n"
        "                  'sections': len(layout_for(outcome))}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr[-3000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert (got["measure"], got["unit"]) == ("mean difference", "days")
    assert got["pymc"] == pytest.approx(got["numpy"], rel=1e-6)
    assert got["sections"] > 0


def test_every_outcome_states_roles_and_words():
    from bayes_msc.outcomes import OUTCOMES
    from bayes_msc.priors import PRESETS

    assert {"mortality", "oxygenation", "normal_normal"} <= set(OUTCOMES)
    for outcome in OUTCOMES.values():
        roles = outcome.parameter_roles()
        assert set(roles) == {"pooled_effect", "predictive_effect", "study_effects", "tau", "measure", "model_scale"}
        assert outcome.prior_scale in PRESETS
        assert outcome.measure.name and outcome.measure.short


def test_what_is_measured_is_a_frozen_record_and_presentation_lives_beside_the_report():
    import dataclasses

    from bayes_msc.outcomes import OUTCOMES, Measured
    from bayes_msc.report.presentations import PRESENTATIONS

    for outcome in OUTCOMES.values():
        assert isinstance(outcome.record, Measured)
        assert (outcome.name, outcome.measure, outcome.roles) == (outcome.record.name, outcome.record.measure,
                                                                   outcome.record.roles)
        with pytest.raises(dataclasses.FrozenInstanceError):
            outcome.record.name = "other"  # type: ignore[misc]
        assert not hasattr(outcome, "report_layout")
    assert {"mortality", "oxygenation"} <= set(PRESENTATIONS)
    assert "normal_normal" not in PRESENTATIONS  # its report is the generic layout (no presentation of its own)


def test_unknown_outcome_names_the_known_ones(tmp_path):
    from bayes_msc.io.errors import InputError
    from bayes_msc.spec import load_spec

    path = tmp_path / "x.toml"
    path.write_text('name = "x"\noutcome = "adverse_events"\n[priors]\n', encoding="utf-8")
    with pytest.raises(InputError, match="unknown outcome 'adverse_events'; known: mortality"):
        load_spec(path)


def test_summary_json_has_the_same_keys_for_every_outcome(tmp_path):
    import bayes_msc
    from bayes_msc.evidence.estimates import write_estimates

    estimates = write_estimates(tmp_path / "est.csv", [0.2, -0.4, 0.1], [0.3, 0.5, 0.4])
    fast = {"chains": 2, "draws": 200, "tune": 200, "seed": 1}
    results = [bayes_msc.fit("mortality", **fast), bayes_msc.fit("oxygenation", **fast),
               bayes_msc.fit("normal_normal", data=estimates, measure="log_ratio", benefit_direction="increase", **fast)]
    summaries = [r.summary_dict() for r in results]
    assert all(set(s) == set(summaries[0]) for s in summaries)
    decision_keys = [set(s["decisions"]) for s in summaries]
    assert all(k == decision_keys[0] for k in decision_keys)
    for s in summaries:
        for key in ("pooled_effect", "predictive_effect", "tau"):
            assert {"median", "lower", "upper", "mcse_median", "ci_prob", "ci_kind"} <= set(s["decisions"][key])
        for key in ("prob_benefit", "prob_meaningful", "predictive_prob_benefit"):
            assert set(s["decisions"][key]) == {"prob", "mcse", "event"}
    assert [s["parameters"]["pooled_effect"] for s in summaries] == ["log_or", "mu", "mu"]
    assert [s["decisions"]["measure"] for s in summaries] == ["odds ratio", "mean difference", "log ratio"]
    assert set(summaries[0]["decisions"]["outcome_specific"]) == {"baseline_risk", "absolute_risk_reduction", "nnt"}
    assert set(summaries[1]["decisions"]["outcome_specific"]) == {"natural_course_mean"}
    # posterior.nc carries the same role map
    assert json.loads(results[0].tree.attrs["bayes_msc_parameter_roles"]) == summaries[0]["parameters"]

"""Registers in which no study can inform the odds ratio: prior-like answers and a warning."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SIZES = ((12, 12), (65, 35), (20, 10))


def flat_register(root: Path, all_die: bool) -> Path:
    """Three two-arm trials with no deaths (or only deaths) in every arm."""
    from simulated import write_register

    provenance = {"source": "test", "quality": "assumption"}
    studies, arms, rows = [], [], []
    for j, sizes in enumerate(SIZES):
        sid = f"flat{j}"
        studies.append({"study_id": sid, "label": f"Flat {j}", "design": "rct", "allocation": "randomised",
                        "status": "published", **provenance})
        for (arm, role), n in zip((("msc", "cells"), ("control", "control")), sizes):
            arms.append({"study_id": sid, "arm_id": arm, "label": arm, "role": role,
                         "product_class": "umbilical_cord" if role == "cells" else "none", "n": n, **provenance})
            rows.append({"study_id": sid, "arms": arm, "day": 28, "timepoint": "day 28",
                         "deaths": n if all_die else 0, **provenance})
    return write_register(root, {"studies": studies, "arms": arms, "mortality": rows})


@pytest.mark.parametrize("all_die", [False, True])
def test_register_without_contrast_gives_prior_like_benefit_under_the_default(tmp_path, quick_spec, all_die):
    """With no information on the OR, P(OR < 1) must stay near the prior's 0.5. The arm
    coding fails this (the issue measured 0.9996 with no deaths): the treated arm can move
    through the effect while the control arm is held by its baseline prior."""
    from bayes_msc.api import fit_spec
    from bayes_msc.evidence.register import load_register
    from bayes_msc.models.sparse import DEFAULT_LIKELIHOOD, sparse_data_warning

    register = load_register(flat_register(tmp_path / "reg", all_die))
    assert quick_spec.model.likelihood == DEFAULT_LIKELIHOOD
    result = fit_spec(quick_spec, register)
    assert 0.3 <= result.decisions.prob_benefit.prob <= 0.7
    warning = sparse_data_warning(result.evidence)
    assert all(f"flat{j}" in warning for j in range(3))
    assert ("all patients died" if all_die else "no deaths") in warning
    arm = fit_spec(quick_spec.with_model(likelihood="arm"), register).decisions.prob_benefit.prob
    assert (arm < 0.1) if all_die else (arm > 0.9)  # the bias the default avoids


def test_no_warning_when_one_study_has_a_contrast(tmp_path, quick_spec):
    import csv

    from bayes_msc.evidence.register import load_register
    from bayes_msc.models.sparse import sparse_data_warning, uninformative_studies

    root = flat_register(tmp_path / "reg", all_die=False)
    path = root / "mortality.csv"
    rows = list(csv.DictReader(path.open(encoding="utf-8")))
    rows[0]["deaths"] = "3"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    evidence = quick_spec.outcome_type.build_evidence(load_register(root), quick_spec)
    assert sparse_data_warning(evidence) == ""
    assert set(uninformative_studies(evidence)) == {"flat1", "flat2"}


def test_embedded_register_has_no_warning_but_shi_is_not_flat(quick_spec):
    """Shi 2021 (0-1/65 vs 0/35) allows one death, so it is not flagged as uninformative."""
    from bayes_msc.evidence.register import load_register
    from bayes_msc.models.sparse import sparse_data_warning, uninformative_studies

    evidence = quick_spec.outcome_type.build_evidence(load_register(), quick_spec)
    assert sparse_data_warning(evidence) == ""
    assert "shi2021" not in uninformative_studies(evidence)


def test_cli_warns_and_names_the_studies(tmp_path):
    root = flat_register(tmp_path / "reg", all_die=False)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-m", "bayes_msc", "fit", "mortality", "--data", str(root),
                             "--chains", "2", "--draws", "200", "--tune", "200"],
                            capture_output=True, text=True, cwd=ROOT, env=env, timeout=600)
    assert result.returncode == 0, result.stderr
    warning = [line for line in result.stderr.splitlines() if "no included study has both" in line]
    assert len(warning) == 1 and all(f"flat{j} (no deaths)" in warning[0] for j in range(3))

"""Simulated evidence from known parameters, for the tests (recovery tests, SBC, zero-event cases).

Draws arm deaths from the model's own generative process, so a correct sampler must recover
the parameters used: ``logit p = baseline_j + treated * (log_or + tau * z_j)``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from bayes_msc.evidence.mortality import MortalityEvidence


def simulate_mortality_evidence(
    arm_sizes: list[tuple[int, int]],
    *,
    log_or: float,
    tau: float,
    baseline_logit: np.ndarray | list[float],
    seed: int,
) -> MortalityEvidence:
    """Two-arm trials (cells n, control n) with binomial deaths from known parameters.

    The deaths come from the mortality outcome's own simulator (the one SBC uses), applied to
    evidence of the given arm sizes.
    """
    from bayes_msc.outcomes.mortality import MORTALITY

    rng = np.random.default_rng(seed)
    studies = tuple(f"sim{j + 1:02d}" for j in range(len(arm_sizes)))
    arms, exact = [], []
    for j, (sid, (n_cells, n_control)) in enumerate(zip(studies, arm_sizes)):
        for arm_id, treated, n in (("cells", 1, n_cells), ("control", 0, n_control)):
            arms.append(
                {"study_id": sid, "arm_id": arm_id, "label": arm_id, "study_index": j, "treated": treated,
                 "product_class": "simulated" if treated else "none", "dose_per_kg": np.nan, "n": n}
            )
            exact.append({"arm_index": len(arms) - 1, "study_id": sid, "arm_id": arm_id, "deaths": 0, "n": n})
    inclusion = pd.DataFrame(
        [{"study_id": s, "label": s, "seed": False, "status": "included", "contribution": "exact",
          "detail": "simulated", "reason": "", "quality": "simulated", "source": f"simulate seed {seed}"}
         for s in studies]
    )
    template = MortalityEvidence(
        studies=studies, arms=pd.DataFrame(arms), exact=pd.DataFrame(exact), partial=(),
        inclusion=inclusion, register_hash=f"simulated-{seed}",
    )
    truth = {"log_or": log_or, "tau": tau, "z": rng.standard_normal(len(studies)),
             "baseline_logit": np.asarray(baseline_logit, dtype=float)}
    return MORTALITY.simulate(template, truth, rng)


def write_register(root, tables: dict[str, list[dict]]) -> "Path":
    """Write a register folder: one CSV per schema table, columns in schema order.

    Missing cells are left empty; tables not given are written with their header only, so
    the result loads with :func:`bayes_msc.load_register` like any user's register.
    """
    import csv
    import io

    from bayes_msc.evidence.schema import TABLES
    from bayes_msc.io.fileio import write_atomic

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    for table in TABLES:
        buffer = io.StringIO(newline="")
        writer = csv.DictWriter(buffer, fieldnames=list(table.column_names))
        writer.writeheader()
        for record in tables.get(table.name, []):
            writer.writerow({k: ("" if v is None else v) for k, v in record.items()})
        write_atomic(root / table.file_name, buffer.getvalue())
    return root


def emax_curve(dose, emax: float, ed50: float):
    return emax * np.asarray(dose, dtype=float) / (ed50 + np.asarray(dose, dtype=float))


def simulate_dose_register(
    root,
    designs: list[tuple[float, ...]],
    *,
    table: str,
    emax: float,
    ed50: float,
    tau: float,
    seed: int,
    n_per_arm: int = 60,
    natural_course: float = 40.0,
    sd: float = 60.0,
    baseline_risk: float = 0.35,
):
    """A register of trials with a control arm and cell arms at known per-kg doses.

    Study j's cell arm at dose d has effect ``tau * z_j + emax * d / (ed50 + d)``: a change in
    PaO2/FiO2 (``table="oxygenation"``: arm means of change with SD ``sd``) or a log odds
    ratio of death (``table="mortality"``: binomial deaths around ``baseline_risk``); ``table``
    is the register table the observations go to.
    """
    if table not in ("oxygenation", "mortality"):
        raise ValueError(f"table must be 'oxygenation' or 'mortality', got {table!r}")
    rng = np.random.default_rng(seed)
    studies, arms, doses, observations = [], [], [], []
    provenance = {"source": f"simulate_dose_register seed {seed}", "quality": "assumption"}
    base_logit = np.log(baseline_risk / (1 - baseline_risk))
    for j, design in enumerate(designs):
        sid = f"sim{j:02d}"
        studies.append({"study_id": sid, "label": f"Simulated {j}", "design": "rct", "allocation": "randomised",
                        "status": "published",
                        "n_total": n_per_arm * (len(design) + 1), **provenance})
        deviation = tau * rng.standard_normal()
        nc = natural_course + 15.0 * rng.standard_normal()
        logit0 = base_logit + 0.3 * rng.standard_normal()
        for k, dose in enumerate((None, *design)):
            arm_id = "control" if dose is None else f"dose{k}"
            treated = dose is not None
            arms.append({"study_id": sid, "arm_id": arm_id, "label": arm_id, "role": "cells" if treated else "control",
                         "product_class": "umbilical_cord" if treated else "none",
                         "control_type": "" if treated else "placebo", "n": n_per_arm, **provenance})
            effect = deviation + float(emax_curve(dose, emax, ed50)) if treated else 0.0
            if treated:
                doses.append({"study_id": sid, "arm_id": arm_id, "dose_per_kg": dose, "infusions": 1, **provenance})
            if table == "oxygenation":
                mean = nc + effect + sd / np.sqrt(n_per_arm) * rng.standard_normal()
                observations.append({"study_id": sid, "arm": arm_id, "measure": "pf_ratio",
                                     "quantity": "change_from_baseline", "day": 7, "timepoint": "day 7",
                                     "statistic": "mean_sd", "estimate": round(float(mean), 4), "sd": sd, **provenance})
            else:
                p = 1.0 / (1.0 + np.exp(-(logit0 + effect)))
                observations.append({"study_id": sid, "arms": arm_id, "day": 28, "timepoint": "day 28",
                                     "deaths": int(rng.binomial(n_per_arm, p)), **provenance})
    return write_register(root, {"studies": studies, "arms": arms, "doses": doses, table: observations})

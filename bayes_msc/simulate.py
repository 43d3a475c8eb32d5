"""Simulated mortality evidence from known parameters (recovery tests, SBC).

Draws arm deaths from the model's own generative process, so a correct sampler must recover
the parameters used: ``logit p = baseline_j + treated * (log_or + tau * z_j)``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from .evidence.mortality import MortalityEvidence


def simulate_mortality_evidence(
    arm_sizes: list[tuple[int, int]],
    *,
    log_or: float,
    tau: float,
    baseline_logit: np.ndarray | list[float],
    seed: int,
) -> MortalityEvidence:
    """Two-arm trials (cells n, control n) with binomial deaths from known parameters."""
    rng = np.random.default_rng(seed)
    baseline = np.asarray(baseline_logit, dtype=float)
    studies = tuple(f"sim{j + 1:02d}" for j in range(len(arm_sizes)))
    study_effect = log_or + tau * rng.standard_normal(len(studies))
    arms, exact = [], []
    for j, (sid, (n_cells, n_control)) in enumerate(zip(studies, arm_sizes)):
        for arm_id, treated, n in (("cells", 1, n_cells), ("control", 0, n_control)):
            p = 1.0 / (1.0 + np.exp(-(baseline[j] + treated * study_effect[j])))
            index = len(arms)
            arms.append(
                {"study_id": sid, "arm_id": arm_id, "label": arm_id, "study_index": j, "treated": treated,
                 "product_class": "simulated" if treated else "none", "dose_per_kg": np.nan, "n": n}
            )
            exact.append({"arm_index": index, "study_id": sid, "arm_id": arm_id, "deaths": int(rng.binomial(n, p)), "n": n})
    inclusion = pd.DataFrame(
        [{"study_id": s, "label": s, "seed": False, "status": "included", "contribution": "exact",
          "detail": "simulated", "reason": "", "quality": "simulated", "source": f"simulate seed {seed}"}
         for s in studies]
    )
    return MortalityEvidence(
        studies=studies,
        arms=pd.DataFrame(arms),
        exact=pd.DataFrame(exact),
        partial=(),
        inclusion=inclusion,
        register_hash=f"simulated-{seed}",
    )

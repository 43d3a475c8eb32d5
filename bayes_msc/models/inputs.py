"""The data a compiled model reads, kept apart from the model graph.

A :class:`ModelInputs` holds every value that enters a PyMC model as ``pm.Data`` (observed
counts, indices, prior hyperparameters) plus the coordinates and the *structure* (prior
families, dose-response form). Two inputs with the same :meth:`structure_key` can share one
compiled model: the sampler swaps values in through nutpie's ``with_data`` instead of
compiling again.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np


@dataclass(frozen=True)
class ModelInputs:
    kind: str  # which builder: "mortality", ...
    values: dict[str, np.ndarray]
    coords: dict[str, tuple[str, ...]]
    structure: dict[str, Any] = field(default_factory=dict)

    def structure_key(self) -> str:
        """Hash of everything that fixes the compiled graph: builder, structure, shapes, coords."""
        shape_sig = {name: [list(np.shape(v)), str(np.asarray(v).dtype)] for name, v in sorted(self.values.items())}
        payload = {
            "kind": self.kind,
            "structure": self.structure,
            "shapes": shape_sig,
            "coords": {k: list(v) for k, v in sorted(self.coords.items())},
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def with_values(self, **values: np.ndarray) -> "ModelInputs":
        unknown = set(values) - set(self.values)
        if unknown:
            raise KeyError(f"no model data named {sorted(unknown)[0]!r}")
        return replace(self, values={**self.values, **{k: np.asarray(v) for k, v in values.items()}})


def prior_values(priors) -> dict[str, np.ndarray]:
    """Prior hyperparameters as model data, named ``prior_<role>_<parameter>``."""
    return {
        f"prior_{role}_{name}": np.asarray(value, dtype="float64")
        for role, prior in priors.by_role().items()
        for name, value in prior.hyperparameters().items()
    }


def prior_data(data: dict[str, Any], role: str, prior) -> dict[str, Any]:
    """The ``pm.Data`` handles of one role's hyperparameters, keyed by parameter name."""
    return {name: data[f"prior_{role}_{name}"] for name in prior.hyperparameters()}

"""The data a compiled model reads, kept apart from the model graph.

A :class:`ModelInputs` holds every array a PyMC model reads (observed counts, indices, prior
hyperparameters) plus the coordinates and the *structure* (prior families, dose-response
form). Two inputs with the same :meth:`structure_key` can share one compiled model: the
sampler swaps values in through nutpie's ``with_data`` instead of compiling again.

How the arrays enter the graph is chosen for compile time, which is what a user waits for
(sampling takes a fraction of a second):

* integer arrays are the *layout* — which study, arm or slot each observation reads. They
  are compiled in as constants and hashed into the structure key, so different layouts
  never share a compiled model;
* every float array (counts, estimates, standard errors, hyperparameters) is a slice of ONE
  shared vector, :data:`MODEL_DATA`, with a static shape. Each shared variable costs nutpie
  extraction code that numba compiles in every process (about 0.5 s each on 2 cores, cold
  or warm cache). Measured on the mortality model: constants for the layout and one vector
  instead of sixteen shared arrays took a cold compile from about 25 s to 14 s and a warm
  one from about 10 s to 6 s.
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
        """Hash of everything that fixes the compiled graph: builder, structure, shapes,
        coords and the layout (integer) arrays' contents."""
        shape_sig = {name: [list(np.shape(v)), str(np.asarray(v).dtype)] for name, v in sorted(self.values.items())}
        payload = {
            "kind": self.kind,
            "structure": self.structure,
            "shapes": shape_sig,
            "layout": {name: np.asarray(v).tolist() for name, v in sorted(self.values.items()) if is_layout(v)},
            "coords": {k: list(v) for k, v in sorted(self.coords.items())},
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]

    def structure_difference(self, other: "ModelInputs") -> str:
        """In words, the first thing that stops ``other``'s compiled model serving these inputs
        (for the log line that explains a compilation); "" when nothing does."""
        if self.kind != other.kind:
            return f"a different model ({other.kind} -> {self.kind})"
        for key in sorted(set(self.structure) | set(other.structure)):
            if self.structure.get(key) != other.structure.get(key):
                return f"{key}: {other.structure.get(key)} -> {self.structure.get(key)}"
        for name in sorted(set(self.values) | set(other.values)):
            if (name in self.values) != (name in other.values):
                return f"data {name!r} {'added' if name in self.values else 'removed'}"
            new, old = np.asarray(self.values[name]), np.asarray(other.values[name])
            if new.shape != old.shape or new.dtype != old.dtype:
                return f"shape of {name!r}: {old.shape} -> {new.shape}"
            if is_layout(new) and not np.array_equal(new, old):
                return f"layout {name!r} (which study, arm or slot each value belongs to) changed"
        for dim in sorted(set(self.coords) | set(other.coords)):
            if self.coords.get(dim) != other.coords.get(dim):
                return f"coordinates of {dim!r} changed"
        return ""

    def packed(self) -> np.ndarray:
        """The float arrays, flattened into the one vector the compiled model reads."""
        parts = [np.asarray(v, dtype="float64").ravel() for _, v in _packed_items(self.values)]
        return np.concatenate(parts) if parts else np.zeros(0)

    def with_values(self, **values: np.ndarray) -> "ModelInputs":
        """New values for existing arrays, kept in each array's dtype (so integer deaths given
        for float counts stay data, not layout)."""
        unknown = set(values) - set(self.values)
        if unknown:
            raise KeyError(f"no model data named {sorted(unknown)[0]!r}")
        cast = {k: np.asarray(v, dtype=np.asarray(self.values[k]).dtype) for k, v in values.items()}
        return replace(self, values={**self.values, **cast})


MODEL_DATA = "model_data"  # the one shared variable of every compiled model


def is_layout(value) -> bool:
    """Integer arrays are layout (compiled in); everything else is swappable data."""
    return np.issubdtype(np.asarray(value).dtype, np.integer)


def _packed_items(values: dict[str, np.ndarray]) -> list[tuple[str, np.ndarray]]:
    return [(name, v) for name, v in sorted(values.items()) if not is_layout(v)]


def new_model(inputs: ModelInputs):
    """An empty ``pm.Model`` with the inputs' coordinates.

    ``check_bounds=False`` drops PyMC's run-time parameter checks from the compiled graph
    (fewer operations to compile). Nothing is lost: prior hyperparameters are validated when
    a prior is made (:meth:`bayes_msc.priors.Prior.validate`), standard errors and counts
    when evidence is read, and the likelihoods are written on scales (logits, softplus)
    where every parameter value is valid.
    """
    import pymc as pm

    return pm.Model(coords={k: list(v) for k, v in inputs.coords.items()}, check_bounds=False)


def model_data(inputs: ModelInputs) -> dict[str, Any]:
    """Every array of ``inputs`` as a tensor, by name (call inside the model's context).

    Layout arrays become constants; the float arrays become static-shape views into the one
    ``pm.Data`` vector :data:`MODEL_DATA` (see the module docstring for why).
    """
    import pymc as pm
    import pytensor.tensor as pt

    packed = inputs.packed()
    flat = pm.Data(MODEL_DATA, packed, shape=packed.shape)
    data: dict[str, Any] = {}
    offset = 0
    for name, value in _packed_items(inputs.values):
        shape = np.shape(value)
        size = int(np.prod(shape, dtype=int))
        data[name] = flat[offset:offset + size].reshape(shape) if shape else flat[offset]
        offset += size
    for name, value in inputs.values.items():
        if is_layout(value):
            data[name] = pt.constant(np.asarray(value), name=name)
    return data


def set_model_data(model, inputs: ModelInputs) -> None:
    """Give a model built by :func:`model_data` the float values of ``inputs``."""
    import pymc as pm

    pm.set_data({MODEL_DATA: inputs.packed()}, model=model)


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

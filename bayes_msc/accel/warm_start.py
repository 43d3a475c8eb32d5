"""A warm start that builds no pytensor function: a compiled model reassembled from disk.

With nutpie's callbacks cached (:mod:`bayes_msc.accel.callback_cache`), most of what a warm
``compile`` still spent — about 2 of 2.4 s on 2 cores — was nutpie rebuilding the pytensor
functions (graph rewrites, numba dispatch) only to compute the key under which the cached
callbacks are found, plus the sizes, shapes and names around them. After a compile this
module writes those few facts to ``<cache>/compiled/<key>.json``; a later process with the
same model structure reassembles nutpie's ``CompiledPyMCModel`` from them: the two callbacks
come straight from numba's cache, the starting-point function is built as nutpie builds it
(so draws are bit-identical, tested), and nothing else is compiled.

The file's key covers everything the reassembled model depends on: the structure key of the
model inputs, the versions of numba, llvmlite, pytensor, pymc and nutpie, and the source of
this package (a changed model builder must never meet callbacks compiled for the old one).
The model built in this process is also checked against the file (names and shapes of its
variables, the layout of its data) before anything is reused. When anything is missing or
differs — or for a callback numba no longer has — :func:`load` returns ``None`` and the
model is compiled as usual.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import os
import tempfile
import uuid
from pathlib import Path
from typing import Any

FORMAT = 1


@functools.cache
def _code_and_versions() -> str:
    """Hash of this package's source and the versions of the libraries that compile it."""
    from importlib.metadata import version

    digest = hashlib.sha256(json.dumps(
        {name: version(name) for name in ("numba", "llvmlite", "pytensor", "pymc", "nutpie")} | {"format": FORMAT},
        sort_keys=True).encode())
    # the whole package, not only this folder: a model builder's change must not reuse what an
    # earlier builder recorded under the same structure key
    package = Path(__file__).resolve().parents[1]
    for path in sorted(package.rglob("*.py")):
        digest.update(str(path.relative_to(package)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _path(structure_key: str) -> Path:
    """Beside the numba cache entries it refers to: in pytensor's compile folder, as it is
    set while the model compiles (so clearing pytensor's cache clears these too)."""
    import pytensor

    return Path(pytensor.config.compiledir) / "bayes_msc_warm_start" / f"{structure_key}-{_code_and_versions()}.json"


def _value_names(model) -> list[str]:
    return [model.rvs_to_values[rv].name for rv in model.free_RVs]


def record(structure_key: str, model, compiled) -> None:
    """After a compile: write what :func:`load` needs (only for cached lean callbacks)."""
    from . import callback_cache

    keys = {kind: callback_cache.key_of(getattr(getattr(compiled, f"compiled_{kind}_func"), "__wrapped__", None))
            for kind in ("logp", "expand")}
    if None in keys.values():
        return
    names, slices, shapes = compiled.shape_info
    facts = {
        "n_dim": int(compiled.n_dim),
        "n_expanded": int(compiled.n_expanded),
        "names": list(names),
        "slices": [[int(s.start), int(s.stop)] for s in slices],
        "shapes": [[int(n) for n in shape] for shape in shapes],
        "reparameterized_names": list(compiled.reparameterized_names or []),
        "shared": [var.name for var in compiled.shared_var_keys],
        "record": callback_cache.anonymous_layout(compiled.user_data.dtype),
        "free": _value_names(model),
        "callback_keys": keys,
    }
    path = _path(structure_key)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    with os.fdopen(handle, "w", encoding="utf-8") as out:
        json.dump(facts, out)
    os.replace(temporary, path)  # atomic: workers sharing the cache never read half a file


def load(structure_key: str, model) -> Any | None:
    """nutpie's compiled model for ``model`` from disk, or ``None`` (then compile)."""
    path = _path(structure_key)
    try:
        facts = json.loads(path.read_text(encoding="utf-8"))
    except OSError:
        return None
    except ValueError:  # damaged: moved aside, and the compile that follows writes it anew
        logging.getLogger(__name__).warning("the compile cache in %s had a damaged file (%s); moved aside as "
                                            "%s.damaged, compiling afresh", path.parent, path.name, path.name)
        with contextlib.suppress(OSError):
            path.replace(path.with_name(path.name + ".damaged"))
        return None
    try:
        return _assemble(facts, model)
    except Exception as exc:  # noqa: BLE001 — anything unexpected: compile as usual
        logging.getLogger(__name__).info("accel: compiled model not reassembled from %s (%s: %s); compiling",
                                         path, type(exc).__name__, exc)
        return None


def _assemble(facts: dict, model):
    import numpy as np
    from nutpie.compile_pymc import (
        CompiledPyMCModel,
        _prepare_dims_and_coords,
        _rv_dict_to_flat_array_wrapper,
        _wrap_with_lock,
        make_user_data,
    )
    from pymc.initial_point import make_initial_point_fn

    from . import callback_cache
    from .nutpie_callbacks import cached_callback

    if _value_names(model) != facts["free"]:
        return None
    shared = {var.name: var for var in model.data_vars}
    if any(name not in shared for name in facts["shared"]):
        return None
    shared_var_keys = {shared[name]: uuid.uuid4().hex for name in facts["shared"]}
    shared_data = {}
    for var, key in shared_var_keys.items():
        shared_data[key] = np.array(var.get_value(), order="C", copy=True)
        shared_data[key].flags.writeable = False
    user_data = make_user_data(shared_var_keys, shared_data)
    if callback_cache.anonymous_layout(user_data.dtype) != facts["record"]:
        return None

    n_dim, n_expanded = facts["n_dim"], facts["n_expanded"]
    logp = cached_callback("logp", facts["callback_keys"]["logp"], n_dim=n_dim)
    expand = cached_callback("expand", facts["callback_keys"]["expand"], n_dim=n_dim, n_expanded=n_expanded)
    if logp is None or expand is None:
        return None

    # The starting-point function exactly as nutpie's compile_pymc_model builds it.
    n_free = len(facts["free"])
    names, shapes = facts["names"], [tuple(shape) for shape in facts["shapes"]]
    pymc_initial_point = _wrap_with_lock(make_initial_point_fn(
        model=model, overrides=None, default_strategy="support_point", jitter_rvs=set(model.free_RVs),
        return_transformed=True))
    initial_point = _rv_dict_to_flat_array_wrapper(pymc_initial_point, names=names[:n_free], shapes=shapes[:n_free])
    shape_info = (names, [slice(*bounds) for bounds in facts["slices"]], shapes)
    dims, coords = _prepare_dims_and_coords(model, shape_info, facts["reparameterized_names"])
    return CompiledPyMCModel(
        _n_dim=n_dim, dims=dims, _coords=coords, _shapes=dict(zip(names, shapes)),
        compiled_logp_func=logp, compiled_expand_func=expand, initial_point_func=initial_point,
        shared_data=shared_data, shared_var_keys=shared_var_keys, user_data=user_data, n_expanded=n_expanded,
        shape_info=shape_info, logp_func=None, expand_func=None,
        reparameterized_names=facts["reparameterized_names"],
    )

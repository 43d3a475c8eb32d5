"""The accelerated compile: what :func:`bayes_msc.engine.sampling.compile_analysis` uses in place of
nutpie's public ``compile_pymc_model`` when :func:`bayes_msc.accel.enabled` says so.

In order: reassemble the compiled model from disk (:mod:`.warm_start`, no pytensor function
built); else compile it with the lean callbacks (:mod:`.nutpie_callbacks`, cached on disk by
:mod:`.callback_cache`) while a helper process compiles part of the log density
(:mod:`.compile_helper`), and record it for the next process. Each step that fails falls
back: a warm start that fails compiles, a helper that fails leaves the compile to this
process, a record that fails is skipped; a compile that fails returns ``None`` and the
caller compiles through the public path.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from . import compile_helper, guarded, warm_start
from .nutpie_callbacks import lean_callbacks

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Accelerated:
    """A compiled nutpie model and how it was had."""

    compiled: Any
    reassembled: bool  # from disk, no pytensor function built
    helped_with: int | None  # compiled functions the helper process left in the cache (None: no helper)


def compile_model(structure_key: str, model) -> Accelerated | None:
    """nutpie's compiled model for ``model`` by the accelerated path, or ``None`` when the
    lean callbacks do not apply here (then compile through the public path). A damaged
    compile cache is moved aside and the compile tried once more
    (:func:`bayes_msc.engine.compile_cache.retry_if_damaged`)."""
    from ..engine.compile_cache import retry_if_damaged

    return retry_if_damaged("compiling", _compile_model, structure_key, model)


def _compile_model(structure_key: str, model) -> Accelerated | None:
    import nutpie
    import nutpie.compile_pymc

    with lean_callbacks() as lean:
        if not lean:
            log.info("accel: nutpie's private callback factories do not take the arguments ours do; "
                     "its public compile is used")
            return None
        compiled = guarded("warm start", warm_start.load, structure_key, model)
        if compiled is not None:
            return Accelerated(compiled, reassembled=True, helped_with=None)
        with compile_helper.helping(nutpie.compile_pymc) as helper:
            compiled = nutpie.compile_pymc_model(model, backend="numba", cache=True)
        guarded("recording the warm start", warm_start.record, structure_key, model, compiled)
    return Accelerated(compiled, reassembled=False, helped_with=helper.loaded if helper.started else None)

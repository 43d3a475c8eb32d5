"""Sampling: compile a model structure once with nutpie, then re-sample with new data.

Compiling (numba) costs seconds; sampling these models costs a fraction of a second. So a
:class:`CompiledAnalysis` is cached per structure key (see
:meth:`bayes_msc.models.inputs.ModelInputs.structure_key`) for the life of the process, and
pytensor's on-disk cache carries compiled code across processes. New observations, prior
hyperparameters or masked studies go through nutpie's ``with_data``, which returns a new
compiled object without compiling. Data enter every compiled model as one shared vector
(see :mod:`bayes_msc.models.inputs`), so a re-sample hands nutpie a single array.

The compile itself is nutpie's public ``compile_pymc_model``, under this package's
:func:`bayes_msc.engine.runtime.compile_settings`. Where the versions it was written against are
installed, :mod:`bayes_msc.accel` does it faster (nutpie's callbacks cached on disk, a warm
start that builds no pytensor function, a helper process for a cold compile), with the same
numbers, and falls back to the public path on any failure. Each compile is logged with the
reason it was needed (``python -m bayes_msc -v``).

nutpie records no log-likelihood or log-prior; :func:`add_pointwise_groups` computes both
with PyMC so LOO and power-scaling sensitivity work on the result.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import Any

from . import runtime
from ..models.inputs import MODEL_DATA, ModelInputs, set_model_data
from ..spec import SamplerSettings

log = logging.getLogger(__name__)

COMPILE_COUNT = {"nutpie": 0}  # compilations in this process (tests assert re-samples add none)
_CACHE: dict[str, "CompiledAnalysis"] = {}


@dataclass(frozen=True)
class CompiledAnalysis:
    """A compiled model plus the inputs its data currently hold."""

    key: str
    model: Any  # pm.Model (kept for log-likelihood / log-prior evaluation)
    compiled: Any  # nutpie CompiledPyMCModel
    inputs: ModelInputs

    def with_inputs(self, inputs: ModelInputs) -> "CompiledAnalysis":
        """Same structure, new values: no compilation. Raises if the structure differs."""
        if inputs.structure_key() != self.key:
            raise ValueError("inputs have a different structure; compile them instead")
        return replace(self, compiled=self.compiled.with_data(**{MODEL_DATA: inputs.packed()}), inputs=inputs)

    def _sync_initial_point(self) -> None:
        """Give the PyMC model this run's data before sampling.

        nutpie draws its starting point from PyMC's initial-point function, which reads the
        model's own data containers (e.g. a half-normal's support point scales with sigma).
        Without this, a refit through ``with_data`` would start from the compile-time values
        and give different (equally valid) numbers than a fresh compile with the same seed.
        """
        set_model_data(self.model, self.inputs)

    def sample(self, settings: SamplerSettings, *, progress_bar: bool = False, raw_trace: bool = False):
        """Draw from the posterior; a ``DataTree``, or with ``raw_trace`` nutpie's arrow trace
        (the same draws, without the conversion — for timing the sampler alone)."""
        import nutpie

        self._sync_initial_point()
        log.info("sampling %d chains x %d draws (%d tuning)", settings.chains, settings.draws, settings.tune)
        # nutpie, left blocking, turns Ctrl-C into a silently truncated trace; waiting here
        # lets the interrupt stop the run (the CLI exits 130) instead of ending in a crash
        # on a half-sampled posterior.
        background = nutpie.sample(
            self.compiled,
            chains=settings.chains,
            draws=settings.draws,
            tune=settings.tune,
            seed=settings.seed,
            target_accept=settings.target_accept,
            maxdepth=settings.maxdepth,
            cores=min(settings.chains, _cores()),
            save_warmup=False,
            progress_bar=progress_bar,
            return_raw_trace=raw_trace,
            blocking=False,
        )
        try:
            return background.wait()
        except KeyboardInterrupt:
            background.cancel()
            raise
        except RuntimeError as exc:
            if "initialization points failed" not in str(exc):
                raise
            from ..io.errors import InputError

            # every starting point has zero density: data or priors too extreme to sample from
            raise InputError("the sampler found no starting point of finite density: some estimate, SE or "
                             "prior is too extreme for this model (check the register and the spec)") from None


# Sampler threads a task runner gave the task being run (bayes_msc.engine.distributed): a context
# variable, so setting it for one task touches neither the environment nor other threads.
SAMPLER_THREADS: ContextVar[int | None] = ContextVar("bayes_msc_sampler_threads", default=None)


def scalar_draws(raw_trace, names: tuple[str, ...]) -> tuple[dict[str, Any], int]:
    """Post-warm-up draws of scalar variables, ``(chain, draw)`` arrays, and the number of
    divergent transitions, read straight from nutpie's arrow trace.

    The same numbers as the ``DataTree`` nutpie builds (a test compares them), without
    building it: converting every variable and statistic of a trace costs about as much as
    drawing it, and SBC needs two or four scalars per replicate. A name ``"variable[k]"``
    reads position ``k`` of a one-dimensional variable (e.g. one covariate term).
    """
    import numpy as np
    import pyarrow

    draw_batches, stat_batches = raw_trace.get_arrow_trace()
    draws: dict[str, list] = {name: [] for name in names}
    divergences = 0
    for draw, stat in zip(draw_batches, stat_batches, strict=True):
        warmup = pyarrow.array(stat.column("tuning")).to_numpy(zero_copy_only=False).astype(bool)
        diverging = pyarrow.array(stat.column("diverging")).to_numpy(zero_copy_only=False).astype(bool)
        divergences += int(diverging[~warmup].sum())
        for name in names:
            variable, _, position = name.partition("[")
            column = pyarrow.array(draw.column(variable))
            if position:
                width = len(column[0]) if len(column) else 0
                k = int(position.rstrip("]"))
                if not (pyarrow.types.is_list(column.type) or pyarrow.types.is_large_list(column.type)) \
                        or column.null_count or not 0 <= k < width:
                    raise ValueError(f"{name!r} is not an element of a vector variable of this trace")
                column = pyarrow.array(column.flatten().to_numpy(zero_copy_only=False).reshape(-1, width)[:, k])
            if not pyarrow.types.is_floating(column.type) or column.null_count:
                raise ValueError(f"{name!r} is not a scalar variable of this trace")
            draws[name].append(column.to_numpy(zero_copy_only=False)[~warmup])
    return {name: np.stack(chains) for name, chains in draws.items()}, divergences


def _cores() -> int:
    """Threads one sampling may use: the share of the cores a task runner gave this task (so
    workers x threads never exceeds the cores), or the CPUs this process may run on."""
    budget = SAMPLER_THREADS.get()
    if budget is not None:
        return budget
    return runtime.available_cores()


def compile_analysis(inputs: ModelInputs, build: Callable[[ModelInputs], Any]) -> CompiledAnalysis:
    """Return a compiled model for ``inputs``, compiling only for a structure not seen yet."""
    key = inputs.structure_key()
    cached = _CACHE.get(key)
    if cached is not None:
        log.debug("%s model %s: compiled already; new values go in through with_data", inputs.kind, key)
        return cached if cached.inputs is inputs else cached.with_inputs(inputs)
    import nutpie

    from .. import accel
    from .compile_cache import retry_if_damaged

    log.info("compiling the %s model (structure %s): %s", inputs.kind, key, _why_compile(inputs))
    runtime.before_compile()
    start = time.perf_counter()
    with runtime.compile_settings():
        model = build(inputs)
        accelerated = None
        if accel.enabled("compile"):
            from ..accel.compile import compile_model

            accelerated = accel.guarded("accelerated compile", compile_model, key, model)
        compiled = (accelerated.compiled if accelerated is not None
                    else retry_if_damaged("compiling", nutpie.compile_pymc_model, model, backend="numba"))
    COMPILE_COUNT["nutpie"] += 1
    how = "nutpie's callbacks"
    if accelerated is not None:
        how = f"lean callbacks, {callbacks_from_cache(compiled)} of 2 loaded from the disk cache"
        if accelerated.reassembled:
            how += ", no pytensor function built"
        if accelerated.helped_with is not None:
            how += (f"; a helper process compiled part of it, {accelerated.helped_with} compiled functions "
                    "loaded from the disk cache")
    log.info("compiled in %.1f s (%s); later fits of this structure reuse it", time.perf_counter() - start, how)
    analysis = CompiledAnalysis(key, model, compiled, inputs)
    _CACHE[key] = analysis
    return analysis


def callbacks_from_cache(compiled) -> int:
    """How many of a compiled model's two C callbacks numba loaded from its disk cache."""
    return sum(getattr(f, "cache_hits", 0) for f in (compiled.compiled_logp_func, compiled.compiled_expand_func))


def _why_compile(inputs: ModelInputs) -> str:
    same_kind = [a.inputs for a in _CACHE.values() if a.inputs.kind == inputs.kind]
    if not same_kind:
        return "first fit of this model in this process"
    return "not the structure of any model compiled so far: " + "; ".join(
        sorted({inputs.structure_difference(other) for other in same_kind})
    )


def add_pointwise_groups(posterior_tree, analysis: CompiledAnalysis):
    """Add ``log_likelihood`` and ``log_prior`` groups, evaluated on the inputs actually sampled."""
    import pymc as pm
    from pymc.stats import compute_log_prior

    set_model_data(analysis.model, analysis.inputs)
    with runtime.compile_settings():
        pm.compute_log_likelihood(posterior_tree, model=analysis.model, extend_inferencedata=True, progressbar=False)
        compute_log_prior(posterior_tree, model=analysis.model, extend_inferencedata=True, progressbar=False)
    return posterior_tree


"""Compile a cold model on two cores: a helper process compiles the later part of the log
density's operations (and the expand function) while this process compiles the first part.

A cold ``fit mortality`` spends about 8 of its 12 s in numba compiling the log density and
its gradient, one operation at a time, on one core (numba holds a process-wide compile lock,
so threads cannot share the work). pytensor compiles every operation as its own numba
function and caches it on disk under a key of the operation (not of the graph:
``pytensor.link.numba.cache``). So a second process can compile some of the operations and
this one loads them from the cache instead of compiling them, as a warm process would.

:func:`helping` wraps nutpie's compile step. On entry it starts ``python -m
bayes_msc.accel.compile_helper``, which imports pytensor and numba while this process builds the
model. Once nutpie has built (and pytensor has rewritten) the log-density graph, and before
numba compiles it, the graph is cut after the first ``CUT_FRACTION`` of its operations in
topological order (:func:`later_operations`); the later part, as a graph of its own, and the
"expand" function (which nutpie compiles after the log density) go to the helper, pickled,
and it compiles them into the shared cache. This process compiles from the start and, past
the cut, loads what the helper has finished (a cold ``fit mortality`` on 2 cores: 12.0 s
without the helper, 9.1-9.4 s with it). An operation the helper has not reached yet, or
whose argument layout differs at the cut, is compiled here as before. The machine code is
the same either way (a cache entry is what numba compiled), so the numbers are
bit-identical with and without the helper (tested).

The helper runs only where it can help and cannot oversubscribe: at least two usable cores,
pytensor's numba cache on, and not in a worker process of the task runner (whose workers
already share the cores). ``BAYES_MSC_COMPILE_HELPER=0`` switches it off. It is stopped when
this process finishes compiling; numba writes cache entries atomically, so stopping it
mid-write leaves no partial entry.
"""

from __future__ import annotations

import contextlib
import logging
import os
import pickle
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from . import guarded

log = logging.getLogger(__name__)

ENV_SWITCH = "BAYES_MSC_COMPILE_HELPER"
CUT_FRACTION = 0.6  # measured on mortality, 2 cores, whole cold fit (expand first): 0.45 -> 9.5 s, 0.5 -> 9.5, 0.55 -> 9.1, 0.6 -> 9.0, 0.65 -> 8.9 (noise ~0.1 s: a plateau)


def later_operations(fgraph, fraction: float = CUT_FRACTION) -> tuple[list, list]:
    """The operations of ``fgraph`` after the first ``fraction`` of its topological order, as
    (inputs, outputs) of a graph of their own: the inputs are every non-constant variable
    they read that an earlier operation (or the graph's input) produces; the outputs are the
    graph's outputs that they produce (none: nothing to compile). Evaluated on the values
    the full graph gives those inputs, the later graph gives the same outputs (tested)."""
    from pytensor.graph.basic import Constant

    nodes = fgraph.toposort()
    later = nodes[int(len(nodes) * fraction):]
    produced_later = {out for node in later for out in node.outputs}
    later_nodes = set(later)
    cut: list = []
    for node in later:
        for var in node.inputs:
            if isinstance(var, Constant) or var in produced_later or var in cut:
                continue
            cut.append(var)
    return cut, [out for out in fgraph.outputs if out.owner in later_nodes]


def enabled() -> bool:
    """Whether a cold compile in this process may start a helper."""
    import multiprocessing

    from ..engine.runtime import available_cores, switched_off

    if switched_off(ENV_SWITCH):
        return False
    if multiprocessing.parent_process() is not None:  # a task runner's worker: the cores are shared already
        return False
    import pytensor

    return available_cores() >= 2 and bool(pytensor.config.numba__cache)


def child_pytensor_flags() -> str:
    """The helper's ``PYTENSOR_FLAGS``: this process's own, with this process's compile
    folder and fastmath setting as they are now (``runtime.compile_settings`` is in force
    while a model compiles): the helper's cache entries must be the ones this process looks
    up, and this process may have set them in code rather than in the environment."""
    import pytensor

    kept = [flag for flag in os.environ.get("PYTENSOR_FLAGS", "").split(",")
            if flag and flag.split("=", 1)[0].strip() not in ("base_compiledir", "compiledir", "numba__fastmath")]
    # pytensor's numba cache is under base_compiledir (pytensor.link.numba.cache), C modules under compiledir
    return ",".join(kept + [f"base_compiledir={pytensor.config.base_compiledir}",
                            f"compiledir={pytensor.config.compiledir}",
                            f"numba__fastmath={pytensor.config.numba__fastmath}"])


@dataclass
class Help:
    """What the helper did for one compile: whether it started, and how many compiled
    operations this process took from the disk cache while compiling."""

    started: bool = False
    loaded: int = 0
    process: subprocess.Popen | None = field(default=None, repr=False)

    def spawn(self) -> None:
        """Start the helper early: it imports pytensor and numba while this process builds
        the graphs, then waits for them on its standard input."""
        package_root = str(Path(__file__).resolve().parents[2])
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")])),
               "PYTENSOR_FLAGS": child_pytensor_flags()}
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bayes_msc.accel.compile_helper"], stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
            )
        except OSError as exc:  # no helper: this process compiles everything, as before
            log.info("accel: compile helper not started: %s", exc)

    def send(self, logp_fgraph, expand_fgraph) -> None:
        """Hand the helper the whole "expand" function (small; compiled here only after the
        log density, so it is ready by then), then the later part of the log density."""
        from pytensor.graph.fg import FunctionGraph

        if self.process is None or self.started:
            return
        try:
            inputs, outputs = later_operations(logp_fgraph)
            graphs = [expand_fgraph] + ([FunctionGraph(inputs, outputs, clone=True)] if outputs else [])
            payload = pickle.dumps(graphs, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception as exc:  # a graph that does not pickle: compile it all here, as before
            log.info("accel: compile helper not used: %s", exc)
            return
        with contextlib.suppress(BrokenPipeError):
            self.process.stdin.write(payload)
        self.started = True
        self._close_input()

    def _close_input(self) -> None:
        with contextlib.suppress(BrokenPipeError, OSError):
            self.process.stdin.close()

    def stop(self) -> None:
        if self.process is None:
            return
        self._close_input()  # a helper given nothing reads end-of-input and exits
        if self.process.poll() is None:
            self.process.kill()  # its remaining work is done here already
        self.process.wait()


@contextlib.contextmanager
def helping(compile_pymc) -> Iterator[Help]:
    """Inside this block, a nutpie compile (``compile_pymc`` is ``nutpie.compile_pymc``)
    hands the later part of its log density (and its expand function) to a helper process
    (when :func:`enabled`). Yields a :class:`Help` that counts the compiled functions loaded
    from the cache meanwhile. Whatever fails in the helper's set-up or hand-over leaves the
    compile to this process alone, as without the helper."""
    help_ = Help()
    try:
        on = enabled()
    except Exception as exc:  # noqa: BLE001
        log.info("accel: compile helper not used (%s)", exc)
        on = False
    if not on:
        yield help_
        return
    from numba.core import caching

    make_functions = compile_pymc._make_functions
    load_overload = caching.Cache.load_overload

    def make_functions_and_help(*args, **kwargs):
        functions = make_functions(*args, **kwargs)
        # (n_dim, n_expanded, logp_fn, expand_fn, ...)
        guarded("handing graphs to the compile helper", help_.send, functions[2].maker.fgraph,
                functions[3].maker.fgraph)
        return functions

    def counted_load(self, *args, **kwargs):
        loaded = load_overload(self, *args, **kwargs)
        help_.loaded += loaded is not None
        return loaded

    guarded("starting the compile helper", help_.spawn)
    compile_pymc._make_functions = make_functions_and_help
    caching.Cache.load_overload = counted_load
    try:
        yield help_
    finally:
        compile_pymc._make_functions = make_functions
        caching.Cache.load_overload = load_overload
        guarded("stopping the compile helper", help_.stop)


def compile_graph(fgraph) -> None:
    """Compile every operation of ``fgraph`` with numba, as pytensor's numba linker would,
    so their cache entries are written. Arguments are typed as C-contiguous arrays, as a
    function's inputs are; where the full graph passes a view instead, that operation is
    compiled again by whoever needs it."""
    from pytensor.link.numba.dispatch.basic import get_numba_type, numba_funcify_ensure_cache

    function, key = numba_funcify_ensure_cache(fgraph)
    # the cacheable wrapper takes *args; compile the graph's own function with its signature
    graph_function = function.py_func.__globals__["jitable_func"] if key is not None else function
    graph_function.compile(tuple(get_numba_type(var.type, layout="C") for var in fgraph.inputs))


def main() -> int:
    # the parent's compile folder and fastmath setting arrive in PYTENSOR_FLAGS (child_pytensor_flags)
    import pytensor.link.numba.dispatch.basic  # noqa: F401  (imported while the parent builds the graphs)

    payload = sys.stdin.buffer.read()
    if not payload:  # the parent had nothing to hand over
        return 0
    for fgraph in pickle.loads(payload):
        compile_graph(fgraph)
    return 0


if __name__ == "__main__":
    sys.exit(main())

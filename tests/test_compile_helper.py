"""The compile helper's cut of the log-density graph (bayes_msc.accel.compile_helper): the later
operations, fed the values the full graph gives their inputs, reproduce its outputs; and a
graph compiled by the helper's route leaves cache entries a later compile loads."""

import functools

import numpy as np
import pytest

from conftest import child_env, require_accel

require_accel("compile")


@functools.cache
def _model_fgraph():
    """The log density and gradient graph nutpie compiles for the default mortality analysis,
    after pytensor's rewrites (the graph the helper cuts)."""
    import nutpie.compile_pymc as compile_pymc

    from bayes_msc.api import resolve_spec
    from bayes_msc.evidence.register import load_register

    spec = resolve_spec("mortality")
    parts = spec.outcome_type
    inputs = parts.make_inputs(parts.build_evidence(load_register(), spec), spec.priors, spec.model)
    model = parts.build_model(inputs, spec.priors)
    functions = compile_pymc._make_functions(
        model, mode="NUMBA", compute_grad=True, join_expanded=True,
        pymc_initial_point_fn=lambda seed: model.initial_point(seed), var_names=None,
    )
    return functions[2].maker.fgraph


@pytest.mark.parametrize("fraction", [0.0, 0.3, 0.5, 0.9])
def test_later_operations_reproduce_the_graphs_outputs(fraction):
    import pytensor
    from pytensor.compile.mode import Mode

    from bayes_msc.accel.compile_helper import later_operations

    fgraph = _model_fgraph()
    inputs, outputs = later_operations(fgraph, fraction)
    assert outputs, "the cut left nothing to compile"
    python = Mode(linker="py", optimizer=None)
    (point_var,) = [var for var in fgraph.inputs if var.name == "_unconstrained_point"]
    # the model's data are shared variables: implicit inputs of both functions, not arguments
    cut = [var for var in inputs if not hasattr(var, "get_value")]
    point = np.random.default_rng(7).normal(size=point_var.type.shape) * 0.3

    def value(var):
        # one function per variable: the graph's in-place operations overwrite buffers that
        # later operations no longer need, so a variable read beside later ones may be stale
        (result,) = pytensor.function([point_var], [var], mode=python, accept_inplace=True,
                                      on_unused_input="ignore")(point)
        return np.array(result, copy=True)

    later = pytensor.function(cut, outputs, mode=python, on_unused_input="ignore", accept_inplace=True)
    got = later(*[value(var) for var in cut])
    for got_output, output in zip(got, outputs, strict=True):
        np.testing.assert_array_equal(got_output, value(output))


def test_a_graph_compiled_the_helpers_way_is_loaded_from_the_cache(tmp_path):
    """The helper's compile writes each operation's numba code to the cache, where a second
    compile of the same operations finds it (what the main process does at the cut)."""
    import pickle
    import subprocess
    import sys

    from pytensor.graph.fg import FunctionGraph

    from bayes_msc.accel.compile_helper import later_operations

    fgraph = _model_fgraph()
    inputs, outputs = later_operations(fgraph, 0.5)
    payload = pickle.dumps(FunctionGraph(inputs, outputs, clone=True))
    env = child_env(tmp_path)
    script = ("import sys, pickle; from bayes_msc.accel import compile_helper; from numba.core import caching\n"
              "hits = []; load = caching.Cache.load_overload\n"
              "def counted(self, *a, **k):\n    r = load(self, *a, **k); hits.append(r is not None); return r\n"
              "caching.Cache.load_overload = counted\n"
              "compile_helper.compile_graph(pickle.load(sys.stdin.buffer)); print(sum(hits), len(hits))")
    counts = []
    for _ in range(2):
        run = subprocess.run([sys.executable, "-c", script], input=payload, capture_output=True, env=env, timeout=600)
        assert run.returncode == 0, run.stderr.decode()[-2000:]
        counts.append(tuple(int(x) for x in run.stdout.split()))
    (first_hits, first_tries), (second_hits, second_tries) = counts
    # an empty cache: compiled (an operation used twice is found the second time: each
    # operation has its own function, keyed by the operation)
    assert first_hits < first_tries - 10
    assert second_hits == second_tries > 10  # every operation found where the first run left it


def test_a_helper_given_nothing_exits_cleanly(tmp_path):
    """The helper starts before the graphs exist; a parent that hands over nothing (a compile
    that failed, or a graph that did not pickle) closes its input and the helper just exits."""
    import subprocess
    import sys

    env = child_env(tmp_path)
    run = subprocess.run([sys.executable, "-m", "bayes_msc.accel.compile_helper"], input=b"", capture_output=True,
                         env=env, timeout=300)
    assert run.returncode == 0, run.stderr.decode()[-2000:]
    assert not list(tmp_path.rglob("*.nbi")), "nothing was handed over, so nothing should be compiled"

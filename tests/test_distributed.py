"""SBC on Dask: the same ranks as the serial run, a resumable journal, and a worker killed
mid-run without losing replicates."""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

import pandas as pd
import pytest

import bayes_msc
from bayes_msc.engine.distributed import read_journal, run_tasks
from bayes_msc.analyses.sbc import run_replicates, run_sbc

from conftest import require_module  # noqa: E402

require_module("distributed", "SBC on Dask (the dask extra) is tested here")

SE = [math.sqrt(v) for v in (0.3594, 0.3096, 0.7750, 0.2078, 0.4122, 2.3373)]
N = 12


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    from bayes_msc.evidence.estimates import write_estimates

    path = write_estimates(tmp_path_factory.mktemp("dask") / "estimates.csv", [0.0] * len(SE), SE)
    spec = bayes_msc.load_spec("normal_normal").with_sampler(chains=2, draws=200, tune=200)
    return spec, str(path)


@pytest.fixture(scope="module")
def serial(small):
    spec, path = small
    return run_sbc(spec, path, n=N, seed=4, thin=2, chunk_size=3)


COLUMNS = ["replicate", "sampler_seed", "divergences", "mu", "tau"]


def test_two_local_workers_give_the_serial_ranks(small, serial):
    spec, path = small
    parallel = run_sbc(spec, path, n=N, seed=4, thin=2, chunk_size=3, workers=2)
    pd.testing.assert_frame_equal(parallel.ranks[COLUMNS], serial.ranks[COLUMNS])
    assert parallel.verdict().split("(")[0] == serial.verdict().split("(")[0]


def test_journal_resumes_without_recomputing(small, serial, tmp_path):
    spec, path = small
    journal = tmp_path / "run.partial.jsonl"
    run_sbc(spec, path, n=6, seed=4, thin=2, chunk_size=3, journal=journal)
    assert sorted(r["replicate"] for r in read_journal(journal, "replicate")) == list(range(6))
    journal.write_text(journal.read_text() + '{"replicate": 99, "trunc')  # an interrupted write
    calls = []

    def counting(progress_done, total, failed, eta):
        calls.append(progress_done)

    resumed = run_sbc(spec, path, n=N, seed=4, thin=2, chunk_size=3, journal=journal, progress=counting)
    assert calls[0] == 6  # the six journalled replicates counted as done before any work
    pd.testing.assert_frame_equal(resumed.ranks[COLUMNS], serial.ranks[COLUMNS])


def kill_once_then_run(marker, spec, path, items, **kwargs):
    """Kill the worker process running the first task that gets here; later attempts run."""
    if not os.path.exists(marker):
        Path(marker).write_text(str(os.getpid()))
        os._exit(1)
    return run_replicates(spec, path, items, **kwargs)


def test_a_killed_worker_loses_no_replicates(small, serial, tmp_path):
    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import tests/
    spec, path = small
    marker = str(tmp_path / "killed")
    chunks = [list(range(i, i + 3)) for i in range(0, N, 3)]
    rows, failures = run_tasks(kill_once_then_run, chunks, args=(marker, spec, path),
                               kwargs={"seed": 4, "thin": 2}, workers=2, key="replicate")
    assert Path(marker).exists()  # a worker really died
    assert not failures
    got = pd.DataFrame(rows).sort_values("replicate").reset_index(drop=True)
    pd.testing.assert_frame_equal(got[COLUMNS], serial.ranks[COLUMNS])


@pytest.mark.slow
def test_sensitivity_on_two_workers_equals_serial(small):
    from bayes_msc.analyses.sensitivity import prior_sensitivity

    spec, path = small
    serial_table = prior_sensitivity(spec, path).table
    parallel_table = prior_sensitivity(spec, path, workers=2).table
    numbers = ["effect_prior", "heterogeneity_prior", "effect_median", "prob_benefit", "tau_median"]
    pd.testing.assert_frame_equal(parallel_table[numbers], serial_table[numbers])


def test_task_chunks_cover_every_item_once_and_shrink_towards_the_end():
    from bayes_msc.engine.distributed import task_chunks

    serial = task_chunks(23, None, max_size=10)
    assert [len(c) for c in serial] == [10, 10, 3]
    chunks = task_chunks(160, 4, max_size=10)
    assert [i for c in chunks for i in c] == list(range(160))
    sizes = [len(c) for c in chunks]
    assert max(sizes) <= 10 and sizes == sorted(sizes, reverse=True)
    # the run ends on single-replicate tasks, one round of them per worker at least
    assert sizes[-4:] == [1, 1, 1, 1]
    assert len(chunks) >= 2 * 4


def test_threads_per_worker_never_oversubscribes():
    from bayes_msc.engine.distributed import threads_per_worker

    assert threads_per_worker(4, cores=16) == 4
    assert threads_per_worker(16, cores=16) == 1
    assert threads_per_worker(3, cores=16) == 5  # 15 of 16 cores
    assert threads_per_worker(32, cores=16) == 1  # one each, at least


def sampler_threads(items):
    from bayes_msc.engine.sampling import _cores

    return [{"item": i, "threads": _cores(), "pid": os.getpid()} for i in items]


def test_workers_sample_with_their_share_of_the_cores():
    import cloudpickle

    from bayes_msc.engine.distributed import threads_per_worker

    cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import tests/
    rows, failures = run_tasks(sampler_threads, [[0], [1], [2], [3]], workers=2)
    assert not failures and len(rows) == 4
    assert {row["threads"] for row in rows} == {threads_per_worker(2)}
    assert os.getpid() not in {row["pid"] for row in rows}  # really ran in the workers


def compiled_from_cache(spec, path, items):
    from bayes_msc.engine.sampling import callbacks_from_cache
    from bayes_msc.analyses.sbc import _setup

    loaded = callbacks_from_cache(_setup(spec, path).compiled.compiled)
    return [{"item": i, "from_cache": loaded, "pid": os.getpid()} for i in items]


def test_workers_load_the_compiled_model_from_the_shared_cache(small):
    """No worker compiles cold: the parent compiles first (warm_up) and every worker loads
    nutpie's callbacks from the disk cache they share."""
    import cloudpickle

    from bayes_msc.analyses.sbc import _setup

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    spec, path = small
    rows, failures = run_tasks(compiled_from_cache, [[0], [1], [2], [3]], args=(spec, path), workers=2,
                               warm_up=lambda: _setup(spec, path))
    assert not failures
    assert {row["from_cache"] for row in rows} == {2}
    assert os.getpid() not in {row["pid"] for row in rows}


@pytest.mark.slow
def test_influence_on_two_workers_equals_serial():
    from bayes_msc.analyses.sensitivity import leave_one_study_out

    spec = bayes_msc.load_spec("mortality").with_sampler(chains=2, draws=200, tune=200, seed=5)
    serial_run = leave_one_study_out(spec)
    parallel_run = leave_one_study_out(spec, workers=2)
    numbers = ["study_id", "prob_benefit", "effect_median", "change_prob_benefit", "pareto_k"]
    pd.testing.assert_frame_equal(parallel_run.table[numbers], serial_run.table[numbers])
    assert parallel_run.most_influential == serial_run.most_influential

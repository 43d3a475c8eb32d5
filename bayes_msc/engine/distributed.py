"""Run many fits as tasks: serially, on a local Dask cluster, or on an existing one.

Each task is a pure function of its arguments (its replicates carry their own seeds), so the
results are the same wherever it runs. Workers are processes that keep their compiled
models for the life of the process (:mod:`bayes_msc.engine.sampling` caches per structure), so a
worker compiles a model structure once and reuses it for every task it gets. Finished rows
are appended to a JSON-lines journal as they arrive; a rerun with the same journal skips
what is already there. A task that raises is retried once; if it fails again its items are
reported (with the run's seed) instead of stopping the run.

Scaling (measured by ``python -m bayes_msc bench``): a local cluster never runs more sampler
threads than there are cores — each of ``workers`` processes samples with ``cores //
workers`` threads (nutpie's ``cores``); the parent compiles the model once before the
workers start (``warm_up``, while they start up), so every worker finds a warm compile cache and loads the
compiled code instead of compiling (about 1 s instead of 15 s); and tasks shrink towards
the end of the run (:func:`task_chunks`), so no worker idles while another finishes a long
chunk.
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path
from typing import Callable

TASKS_PER_WORKER = 2  # guided scheduling: each task is about remaining / (this x workers)


def read_journal(journal, key: str) -> list[dict]:
    """Rows already computed (a partial line from an interrupted write is ignored)."""
    if journal is None or not Path(journal).is_file():
        return []
    rows = []
    for line in Path(journal).read_text(encoding="utf-8").splitlines():
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if key in row:
            rows.append(row)
    return rows


def _append(journal, rows: list[dict]) -> None:
    if journal is None:
        return
    from ..io.fileio import append_lines

    append_lines(journal, [json.dumps(row) for row in rows])


class _Progress:
    def __init__(self, total: int, callback: Callable | None):
        self.total, self.done, self.failed, self.start, self.callback = total, 0, 0, time.perf_counter(), callback

    def update(self, done: int = 0, failed: int = 0) -> None:
        self.done += done
        self.failed += failed
        if self.callback:
            elapsed = time.perf_counter() - self.start
            eta = elapsed / self.done * (self.total - self.done) if self.done else float("nan")
            self.callback(self.done, self.total, self.failed, eta)


def task_chunks(n: int, workers: int | None, max_size: int = 10) -> list[list[int]]:
    """Split items ``0..n-1`` into tasks: at most ``max_size`` each (the journal's grain);
    with workers, guided sizes — about ``remaining / (2 x workers)``, so tasks get smaller as
    the run ends and the last ones finish together instead of one worker running a long
    chunk while the others idle."""
    chunks, start = [], 0
    while start < n:
        remaining = n - start
        size = max_size if not workers else max(1, math.ceil(remaining / (TASKS_PER_WORKER * workers)))
        size = min(size, max_size, remaining)
        chunks.append(list(range(start, start + size)))
        start += size
    return chunks


def threads_per_worker(workers: int, cores: int | None = None) -> int:
    """Sampler threads each of ``workers`` processes may use so that together they use at
    most the ``cores`` (default: this machine's), and at least one each."""
    from .runtime import available_cores

    return max(1, (cores or available_cores()) // workers)


def _with_threads(threads: int | None, func: Callable, *args, **kwargs):
    """Run ``func`` in a worker with its share of the cores for the sampler's threads."""
    if threads is None:
        return func(*args, **kwargs)
    from .sampling import SAMPLER_THREADS

    token = SAMPLER_THREADS.set(threads)
    try:
        return func(*args, **kwargs)
    finally:
        SAMPLER_THREADS.reset(token)


def _start(job: Callable | None) -> Callable[[], None]:
    """Run ``job`` in a background thread; return a function that waits for it (and raises
    what it raised)."""
    import threading

    if job is None:
        return lambda: None
    failure: list[BaseException] = []

    def target():
        try:
            job()
        except BaseException as exc:  # noqa: BLE001 — re-raised in the caller's thread
            failure.append(exc)

    thread = threading.Thread(target=target, name="bayes_msc-warm-up", daemon=True)
    thread.start()

    def wait() -> None:
        thread.join()
        if failure:
            raise failure[0]

    return wait


def run_tasks(func: Callable, chunks: list[list[int]], *, args: tuple = (), kwargs: dict | None = None,
              workers: int | None = None, scheduler: str | None = None, journal=None,
              progress: Callable | None = None, key: str = "item", retries: int = 1,
              warm_up: Callable | None = None) -> tuple[list[dict], list[dict]]:
    """Run ``func(*args, items, **kwargs)`` for each chunk of items; return (rows, failures).

    Items already in ``journal`` are not run again. ``workers``: a ``dask.distributed``
    LocalCluster of that many worker processes, each sampling with its share of the cores
    (:func:`threads_per_worker`); ``scheduler``: the address of an existing cluster (its
    workers keep their own thread settings); neither: run here, serially. ``warm_up`` runs
    here before any worker starts (e.g. compile the model once, filling the compile cache
    that the workers then read instead of each compiling cold).
    """
    kwargs = kwargs or {}
    rows = read_journal(journal, key)
    done = {row[key] for row in rows}
    todo = [[i for i in chunk if i not in done] for chunk in chunks]
    todo = [chunk for chunk in todo if chunk]
    tracker = _Progress(sum(len(c) for c in chunks), progress)
    tracker.update(done=len(done))
    failures: list[dict] = []
    if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
        from ..io.errors import InputError

        raise InputError(f"workers (--workers) must be a whole number of at least 1, got {workers!r}")
    if workers is None and scheduler is None:
        for chunk in todo:
            result = None
            for attempt in range(retries + 1):
                try:
                    result = func(*args, chunk, **kwargs)
                    break
                except Exception as exc:  # noqa: BLE001 — reported with its items, not swallowed
                    error = f"{type(exc).__name__}: {exc}"
            if result is None:
                failures.append({"items": chunk, "error": error})
                tracker.update(failed=len(chunk))
                continue
            _append(journal, result)
            rows += result
            tracker.update(done=len(result))
        return rows, failures

    from distributed import Client, LocalCluster, as_completed

    # The parent compiles while the workers start (they take seconds to import); tasks go out
    # only after it has, so every worker finds the compile cache warm.
    warming = _start(warm_up if todo else None)
    cluster, threads = None, None
    if scheduler is None:
        threads = threads_per_worker(workers)
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None)
        client = Client(cluster)
    else:
        client = Client(scheduler)
    try:
        warming()
        futures = {client.submit(_with_threads, threads, func, *args, chunk, **kwargs, retries=retries, pure=False): chunk
                   for chunk in todo}
        for future in as_completed(futures):
            chunk = futures[future]
            try:
                result = future.result()
            except Exception as exc:  # noqa: BLE001
                failures.append({"items": chunk, "error": f"{type(exc).__name__}: {exc}"})
                tracker.update(failed=len(chunk))
                continue
            _append(journal, result)
            rows += result
            tracker.update(done=len(result))
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return rows, failures


def print_progress(done: int, total: int, failed: int, eta: float) -> None:
    """A one-line progress report on stderr (fits done, failures, ETA)."""
    eta_text = "" if eta != eta else f", ETA {eta:.0f} s"
    print(f"\r  {done}/{total} done, {failed} failed{eta_text}   ", end="" if done + failed < total else "\n",
          file=sys.stderr, flush=True)

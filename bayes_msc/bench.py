"""``python -m bayes_msc bench``: what a user waits for, measured side by side in one run.

Every measurement runs in its own child process (``python -m bayes_msc.bench child TASK``)
so import and compile costs are real and peak memory (``ru_maxrss``) is per task. "Cold"
means a fresh, empty compile cache directory; "warm" reuses the one a previous child
filled. "Whole" runs from the parent starting the process to the end of the fit; after it
each child samples the same model once more, so sampling speed is also measured without the
one-off costs of a first sampling in a process (lazy imports, worker start-up) and, as PyMC's
``sampling_time`` does, without converting the trace — for nutpie and PyMC alike. Figures are medians over repeats with [min-max]; the ratios the speed issue sets as
targets are printed with PASS/FAIL, but nothing here is asserted by the test-suite: timing
belongs in a benchmark, not in tests.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ANALYSIS = "mortality"


# -- child tasks (run in a fresh interpreter) ------------------------------------------------


def _peak_rss_mb(who: str = "self") -> float:
    """Peak resident memory of this process, or of its largest finished child process."""
    import resource

    which = resource.RUSAGE_SELF if who == "self" else resource.RUSAGE_CHILDREN
    return resource.getrusage(which).ru_maxrss / 1024.0


def _cpu_seconds(children: bool = False) -> float:
    """User + system CPU time of this process so far (all threads; with ``children``, plus
    its finished child processes'): less sensitive than wall time to other load on a shared
    machine."""
    import resource

    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN) if children else (resource.RUSAGE_SELF,):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total


def _min_bulk_ess(tree, var_names) -> float:
    import arviz_stats as azs

    posterior = tree["posterior"].to_dataset()
    ess = azs.ess(posterior[[v for v in var_names if v in posterior]], method="bulk")
    return float(min(float(ess[v].min()) for v in ess.data_vars))


def _child_fit(args) -> dict:
    """``fit mortality`` as the command runs it; then the sampler alone, in steady state.

    The second sampling (same compiled model, same seed, hence the same draws and ESS) has
    no one-off costs (first-use imports, thread start-up) and skips converting the trace to
    a DataTree, so its time is the time spent drawing — what PyMC's ``sampling_time`` is.
    """
    from .engine import sampling
    from .api import fit
    from .engine.sampling import compile_analysis
    import nutpie  # noqa: F401,I001  (imported here so the whole import is timed as one part)
    import pymc  # noqa: F401

    imports = time.time() - args.started_at  # interpreter start-up and every import a fit needs
    result = fit(ANALYSIS, seed=args.seed, likelihood=args.likelihood)
    whole = time.time() - args.started_at
    cpu = _cpu_seconds(children=True)  # with the compile helper's (bayes_msc.accel.compile_helper)
    parts = result.outcome
    ess = _min_bulk_ess(result.tree, parts.diagnostic_vars())
    inputs = parts.make_inputs(result.evidence, result.spec.priors, result.spec.model)
    compiled = compile_analysis(inputs, lambda i: parts.build_model(i, result.spec.priors))  # cached: no compile
    start = time.perf_counter()
    compiled.sample(result.spec.sampler, raw_trace=True)
    drawing = time.perf_counter() - start
    timings = {**result.timings, "import": imports + result.timings["import"]}
    return {**timings, "whole": whole, "cpu": cpu, "min_bulk_ess": ess, "ess_per_second": ess / result.timings["sample"],
            "floor": timings["import"] + timings["sample"] + timings["postprocess"],
            "callbacks_from_cache": sampling.callbacks_from_cache(compiled.compiled),
            "steady_ess_per_second": ess / drawing, "divergences": result.diagnostics.checks[3].value}


def _child_pymc(args) -> dict:
    """The same model and data through PyMC's own sampler (``nuts_sampler`` = pymc or numpyro)."""
    start = time.perf_counter()
    import pymc as pm

    from .api import resolve_spec
    from .evidence.register import load_register

    timings = {"import": time.perf_counter() - start}
    spec = resolve_spec(ANALYSIS, seed=args.seed)
    parts = spec.outcome_type
    evidence = parts.build_evidence(load_register(), spec)
    model = parts.build_model(parts.make_inputs(evidence, spec.priors, spec.model), spec.priors)
    s = spec.sampler

    def sample():
        start = time.perf_counter()
        with model:
            tree = pm.sample(
                draws=s.draws, tune=s.tune, chains=s.chains, cores=min(s.chains, os.cpu_count() or 1),
                target_accept=s.target_accept, random_seed=s.seed, progressbar=False,
                nuts_sampler=args.sampler, compute_convergence_checks=False,
            )
        total = time.perf_counter() - start
        # PyMC records the time spent drawing samples, separately from compilation.
        return tree, total, float(tree["posterior"].attrs.get("sampling_time", total))

    tree, total, sampling = sample()
    whole = time.time() - args.started_at
    cpu = _cpu_seconds(children=True)  # PyMC's chains run in child processes
    timings.update(compile=max(total - sampling, 0.0), sample=sampling)
    ess = _min_bulk_ess(tree, parts.diagnostic_vars())
    divergences = int(tree["sample_stats"]["diverging"].sum())
    again, _, sampling_again = sample()  # as for nutpie: the sampler without one-off costs
    return {**timings, "whole": whole, "cpu": cpu, "min_bulk_ess": ess, "ess_per_second": ess / sampling,
            "divergences": divergences,
            "steady_ess_per_second": _min_bulk_ess(again, parts.diagnostic_vars()) / sampling_again}


def _child_sweep(args) -> dict:
    """One process: a prior sweep of ``fits`` fits that reuses one compiled model."""
    import numpy as np

    from .api import fit_spec, resolve_spec
    from .evidence.register import load_register
    from .engine.sampling import COMPILE_COUNT

    register = load_register()
    spec = resolve_spec(ANALYSIS, seed=args.seed)
    per_fit = []
    for sigma in np.linspace(0.25, 2.0, args.fits):
        start = time.perf_counter()
        fit_spec(spec.with_priors(spec.priors.with_parameter("effect", "sigma", float(sigma))), register)
        per_fit.append(time.perf_counter() - start)
    return {"fits": args.fits, "compiles": COMPILE_COUNT["nutpie"], "first_fit": per_fit[0],
            "whole": time.time() - args.started_at,
            "later_fit_median": statistics.median(per_fit[1:]) if len(per_fit) > 1 else float("nan")}


# SBC settings for the scaling table: shorter chains than a fit, as SBC runs many of them.
SBC_SETTINGS = {"chains": 4, "draws": 500, "tune": 500, "thin": 4}


_TASKS_RUN_HERE: list[int] = []  # in a worker: tasks this process has run (the first compiles)


def measured_replicates(spec, data, items, **kwargs) -> list[dict]:
    """:func:`bayes_msc.analyses.sbc.run_replicates` plus the CPU time the task took in the process
    that ran it (all its threads), and whether it was that process's first task (which
    includes loading the compiled model)."""
    from .analyses.sbc import run_replicates

    first = not _TASKS_RUN_HERE
    _TASKS_RUN_HERE.append(len(items))
    start = time.process_time()
    rows = run_replicates(spec, data, items, **kwargs)
    cpu = time.process_time() - start
    return [{**row, "task_cpu": cpu / len(rows), "first_task": first} for row in rows]


def _child_sbc(args) -> dict:
    """SBC replicates of the mortality model through the task runner ``sbc`` uses, serially
    or on ``--workers`` local workers (the first, serial, run fills the compile cache; the
    later ones start warm).

    Two kinds of figure: wall time ("steady" throughput counts replicates finished after the
    first task did, over the time since then: compiling and starting workers excluded), and
    CPU seconds per replicate in the tasks after each process's first — which, unlike wall
    time, do not grow when other processes share the cores. The serial run also splits a
    replicate's CPU into this (main) thread's — simulating, handing nutpie the data, reading
    the draws: sequential — and nutpie's sampler threads', which split over threads: the
    cost model that predicts other machines.
    """
    from .engine import runtime, sampling
    from .api import resolve_spec
    from .engine.distributed import run_tasks, task_chunks, threads_per_worker
    from .analyses.sbc import _setup, run_replicates

    settings = {k: getattr(args, f"sbc_{k}") for k in SBC_SETTINGS}
    spec = resolve_spec(ANALYSIS, seed=args.seed, chains=settings["chains"], draws=settings["draws"],
                        tune=settings["tune"])
    marks = []
    start = time.perf_counter()
    # by its module's name: run as `python -m bayes_msc.bench`, this file is __main__, whose
    # functions reach workers by value, each call with fresh globals
    from bayes_msc.bench import measured_replicates as measured

    rows, failures = run_tasks(
        measured, task_chunks(args.n, args.workers or None, 10 if args.workers else 2), args=(spec, None),
        kwargs={"seed": args.seed, "thin": settings["thin"]}, workers=args.workers or None, key="replicate",
        progress=lambda done, *_: marks.append((time.perf_counter(), done)), warm_up=lambda: _setup(spec, None))
    end = time.perf_counter()
    if failures:
        raise RuntimeError(f"SBC tasks failed: {failures}")
    first_time, first_done = next((t, d) for t, d in marks if d > 0)
    steady = (marks[-1][1] - first_done) / (marks[-1][0] - first_time) if marks[-1][0] > first_time else float("nan")
    later = [row["task_cpu"] for row in rows if not row["first_task"]]
    cores = runtime.available_cores()
    threads = threads_per_worker(args.workers) if args.workers else min(spec.sampler.chains, cores)
    out = {"workers": args.workers, "n": args.n, "wall": end - start, "to_first": first_time - start,
           "steady_per_second": steady, "threads": threads, "cores_used": min(cores, threads * max(1, args.workers)),
           "cpu_per_replicate": statistics.mean(later) if later else float("nan"), "settings": settings}
    if not args.workers:
        token = sampling.SAMPLER_THREADS.set(threads)
        process, main = time.process_time(), time.thread_time()
        run_replicates(spec, None, range(args.n, args.n + 4), seed=args.seed, thin=settings["thin"])
        main = time.thread_time() - main
        sampling.SAMPLER_THREADS.reset(token)
        out["sequential_cpu"] = main / 4
        out["parallel_cpu"] = (time.process_time() - process - main) / 4
    return out



def _child_design(args) -> dict:
    """One process: fit the default analysis, then time `design` with its defaults (after the fit)."""
    from .api import fit
    from .design import design

    result = fit(ANALYSIS, seed=args.seed)
    start = time.perf_counter()
    design(result)
    return {"design": time.perf_counter() - start}


CHILD_TASKS = {"fit": _child_fit, "pymc": _child_pymc, "sweep": _child_sweep, "sbc": _child_sbc, "design": _child_design}
DESIGN_TARGET_SECONDS = 60.0  # `design mortality` with defaults, after the fit, on 2 cores


def child_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bayes_msc.bench child")
    parser.add_argument("task", choices=sorted(CHILD_TASKS))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--sampler", default="pymc")
    parser.add_argument("--fits", type=int, default=20)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--n", type=int, default=16)
    parser.add_argument("--likelihood", default=None, help="fit: another structure than the spec's")
    for key, value in SBC_SETTINGS.items():
        parser.add_argument(f"--sbc-{key}", type=int, default=value)
    # The parent's clock when it started this process: "whole" is measured from there to the
    # end of the fit, so what a child does afterwards (a steady-state re-sample, ESS) is not in it.
    parser.add_argument("--started-at", type=float, required=True)
    args = parser.parse_args(argv)
    from .engine.process import own_process

    own_process()  # a process of ours, set up as the command line's is
    result = CHILD_TASKS[args.task](args)
    result["peak_rss_mb"] = _peak_rss_mb()
    result["child_peak_rss_mb"] = _peak_rss_mb("children")
    print("BENCH " + json.dumps(result))
    return 0


# -- the parent: orchestrate, then print -------------------------------------------------------


def _child_env(cache: Path, tree: Path | None = None, environ: dict[str, str] | None = None) -> dict[str, str]:
    """A child's environment: compiling into ``cache``; with ``tree``, importing the package
    from that source tree (another version of it, for a side-by-side comparison)."""
    from .engine.runtime import child_environment

    env = child_environment(cache, **(environ or {}))
    if tree is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tree), env.get("PYTHONPATH")]))
    return env


def _run_child(task: str, cache: Path, *extra: str, environ: dict[str, str] | None = None,
               tree: Path | None = None) -> dict:
    env = _child_env(cache, tree, environ)
    cache.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "bayes_msc.bench", "child", task, "--started-at", repr(time.time()), *extra],
        capture_output=True, text=True, env=env, cwd=cache.parent,  # not a checkout: PYTHONPATH decides
    )
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"bench child {task} failed:\n{proc.stderr[-2000:]}")
    line = next(l for l in proc.stdout.splitlines() if l.startswith("BENCH "))
    return {"wall": wall, **json.loads(line[len("BENCH "):])}


def _run_command(cache: Path, *argv: str, tree: Path | None = None) -> float:
    """Wall seconds of ``python -m bayes_msc ARGV`` (a whole process, as a user runs it)."""
    cache.parent.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "bayes_msc", *argv], capture_output=True, text=True,
                          env=_child_env(cache, tree), cwd=cache.parent)
    if proc.returncode != 0:
        raise RuntimeError(f"`bayes_msc {' '.join(argv)}` failed:\n{proc.stderr[-2000:]}")
    return time.perf_counter() - start


def _numpyro_available() -> bool:
    from importlib.util import find_spec

    return find_spec("numpyro") is not None


def _stat(values: list[float]) -> str:
    if not values:
        return "n/a"
    return f"{statistics.median(values):8.2f} [{min(values):.2f}-{max(values):.2f}]"


OPTIONAL_ROWS = ("warm_plain", "after_warm", "new_structure", "cold_alone")


def run_bench(repeats: int, sweep_fits: int, independent_fits: int, out=sys.stdout, sbc_n: int = 12) -> dict:
    runs: dict[str, list[dict]] = {"cold": [], "warm": [], "warm_plain": [], "after_warm": [], "cold_alone": [],
                                   "new_structure": [], "pymc": [], "numpyro": []}
    with tempfile.TemporaryDirectory(prefix="bayes_msc_bench_") as scratch:
        scratch = Path(scratch)
        for r in range(repeats):
            seed = ("--seed", str(r + 1))
            cache = scratch / f"fit{r}"
            # a fresh install's first fit: an empty cache folder, everything compiles
            runs["cold"].append(_run_child("fit", cache, *seed))
            runs["warm"].append(_run_child("fit", cache, *seed))
            # a plain install: the public path alone (bayes_msc.accel off), pytensor's cache warm
            runs["warm_plain"].append(_run_child("fit", cache, *seed, environ={"BAYES_MSC_ACCEL": "0"}))
            # a model of another structure, first fitted in a cache that holds the default one
            runs["new_structure"].append(_run_child("fit", cache, *seed, "--likelihood", "arm"))
            # a fresh install after `python -m bayes_msc warm`
            warmed = scratch / f"warmed{r}"
            seconds = _run_command(warmed, "warm", ANALYSIS)
            runs["after_warm"].append({**_run_child("fit", warmed, *seed), "warm_command": seconds})
            # the same cold fit without the compile helper (bayes_msc.accel.compile_helper), side by side
            runs["cold_alone"].append(_run_child("fit", scratch / f"alone{r}", *seed,
                                                 environ={"BAYES_MSC_COMPILE_HELPER": "0"}))
            runs["pymc"].append(_run_child("pymc", scratch / f"pymc{r}", *seed))
            if _numpyro_available():
                runs["numpyro"].append(_run_child("pymc", scratch / f"numpyro{r}", *seed, "--sampler", "numpyro"))
            print(f"  repeat {r + 1}/{repeats} done", file=sys.stderr)
        sweep = _run_child("sweep", scratch / "sweep", "--fits", str(sweep_fits))
        independent_cache = scratch / "independent"
        independent = [_run_child("fit", independent_cache, "--seed", str(i + 1)) for i in range(independent_fits)]
        scaling = run_scaling(scratch / "sbc", sbc_n)
    return summarise(runs, sweep, independent, out, scaling)


# -- before and after: this source tree against another version of it, in one run -------------

COMPARED = ("fresh", "after_warm", "warm_command", "warm", "floor", "warm_plain", "new_structure", "sweep", "sbc")
COMPARED_LABELS = {
    "fresh": "first fit after a fresh install",
    "after_warm": "  ... after `python -m bayes_msc warm`",
    "warm_command": "  `warm` itself",
    "warm": "warm fit, whole process",
    "floor": "  its floor (import+sample+post)",
    "warm_plain": "  plain install (BAYES_MSC_ACCEL=0)",
    "new_structure": "cold fit of a new structure",
    "sweep": "20-fit sweep in one process",
    "sbc": "`sbc mortality --n 200`",
}
NO_SLOWER = 1.05  # "no slower": the after/before ratio, allowing for timing noise on a shared machine


def run_comparison(baseline: Path, repeats: int, out=sys.stdout, sweep_fits: int = 20, sbc_n: int = 200,
                   table: Path | None = None, command: str = "") -> dict:
    """The rows of :data:`COMPARED` for ``baseline`` (another checkout of this package: its
    ``bayes_msc`` is imported from there) and for this tree, side by side, the two
    interleaved in each repeat so that a machine that slows down meanwhile slows both."""
    trees = {"before": Path(baseline).resolve(), "after": Path(__file__).resolve().parents[1]}
    measured = {side: {row: [] for row in COMPARED} for side in trees}
    pymc: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bayes_msc_bench_compare_") as scratch:
        scratch = Path(scratch)
        for r in range(repeats):
            seed = ("--seed", str(r + 1))
            for side, tree in trees.items():
                rows, cache = measured[side], scratch / f"{side}{r}" / "cache"
                rows["fresh"].append(_run_child("fit", cache, *seed, tree=tree)["whole"])
                warm = _run_child("fit", cache, *seed, tree=tree)
                rows["warm"].append(warm["whole"])
                rows["floor"].append(warm["floor"])
                if side == "after":  # the public path alone: what a plain install pays per warm fit
                    rows["warm_plain"].append(
                        _run_child("fit", cache, *seed, tree=tree, environ={"BAYES_MSC_ACCEL": "0"})["whole"])
                rows["new_structure"].append(
                    _run_command(cache, "fit", ANALYSIS, "--likelihood", "arm", "--json", tree=tree))
                warmed = scratch / f"{side}{r}" / "warmed"
                try:
                    rows["warm_command"].append(_run_command(warmed, "warm", ANALYSIS, tree=tree))
                except RuntimeError:  # a version without `warm`
                    continue
                rows["after_warm"].append(_run_child("fit", warmed, *seed, tree=tree)["whole"])
            pymc.append(_run_child("pymc", scratch / f"pymc{r}", *seed)["whole"])
            print(f"  repeat {r + 1}/{repeats} done", file=sys.stderr)
        for side, tree in trees.items():  # long: once each, on the caches the fits left
            cache = scratch / f"{side}0" / "cache"
            measured[side]["sweep"].append(_run_child("sweep", cache, "--fits", str(sweep_fits), tree=tree)["whole"])
            measured[side]["sbc"].append(_run_command(cache, "sbc", ANALYSIS, "--n", str(sbc_n), "--out",
                                                      str(scratch / f"{side}.sbc.json"), tree=tree))
            print(f"  sweep and sbc ({side}) done", file=sys.stderr)
    summary = summarise_comparison(measured, pymc, out, labels={"before": str(trees["before"]), "after": "this tree"})
    if table is not None:
        write_table(table, comparison_markdown(comparison_stats(measured, pymc), command=command,
                                               repeats=max(len(v) for v in measured["after"].values())))
        print(f"table written to {table}", file=out)
    return summary


def summarise_comparison(measured: dict, pymc: list[float], out=sys.stdout, labels: dict | None = None) -> dict:
    """Print the before/after table and the targets from the measurements (pure: no timing)."""
    before, after = measured["before"], measured["after"]
    median = {side: {row: statistics.median(v) if v else None for row, v in rows.items()}
              for side, rows in measured.items()}
    repeats = max(len(v) for v in after.values())
    print(f"bench, before and after in one run: `fit {ANALYSIS}` unless said; medians [min-max] over up to "
          f"{repeats} repeat(s), seconds", file=out)
    for side, label in (labels or {}).items():
        print(f"  {side}: {label}", file=out)
    print(f"{'':40}{'before':>22}{'after':>22}{'after/before':>14}", file=out)
    for row in COMPARED:
        b, a = median["before"][row], median["after"][row]
        ratio = f"{a / b:14.2f}" if a is not None and b is not None else f"{'':14}"
        print(f"{COMPARED_LABELS[row]:40}{_stat(before[row]):>22}{_stat(after[row]):>22}{ratio}", file=out)
    reference = statistics.median(pymc)
    print(f"{'PyMC NUTS, cold (reference)':40}{_stat(pymc):>22}", file=out)
    targets = []
    for row in ("sweep", "sbc"):
        ratio = median["after"][row] / median["before"][row]
        targets.append((f"in-process refits no slower: {row}", ratio, ratio <= NO_SLOWER))
    warm, floor = median["after"]["warm"], median["after"]["floor"]
    targets.append(("warm fit <= 1.5 x its floor", warm / floor, warm <= 1.5 * floor))
    cold = median["after"]["fresh"]
    targets.append(("cold fit <= 0.7 x PyMC NUTS", cold / reference, cold <= 0.7 * reference))
    print(f"\nTargets (ratio; PASS/FAIL; 'no slower' allows {NO_SLOWER - 1:.0%} of timing noise)", file=out)
    for label, ratio, ok in targets:
        print(f"  {label:42} {ratio:6.2f}  {'PASS' if ok else 'FAIL'}", file=out)
    return {"medians": median, "pymc": reference, "targets": [t[:2] for t in targets]}


# -- the performance table of the docs: written by bench, never typed ---------------------------
#
# ``bench --compare-with DIR --write-table FILE`` writes it after a run; a saved printout of such
# a run (what :func:`summarise_comparison` prints) can be turned into the same table with
# ``python -m bayes_msc.bench table PRINTOUT --write-table FILE``: both go through
# :func:`comparison_markdown`, from medians and ranges only.


def comparison_stats(measured: dict, pymc: list[float]) -> dict:
    """Median, min and max of every measured row and side (None where a side has none)."""
    def stat(values):
        return (statistics.median(values), min(values), max(values)) if values else None

    return {"before": {row: stat(values) for row, values in measured["before"].items()},
            "after": {row: stat(values) for row, values in measured["after"].items()},
            "pymc": stat(pymc)}


def comparison_targets(stats: dict) -> list[tuple[str, float, bool]]:
    """The targets of :func:`summarise_comparison`, from medians."""
    before = {row: s[0] for row, s in stats["before"].items() if s}
    after = {row: s[0] for row, s in stats["after"].items() if s}
    targets = []
    for row in ("sweep", "sbc"):
        if row in before and row in after:
            ratio = after[row] / before[row]
            targets.append((f"in-process refits no slower: {row}", ratio, ratio <= NO_SLOWER))
    if "warm" in after and "floor" in after:
        targets.append(("warm fit <= 1.5 x its floor", after["warm"] / after["floor"],
                        after["warm"] <= 1.5 * after["floor"]))
    if "fresh" in after and stats.get("pymc"):
        reference = stats["pymc"][0]
        targets.append(("cold fit <= 0.7 x PyMC NUTS", after["fresh"] / reference, after["fresh"] <= 0.7 * reference))
    return targets


def comparison_markdown(stats: dict, *, command: str = "", repeats: int | None = None, machine: str = "",
                        note: str = "") -> str:
    """The before/after table and its targets as Markdown (seconds, medians [min-max])."""
    def cell(s):
        return "n/a" if not s else f"{s[0]:.2f} [{s[1]:.2f}–{s[2]:.2f}]"

    lines = []
    if command:
        lines.append(f"Made by `{command}`" + (f" on {machine}" if machine else "")
                     + (f", {repeats} repeat(s)" if repeats else "") + ". Seconds, medians [min–max]."
                     + (f" {note}" if note else ""))
        lines.append("")
    lines += ["| | before | after | after/before |", "|---|---|---|---|"]
    for row in COMPARED:
        b, a = stats["before"].get(row), stats["after"].get(row)
        ratio = f"{a[0] / b[0]:.2f}" if a and b else ""
        label = COMPARED_LABELS[row].strip().replace("...", "…")
        if COMPARED_LABELS[row].startswith("  "):
            label = "&nbsp;&nbsp;" + label
        lines.append(f"| {label} | {cell(b)} | {cell(a)} | {ratio} |")
    lines.append(f"| PyMC NUTS, cold (reference) | {cell(stats.get('pymc'))} | | |")
    targets = comparison_targets(stats)
    if targets:
        lines += ["", f"| target ('no slower' allows {NO_SLOWER - 1:.0%} of timing noise) | ratio | verdict |",
                  "|---|---|---|"]
        lines += [f"| {label} | {ratio:.2f} | {'PASS' if ok else 'FAIL'} |" for label, ratio, ok in targets]
    return "\n".join(lines) + "\n"


def parse_comparison_printout(text: str) -> dict:
    """Read the table :func:`summarise_comparison` prints back into medians and ranges: each row
    is a 40-character label, then right-aligned 22-character cells for before and after."""
    import re

    cell = re.compile(r"n/a|([0-9.]+) \[([0-9.]+)-([0-9.]+)\]")
    by_label = {label.strip(): row for row, label in COMPARED_LABELS.items()}
    reference = "PyMC NUTS, cold (reference)"
    stats: dict = {"before": {}, "after": {}, "pymc": None}
    for line in text.splitlines():
        label, rest = line[:40].strip(), line[40:]
        if label not in by_label and label != reference:
            continue
        for match in cell.finditer(rest):
            value = tuple(float(g) for g in match.groups()) if match.group(1) else None
            if label == reference:
                stats["pymc"] = value
                break
            side = "before" if match.end() <= 22 else "after" if match.end() <= 44 else None
            if side:
                stats[side][by_label[label]] = value
    missing = [row for row in COMPARED if row not in stats["after"]]
    if missing or stats["pymc"] is None:
        raise ValueError(f"not a `bench --compare-with` printout (missing: {missing or [reference]})")
    return stats


def write_table(path: Path | str, text: str) -> Path:
    """Write the table atomically (a temporary file renamed into place)."""
    from .io.fileio import write_atomic

    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(target, text)
    return target


def scaling_workers(cores: int) -> list[int]:
    """Serial (0), then 2, 4, 8, 16 workers where this machine has the cores."""
    return [0] + [w for w in (2, 4, 8, 16) if w <= cores]


def run_scaling(cache: Path, n_per_worker: int) -> list[dict]:
    """The SBC scaling runs, all on one compile cache (filled by the serial run first)."""
    from .engine.runtime import available_cores

    rows = []
    for workers in scaling_workers(available_cores()):
        n = n_per_worker * max(1, workers)
        rows.append(_run_child("sbc", cache, "--workers", str(workers), "--n", str(n)))
        print(f"  scaling: {workers or 'serial'} done", file=sys.stderr)
    return rows


def summarise(runs: dict[str, list[dict]], sweep: dict, independent: list[dict], out=sys.stdout,
              scaling: list[dict] | None = None) -> dict:
    """Print the table, speeds and targets from the children's measurements (pure: no timing)."""
    repeats, independent_fits = len(runs["cold"]), len(independent)

    def col(name, key):
        return [run[key] for run in runs[name] if key in run]

    print(f"bayes_msc bench: `fit {ANALYSIS}` on the embedded register, default sampler settings; "
          f"{os.cpu_count()} cores; medians [min-max] over {repeats} repeat(s), seconds", file=out)
    print(f"{'':28}{'whole':>22}{'import':>22}{'compile':>22}{'sample':>22}{'post':>22}{'peak MB':>22}"
          f"{'CPU s':>22}", file=out)
    for name, label in (("cold", "nutpie, cold cache"), ("warm", "nutpie, warm cache"),
                        ("warm_plain", "  plain install (no accel)"), ("after_warm", "nutpie, after `warm`"),
                        ("new_structure", "nutpie, new structure"), ("cold_alone", "nutpie, cold, no helper"),
                        ("pymc", "PyMC NUTS, cold cache"), ("numpyro", "NumPyro, cold cache")):
        if name in OPTIONAL_ROWS and not runs.get(name):
            continue
        if not runs[name]:
            print(f"{label:28}not installed", file=out)
            continue
        cells = [_stat(col(name, "whole")), _stat(col(name, "import")), _stat(col(name, "compile")),
                 _stat(col(name, "sample")), _stat(col(name, "postprocess")), _stat(col(name, "peak_rss_mb")),
                 _stat(col(name, "cpu"))]
        print(f"{label:28}" + "".join(f"{c:>22}" for c in cells), file=out)
        if name == "warm":
            print(f"{'  warm floor':28}{_stat(col('warm', 'floor')):>22}   (import + sample + post of the warm "
                  f"runs; nutpie callbacks from the disk cache: {col('warm', 'callbacks_from_cache')} of 2)", file=out)
    print(f"{'':28}cold: an empty cache folder (a fresh install's first fit), everything compiles; after `warm`: "
          "the first fit after `python -m bayes_msc warm`", file=out)
    if runs.get("after_warm"):
        print(f"{'':28}`python -m bayes_msc warm {ANALYSIS}` itself: {_stat(col('after_warm', 'warm_command')).strip()} s",
              file=out)
    if runs.get("new_structure"):
        print(f"{'':28}new structure: `fit {ANALYSIS} --likelihood arm`, first fitted in a cache that holds the "
              "default structure", file=out)
    if runs["pymc"]:
        print(f"{'':28}PyMC samples in worker processes; the largest peaked at "
              f"{_stat(col('pymc', 'child_peak_rss_mb')).strip()} MB (not in the column above)", file=out)
    print("\nSampling speed: min bulk ESS (over all parameters) per second of sampling. 'first': the fit\n"
          "above (nutpie incl. converting its trace); 'steady': a second sampling in the same process,\n"
          "time spent drawing only (PyMC's own sampling_time; nutpie without the conversion)", file=out)
    for name in ("cold", "pymc", "numpyro"):
        if runs[name]:
            print(f"  {name:10} first {_stat(col(name, 'ess_per_second'))}   steady {_stat(col(name, 'steady_ess_per_second'))}"
                  f"   divergences {col(name, 'divergences')}", file=out)

    cold = statistics.median(col("cold", "whole"))
    warm = statistics.median(col("warm", "whole"))
    floor = statistics.median(col("warm", "floor"))
    pymc = statistics.median(col("pymc", "whole"))
    numpyro = statistics.median(col("numpyro", "whole")) if runs["numpyro"] else None
    # Conservative: PyMC's better of its two samplings per repeat against nutpie's steady state.
    pymc_best = [max(r["ess_per_second"], r["steady_ess_per_second"]) for r in runs["pymc"]]
    ess_ratio = statistics.median(col("cold", "steady_ess_per_second")) / statistics.median(pymc_best)
    first_ess_ratio = statistics.median(col("cold", "ess_per_second")) / statistics.median(col("pymc", "ess_per_second"))
    independent_total = sum(r["whole"] for r in independent)
    print(f"\nSweep: {sweep['fits']} fits in one process, {sweep['compiles']} compile(s): {sweep['whole']:.1f} s "
          f"(first fit {sweep['first_fit']:.1f} s, later fits {sweep['later_fit_median']:.2f} s each, peak "
          f"{sweep['peak_rss_mb']:.0f} MB)", file=out)
    print(f"Independent: {independent_fits} separate `fit` processes sharing a cache: {independent_total:.1f} s "
          f"(peak {max(r['peak_rss_mb'] for r in independent):.0f} MB each)", file=out)
    targets = [
        ("cold fit <= 0.7 x PyMC NUTS whole process", cold / pymc, cold <= 0.7 * pymc),
        ("warm fit <= 1.5 x warm floor", warm / floor, warm <= 1.5 * floor),
        ("warm fit <= 0.5 x cold fit", warm / cold, warm <= 0.5 * cold),
        (f"{sweep['fits']}-fit sweep <= 2 x one cold fit", sweep["whole"] / cold, sweep["whole"] <= 2 * cold),
        ("sampling ESS/s >= 10 x PyMC NUTS", ess_ratio, ess_ratio >= 10),
        (f"sweep vs {independent_fits} independent fits", sweep["whole"] / independent_total * independent_fits / sweep["fits"], True),
    ]
    if numpyro is not None:
        targets.insert(2, ("cold fit vs NumPyro whole process", cold / numpyro, cold <= numpyro))
    scaling_targets = _print_scaling(scaling or [], out)
    print("\nTargets (ratio; PASS/FAIL)", file=out)
    for label, ratio, ok in targets[:-1] + scaling_targets:
        print(f"  {label:42} {ratio:6.2f}  {'PASS' if ok else 'FAIL'}", file=out)
        if label.startswith("sampling ESS/s"):
            print(f"  {'':42}         (nutpie steady vs PyMC's faster of its two samplings)", file=out)
    print(f"  {'sampling ESS/s vs PyMC NUTS, first sampling':42} {first_ess_ratio:6.2f}  (incl. one-off costs)", file=out)
    if runs.get("warm_plain"):
        plain = statistics.median(col("warm_plain", "whole"))
        print(f"  {'warm fit, plain install / with accel':42} {plain / warm:6.2f}  ({plain:.2f} s vs {warm:.2f} s: "
              "what bayes_msc.accel saves a warm fit)", file=out)
    if runs.get("after_warm"):
        print(f"  {'first fit after `warm` / cold fit':42} {statistics.median(col('after_warm', 'whole')) / cold:6.2f}",
              file=out)
    cpu = {name: statistics.median(col(name, "cpu")) for name in ("cold", "warm", "pymc", "numpyro") if col(name, "cpu")}
    if "pymc" in cpu:
        print(f"  {'cold fit CPU s / PyMC NUTS CPU s':42} {cpu['cold'] / cpu['pymc']:6.2f}  (the same comparison "
              "in CPU time, which other load on the machine does not inflate)", file=out)
    if runs.get("cold_alone"):
        alone = statistics.median(col("cold_alone", "whole"))
        print(f"  {'cold fit with / without compile helper':42} {cold / alone:6.2f}  (CPU "
              f"{cpu['cold'] / statistics.median(col('cold_alone', 'cpu')):.2f}: the helper spends CPU to save "
              "wall time)", file=out)
    if "warm" in cpu:
        print(f"  {'warm fit CPU s / cold fit CPU s':42} {cpu['warm'] / cpu['cold']:6.2f}", file=out)
    label, ratio, _ = targets[-1]
    print(f"  {label:42} {ratio:6.2f}  (per fit, sweep / independent)", file=out)
    return {"runs": runs, "sweep": sweep, "independent": independent, "scaling": scaling,
            "targets": [t[:2] for t in targets + scaling_targets]}


def predicted_throughput(sequential: float, parallel: float, workers: int, threads: int) -> float:
    """Replicates per second of ``workers`` processes with ``threads`` sampler threads each,
    on dedicated cores: each replicate costs ``sequential`` CPU seconds in its worker's main
    thread plus ``parallel`` CPU seconds split over its sampler threads."""
    return max(1, workers) / (sequential + parallel / threads)


def _print_scaling(scaling: list[dict], out) -> list[tuple[str, float, bool]]:
    """The scaling table, the cost model's prediction for 16 cores, and the SBC targets."""
    if not scaling:
        return []
    serial = scaling[0]
    settings = serial["settings"]
    print(f"\nScaling: `sbc {ANALYSIS}` ({settings['chains']} chains x {settings['draws']} draws after "
          f"{settings['tune']} tuning, thin {settings['thin']}); 'steady' excludes compiling and worker start-up", file=out)
    print(f"  {'run':10}{'threads':>9}{'cores':>7}{'n':>6}{'wall s':>9}{'to 1st task s':>15}{'steady rep/s':>14}"
          f"{'rep/core-s':>12}{'efficiency':>12}{'CPU s/rep':>11}", file=out)
    base = serial["steady_per_second"]
    for row in scaling:
        ideal = base * row["cores_used"] / serial["threads"]
        label = f"{row['workers']} workers" if row["workers"] else "serial"
        print(f"  {label:10}{row['threads']:>9}{row['cores_used']:>7}{row['n']:>6}{row['wall']:>9.1f}"
              f"{row['to_first']:>15.1f}{row['steady_per_second']:>14.2f}{row['steady_per_second'] / row['cores_used']:>12.3f}"
              f"{row['steady_per_second'] / ideal:>12.2f}{row['cpu_per_replicate']:>11.3f}", file=out)
    sequential, parallel, chains = serial["sequential_cpu"], serial["parallel_cpu"], settings["chains"]
    print(f"  cost model, CPU per replicate: {sequential:.3f} s sequential (main thread) + {parallel:.3f} s in the "
          f"sampler's threads, split over them", file=out)
    largest = scaling[-1]
    efficiency = 1.0
    if largest["workers"]:
        # CPU per replicate on the workers against serially: what running in parallel costs
        # (Dask, more processes). Unlike wall-time speed-ups it does not depend on how busy
        # other processes kept the cores during either run.
        efficiency = serial["cpu_per_replicate"] / largest["cpu_per_replicate"]
        print(f"  {largest['workers']} workers x {largest['threads']} thread(s): "
              f"{largest['steady_per_second'] / base:.2f} x serial wall-clock here; CPU per replicate "
              f"{largest['cpu_per_replicate']:.3f} s vs {serial['cpu_per_replicate']:.3f} s serially: "
              f"parallel efficiency {efficiency:.2f}", file=out)
    serial16 = predicted_throughput(sequential, parallel, 1, min(chains, 16))
    for workers in sorted({max(1, 16 // chains), 16}):
        threads = max(1, 16 // workers)
        rate = predicted_throughput(sequential, parallel, workers, threads) * efficiency
        print(f"  16 dedicated cores, {workers} workers x {threads} thread(s), predicted: {rate:.2f} rep/s = "
              f"{rate / serial16:.1f} x serial ({serial16:.2f} rep/s with {min(chains, 16)} threads)", file=out)
    workers16 = max(1, 16 // chains)
    predicted = predicted_throughput(sequential, parallel, workers16, max(1, 16 // workers16)) * efficiency
    ideal = 16 / min(chains, 16) * serial16
    targets = [(f"16 cores (model): SBC rate >= 0.8 x 16/{min(chains, 16)} x serial", predicted / ideal,
                predicted >= 0.8 * ideal)]
    here = [(row, predicted_throughput(sequential, parallel, row["workers"], row["threads"])
             * (efficiency if row["workers"] else 1.0)) for row in scaling]
    row, rate = max(here, key=lambda pair: pair[1])
    warm_start = min(r["to_first"] for r in scaling)  # the runs after the first start from a warm cache
    n1000 = warm_start + 1000 / rate
    how = f"{row['workers']} workers" if row["workers"] else "serial"
    print(f"  `sbc --n 1000` on {max(r['cores_used'] for r in scaling)} dedicated cores ({how}), predicted: "
          f"{n1000:.0f} s; at the rate measured here: "
          f"{warm_start + 1000 / max(r['steady_per_second'] for r in scaling):.0f} s", file=out)
    targets.append(("sbc --n 1000, dedicated cores (model; / 300 s)", n1000 / 300, n1000 <= 300))
    return targets


def help_seconds(repeats: int = 5) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "bayes_msc", "--help"], capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return times


def main(args) -> int:
    repeats = 1 if args.quick else args.repeats
    table = getattr(args, "write_table", None)
    if args.compare_with:
        command = f"python -m bayes_msc bench --compare-with DIR --repeats {repeats}" + (" --quick" if args.quick else "")
        run_comparison(Path(args.compare_with), repeats, sweep_fits=5 if args.quick else 20,
                       sbc_n=20 if args.quick else 200, table=Path(table) if table else None, command=command)
        return 0
    if table:
        print("--write-table needs --compare-with DIR (the table is the before/after comparison)", file=sys.stderr)
        return 2
    sweep_fits = 5 if args.quick else 20
    independent_fits = 2 if args.quick else 20
    help_times = help_seconds()
    print(f"`python -m bayes_msc --help`: {_stat(help_times)} s (target < 0.5 s: "
          f"{'PASS' if statistics.median(help_times) < 0.5 else 'FAIL'})")
    run_bench(repeats, sweep_fits, independent_fits, sbc_n=6 if args.quick else 12)
    with tempfile.TemporaryDirectory(prefix="bayes_msc_bench_design_") as scratch:
        seconds = _run_child("design", Path(scratch))["design"]
    print(f"`design {ANALYSIS}` after the fit: {seconds:.1f} s (target < {DESIGN_TARGET_SECONDS:.0f} s: "
          f"{'PASS' if seconds < DESIGN_TARGET_SECONDS else 'FAIL'})")
    return 0


def table_main(argv: list[str]) -> int:
    """``python -m bayes_msc.bench table PRINTOUT --write-table FILE``: the docs' table from a saved
    printout of ``bench --compare-with`` (no timing is run)."""
    parser = argparse.ArgumentParser(prog="python -m bayes_msc.bench table")
    parser.add_argument("printout", help="a saved printout of `python -m bayes_msc bench --compare-with DIR`")
    parser.add_argument("--write-table", required=True, metavar="FILE", help="Markdown file to write")
    parser.add_argument("--command", default="", help="the command that made the printout (shown above the table)")
    parser.add_argument("--machine", default="", help="where it ran, in words")
    args = parser.parse_args(argv)
    stats = parse_comparison_printout(Path(args.printout).read_text(encoding="utf-8"))
    target = write_table(args.write_table, comparison_markdown(
        stats, command=args.command, machine=args.machine,
        note="Rendered from that run's printout: ratios from its two-decimal medians."))
    print(f"table written to {target}")
    return 0


def bench_main(argv: list[str]) -> int:
    """``python -m bayes_msc.bench [--quick] [--repeats N] [--compare-with DIR] [--write-table FILE]``:
    the command line's ``bench`` with ``--write-table`` (the docs' performance table)."""
    parser = argparse.ArgumentParser(prog="python -m bayes_msc.bench")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--compare-with", metavar="DIR")
    parser.add_argument("--write-table", metavar="FILE", help="with --compare-with: write the before/after table "
                        "as Markdown (e.g. docs/performance_table.md)")
    return main(parser.parse_args(argv))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "child":
        sys.exit(child_main(sys.argv[2:]))
    if len(sys.argv) > 1 and sys.argv[1] == "table":
        sys.exit(table_main(sys.argv[2:]))
    sys.exit(bench_main(sys.argv[1:]))

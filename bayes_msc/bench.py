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
    from .api import fit
    from .sampling import compile_analysis

    result = fit(ANALYSIS, seed=args.seed)
    whole = time.time() - args.started_at
    parts = result.outcome
    ess = _min_bulk_ess(result.tree, parts.diagnostic_vars())
    inputs = parts.make_inputs(result.evidence, result.spec.priors, result.spec.model)
    compiled = compile_analysis(inputs, lambda i: parts.build_model(i, result.spec.priors))  # cached: no compile
    start = time.perf_counter()
    compiled.sample(result.spec.sampler, raw_trace=True)
    drawing = time.perf_counter() - start
    return {**result.timings, "whole": whole, "min_bulk_ess": ess, "ess_per_second": ess / result.timings["sample"],
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
    timings.update(compile=max(total - sampling, 0.0), sample=sampling)
    ess = _min_bulk_ess(tree, parts.diagnostic_vars())
    divergences = int(tree["sample_stats"]["diverging"].sum())
    again, _, sampling_again = sample()  # as for nutpie: the sampler without one-off costs
    return {**timings, "whole": whole, "min_bulk_ess": ess, "ess_per_second": ess / sampling, "divergences": divergences,
            "steady_ess_per_second": _min_bulk_ess(again, parts.diagnostic_vars()) / sampling_again}


def _child_sweep(args) -> dict:
    """One process: a prior sweep of ``fits`` fits that reuses one compiled model."""
    import numpy as np

    from .api import fit_spec, resolve_spec
    from .evidence.register import load_register
    from .sampling import COMPILE_COUNT

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


def _child_design(args) -> dict:
    """One process: fit the default analysis, then time `design` with its defaults (after the fit)."""
    from .api import fit
    from .design import design

    result = fit(ANALYSIS, seed=args.seed)
    start = time.perf_counter()
    design(result)
    return {"design": time.perf_counter() - start}


CHILD_TASKS = {"fit": _child_fit, "pymc": _child_pymc, "sweep": _child_sweep, "design": _child_design}
DESIGN_TARGET_SECONDS = 60.0  # `design mortality` with defaults, after the fit, on 2 cores


def child_main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="bayes_msc.bench child")
    parser.add_argument("task", choices=sorted(CHILD_TASKS))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--sampler", default="pymc")
    parser.add_argument("--fits", type=int, default=20)
    # The parent's clock when it started this process: "whole" is measured from there to the
    # end of the fit, so what a child does afterwards (a steady-state re-sample, ESS) is not in it.
    parser.add_argument("--started-at", type=float, required=True)
    args = parser.parse_args(argv)
    result = CHILD_TASKS[args.task](args)
    result["peak_rss_mb"] = _peak_rss_mb()
    result["child_peak_rss_mb"] = _peak_rss_mb("children")
    print("BENCH " + json.dumps(result))
    return 0


# -- the parent: orchestrate, then print -------------------------------------------------------


def _run_child(task: str, cache: Path, *extra: str) -> dict:
    env = {**os.environ, "BAYES_MSC_CACHE_DIR": str(cache)}
    env.pop("PYTENSOR_FLAGS", None)
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "bayes_msc.bench", "child", task, "--started-at", repr(time.time()), *extra],
        capture_output=True, text=True, env=env,
    )
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"bench child {task} failed:\n{proc.stderr[-2000:]}")
    line = next(l for l in proc.stdout.splitlines() if l.startswith("BENCH "))
    return {"wall": wall, **json.loads(line[len("BENCH "):])}


def _numpyro_available() -> bool:
    from importlib.util import find_spec

    return find_spec("numpyro") is not None


def _stat(values: list[float]) -> str:
    if not values:
        return "n/a"
    return f"{statistics.median(values):8.2f} [{min(values):.2f}-{max(values):.2f}]"


def run_bench(repeats: int, sweep_fits: int, independent_fits: int, out=sys.stdout) -> dict:
    runs: dict[str, list[dict]] = {"cold": [], "warm": [], "pymc": [], "numpyro": []}
    with tempfile.TemporaryDirectory(prefix="bayes_msc_bench_") as scratch:
        scratch = Path(scratch)
        for r in range(repeats):
            cache = scratch / f"fit{r}"
            runs["cold"].append(_run_child("fit", cache, "--seed", str(r + 1)))
            runs["warm"].append(_run_child("fit", cache, "--seed", str(r + 1)))
            runs["pymc"].append(_run_child("pymc", scratch / f"pymc{r}", "--seed", str(r + 1)))
            if _numpyro_available():
                runs["numpyro"].append(_run_child("pymc", scratch / f"numpyro{r}", "--seed", str(r + 1), "--sampler", "numpyro"))
            print(f"  repeat {r + 1}/{repeats} done", file=sys.stderr)
        sweep = _run_child("sweep", scratch / "sweep", "--fits", str(sweep_fits))
        independent_cache = scratch / "independent"
        independent = [_run_child("fit", independent_cache, "--seed", str(i + 1)) for i in range(independent_fits)]
    return summarise(runs, sweep, independent, out)


def summarise(runs: dict[str, list[dict]], sweep: dict, independent: list[dict], out=sys.stdout) -> dict:
    """Print the table, speeds and targets from the children's measurements (pure: no timing)."""
    repeats, independent_fits = len(runs["cold"]), len(independent)

    def col(name, key):
        return [run[key] for run in runs[name] if key in run]

    print(f"bayes_msc bench: `fit {ANALYSIS}` on the embedded register, default sampler settings; "
          f"{os.cpu_count()} cores; medians [min-max] over {repeats} repeat(s), seconds", file=out)
    print(f"{'':28}{'whole':>22}{'import':>22}{'compile':>22}{'sample':>22}{'post':>22}{'peak MB':>22}", file=out)
    for name, label in (("cold", "nutpie, cold cache"), ("warm", "nutpie, warm cache"),
                        ("pymc", "PyMC NUTS, cold cache"), ("numpyro", "NumPyro, cold cache")):
        if not runs[name]:
            print(f"{label:28}not installed", file=out)
            continue
        cells = [_stat(col(name, "whole")), _stat(col(name, "import")), _stat(col(name, "compile")),
                 _stat(col(name, "sample")), _stat(col(name, "postprocess")), _stat(col(name, "peak_rss_mb"))]
        print(f"{label:28}" + "".join(f"{c:>22}" for c in cells), file=out)
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
    pymc = statistics.median(col("pymc", "whole"))
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
        ("cold fit <= PyMC NUTS whole process", cold / pymc, cold <= pymc),
        ("warm fit <= 0.5 x cold fit", warm / cold, warm <= 0.5 * cold),
        (f"{sweep['fits']}-fit sweep <= 2 x one cold fit", sweep["whole"] / cold, sweep["whole"] <= 2 * cold),
        ("sampling ESS/s >= 10 x PyMC NUTS", ess_ratio, ess_ratio >= 10),
        (f"sweep vs {independent_fits} independent fits", sweep["whole"] / independent_total * independent_fits / sweep["fits"], True),
    ]
    print("\nTargets (ratio; PASS/FAIL)", file=out)
    for label, ratio, ok in targets[:4]:
        print(f"  {label:42} {ratio:6.2f}  {'PASS' if ok else 'FAIL'}", file=out)
    print(f"  {'':42}         (nutpie steady vs PyMC's faster of its two samplings)", file=out)
    print(f"  {'sampling ESS/s vs PyMC NUTS, first sampling':42} {first_ess_ratio:6.2f}  (incl. one-off costs)", file=out)
    label, ratio, _ = targets[4]
    print(f"  {label:42} {ratio:6.2f}  (per fit, sweep / independent)", file=out)
    return {"runs": runs, "sweep": sweep, "independent": independent, "targets": [t[:2] for t in targets]}


def help_seconds(repeats: int = 5) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "bayes_msc", "--help"], capture_output=True, check=True)
        times.append(time.perf_counter() - start)
    return times


def main(args) -> int:
    repeats = 1 if args.quick else args.repeats
    sweep_fits = 5 if args.quick else 20
    independent_fits = 2 if args.quick else 20
    help_times = help_seconds()
    print(f"`python -m bayes_msc --help`: {_stat(help_times)} s (target < 0.5 s: "
          f"{'PASS' if statistics.median(help_times) < 0.5 else 'FAIL'})")
    run_bench(repeats, sweep_fits, independent_fits)
    with tempfile.TemporaryDirectory(prefix="bayes_msc_bench_design_") as scratch:
        seconds = _run_child("design", Path(scratch))["design"]
    print(f"`design {ANALYSIS}` after the fit: {seconds:.1f} s (target < {DESIGN_TARGET_SECONDS:.0f} s: "
          f"{'PASS' if seconds < DESIGN_TARGET_SECONDS else 'FAIL'})")
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "child":
        sys.exit(child_main(sys.argv[2:]))
    print("use `python -m bayes_msc bench`", file=sys.stderr)
    sys.exit(2)

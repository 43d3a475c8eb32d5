"""Simulation-based calibration (Talts, Betancourt, Simpson, Vehtari & Gelman, arXiv:1804.06788).

Draw parameters from the prior, simulate data shaped exactly like the analysis' evidence
(same studies, arm sizes and standard errors, and the same kinds of partial report), fit,
and record the rank of each true value among the posterior draws. If the sampler and the
model agree, each rank is uniform. Uniformity is judged by the PIT-ECDF of the fractional
ranks against simultaneous 95% bands (Säilynoja, Bürkner & Vehtari, Stat Comput 2022,
computed by arviz-stats), with a chi-square test alongside.

Partial reports are simulated with the coarsening the register implies: a bound such as
"0-1 deaths" becomes a report of whichever interval — below, inside or above the bound —
the simulated count falls in; a total across arms of unknown size draws an allocation the
design allows, then reports the total in the same way. Every replicate has the same array
shapes (configurations are padded), so the model compiles once.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pandas as pd

from ..engine.streams import SBC_RANK_TIES, SBC_REPLICATE, stream

FAMILY_ALPHA = 0.05  # chance of any false calibration alarm across a run's parameters
# Fewest posterior draws a rank may be computed among: with L draws a rank takes L + 1 values,
# and the uniformity test has no power (one draw: every rank is 0 or 1) long before L = 1.
MIN_RANK_DRAWS = 100
# SBC needs far fewer draws than a headline fit: ranks are taken among N_RANKED nearly
# independent draws, thinned from SBC_SAMPLER's draws (more if the bulk ESS of a monitored
# parameter falls short of N_RANKED). Warm-up, target_accept, maxdepth: the spec's own. Fewer
# draws only dilute the ranks; a shorter warm-up biases them: with 500 tuning steps instead of
# oxygenation's 1000, the two chains had not settled in some replicates (R-hat of nc_mean above
# 1.01 in 14%), and nc_mean's ranks fell in the outer deciles 18.4% of the time against 20%
# (19.7% with the spec's 1000; the same 1000 replicates).
SBC_SAMPLER = {"chains": 2, "draws": 500}
N_RANKED = 100
MAX_DOUBLINGS = 3
# Fewest replicates a verdict is given on. Below it the simultaneous band is so wide that only
# a gross miscalibration leaves it (at N = 10 the rank CDF may stray about 0.4 from uniform
# unflagged; at 200 about 0.1), so a small run reports what it can show and earns no PASS.
MIN_VERDICT_N = 200

# -- ranks and uniformity (pure numpy) -------------------------------------------------------


def rank_statistics(truth: np.ndarray, draws: np.ndarray) -> np.ndarray:
    """Rank of each true value among its replicate's draws: #(draws < truth), in 0..L.

    ``truth`` has shape (N,), ``draws`` (N, L).
    """
    return (np.asarray(draws) < np.asarray(truth)[:, None]).sum(axis=1)


def fractional_ranks(ranks: np.ndarray, n_draws: int, rng) -> np.ndarray:
    """Ranks spread uniformly within their bin, in (0, 1): uniform under calibration."""
    return (np.asarray(ranks) + rng.uniform(size=len(ranks))) / (n_draws + 1)


@dataclass(frozen=True)
class Uniformity:
    passed: bool
    max_outside: float  # largest distance of the ECDF outside the simultaneous band (0: inside)
    chi2_pvalue: float
    ecdf: pd.DataFrame  # x, ecdf, lower, upper (for the ECDF-difference plot)


def uniformity(fractional: np.ndarray, ci_prob: float = 0.95, n_simulations: int = 1000, seed: int = 0) -> Uniformity:
    """PIT-ECDF inside simultaneous ``ci_prob`` bands, and a chi-square test on 20 bins."""
    from arviz_stats.ecdf_utils import ecdf_pit  # simultaneous bands, Säilynoja et al. 2022
    from scipy import stats

    x, ecdf, lower, upper = ecdf_pit(np.asarray(fractional), ci_prob, n_simulations, rng=np.random.default_rng(seed))
    outside = np.maximum(lower - ecdf, 0) + np.maximum(ecdf - upper, 0)
    bins = min(20, max(2, len(fractional) // 5))
    counts, _ = np.histogram(fractional, bins=bins, range=(0, 1))
    pvalue = float(stats.chisquare(counts).pvalue)
    return Uniformity(bool(outside.max() == 0), float(outside.max()), pvalue,
                      pd.DataFrame({"x": x, "ecdf": ecdf, "lower": lower, "upper": upper}))


# -- simulation shaped like the evidence --------------------------------------------------
# The outcome simulates (Outcome.draw_truth / simulate / simulation_padding / pad_inputs):
# one simulator per model, shared with recovery tests and trial design.


# -- the run ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SBCResult:
    analysis: str
    n: int
    parameters: tuple[str, ...]
    ranks: pd.DataFrame  # one row per replicate: rank per parameter, divergences, seconds
    n_draws: int  # L: draws each rank is computed among
    uniformity: dict[str, Uniformity]
    spec_hash: str
    date: str
    seconds: float
    spec: dict = field(default_factory=dict)  # the spec's settings, to say how another spec differs
    register_hash: str = ""  # the register the simulated data were shaped on
    sampler: dict = field(default_factory=dict)  # the SBC's own draws per replicate (SBC_SAMPLER)
    thinning: str = ""  # how the ranked draws were chosen

    @property
    def conclusive(self) -> bool:
        """Enough replicates (:data:`MIN_VERDICT_N`) for a calibration verdict."""
        return self.n >= MIN_VERDICT_N

    @property
    def failed(self) -> bool:
        """Some parameter's ranks left their band: a failure at any N."""
        return not all(u.passed for u in self.uniformity.values())

    @property
    def passed(self) -> bool:
        """Calibrated: every parameter inside its band, on at least :data:`MIN_VERDICT_N` replicates."""
        return self.conclusive and not self.failed

    def detectable(self) -> float:
        """The widest half-width of the parameters' simultaneous bands: how far the ranks' CDF
        can stray from uniform at this N without being flagged."""
        widths = [float(((u.ecdf["upper"] - u.ecdf["lower"]) / 2).max()) for u in self.uniformity.values()
                  if len(u.ecdf)]
        return max(widths) if widths else float("nan")

    def verdict(self) -> str:
        inside = "uniform" if self.conclusive else "inside its band"  # too few replicates to call it uniform
        parts = [f"{p}: {inside if u.passed else 'NOT uniform'} (chi-square p {u.chi2_pvalue:.3f})"
                 for p, u in self.uniformity.items()]
        divergent = int((self.ranks["divergences"] > 0).sum())
        thinning = f" {self.thinning}." if self.thinning else ""
        if self.failed:
            head = "FAIL: calibration failure"
        elif self.passed:
            head = "PASS: ranks are uniform for every parameter"
        else:
            head = (f"NO VERDICT: N = {self.n} is below the {MIN_VERDICT_N} replicates a calibration verdict needs; "
                    f"at this N only a gross miscalibration is flagged (the ranks' CDF may stray up to "
                    f"{self.detectable():.2f} from uniform unnoticed); no failure was seen")
        level = 1 - FAMILY_ALPHA / len(self.parameters)
        return (f"{head} (SBC, N = {self.n}, {self.date}; PIT-ECDF inside simultaneous {level:.2%} bands per "
                f"parameter, {1 - FAMILY_ALPHA:.0%} family-wise). " + "; ".join(parts)
                + f". Replicates with divergences: {divergent} of {self.n}." + thinning)

    def to_dict(self) -> dict:
        return {
            "analysis": self.analysis, "n": self.n, "parameters": list(self.parameters), "n_draws": self.n_draws,
            "passed": self.passed, "conclusive": self.conclusive, "failed": self.failed,
            "min_verdict_n": MIN_VERDICT_N, "verdict": self.verdict(), "spec_hash": self.spec_hash, "spec": self.spec, "date": self.date,
            "seconds": self.seconds, "register_hash": self.register_hash, "sampler": self.sampler,
            "thinning": self.thinning, "ranks": self.ranks.to_dict(orient="list"),
            "uniformity": {p: {"passed": u.passed, "max_outside": u.max_outside, "chi2_pvalue": u.chi2_pvalue,
                               "ecdf": u.ecdf.to_dict(orient="list")} for p, u in self.uniformity.items()},
        }


@dataclass
class _Setup:
    outcome: Any
    evidence: Any
    padding: int
    compiled: Any
    names: tuple[str, ...]
    reads: tuple[str, ...] = ()  # each name as the trace holds it (a vector's element by position)


_SETUPS: dict[tuple, _Setup] = {}
_ROW_FIELDS = ("replicate", "sampler_seed", "divergences", "seconds", "n_draws", "draws_per_chain", "min_bulk_ess")  # per process: each worker compiles a structure once


def data_key(data) -> str:
    """What identifies the data a compiled setup was built on (a register's hash, a path)."""
    return str(getattr(data, "content_hash", None) or data or "embedded")


def simulated_structure(spec, data) -> dict:
    """The model structure of ``spec``'s analysis on ``data``, without compiling it."""
    from ..api import load_data

    outcome = spec.outcome_type
    evidence = outcome.build_evidence(load_data(spec, data), spec)
    return outcome.make_inputs(evidence, spec.priors, spec.model).structure


def _setup(spec, data) -> _Setup:
    from ..api import load_data
    from ..engine.sampling import compile_analysis

    key = (spec.content_hash(), data_key(data))
    if key not in _SETUPS:
        outcome = spec.outcome_type
        evidence = outcome.build_evidence(load_data(spec, data), spec)
        padding = outcome.simulation_padding(evidence)
        base_inputs = outcome.pad_inputs(outcome.make_inputs(evidence, spec.priors, spec.model), padding)
        compiled = compile_analysis(base_inputs, lambda i: outcome.build_model(i, spec.priors))
        names = outcome.sbc_parameters(evidence)
        reads = tuple(trace_name(name, base_inputs.coords) for name in names)
        _SETUPS[key] = _Setup(outcome, evidence, padding, compiled, names, reads)
    return _SETUPS[key]


def source_commit() -> str:
    """The git commit of the code that ran (``+dirty`` with uncommitted changes to tracked
    files); "" outside a git checkout. Saved with a simulation's results so they can be remade."""
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                              timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""
    return head + ("+dirty" if dirty else "")


# Vector variables SBC ranks element by element, as VARIABLE[LABEL]: the dimension of the labels.
ELEMENT_DIMS = {"covariate_effect": "covariate_term"}


def trace_name(name: str, coords: dict) -> str:
    """How the sampler's trace holds a ranked parameter: a scalar by its name; an element
    ``VARIABLE[LABEL]`` of a vector (:data:`ELEMENT_DIMS`) as ``VARIABLE[POSITION]``."""
    variable, _, label = name.partition("[")
    if not label:
        return name
    labels = list(coords[ELEMENT_DIMS[variable]])
    return f"{variable}[{labels.index(label.removesuffix(']'))}]"


def replicate_rng(seed: int, index: int):
    """Replicate ``index``'s own random stream: results do not depend on who runs it, or when."""
    return stream(seed, SBC_REPLICATE, index)


def run_replicates(spec, data, indices, *, seed: int, thin: int | None, simulation_priors=None,
                   sampler: dict | None = None, n_ranked: int = N_RANKED) -> list[dict]:
    """Simulate, fit and rank the replicates ``indices`` (a task: pure given its arguments).

    ``thin`` None: rank among ``n_ranked`` equally spaced draws, and sample again with twice
    the draws (up to :data:`MAX_DOUBLINGS` times) while the smallest bulk ESS of the ranked
    parameters is below ``n_ranked``, so the ranked draws are close to independent (Talts et
    al. 2018, section 5). An int: every ``thin``-th draw of the spec's sampler settings.
    ``sampler`` overrides the spec's chains/draws/tune.
    """
    from ..engine.sampling import scalar_draws

    setup = _setup(spec, data)
    rows = []
    for index in indices:
        rng = replicate_rng(seed, int(index))
        outcome = setup.outcome
        truth = outcome.draw_truth(spec, setup.evidence, rng, simulation_priors)
        simulated = outcome.simulate(setup.evidence, truth, rng)
        inputs = outcome.pad_inputs(outcome.make_inputs(simulated, spec.priors, spec.model), setup.padding)
        settings = spec.with_sampler(seed=int(rng.integers(2**31)), **(sampler or {})).sampler
        t0 = time.perf_counter()
        for _ in range(MAX_DOUBLINGS + 1):
            # the ranked scalars straight from nutpie's trace (no DataTree: bayes_msc.engine.sampling.scalar_draws)
            read, divergences = scalar_draws(setup.compiled.with_inputs(inputs).sample(settings, raw_trace=True),
                                             setup.reads)
            posterior = {name: read[trace] for name, trace in zip(setup.names, setup.reads)}
            min_ess = min(_bulk_ess(posterior[name]) for name in setup.names)
            if thin is not None or min_ess >= n_ranked:
                break
            settings = replace(settings, draws=2 * settings.draws)
        row = {"replicate": int(index), "sampler_seed": settings.seed,
               "divergences": divergences, "seconds": time.perf_counter() - t0,
               "draws_per_chain": settings.draws, "min_bulk_ess": float(min_ess)}
        for name in setup.names:
            flat = posterior[name].reshape(-1)
            draws = flat[::thin] if thin is not None else flat[np.linspace(0, len(flat) - 1, n_ranked).round().astype(int)]
            row[name] = int(rank_statistics(np.array([truth[name]]), draws[None, :])[0])
        row["n_draws"] = len(draws)
        rows.append(row)
    return rows


def _bulk_ess(draws: np.ndarray) -> float:
    """Bulk ESS of one scalar's (chain, draw) array (0 when undefined, e.g. a stuck chain)."""
    import arviz_stats as azs
    import xarray as xr

    value = float(azs.ess(xr.DataArray(draws, dims=("chain", "draw")), method="bulk"))
    return value if np.isfinite(value) else 0.0


def check_sbc_settings(spec, *, thin: int | None, chunk_size: int | None, n_ranked: int = N_RANKED) -> None:
    """Refuse settings that cannot give a calibration verdict, before any replicate runs."""
    from ..io.errors import InputError, Location

    if chunk_size is not None and chunk_size < 1:
        raise InputError(f"must be at least 1 replicate per task, got {chunk_size}", Location("--chunk-size"))
    if thin is None:  # ranks among n_ranked draws thinned by each replicate's own ESS
        if n_ranked < MIN_RANK_DRAWS:
            raise InputError(f"must be at least {MIN_RANK_DRAWS}, got {n_ranked}", Location("--ranked"))
        return
    if thin < 1:
        raise InputError(f"must be at least 1, got {thin}", Location("--thin"))
    kept = rank_draws(spec, thin)
    if kept < MIN_RANK_DRAWS:
        raise InputError(
            f"{thin} keeps {kept} of {spec.sampler.chains * spec.sampler.draws} posterior draws for the ranks; "
            f"at least {MIN_RANK_DRAWS} are needed (a smaller --thin, or more --draws)", Location("--thin"))


def rank_draws(spec, thin: int) -> int:
    """L: the draws each rank is computed among (every ``thin``-th of chains x draws)."""
    return -(-spec.sampler.chains * spec.sampler.draws // thin)


def journal_path(out, spec, register_hash: str, *, n: int, thin: int | None, n_ranked: int = N_RANKED,
                 sampler: dict | None = None):
    """Where finished replicates of this run stream to: the name holds the spec, the
    register and the settings (the SBC's own sampler settings too), so a rerun resumes only
    a run of the very same analysis."""
    import hashlib
    import json
    from pathlib import Path

    out = Path(out)
    ranking = f"thin{thin}" if thin is not None else f"ess{n_ranked}"
    draws = hashlib.sha256(json.dumps(sampler or {}, sort_keys=True).encode()).hexdigest()[:8]
    return out.with_name(f"{out.name}.{spec.content_hash()[:12]}-data{register_hash[:12]}-n{n}-{ranking}"
                         f"-sampler{draws}.partial.jsonl")


def run_sbc(spec, data: Any = None, *, n: int = 200, seed: int = 0, thin: int | None = None, simulation_priors=None,
            progress=None, workers: int | None = None, scheduler: str | None = None, journal=None,
            chunk_size: int | None = None, register_hash: str | None = None, sampler: dict | None = None,
            n_ranked: int = N_RANKED) -> SBCResult:
    """SBC of ``spec``'s model on data shaped like its evidence.

    ``thin`` keeps every ``thin``-th draw (L = chains x draws / thin); ``thin=None`` ranks
    among ``n_ranked`` draws thinned by the replicate's own ESS (see :func:`run_replicates`),
    with ``sampler`` (e.g. :data:`SBC_SAMPLER`) replacing the spec's chains/draws/tune. ``simulation_priors`` draws the truth from other priors than the
    fit uses — a deliberate mis-specification that a working check must flag.
    Replicates run in tasks of at most ``chunk_size`` (default 10; with workers, smaller
    towards the end: :func:`bayes_msc.engine.distributed.task_chunks`) — serially, or on Dask with ``workers`` (a
    LocalCluster) or ``scheduler`` (an existing cluster); every replicate has its own seed, so
    the ranks are identical either way. With a ``journal`` file, finished rows are appended as
    they arrive and a rerun resumes from them.
    """
    from ..engine.distributed import run_tasks, task_chunks

    if spec.model.dose_response != "none" and not spec.outcome_type.simulates_doses:
        from ..io.errors import InputError

        raise InputError(f"SBC of {spec.outcome} covers the pooled model (dose_response = none): its simulator does "
                         f"not draw dose-response forms (model.dose_response = {spec.model.dose_response})")
    if spec.model.covariates and not spec.outcome_type.simulates_covariates:
        from ..io.errors import InputError

        raise InputError(f"SBC of {spec.outcome} covers the model without covariates: its simulator does not draw "
                         f"a meta-regression's terms (model.covariates = {', '.join(spec.model.covariates)})")
    check_sbc_settings(spec, thin=thin, chunk_size=chunk_size, n_ranked=n_ranked)
    nonrandomised = simulated_structure(spec, data).get("nonrandomised", "none")
    if nonrandomised != "none":
        from ..io.errors import InputError

        # the simulators draw randomised trials: a design bias (or a power prior, which is no
        # generative model at all) in the fit would be checked against data without one
        raise InputError(f"SBC simulates randomised trials only, but this analysis' non-randomised studies enter "
                         f"through model.nonrandomised = {nonrandomised}: run it with --evidence randomised")
    if register_hash is None:
        from ..api import load_data

        register_hash = load_data(spec, data).content_hash
    start = time.perf_counter()
    chunks = task_chunks(n, workers, chunk_size or 10)
    rows, failures = run_tasks(
        run_replicates, chunks, args=(spec, data), kwargs={"seed": seed, "thin": thin,
                                                           "simulation_priors": simulation_priors,
                                                           "sampler": sampler, "n_ranked": n_ranked},
        workers=workers, scheduler=scheduler, journal=journal, progress=progress, key="replicate",
        warm_up=lambda: _setup(spec, data),  # compile here once; workers then start warm
    )
    if failures:
        from ..io.errors import InputError

        raise InputError("SBC tasks failed twice: " + "; ".join(
            f"replicates {f['items'][0]}-{f['items'][-1]} (seed {seed}): {f['error']}" for f in failures))
    ranks = pd.DataFrame(rows).sort_values("replicate").reset_index(drop=True)
    names = tuple(c for c in ranks.columns if c not in _ROW_FIELDS)  # the ranked parameters, in order
    n_draws = int(ranks["n_draws"].iloc[0])
    frac_rng = stream(seed, SBC_RANK_TIES)
    # Bands are simultaneous over each ECDF; across k parameters a Bonferroni split keeps the
    # chance of a false alarm anywhere at 5% (else 4 parameters would false-alarm ~19% of runs).
    ci_prob = 1 - FAMILY_ALPHA / len(names)
    tests = {name: uniformity(fractional_ranks(ranks[name].to_numpy(), n_draws, frac_rng), ci_prob=ci_prob, seed=seed)
             for name in names}
    used = asdict(spec.with_sampler(**(sampler or {})).sampler)
    thinning = (f"Ranks among {n_draws} equally spaced draws; each replicate sampled until the smallest bulk ESS of "
                f"{', '.join(names)} was at least {n_draws} (median {ranks['min_bulk_ess'].median():.0f}; "
                f"{int((ranks['min_bulk_ess'] < n_draws).sum())} replicates short after {MAX_DOUBLINGS} doublings)"
                if thin is None else f"Ranks among every {thin}-th draw (L = {n_draws})")
    return SBCResult(spec.name, n, names, ranks, n_draws, tests, spec.content_hash(),
                     datetime.now(timezone.utc).date().isoformat(), time.perf_counter() - start, spec.to_dict(),
                     register_hash, used, thinning)

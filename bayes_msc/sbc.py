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

import math
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pandas as pd

FAMILY_ALPHA = 0.05  # chance of any false calibration alarm across a run's parameters
# SBC needs far fewer draws than a headline fit: ranks are taken among N_RANKED nearly
# independent draws, thinned from SBC_SAMPLER's draws (more if the bulk ESS of a monitored
# parameter falls short of N_RANKED). target_accept, maxdepth: the spec's own.
SBC_SAMPLER = {"chains": 2, "draws": 500, "tune": 500}
N_RANKED = 100
MAX_DOUBLINGS = 3

TOP_LEVEL = {
    "mortality": ("log_or", "tau"),
    "oxygenation": ("mu", "tau", "nc_mean", "nc_sd"),
    "normal_normal": ("mu", "tau"),
}


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


def draw_truth(spec, evidence, rng, priors=None) -> dict[str, Any]:
    """Parameters from the prior (``priors`` may differ from the spec's, to test the test)."""
    priors = priors or spec.priors
    n = len(evidence.studies)
    truth = {"tau": float(priors.heterogeneity.scipy().rvs(random_state=rng)), "z": rng.standard_normal(n)}
    if spec.outcome == "mortality":
        truth["log_or"] = float(priors.effect.scipy().rvs(random_state=rng))
        if spec.model.baselines == "exchangeable":
            mean = float(priors.baseline.scipy().rvs(random_state=rng))
            sd = float(priors.baseline_heterogeneity.scipy().rvs(random_state=rng))
            truth["baseline_logit"] = mean + sd * rng.standard_normal(n)
        else:
            truth["baseline_logit"] = priors.baseline.scipy().rvs(size=n, random_state=rng)
    else:
        truth["mu"] = float(priors.effect.scipy().rvs(random_state=rng))
        if getattr(evidence, "natural_course", False):
            truth["nc_mean"] = float(priors.baseline.scipy().rvs(random_state=rng))
            truth["nc_sd"] = float(priors.baseline_heterogeneity.scipy().rvs(random_state=rng))
            truth["u"] = rng.standard_normal(n)
    return truth


def simulate_continuous(evidence, truth, rng):
    terms = evidence.terms.copy()
    study = terms["study_index"].to_numpy()
    theta = truth["mu"] + truth["tau"] * truth["z"]
    mean = terms["treated"].to_numpy() * theta[study]
    if "nc_mean" in truth:
        nc = truth["nc_mean"] + truth["nc_sd"] * truth["u"]
        mean = mean + (terms["kind"] == "arm").to_numpy() * nc[study]
    terms["estimate"] = mean + terms["se"].to_numpy() * rng.standard_normal(len(terms))
    return replace(evidence, terms=terms)


def simulate_mortality(evidence, truth, rng, likelihood: str = "arm"):
    """Deaths from ``truth``; ``likelihood`` "symmetric" (or "conditional", which has no
    baselines of its own) codes the baselines as the symmetric model does, so data drawn from
    the prior are the fitted model's own (see :mod:`bayes_msc.models.sparse`)."""
    from scipy.special import expit

    from .evidence.mortality import ArmCount, Configuration, PartialReport, compositions
    from .models.sparse import arm_centre_weights, coded_arm_logit

    arms = evidence.arms
    study = arms["study_index"].to_numpy()
    effect = truth["log_or"] + truth["tau"] * truth["z"]
    treated = arms["treated"].to_numpy()
    centre = 0.0
    if likelihood in ("symmetric", "conditional"):
        centre = (arm_centre_weights(study, treated, len(evidence.studies)) @ (treated * effect[study]))[study]
    p = expit(coded_arm_logit(truth["baseline_logit"][study], treated, effect[study], centre))
    exact = evidence.exact.copy()
    exact["deaths"] = rng.binomial(exact["n"].to_numpy(), p[exact["arm_index"].to_numpy()])
    partial = []
    for report in evidence.partial:
        allocations = _allocations(report)
        allocation = allocations[rng.integers(len(allocations))]
        total = sum(int(rng.binomial(n, p[a])) for a, n in allocation)
        low, high = _reported_range(report)
        cap = sum(n for _, n in allocation)
        interval = (low, high) if low <= total <= high else (0, low - 1) if total < low else (high + 1, cap)
        configs = []
        for alloc in allocations:
            sizes = [n for _, n in alloc]
            for t in range(interval[0], interval[1] + 1):
                for deaths in compositions(t, sizes):
                    configs.append(Configuration(-math.log(len(allocations)),
                                                 tuple(ArmCount(a, d, n) for (a, n), d in zip(alloc, deaths))))
        partial.append(PartialReport(report.study_id, report.kind, report.arms,
                                     f"simulated {interval[0]}-{interval[1]}", tuple(configs)))
    return replace(evidence, exact=exact, partial=tuple(partial))


def _allocations(report) -> list[tuple[tuple[int, int], ...]]:
    """The distinct (arm_index, n) allocations a report's configurations use."""
    return list(dict.fromkeys(tuple((c.arm_index, c.n) for c in config.counts) for config in report.configurations))


def _reported_range(report) -> tuple[int, int]:
    totals = [sum(c.deaths for c in config.counts) for config in report.configurations]
    return min(totals), max(totals)


def _max_configurations(report) -> int:
    """Configurations of the largest interval a simulated report can take (fixes shapes)."""
    from .evidence.mortality import compositions

    allocations = _allocations(report)
    low, high = _reported_range(report)
    cap = max(sum(n for _, n in a) for a in allocations)
    intervals = [(0, low - 1), (low, high), (high + 1, cap)]
    return max(sum(len(compositions(t, [n for _, n in a])) for a in allocations for t in range(lo, hi + 1))
               for lo, hi in intervals)


def _pad_partial(inputs, n_conf: int):
    """Pad the partial-report arrays of model inputs to ``n_conf`` configurations."""
    v = dict(inputs.values)
    if "partial_arm" not in v:
        return inputs
    extra = n_conf - v["partial_arm"].shape[1]
    if extra <= 0:
        return inputs
    for name in ("partial_deaths", "partial_n", "partial_log_choose"):
        v[name] = np.pad(v[name], ((0, 0), (0, extra), (0, 0)))
    # Padded configurations read the arms of the first one (as pack_partial_reports pads), so
    # the layout, and with it the compiled model, is the same for every replicate.
    v["partial_arm"] = np.concatenate([v["partial_arm"], np.repeat(v["partial_arm"][:, :1], extra, axis=1)], axis=1)
    v["partial_log_weight"] = np.pad(v["partial_log_weight"], ((0, 0), (0, extra)), constant_values=-np.inf)
    return replace(inputs, values=v)


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
    def passed(self) -> bool:
        return all(u.passed for u in self.uniformity.values())

    def verdict(self) -> str:
        parts = [f"{p}: {'uniform' if u.passed else 'NOT uniform'} (chi-square p {u.chi2_pvalue:.3f})"
                 for p, u in self.uniformity.items()]
        divergent = int((self.ranks["divergences"] > 0).sum())
        thinning = f" {self.thinning}." if self.thinning else ""
        head = "PASS: ranks are uniform for every parameter" if self.passed else "FAIL: calibration failure"
        level = 1 - FAMILY_ALPHA / len(self.parameters)
        return (f"{head} (SBC, N = {self.n}, {self.date}; PIT-ECDF inside simultaneous {level:.2%} bands per "
                f"parameter, {1 - FAMILY_ALPHA:.0%} family-wise). " + "; ".join(parts)
                + f". Replicates with divergences: {divergent} of {self.n}." + thinning)

    def to_dict(self) -> dict:
        return {
            "analysis": self.analysis, "n": self.n, "parameters": list(self.parameters), "n_draws": self.n_draws,
            "passed": self.passed, "verdict": self.verdict(), "spec_hash": self.spec_hash, "spec": self.spec, "date": self.date,
            "seconds": self.seconds, "register_hash": self.register_hash, "sampler": self.sampler,
            "thinning": self.thinning, "ranks": self.ranks.to_dict(orient="list"),
            "uniformity": {p: {"passed": u.passed, "max_outside": u.max_outside, "chi2_pvalue": u.chi2_pvalue,
                               "ecdf": u.ecdf.to_dict(orient="list")} for p, u in self.uniformity.items()},
        }


@dataclass
class _Setup:
    parts: Any
    evidence: Any
    n_conf: int
    compiled: Any
    names: tuple[str, ...]


_SETUPS: dict[tuple, _Setup] = {}  # per process: each worker compiles a structure once


def _data_key(data) -> str:
    return str(getattr(data, "content_hash", None) or data or "embedded")


def _setup(spec, data) -> _Setup:
    from .api import analysis_for, load_data
    from .sampling import compile_analysis

    key = (spec.content_hash(), _data_key(data))
    if key not in _SETUPS:
        parts = analysis_for(spec.outcome)
        evidence = parts.build_evidence(load_data(spec, data), spec)
        n_conf = max((_max_configurations(r) for r in getattr(evidence, "partial", ())), default=0)
        base_inputs = _pad_partial(parts.make_inputs(evidence, spec.priors, spec.model), n_conf)
        compiled = compile_analysis(base_inputs, lambda i: parts.build_model(i, spec.priors))
        names = tuple(p for p in TOP_LEVEL[spec.outcome]
                      if not p.startswith("nc") or getattr(evidence, "natural_course", False))
        _SETUPS[key] = _Setup(parts, evidence, n_conf, compiled, names)
    return _SETUPS[key]


def replicate_rng(seed: int, index: int):
    """Replicate ``index``'s own random stream: results do not depend on who runs it, or when."""
    return np.random.default_rng([seed, 0x5BC, index])


def run_replicates(spec, data, indices, *, seed: int, thin: int | None, simulation_priors=None,
                   sampler: dict | None = None, n_ranked: int = N_RANKED) -> list[dict]:
    """Simulate, fit and rank the replicates ``indices`` (a task: pure given its arguments).

    ``thin`` None: rank among ``n_ranked`` equally spaced draws, and sample again with twice
    the draws (up to :data:`MAX_DOUBLINGS` times) while the smallest bulk ESS of the ranked
    parameters is below ``n_ranked``, so the ranked draws are close to independent (Talts et
    al. 2018, section 5). An int: every ``thin``-th draw of the spec's sampler settings.
    ``sampler`` overrides the spec's chains/draws/tune.
    """
    from .models.sparse import pad_conditional

    setup = _setup(spec, data)
    rows = []
    for index in indices:
        rng = replicate_rng(seed, int(index))
        truth = draw_truth(spec, setup.evidence, rng, simulation_priors)
        if spec.outcome == "mortality":
            simulated = simulate_mortality(setup.evidence, truth, rng, spec.model.likelihood)
        else:
            simulated = simulate_continuous(setup.evidence, truth, rng)
        inputs = _pad_partial(setup.parts.make_inputs(simulated, spec.priors, spec.model), setup.n_conf)
        inputs = pad_conditional(inputs, setup.n_conf)
        settings = spec.with_sampler(seed=int(rng.integers(2**31)), **(sampler or {})).sampler
        t0 = time.perf_counter()
        for _ in range(MAX_DOUBLINGS + 1):
            tree = setup.compiled.with_inputs(inputs).sample(settings)
            posterior = tree["posterior"].to_dataset()
            min_ess = min(_bulk_ess(posterior[name]) for name in setup.names)
            if thin is not None or min_ess >= n_ranked:
                break
            settings = replace(settings, draws=2 * settings.draws)
        row = {"replicate": int(index), "sampler_seed": settings.seed,
               "divergences": int(tree["sample_stats"]["diverging"].sum()), "seconds": time.perf_counter() - t0,
               "draws_per_chain": settings.draws, "min_bulk_ess": float(min_ess)}
        for name in setup.names:
            flat = posterior[name].transpose("chain", "draw").values.reshape(-1)
            draws = flat[::thin] if thin is not None else flat[np.linspace(0, len(flat) - 1, n_ranked).round().astype(int)]
            row[name] = int(rank_statistics(np.array([truth[name]]), draws[None, :])[0])
        row["n_draws"] = len(draws)
        rows.append(row)
    return rows


def _bulk_ess(draws) -> float:
    import arviz_stats as azs

    value = float(azs.ess(draws, method="bulk"))
    return value if np.isfinite(value) else 0.0


def run_sbc(spec, data: Any = None, *, n: int = 200, seed: int = 0, thin: int | None = 5, simulation_priors=None,
            progress=None, workers: int | None = None, scheduler: str | None = None, journal=None,
            chunk_size: int = 10, sampler: dict | None = None, n_ranked: int = N_RANKED) -> SBCResult:
    """SBC of ``spec``'s model on data shaped like its evidence.

    ``thin`` keeps every ``thin``-th draw (L = chains x draws / thin); ``thin=None`` ranks
    among ``n_ranked`` draws thinned by the replicate's own ESS (see :func:`run_replicates`),
    with ``sampler`` (e.g. :data:`SBC_SAMPLER`) replacing the spec's chains/draws/tune. ``simulation_priors`` draws the truth from other priors than the
    fit uses — a deliberate mis-specification that a working check must flag.
    Replicates run in tasks of ``chunk_size`` — serially, or on Dask with ``workers`` (a
    LocalCluster) or ``scheduler`` (an existing cluster); every replicate has its own seed, so
    the ranks are identical either way. With a ``journal`` file, finished rows are appended as
    they arrive and a rerun resumes from them.
    """
    from .distributed import run_tasks

    if spec.model.dose_response != "none":
        from .errors import InputError

        raise InputError("SBC covers the pooled model (dose_response = none); dose-response forms are not simulated")
    start = time.perf_counter()
    chunks = [list(range(i, min(i + chunk_size, n))) for i in range(0, n, chunk_size)]
    rows, failures = run_tasks(
        run_replicates, chunks, args=(spec, data), kwargs={"seed": seed, "thin": thin,
                                                           "simulation_priors": simulation_priors,
                                                           "sampler": sampler, "n_ranked": n_ranked},
        workers=workers, scheduler=scheduler, journal=journal, progress=progress, key="replicate",
    )
    if failures:
        from .errors import InputError

        raise InputError("SBC tasks failed twice: " + "; ".join(
            f"replicates {f['items'][0]}-{f['items'][-1]} (seed {seed}): {f['error']}" for f in failures))
    ranks = pd.DataFrame(rows).sort_values("replicate").reset_index(drop=True)
    names = tuple(p for p in TOP_LEVEL[spec.outcome] if p in ranks.columns)
    n_draws = int(ranks["n_draws"].iloc[0])
    frac_rng = np.random.default_rng([seed, 1])
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
                     _register_hash(spec, data), used, thinning)


def _register_hash(spec, data) -> str:
    """Content hash of the data the replicates were shaped on (without compiling anything)."""
    from .api import load_data

    return str(getattr(load_data(spec, data), "content_hash", "") or "")

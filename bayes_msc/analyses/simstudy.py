"""Frequentist behaviour of the mortality analysis on registers shaped like the real one.

Two studies share one engine (:func:`fit_replicates`): simulate the register's design (its
studies, arm sizes and partial reports, coarsened as SBC coarsens them) from a known truth,
fit, and keep what a reader would conclude.

* :func:`simulation_study` — which likelihood (:mod:`bayes_msc.models.sparse`) to use by
  default: truths OR 1, 0.8, 0.5 x tau 0, 0.3, 0.6; bias of the posterior median log OR,
  coverage of the 95% equal-tailed interval, and how often "P(OR < 1) > 0.95" is declared
  when OR = 1 (a false claim of benefit).
* :func:`operating_characteristics` — how often the report's own decision rules
  ("P(OR < 1) > gamma", "P(OR < 0.8) > gamma") are declared when OR = 1 or 0.8, with tau
  drawn from its prior.

Control-arm risks (``CONTROL_RISKS``) differ between the two, because the two ask different
questions:

* ``"register"`` (operating characteristics): each register follows the real one. Every
  trial's control log-odds is a fresh joint posterior draw from the hierarchical model of the
  register's control arms that ``design`` uses (:mod:`bayes_msc.design.control_risk`:
  exchangeable control log-odds, each trial's own binomial count in the likelihood), so a
  control arm of 2/6 stays near a third, with its uncertainty; a trial whose control deaths
  are not reported gets a new trial's draw.
* ``"sparse"`` (the likelihood simulation study): each trial's observed control risk
  ((deaths + 0.5) / (n + 1), so a zero-event control arm gets a small but non-zero risk),
  except that the two smallest trials get a 2% risk: with the register's Shi 2021 (0-1/65 vs
  0/35) they make the double-zero and near-double-zero studies the sparse-data question is
  about. It is a stress design, not the register.

Each likelihood is compiled
once; every replicate goes in through ``with_data``. Every replicate has its own random
stream, so results are the same serially or on Dask (:mod:`bayes_msc.engine.distributed`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pandas as pd

from ..engine import streams
from ..models.choices import LIKELIHOODS

TRUE_ORS = (1.0, 0.8, 0.5)
TRUE_TAUS = (0.0, 0.3, 0.6)
GAMMAS = (0.8, 0.9, 0.95, 0.975)
RARE_CONTROL_RISK = 0.02  # given to the two smallest trials (double-zero studies) in the "sparse" design
CONTROL_RISKS = {
    "register": "each trial's control risk drawn afresh for every simulated register from its posterior under a "
                "hierarchical model of the register's control arms (exchangeable control log-odds, each trial's "
                "binomial count in the likelihood), as design uses",
    "new_trials": "every trial's control risk drawn afresh for every simulated register as a new trial's, from the "
                  "posterior predictive of a hierarchical model of the register's control arms (a sensitivity "
                  "analysis: the register's trials replaced by new ones with its spread of control risks)",
    "sparse": f"each trial's observed control risk ((deaths + 0.5) / (n + 1)), except the two smallest trials at "
              f"{RARE_CONTROL_RISK:.0%} (a double-zero stress design, not the register)",
}
# The null false-claim rate the operating characteristics are run for: enough null registers
# that its Monte Carlo SE is at most this (p(1 - p) / R at the rate found)
OC_TARGET_MCSE = 0.005


@dataclass(frozen=True)
class Cell:
    """One truth: an odds ratio and a tau (None: tau drawn from the spec's prior)."""

    odds_ratio: float
    tau: float | None


def control_logits(evidence) -> np.ndarray:
    """Each study's true control log-odds for simulation (see the module docstring)."""
    arms = evidence.arms
    exact = evidence.exact.merge(arms[["study_index", "treated"]], left_on="arm_index", right_index=True)
    control = exact[exact["treated"] == 0].groupby("study_index")[["deaths", "n"]].sum()
    risk = np.full(len(evidence.studies), RARE_CONTROL_RISK)
    for j, row in control.iterrows():
        risk[j] = (row["deaths"] + 0.5) / (row["n"] + 1.0)
    sizes = arms.groupby("study_index")["n"].sum(min_count=1).reindex(range(len(evidence.studies)))
    for j in sizes.sort_values().index[:2]:
        risk[j] = RARE_CONTROL_RISK
    return np.log(risk / (1 - risk))


@dataclass
class _Fitter:
    likelihood: str
    compiled: Any
    n_conf: int


_SETUPS: dict[tuple, tuple[Any, list[_Fitter], Any]] = {}  # per process: compile once per likelihood


def _setup(spec, data, likelihoods: tuple[str, ...]):
    from ..api import load_data
    from ..engine.sampling import compile_analysis

    from .sbc import data_key

    key = (spec.content_hash(), data_key(data), likelihoods)
    if key not in _SETUPS:
        parts = spec.outcome_type
        evidence = parts.build_evidence(load_data(spec, data), spec)
        n_conf = parts.simulation_padding(evidence)
        fitters = []
        for likelihood in likelihoods:
            variant = variant_spec(spec, likelihood)
            inputs = parts.pad_inputs(parts.make_inputs(evidence, variant.priors, variant.model), n_conf)
            compiled = compile_analysis(inputs, lambda i, v=variant: parts.build_model(i, v.priors))
            fitters.append(_Fitter(likelihood, compiled, n_conf))
        _SETUPS[key] = (parts, fitters, evidence)
    return _SETUPS[key]


def fit_replicates(spec, data, items, *, cells: tuple[Cell, ...], reps: int, likelihoods: tuple[str, ...],
                   seed: int, control_risk: str = "sparse") -> list[dict]:
    """Simulate and fit the replicates ``items`` (item i: cell i % len(cells), so any prefix
    of the items covers every truth evenly; ``control_risk`` is a key of ``CONTROL_RISKS``).

    A task: pure given its arguments. One row per item; its ``fits`` hold, per likelihood,
    the truth, the posterior median and 95% ETI of the log OR, P(OR < 1), P(OR < 0.8) and
    divergences (:func:`_run` flattens them).
    """
    parts, fitters, evidence = _setup(spec, data, likelihoods)
    threshold = math.log(spec.decision.clinically_meaningful_or)
    rows = []
    for item in items:
        cell = cells[int(item) % len(cells)]
        rng, truth, simulated = simulate_register(spec, evidence, cell, int(item), seed, control_risk)
        tau = truth["tau"]
        flat = _double_zero_count(simulated)
        sampler_seed = int(rng.integers(2**31))
        fits = []
        for fitter in fitters:
            variant = variant_spec(spec, fitter.likelihood)
            inputs = parts.pad_inputs(parts.make_inputs(simulated, variant.priors, variant.model), fitter.n_conf)
            start = time.perf_counter()
            tree = fitter.compiled.with_inputs(inputs).sample(spec.with_sampler(seed=sampler_seed).sampler)
            draws = tree["posterior"]["log_or"].values.reshape(-1)
            lower, median, upper = np.quantile(draws, [0.025, 0.5, 0.975])
            fits.append({"item": int(item), "likelihood": fitter.likelihood, "odds_ratio": cell.odds_ratio,
                         "tau_cell": -1.0 if cell.tau is None else cell.tau, "tau": tau,
                         "true_log_or": truth["log_or"], "median": float(median), "lower": float(lower),
                         "upper": float(upper), "prob_benefit": float(np.mean(draws < 0)),
                         "prob_meaningful": float(np.mean(draws < threshold)),
                         "divergences": int(tree["sample_stats"]["diverging"].sum()),
                         "double_zero_studies": flat, "seconds": time.perf_counter() - start})
        rows.append({"item": int(item), "fits": fits})
    return rows


_CONTROL_MODELS: dict[tuple, Any] = {}  # per process: the control arms' model of each register


def control_risk_model(spec, evidence):
    """The hierarchical model of the register's control arms (the "register" design)."""
    from ..design.control_risk import fit_control_risk

    key = (spec.content_hash(), evidence.register_hash, evidence.studies)
    if key not in _CONTROL_MODELS:
        _CONTROL_MODELS[key] = fit_control_risk(evidence, spec.priors)
    return _CONTROL_MODELS[key]


def register_control_logits(model, evidence, rng: np.random.Generator, new_trials: bool = False) -> np.ndarray:
    """One simulated register's true control log-odds per study (the "register" design): a joint
    posterior draw of each trial's own control log-odds; a study whose control deaths are not
    reported gets a new trial's draw from the same (m, s). With ``new_trials`` (the
    "new_trials" design) every study gets a new trial's draw."""
    own, m, s = model.trial_draws(rng)
    by_study = {} if new_trials else {arm.study_id: a for arm, a in zip(model.arms, own)}
    new_trial = m + s * rng.standard_normal(len(evidence.studies))
    return np.array([by_study.get(study, new_trial[j]) for j, study in enumerate(evidence.studies)])


def simulate_register(spec, evidence, cell: Cell, item: int, seed: int, control_risk: str = "sparse"):
    """The truth and the simulated register of replicate ``item``: (its random stream after
    simulating, the truth, the simulated evidence). Each trial's control arm at its control risk
    (``control_risk``: a key of ``CONTROL_RISKS``), the treated arm at odds ratio x that (the arm
    coding), whichever likelihood is then fitted."""
    from ..outcomes.mortality import MortalityOutcome

    if control_risk not in CONTROL_RISKS:
        raise ValueError(f"control_risk: expected one of {sorted(CONTROL_RISKS)}, got {control_risk!r}")
    rng = streams.stream(seed, streams.SIMULATION_REPLICATE, int(item))
    tau = float(spec.priors.heterogeneity.scipy().rvs(random_state=rng)) if cell.tau is None else cell.tau
    z = rng.standard_normal(len(evidence.studies))
    base = (control_logits(evidence) if control_risk == "sparse"
            else register_control_logits(control_risk_model(spec, evidence), evidence, rng,
                                         new_trials=control_risk == "new_trials"))
    truth = {"log_or": math.log(cell.odds_ratio), "tau": tau, "z": z, "baseline_logit": base}
    return rng, truth, MortalityOutcome(likelihood="arm").simulate(evidence, truth, rng)


def variant_spec(spec, likelihood: str):
    """The spec with a likelihood variant: "symmetric", or "symmetric/exchangeable" to set
    the baselines too (their SD prior is added by the spec)."""
    name, _, baselines = likelihood.partition("/")
    return spec.with_model(likelihood=name, baselines=baselines or "independent")


def _double_zero_count(evidence) -> int:
    from ..models.sparse import uninformative_studies

    return len(uninformative_studies(evidence))


def _run(spec, data, cells, reps, likelihoods, seed, workers, scheduler, journal, progress, chunk_size,
         control_risk="sparse"):
    from ..engine.distributed import run_tasks
    from ..io.errors import InputError

    items = list(range(len(cells) * reps))
    chunks = [items[i:i + chunk_size] for i in range(0, len(items), chunk_size)]
    rows, failures = run_tasks(fit_replicates, chunks, args=(spec, data),
                               kwargs={"cells": cells, "reps": reps, "likelihoods": likelihoods, "seed": seed,
                                       "control_risk": control_risk},
                               workers=workers, scheduler=scheduler, journal=journal, progress=progress, key="item")
    if failures:
        raise InputError("simulation tasks failed twice: " + "; ".join(
            f"items {f['items'][0]}-{f['items'][-1]} (seed {seed}): {f['error']}" for f in failures))
    return pd.DataFrame([fit for row in rows for fit in row["fits"]]).sort_values(["item", "likelihood"]).reset_index(drop=True)


def _proportion(flags: pd.Series) -> tuple[float, float]:
    p = float(flags.mean())
    return p, math.sqrt(max(p * (1 - p), 0.25 / len(flags)) / len(flags))  # floor: 0/R still has error


def summarise_study(rows: pd.DataFrame) -> pd.DataFrame:
    """Per likelihood and truth: bias (with MC SE), RMSE, 95% coverage and the rate of
    declaring P(OR < 1) > 0.95 (with MC SE: binomial, floored at 0.5/R for 0 or R hits)."""
    out = []
    for (likelihood, odds_ratio, tau), g in rows.groupby(["likelihood", "odds_ratio", "tau_cell"], sort=False):
        error = g["median"] - g["true_log_or"]
        coverage = _proportion((g["lower"] <= g["true_log_or"]) & (g["true_log_or"] <= g["upper"]))
        declared = _proportion(g["prob_benefit"] > 0.95)
        out.append({"likelihood": likelihood, "odds_ratio": odds_ratio, "tau": tau, "reps": len(g),
                    "bias": float(error.mean()), "bias_mcse": float(error.std(ddof=1) / math.sqrt(len(g))),
                    "rmse": float(math.sqrt((error ** 2).mean())), "coverage": coverage[0], "coverage_mcse": coverage[1],
                    "declare_benefit": declared[0], "declare_benefit_mcse": declared[1],
                    "mean_prob_benefit": float(g["prob_benefit"].mean()),
                    "divergent_fits": int((g["divergences"] > 0).sum())})
    return pd.DataFrame(out).sort_values(["likelihood", "odds_ratio", "tau"], ascending=[True, False, True]).reset_index(drop=True)


def overall(table: pd.DataFrame) -> pd.DataFrame:
    """One line per likelihood: worst false-claim rate at OR = 1, mean |bias|, worst coverage."""
    rows = []
    for likelihood, g in table.groupby("likelihood"):
        null = g[g["odds_ratio"] == 1.0]
        rows.append({"likelihood": likelihood, "max_false_claim": float(null["declare_benefit"].max()),
                     "mean_false_claim": float(null["declare_benefit"].mean()),
                     "mean_abs_bias": float(g["bias"].abs().mean()), "mean_rmse": float(g["rmse"].mean()),
                     "min_coverage": float(g["coverage"].min()), "mean_coverage": float(g["coverage"].mean())})
    return pd.DataFrame(rows)


@dataclass(frozen=True)
class SimulationStudy:
    analysis: str
    reps: int
    settings: dict
    table: pd.DataFrame
    overall: pd.DataFrame
    rows: pd.DataFrame
    spec_hash: str
    register_hash: str
    date: str
    seconds: float
    double_zero_mean: float  # studies per replicate with no deaths (or only deaths) in every arm

    def to_dict(self) -> dict:
        return {"analysis": self.analysis, "reps_per_cell": self.reps, "settings": self.settings,
                "table": self.table.to_dict(orient="records"), "overall": self.overall.to_dict(orient="records"),
                "rows": self.rows.to_dict(orient="list"), "spec_hash": self.spec_hash,
                "register_hash": self.register_hash, "date": self.date, "seconds": self.seconds,
                "double_zero_studies_per_replicate": self.double_zero_mean}


def _sim_spec(spec, chains: int, draws: int, tune: int):
    return spec.with_sampler(chains=chains, draws=draws, tune=tune)


def simulation_study(spec, data: Any = None, *, reps: int = 20, likelihoods: tuple[str, ...] = LIKELIHOODS,
                     ors: tuple[float, ...] = TRUE_ORS, taus: tuple[float, ...] = TRUE_TAUS, chains: int = 2,
                     draws: int = 300, tune: int = 300, seed: int | None = None, workers: int | None = None,
                     scheduler: str | None = None, journal=None, progress=None, chunk_size: int = 5) -> SimulationStudy:
    """Fit every likelihood to ``reps`` registers per truth (OR x tau); see the module docstring."""
    from ..api import load_data

    if isinstance(likelihoods, str) or not likelihoods:
        from ..io.errors import InputError

        raise InputError(f"likelihoods (--likelihoods): name at least one likelihood in a list, got {likelihoods!r}")
    seed = spec.sampler.seed if seed is None else seed
    sim_spec = _sim_spec(spec, chains, draws, tune)
    cells = tuple(Cell(o, t) for o in ors for t in taus)
    start = time.perf_counter()
    rows = _run(sim_spec, data, cells, reps, tuple(likelihoods), seed, workers, scheduler, journal, progress, chunk_size)
    table = summarise_study(rows)
    evidence = spec.outcome_type.build_evidence(load_data(spec, data), spec)
    settings = {"chains": chains, "draws": draws, "tune": tune, "seed": seed, "likelihoods": list(likelihoods),
                "odds_ratios": list(ors), "taus": list(taus), "rare_control_risk": RARE_CONTROL_RISK,
                "control_risk": CONTROL_RISKS["sparse"],
                "priors": spec.priors.to_dict()}
    per_rep = rows.drop_duplicates("item")["double_zero_studies"].mean()
    return SimulationStudy(spec.name, reps, settings, table, overall(table), rows, spec.content_hash(),
                           evidence.register_hash, datetime.now(timezone.utc).date().isoformat(),
                           time.perf_counter() - start, float(per_rep))


# -- operating characteristics of the decision rule -------------------------------------------


@dataclass(frozen=True)
class OperatingCharacteristics:
    analysis: str
    likelihood: str
    reps: int  # null registers (OR 1); every truth's count is in settings["reps"]
    table: pd.DataFrame  # truth OR x rule x gamma: rate declared, MC SE
    settings: dict
    spec_hash: str
    register_hash: str
    date: str
    seconds: float

    def to_dict(self) -> dict:
        return {"analysis": self.analysis, "likelihood": self.likelihood, "null_reps": self.reps,
                "table": self.table.to_dict(orient="records"), "settings": self.settings, "spec_hash": self.spec_hash,
                "register_hash": self.register_hash, "date": self.date, "seconds": self.seconds}


def oc_table(rows: pd.DataFrame, threshold_or: float, gammas=GAMMAS) -> pd.DataFrame:
    """How often each rule is declared per true OR, with binomial MC SE."""
    out = []
    for odds_ratio, g in rows.groupby("odds_ratio", sort=False):
        for rule, column in (("P(OR < 1) > gamma", "prob_benefit"),
                             (f"P(OR < {threshold_or:g}) > gamma", "prob_meaningful")):
            for gamma in gammas:
                rate, mcse = _proportion(g[column] > gamma)
                out.append({"true_or": odds_ratio, "rule": rule, "gamma": gamma, "rate": rate, "mcse": mcse,
                            "reps": len(g)})
    return pd.DataFrame(out)


def oc_cells(ors: tuple[float, ...], reps: int, alternative_reps: int) -> tuple[tuple[Cell, ...], int]:
    """Cells and rounds for ``reps`` registers at OR 1 and ``alternative_reps`` at every other OR:
    item i is cell i % len(cells), so the cells repeat in the ratio of their counts."""
    counts = [reps if o == 1.0 else alternative_reps for o in ors]
    rounds = math.gcd(*counts)
    return tuple(Cell(o, None) for o, n in zip(ors, counts) for _ in range(n // rounds)), rounds


def operating_characteristics(spec, data: Any = None, *, reps: int = 4000, alternative_reps: int = 1000,
                              ors: tuple[float, ...] = (1.0, 0.8), chains: int = 2, draws: int = 500,
                              tune: int = 300, seed: int | None = None, workers: int | None = None,
                              scheduler: str | None = None, journal=None, progress=None,
                              chunk_size: int = 10, control_risk: str = "register") -> OperatingCharacteristics:
    """Declaration rates of the spec's decision rules on simulated registers that follow the
    real one (``CONTROL_RISKS["register"]``; tau from its prior).

    ``reps`` registers are simulated under the null (OR 1) and ``alternative_reps`` at every
    other true OR. The null's are the ones a false claim of benefit is counted on, so they get
    the most: at a false-claim rate near 0.07, 4000 registers give a Monte Carlo SE of 0.004
    (``OC_TARGET_MCSE``); 1000 at an alternative give about 0.016 at a rate of 0.5.
    ``control_risk="new_trials"`` replaces every trial's own control risk by a new trial's from
    the same model: a sensitivity analysis of that assumption.
    """
    from ..api import load_data
    from ..io.errors import InputError

    import numbers

    for name, value in (("reps", reps), ("alternative_reps", alternative_reps)):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 2:
            raise InputError(f"operating_characteristics({name}=...): expected a whole number of at least 2, "
                             f"got {value!r}")
    if control_risk not in ("register", "new_trials"):
        raise InputError(f"operating_characteristics(control_risk=...): expected 'register' or 'new_trials', "
                         f"got {control_risk!r}")
    if (isinstance(ors, str) or not all(isinstance(o, numbers.Real) and math.isfinite(o) and o > 0 for o in ors)
            or len(set(ors)) != len(ors) or 1.0 not in ors):
        raise InputError("operating_characteristics(ors=...): expected distinct positive odds ratios including the "
                         f"null (1.0), got {ors!r}")
    seed = spec.sampler.seed if seed is None else seed
    cells, rounds = oc_cells(tuple(ors), reps, alternative_reps)
    start = time.perf_counter()
    likelihood = spec.model.likelihood
    evidence = spec.outcome_type.build_evidence(load_data(spec, data), spec)
    control = control_risk_model(spec, evidence)  # refused here, before any fit, if it cannot be built
    rows = _run(_sim_spec(spec, chains, draws, tune), data, cells, rounds, (likelihood,), seed + 1, workers,
                scheduler, journal, progress, chunk_size, control_risk=control_risk)
    table = oc_table(rows, spec.decision.clinically_meaningful_or)
    settings = {"chains": chains, "draws": draws, "tune": tune, "seed": seed + 1, "odds_ratios": list(ors),
                "reps": {format(o, "g"): (reps if o == 1.0 else alternative_reps) for o in ors},
                "tau": f"drawn from the prior {spec.priors.heterogeneity.describe()}",
                "control_risk": CONTROL_RISKS[control_risk], "control_risk_model": control.describe(),
                "target_mcse": OC_TARGET_MCSE, "gammas": list(GAMMAS)}
    return OperatingCharacteristics(spec.name, likelihood, reps, table, settings, spec.content_hash(),
                                    evidence.register_hash, datetime.now(timezone.utc).date().isoformat(),
                                    time.perf_counter() - start)


def render_simulation_study(study: SimulationStudy) -> str:
    lines = [f"Simulation study ({study.reps} registers per truth; {study.settings['chains']} chains x "
             f"{study.settings['draws']} draws per fit; {study.double_zero_mean:.1f} double-zero studies per register)",
             f"  control risks: {study.settings.get('control_risk', CONTROL_RISKS['sparse'])}",
             f"  {'likelihood':<12} {'OR':>4} {'tau':>4}  {'bias (MCSE)':<16} {'RMSE':>5}  {'coverage (MCSE)':<16} "
             f"{'P(OR<1)>0.95 (MCSE)':<20} divergent"]
    for r in study.table.itertuples():
        lines.append(f"  {r.likelihood:<12} {r.odds_ratio:>4.1f} {r.tau:>4.1f}  {r.bias:+.3f} ({r.bias_mcse:.3f})  "
                     f"{r.rmse:>5.3f}  {r.coverage:.3f} ({r.coverage_mcse:.3f})   {r.declare_benefit:.3f} "
                     f"({r.declare_benefit_mcse:.3f})      {r.divergent_fits}")
    lines.append("")
    for r in study.overall.itertuples():
        lines.append(f"  {r.likelihood:<12} false claims at OR 1: max {r.max_false_claim:.3f}, mean {r.mean_false_claim:.3f}; "
                     f"mean |bias| {r.mean_abs_bias:.3f}; coverage min {r.min_coverage:.3f}, mean {r.mean_coverage:.3f}")
    lines.append(f"time: {study.seconds:.0f} s")
    return "\n".join(lines)


def null_false_claim(table: pd.DataFrame, gamma: float = 0.95) -> tuple[float, float]:
    """The headline: how often "P(OR < 1) > gamma" fires when OR = 1 (rate, MCSE)."""
    row = table[(table["true_or"] == 1.0) & (table["rule"] == "P(OR < 1) > gamma") & (table["gamma"] == gamma)]
    return float(row["rate"].iloc[0]), float(row["mcse"].iloc[0])


def render_oc(oc: OperatingCharacteristics) -> str:
    reps = oc.settings.get("reps", {})
    counts = ", ".join(f"{n} at OR {o}" for o, n in reps.items()) or f"{oc.reps} per true OR"
    lines = [f"Operating characteristics ({oc.likelihood} likelihood; simulated registers: {counts}; "
             f"tau from its prior): how often each rule is declared (MCSE)",
             f"  control risks: {oc.settings.get('control_risk', CONTROL_RISKS['sparse'])}"]
    head = "".join(f"{'gamma ' + format(g, 'g'):>18}" for g in GAMMAS)
    for odds_ratio, g in oc.table.groupby("true_or", sort=False):
        lines.append(f"  true OR {odds_ratio:g}")
        lines.append(f"    {'rule':<24}{head}")
        for rule, r in g.groupby("rule", sort=False):
            cells = "".join(f"{f'{x.rate:.3f} ({x.mcse:.3f})':>18}" for x in r.itertuples())
            lines.append(f"    {rule:<24}{cells}")
    rate, mcse = null_false_claim(oc.table)
    target = oc.settings.get("target_mcse", OC_TARGET_MCSE)
    lines.append(f"false claims of benefit (P(OR < 1) > 0.95 when OR = 1): {rate:.3f} (MCSE {mcse:.4f})"
                 + ("" if mcse <= target else f"; MCSE above {target:g}: run more null registers (--reps)"))
    lines.append(f"time: {oc.seconds:.0f} s")
    return "\n".join(lines)


def oc_report_table(path) -> pd.DataFrame | None:
    """The saved operating characteristics (``reports/<analysis>.oc.json``) as a table, for the
    report: one row per true OR and rule, one column per gamma ("rate ± MCSE"); None if absent."""
    import json
    from pathlib import Path

    path = Path(path)
    if not path.is_file():
        return None
    payload = json.loads(path.read_text(encoding="utf-8"))
    table = pd.DataFrame(payload["table"])
    table["cell"] = [f"{r:.3f} ± {m:.3f}" for r, m in zip(table["rate"], table["mcse"])]
    table = table.rename(columns={"reps": "registers"})
    wide = table.pivot_table(index=["true_or", "registers", "rule"], columns="gamma", values="cell", aggfunc="first",
                             sort=False)
    wide.columns = [f"gamma {g:g}" for g in wide.columns]
    wide = wide.reset_index()
    # how the control risks were simulated: a run saved before this was recorded fixed the two
    # smallest trials at 2% (the "sparse" design)
    wide.attrs["control_risk"] = payload.get("settings", {}).get("control_risk", CONTROL_RISKS["sparse"])
    return wide


def simstudy_report_table(path) -> pd.DataFrame | None:
    """The saved simulation study (``reports/<analysis>.simstudy.json``) as the table the
    docs and a report's methods show (None if absent)."""
    import json
    from pathlib import Path

    path = Path(path)
    if not path.is_file():
        return None
    return pd.DataFrame(json.loads(path.read_text(encoding="utf-8"))["table"])

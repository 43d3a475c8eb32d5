"""Checks of the target-population model (:mod:`bayes_msc.models.populations`) on the register's design.

Two runs, each written to ``reports/`` as JSON with the command and commit that made it:

``choice``
    which population model to use: the exchangeable populations model against an EXNEX-style
    mixture (Neuenschwander et al., Pharm Stat 2016), on registers simulated with the
    register's studies, arm sizes and control risks (drawn as the operating characteristics
    draw them: :func:`bayes_msc.analyses.simstudy.register_control_logits`). Truths: the
    populations alike (every population at OR 0.7) and the target different (target OR 1.0,
    the others 0.6); tau 0.2. Per model: bias and RMSE of the posterior median of the target
    population's log OR, coverage of its 95% interval, and how often P(OR < 1) > 0.95 is
    declared for the target when its OR is 1.
``sbc``
    simulation-based calibration of the population model (Talts et al. 2018) with the
    machinery of :mod:`bayes_msc.analyses.sbc`: ranks of log_or, tau, population_sd and the
    target population's log OR, the truth drawn from the priors.

``python -m bayes_msc.analyses.population_checks {choice,sbc} --population ards_cause=non_covid --out FILE``
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from ..engine.streams import SBC_RANK_TIES, SIMULATION_REPLICATE, stream
from ..models import populations
from . import sbc as sbc_tools

CHOICE_TRUTHS = {"alike": {"target_or": 0.7, "other_or": 0.7}, "target_differs": {"target_or": 1.0, "other_or": 0.6}}
CHOICE_TAU = 0.2
RANKED = ("log_or", "tau", "population_sd", "target_log_or")


def _spec_and_register(population: list[str], seed: int):
    from ..api import load_data, resolve_spec
    from ..models.populations import resolve_population

    spec = resolve_spec("mortality", population=population, seed=seed)
    register = load_data(spec, None)
    return resolve_population(spec, register), register


def _compiled(spec, evidence, form: str, padding: int):
    from ..engine.sampling import compile_analysis

    inputs = _inputs(spec, evidence, form, padding)
    return compile_analysis(inputs, lambda i: spec.outcome_type.build_model(i, spec.priors))


def _inputs(spec, evidence, form: str, padding: int):
    outcome = spec.outcome_type
    inputs = outcome.pad_inputs(outcome.make_inputs(evidence, spec.priors, spec.model), padding)
    if form != "exchangeable":
        inputs = replace(inputs, structure={**inputs.structure, "population": form})
    return inputs


def _target_draws(trace, n_pop: int, form: str) -> tuple[dict[str, np.ndarray], int]:
    """log_or, tau, population_sd and the target's log OR per draw (the target population is
    the first), read from nutpie's arrow trace by :func:`bayes_msc.engine.sampling.scalar_draws`."""
    from ..engine.sampling import scalar_draws

    first = "population_z[0]" if form == "exchangeable" else "population_deviation[0]"
    draws, divergences = scalar_draws(trace, ("log_or", "tau", "population_sd", first))
    out = {k: np.asarray(draws[k]) for k in ("log_or", "tau", "population_sd")}
    deviation = np.asarray(draws[first])
    out["target_log_or"] = out["log_or"] + (out["population_sd"] * deviation if form == "exchangeable" else deviation)
    return out, divergences


def _provenance(argv: list[str]) -> dict:
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "bayes_msc"], capture_output=True, text=True).stdout)
    except (OSError, subprocess.CalledProcessError):
        commit, dirty = "unknown", False
    return {"command": "python -m bayes_msc.analyses.population_checks " + " ".join(argv), "commit": commit,
            "uncommitted_changes_in_package": dirty,
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds")}


# -- which model -----------------------------------------------------------------------------------


def model_choice(population: list[str], reps: int, seed: int, minutes: float) -> dict:
    """The ``choice`` run (see the module docstring)."""
    from .simstudy import control_risk_model, register_control_logits

    spec, register = _spec_and_register(population, seed)
    outcome = spec.outcome_type
    evidence = outcome.build_evidence(register, spec)
    padding = outcome.simulation_padding(evidence)
    order, index = populations.population_layout(evidence.studies, spec.model.population)
    compiled = {form: _compiled(spec, evidence, form, padding) for form in populations.FORMS}
    controls = control_risk_model(spec, evidence)
    settings = spec.with_sampler(chains=2, draws=1000, tune=1000, target_accept=0.99).sampler
    rows, start = [], time.perf_counter()
    names = list(CHOICE_TRUTHS)
    for item in range(reps * len(names)):
        if time.perf_counter() - start > minutes * 60:
            break
        scenario = names[item % len(names)]
        truth_ors = CHOICE_TRUTHS[scenario]
        rng = stream(seed, SIMULATION_REPLICATE, item)
        effects = np.where(index == 0, math.log(truth_ors["target_or"]), math.log(truth_ors["other_or"]))
        truth = {"log_or": effects, "tau": CHOICE_TAU, "z": rng.standard_normal(len(evidence.studies)),
                 "baseline_logit": register_control_logits(controls, evidence, rng)}
        simulated = outcome.simulate(evidence, truth, rng)
        sampler_seed = int(rng.integers(2**31))
        for form in populations.FORMS:
            inputs = _inputs(spec, simulated, form, padding)
            t0 = time.perf_counter()
            trace = compiled[form].with_inputs(inputs).sample(replace(settings, seed=sampler_seed), raw_trace=True)
            draws, divergences = _target_draws(trace, len(order), form)
            target = draws["target_log_or"].ravel()
            lower, median, upper = np.quantile(target, [0.025, 0.5, 0.975])
            rows.append({"item": item, "scenario": scenario, "model": form,
                         "true_target_log_or": math.log(truth_ors["target_or"]), "median": float(median),
                         "lower": float(lower), "upper": float(upper), "prob_benefit": float((target < 0).mean()),
                         "divergences": divergences, "seconds": time.perf_counter() - t0})
    table = pd.DataFrame(rows)
    summary = []
    for (scenario, form), g in table.groupby(["scenario", "model"], sort=False):
        err = g["median"] - g["true_target_log_or"]
        covered = (g["lower"] <= g["true_target_log_or"]) & (g["true_target_log_or"] <= g["upper"])
        n = len(g)
        summary.append({
            "scenario": scenario, "model": form, "replicates": n, "true_target_or": CHOICE_TRUTHS[scenario]["target_or"],
            "bias": float(err.mean()), "bias_mcse": float(err.std(ddof=1) / math.sqrt(n)),
            "rmse": float(math.sqrt((err**2).mean())), "coverage_95": float(covered.mean()),
            "coverage_mcse": float(math.sqrt(covered.mean() * (1 - covered.mean()) / n)),
            "claims_benefit_rate": float((g["prob_benefit"] > 0.95).mean()),
            "mean_interval_width": float((g["upper"] - g["lower"]).mean()),
            "replicates_with_divergences": int((g["divergences"] > 0).sum()),
        })
    return {"what": "target population's log OR: exchangeable populations vs EXNEX-style mixture "
                    f"(EX weight {populations.EXNEX_WEIGHT}, NEX Normal(0, {populations.EXNEX_NEX_SD}))",
            "population": spec.model.population.label, "populations": list(order),
            "truths": CHOICE_TRUTHS, "tau": CHOICE_TAU,
            "control_risks": "register design (simstudy.register_control_logits)",
            "sampler": {"chains": settings.chains, "draws": settings.draws, "tune": settings.tune,
                        "target_accept": settings.target_accept},
            "prior_population_sd": spec.priors.population_heterogeneity.describe(),
            "seconds": time.perf_counter() - start, "summary": summary, "rows": rows}


# -- calibration -------------------------------------------------------------------------------------


def population_sbc(population: list[str], n: int, seed: int, minutes: float, journal: Path | None = None) -> dict:
    """The ``sbc`` run: as :func:`bayes_msc.analyses.sbc.run_replicates`, the truth drawn by
    :func:`bayes_msc.models.populations.draw_population_truth`; stops after ``minutes`` (the
    result then says how many replicates it holds)."""
    spec, register = _spec_and_register(population, seed)
    outcome = spec.outcome_type
    evidence = outcome.build_evidence(register, spec)
    padding = outcome.simulation_padding(evidence)
    order, index = populations.population_layout(evidence.studies, spec.model.population)
    compiled = _compiled(spec, evidence, "exchangeable", padding)
    done = {}
    if journal is not None and journal.exists():
        for line in journal.read_text().splitlines():
            row = json.loads(line)
            done[row["replicate"]] = row
    start = time.perf_counter()
    for index_rep in range(n):
        if index_rep in done:
            continue
        if time.perf_counter() - start > minutes * 60:
            break
        rng = sbc_tools.replicate_rng(seed, index_rep)
        truth = populations.draw_population_truth(spec, evidence, index, rng)
        simulated = populations.simulate_population(spec, evidence, truth, index, rng)
        inputs = _inputs(spec, simulated, "exchangeable", padding)
        settings = spec.with_sampler(seed=int(rng.integers(2**31)), **sbc_tools.SBC_SAMPLER).sampler
        t0 = time.perf_counter()
        for _ in range(sbc_tools.MAX_DOUBLINGS + 1):
            draws, divergences = _target_draws(compiled.with_inputs(inputs).sample(settings, raw_trace=True),
                                               len(order), "exchangeable")
            min_ess = min(sbc_tools._bulk_ess(draws[k]) for k in RANKED)
            if min_ess >= sbc_tools.N_RANKED:
                break
            settings = replace(settings, draws=2 * settings.draws)
        values = {"log_or": truth["log_or"], "tau": truth["tau"], "population_sd": truth["population_sd"],
                  "target_log_or": truth["target_log_or"]}
        row = {"replicate": index_rep, "sampler_seed": settings.seed, "divergences": divergences,
               "seconds": time.perf_counter() - t0, "draws_per_chain": settings.draws, "min_bulk_ess": float(min_ess)}
        for k in RANKED:
            flat = draws[k].reshape(-1)
            kept = flat[np.linspace(0, len(flat) - 1, sbc_tools.N_RANKED).round().astype(int)]
            row[k] = int(sbc_tools.rank_statistics(np.array([values[k]]), kept[None, :])[0])
        row["n_draws"] = sbc_tools.N_RANKED
        done[index_rep] = row
        if journal is not None:
            with journal.open("a") as fh:
                fh.write(json.dumps(row) + "\n")
    ranks = pd.DataFrame(sorted(done.values(), key=lambda r: r["replicate"]))
    frac_rng = stream(seed, SBC_RANK_TIES)
    ci_prob = 1 - sbc_tools.FAMILY_ALPHA / len(RANKED)
    tests = {k: sbc_tools.uniformity(sbc_tools.fractional_ranks(ranks[k].to_numpy(), sbc_tools.N_RANKED, frac_rng),
                                     ci_prob=ci_prob, seed=seed) for k in RANKED}
    result = sbc_tools.SBCResult(
        f"{spec.name} --population {spec.model.population.label}", len(ranks), RANKED, ranks, sbc_tools.N_RANKED,
        tests, spec.content_hash(), datetime.now(timezone.utc).date().isoformat(), float(ranks["seconds"].sum()),
        spec.to_dict(), register.content_hash, dict(sbc_tools.SBC_SAMPLER),
        f"Ranks among {sbc_tools.N_RANKED} equally spaced draws; each replicate sampled until the smallest bulk ESS "
        f"of {', '.join(RANKED)} was at least {sbc_tools.N_RANKED} (median {ranks['min_bulk_ess'].median():.0f})")
    return {**result.to_dict(), "requested_n": n, "populations": list(order)}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="python -m bayes_msc.analyses.population_checks")
    parser.add_argument("run", choices=("choice", "sbc"))
    parser.add_argument("--population", action="append", default=None)
    parser.add_argument("--n", type=int, default=1000, help="sbc: replicates; choice: replicates per truth")
    parser.add_argument("--seed", type=int, default=20261122)
    parser.add_argument("--minutes", type=float, default=25.0, help="stop starting replicates after this long")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    population = args.population or ["ards_cause=non_covid"]
    out = Path(args.out)
    provenance = _provenance(argv)  # the code that runs: the commit at the start
    if args.run == "choice":
        payload = model_choice(population, args.n, args.seed, args.minutes)
    else:
        payload = population_sbc(population, args.n, args.seed, args.minutes,
                                 journal=out.with_name(out.name + ".partial.jsonl"))
    from ..results import to_json

    out.write_text(to_json({"provenance": provenance, **payload}, indent=1))
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

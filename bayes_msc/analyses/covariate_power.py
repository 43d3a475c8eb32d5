"""What a meta-regression of the register's trials can detect: recovery and power of a covariate term.

Registers shaped like the mortality analysis' (its included randomised trials, arm sizes and
partial reports, coarsened as SBC coarsens them) are simulated with a known covariate effect
and fitted with the spec's model and that covariate; for each scenario the study records

* **detection**: how often P(term < 0 | data) > :data:`DETECTION_PROB` (every scenario's true
  term is negative or zero; at zero the rate is a false-detection rate),
* **coverage** of the 95% equal-tailed interval of the term,
* **contraction** ``1 - var_post / var_prior`` of the term (mean over replicates): how much of
  the ``covariate`` prior's variance the data remove.

Data follow the fitted model's study effects, ``theta_j = log_or + x_j' beta + tau z_j``, with
``x_j`` coded as the fit codes it (:func:`bayes_msc.models.regression.covariate_design`) and
deaths drawn by the mortality outcome's own simulator
(:meth:`bayes_msc.outcomes.mortality.MortalityOutcome.simulate`, arm coding) at each trial's
observed control risk ((deaths + 0.5) / (n + 1)). Every replicate has its own random stream
(:data:`bayes_msc.engine.streams.COVARIATE_POWER_REPLICATE`), so a rerun gives the same numbers.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import numpy as np

DETECTION_PROB = 0.95  # "detected": P(term < 0 | data) above this
CI_PROB = 0.95
TRUE_LOG_OR = math.log(0.8)  # the pooled effect at the covariates' centre / reference level
TRUE_TAU = 0.2


@dataclass(frozen=True)
class Scenario:
    """One truth: ``covariate`` with the terms ``effects`` (term -> true value on the log-OR
    scale; terms not named are 0); ``monitored``: the term whose detection is counted."""

    name: str
    covariate: str
    monitored: str
    effects: tuple[tuple[str, float], ...]
    meaning: str

    def truth(self, terms: tuple[str, ...]) -> np.ndarray:
        effects = dict(self.effects)
        unknown = sorted((set(effects) | {self.monitored}) - set(terms))
        if unknown:
            from ..io.errors import InputError

            raise InputError(f"scenario {self.name}: the fit of {self.covariate} has the terms {', '.join(terms)}, "
                             f"not {', '.join(unknown)}")
        return np.array([effects.get(t, 0.0) for t in terms])


NUMERIC_SLOPE = -0.5
CATEGORICAL_DIFFERENCE = math.log(0.5)
SCENARIOS = (
    Scenario("infusions_slope", "infusions", "infusions", (("infusions", NUMERIC_SLOPE),),
             f"log OR falls by {-NUMERIC_SLOPE} per SD of the number of infusions: the odds ratio is multiplied by "
             f"exp({NUMERIC_SLOPE}) = {math.exp(NUMERIC_SLOPE):.2f} per SD"),
    Scenario("infusions_null", "infusions", "infusions", (("infusions", 0.0),),
             "no effect of the number of infusions (the detection rate is a false-detection rate)"),
    Scenario("ards_cause_difference", "ards_cause", "ards_cause[non_covid]",
             (("ards_cause[non_covid]", CATEGORICAL_DIFFERENCE),),
             "non-COVID ARDS trials' odds ratio half that of COVID trials (log OR difference log 0.5 = "
             f"{CATEGORICAL_DIFFERENCE:.3f}); COVID trials without an ARDS definition as COVID ARDS"),
    Scenario("ards_cause_null", "ards_cause", "ards_cause[non_covid]", (("ards_cause[non_covid]", 0.0),),
             "no difference by cause (the detection rate is a false-detection rate)"),
)


def observed_control_logits(evidence) -> np.ndarray:
    """Each included trial's observed control log-odds, log((d + 0.5) / (n - d + 0.5)), in the
    order of ``evidence.studies`` (the values the control_risk coding centres on)."""
    from ..models.regression import _observed_baseline_logits

    logits = _observed_baseline_logits(evidence)
    missing = [sid for sid in evidence.studies if sid not in logits]
    if missing:
        from ..io.errors import InputError

        raise InputError(f"no exact control-arm count to simulate from for {', '.join(missing)}")
    return np.array([logits[sid] for sid in evidence.studies])


def rate(count: int, n: int) -> dict[str, float]:
    """A proportion with its binomial Monte Carlo SE sqrt(p (1 - p) / n)."""
    p = count / n
    return {"count": int(count), "n": int(n), "rate": p, "mcse": math.sqrt(p * (1 - p) / n)}


def covariate_power(spec, data=None, *, reps: int = 200, scenarios: tuple[Scenario, ...] = SCENARIOS,
                    seed: int = 20261206, chains: int = 2, draws: int = 500, tune: int | None = None,
                    progress=None) -> dict[str, Any]:
    """Simulate and fit ``reps`` registers per scenario (see the module docstring); returns the
    settings, a summary per scenario and one row per replicate."""
    from ..api import load_data
    from ..engine import streams
    from ..engine.sampling import compile_analysis, scalar_draws
    from ..io.errors import InputError
    from ..models.regression import covariate_design
    from ..outcomes.mortality import MortalityOutcome

    if not spec.outcome_type.simulates_covariates:
        raise InputError(f"the covariate power study needs a simulator of the covariate terms; the {spec.outcome} "
                         "analysis has none (the mortality family has)")
    if reps < 2:
        raise InputError(f"needs at least 2 replicates per scenario, got {reps}")
    start = time.perf_counter()
    sampler = {"chains": chains, "draws": draws, **({"tune": tune} if tune else {})}
    base = spec.with_sampler(**sampler)
    register = load_data(base, data)
    simulator = MortalityOutcome(likelihood="arm")  # deaths from each trial's control risk and its effect
    prior_sd = None
    out_scenarios, rows, settings_by = {}, [], {}
    for s_index, scenario in enumerate(scenarios):
        variant = base.with_model(covariates=(scenario.covariate,))
        parts = variant.outcome_type
        evidence = parts.build_evidence(register, variant)
        design = covariate_design(evidence, (scenario.covariate,))
        beta = scenario.truth(design.terms)
        position = design.terms.index(scenario.monitored)
        padding = parts.simulation_padding(evidence)
        compiled = compile_analysis(parts.pad_inputs(parts.make_inputs(evidence, variant.priors, variant.model), padding),
                                    lambda i, v=variant: v.outcome_type.build_model(i, v.priors))
        prior_sd = float(variant.priors.covariate.scipy().std())
        baseline = observed_control_logits(evidence)
        shift = design.matrix @ beta
        mine = []
        for rep in range(reps):
            rng = streams.stream(seed, streams.COVARIATE_POWER_REPLICATE, s_index, rep)
            truth = {"tau": TRUE_TAU, "z": rng.standard_normal(len(evidence.studies)), "log_or": TRUE_LOG_OR,
                     "baseline_logit": baseline, "covariate_shift": shift}
            simulated = simulator.simulate(evidence, truth, rng)
            inputs = parts.pad_inputs(parts.make_inputs(simulated, variant.priors, variant.model), padding)
            settings = variant.with_sampler(seed=int(rng.integers(2**31))).sampler
            read, divergences = scalar_draws(compiled.with_inputs(inputs).sample(settings, raw_trace=True),
                                             (f"covariate_effect[{position}]",))
            b = read[f"covariate_effect[{position}]"].ravel()
            lower, upper = np.quantile(b, [(1 - CI_PROB) / 2, (1 + CI_PROB) / 2])
            true = float(beta[position])
            row = {"scenario": scenario.name, "replicate": rep, "true": true,
                   "prob_below_zero": float((b < 0).mean()), "median": float(np.median(b)),
                   "lower": float(lower), "upper": float(upper), "covered": bool(lower <= true <= upper),
                   "contraction": 1.0 - float(b.var(ddof=1)) / prior_sd ** 2, "divergences": int(divergences)}
            row["detected"] = row["prob_below_zero"] > DETECTION_PROB
            mine.append(row)
            if progress is not None:
                progress(len(rows) + len(mine), reps * len(scenarios))
        rows.extend(mine)
        contraction = np.array([r["contraction"] for r in mine])
        medians = np.array([r["median"] for r in mine])
        out_scenarios[scenario.name] = {
            "covariate": scenario.covariate, "term": scenario.monitored, "true": float(beta[position]),
            "true_terms": dict(zip(design.terms, map(float, beta))), "meaning": scenario.meaning,
            "coding": {c.name: c.to_dict() for c in design.covariates},
            "n_trials": len(evidence.studies), "studies": list(evidence.studies),
            "detection": rate(sum(r["detected"] for r in mine), reps),
            "coverage": rate(sum(r["covered"] for r in mine), reps),
            "contraction_mean": float(contraction.mean()),
            "contraction_mcse": float(contraction.std(ddof=1) / math.sqrt(reps)),
            "median_mean": float(medians.mean()), "median_mcse": float(medians.std(ddof=1) / math.sqrt(reps)),
            "replicates_with_divergences": int(sum(r["divergences"] > 0 for r in mine)),
        }
        settings_by[scenario.name] = variant.content_hash()
    return {
        "analysis": spec.name,
        "settings": {
            "reps_per_scenario": reps, "seed": seed, "sampler": {"chains": chains, "draws": draws,
                                                                  "tune": base.sampler.tune,
                                                                  "target_accept": base.sampler.target_accept},
            "true_log_or": TRUE_LOG_OR, "true_tau": TRUE_TAU, "detection_rule": f"P(term < 0 | data) > {DETECTION_PROB}",
            "ci_prob": CI_PROB, "covariate_prior": variant.priors.covariate.describe(), "covariate_prior_sd": prior_sd,
            "likelihood_fitted": base.model.likelihood, "simulator": "arm deaths ~ Binomial(n, expit(control logit + "
            "treated * (log_or + x_j' beta + tau z_j))), partial reports coarsened as SBC coarsens them",
            "control_risks": "each trial's observed control risk (deaths + 0.5) / (n + 1)",
            "spec_hashes": settings_by, "register_hash": register.content_hash,
        },
        "scenarios": out_scenarios,
        "rows": rows,
        "date": datetime.now(timezone.utc).date().isoformat(),
        "seconds": time.perf_counter() - start,
    }


def main(argv: list[str] | None = None) -> int:
    """``python -m bayes_msc.analyses.covariate_power --reps 200 --out FILE``."""
    import argparse
    import sys

    from ..api import resolve_spec
    from ..io.errors import InputError
    from ..io.fileio import check_output_file, write_atomic
    from ..results import to_json
    from .sbc import source_commit

    parser = argparse.ArgumentParser(prog="python -m bayes_msc.analyses.covariate_power",
                                     description="detection power and coverage of a mortality meta-regression term "
                                                 "on registers shaped like the embedded one")
    parser.add_argument("--reps", type=int, default=200, help="replicates per scenario (default 200)")
    parser.add_argument("--out", required=True, help="JSON file to write")
    parser.add_argument("--force", action="store_true", help="overwrite --out")
    args = parser.parse_args(argv)
    commit = source_commit()  # the code that runs, read before the run
    try:
        out = check_output_file(args.out, "--out", force=args.force)
        result = covariate_power(resolve_spec("mortality"), reps=args.reps,
                                 progress=lambda done, total: print(f"\r{done}/{total}", end="", file=sys.stderr))
    except InputError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    command = "python -m bayes_msc.analyses.covariate_power " + " ".join(sys.argv[1:] if argv is None else argv)
    write_atomic(out, to_json(result | {"command": command, "commit": commit}, indent=1) + "\n")
    print(file=sys.stderr)
    for name, s in result["scenarios"].items():
        print(f"{name}: detected {s['detection']['count']}/{s['detection']['n']} "
              f"({s['detection']['rate']:.2f}, MCSE {s['detection']['mcse']:.3f}); covered "
              f"{s['coverage']['count']}/{s['coverage']['n']}; mean contraction {s['contraction_mean']:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""How much does the prior decide, and does one trial decide it?

* :func:`prior_sensitivity` refits under every combination of the named effect and
  heterogeneity presets of the analysis' scale, and under each other baseline preset. Hyperparameters are model data, so a refit
  with the same prior families reuses the compiled model; a new family (Turner's log-normal
  τ²) compiles once. Each refit's time is measured and reported. Power-scaling sensitivity
  (``psense``, Kallioinen et al. 2023) of the default fit says which parameters the prior or
  the likelihood drives.
* :func:`leave_one_study_out` refits with each study masked (its data carry no
  information, array shapes unchanged: nothing recompiles) and gives PSIS-LOO Pareto k per
  study from the full fit.

Both work for any analysis through :func:`bayes_msc.api.fit_spec`.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass
from itertools import product
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

# Conclusions whose survival across priors is reported, as (label, test on a row).
CONCLUSIONS = (
    ("benefit more likely than not (P(benefit) > 0.5)", lambda p: p > 0.5),
    ("probable benefit (P(benefit) >= 0.9)", lambda p: p >= 0.9),
    ("near-certain benefit (P(benefit) >= 0.975)", lambda p: p >= 0.975),
)


# fit, influence and provenance each sample the same evidence afresh: say what their small
# differences are, so that e.g. 0.875 and 0.873 are not read as two findings
MONTE_CARLO_VARIANTS = (
    "P(benefit) of the same evidence in fit, influence and provenance comes from separate sampler runs "
    "(provenance fits the model that admits non-randomised studies, with them masked): Monte Carlo variants of "
    "one number, which agree within about 2 MCSE (in brackets)."
)


def failed_checks(diagnostics) -> str:
    """The names of the diagnostics a fit failed ("" when it passed): what a FAIL is about."""
    return ", ".join(c.name for c in diagnostics.checks if not c.passed)


def diagnostics_word(row) -> str:
    """"pass", or "FAIL: " and the checks that failed (a sensitivity or comparison row)."""
    if row.diagnostics_passed:
        return "pass"
    failed = getattr(row, "diagnostics_failed", "")
    return f"FAIL: {failed} outside thresholds" if isinstance(failed, str) and failed else "FAIL"


def headline(result) -> dict[str, float]:
    """The numbers a sensitivity table compares (:meth:`bayes_msc.decisions.Decisions.headline`)."""
    return result.decisions.headline()


@dataclass(frozen=True)
class PriorSensitivity:
    outcome: str  # what the effect is (see bayes_msc.outcomes)
    measure: Any  # the analysis' EffectMeasure (a normal-normal analysis states its own scale)
    table: pd.DataFrame  # one row per (effect preset, heterogeneity preset)
    psense: pd.DataFrame  # power-scaling sensitivity of the default fit
    verdict: str
    first_fit_seconds: float
    refit_seconds: list[float]  # refits that reused the compiled model
    compiles: int
    benefit: str = ""  # what P(benefit) is the probability of: "P(OR < 1); benefit = decrease"

    def to_dict(self) -> dict:
        return {
            "outcome": self.outcome,
            "benefit": self.benefit,
            "table": self.table.to_dict(orient="records"),
            "psense": self.psense.reset_index(names="parameter").to_dict(orient="records"),
            "verdict": self.verdict,
            "first_fit_seconds": self.first_fit_seconds,
            "median_refit_seconds": float(np.median(self.refit_seconds)) if self.refit_seconds else None,
            "compiles": self.compiles,
        }


def _timed_fit(spec, source, evidence=None):
    from ..engine import sampling
    from ..api import fit_spec

    before = sampling.COMPILE_COUNT["nutpie"]
    start = time.perf_counter()
    result = fit_spec(spec, source, evidence=evidence)
    return result, time.perf_counter() - start, sampling.COMPILE_COUNT["nutpie"] - before


def prior_combinations(spec) -> list[dict[str, str]]:
    """The prior sets the sensitivity grid refits under, each a role -> preset name map:
    every effect x heterogeneity preset (x design-bias preset when the spec has a design
    bias: an evidence set with non-randomised studies) with the spec's own baseline prior,
    then each other baseline preset with the spec's effect and heterogeneity presets — with
    sparse arms the baseline prior can move the odds ratio (not under the conditional
    likelihood, which has no baselines)."""
    from ..priors import presets_for

    presets = presets_for(spec.scale)
    effects = [p.name for p in presets if p.role == "effect"]
    taus = [p.name for p in presets if p.role == "heterogeneity"]
    biases = [p.name for p in presets if p.role == "design_bias"] if spec.priors.design_bias is not None else [None]
    grid = [{"effect": e, "heterogeneity": t, **({"design_bias": b} if b else {})}
            for e, t, b in product(effects, taus, biases)]
    if getattr(spec.model, "likelihood", "") in ("arm", "symmetric") and spec.priors.baseline is not None:
        own = spec.priors.names.get("baseline")
        effect = spec.priors.names.get("effect") if spec.priors.names.get("effect") in effects else effects[0]
        tau = spec.priors.names.get("heterogeneity") if spec.priors.names.get("heterogeneity") in taus else taus[0]
        grid += [{"effect": effect, "heterogeneity": tau, "baseline": p.name}
                 for p in presets if p.role == "baseline" and p.name != own]
    return grid


def fit_prior_combinations(spec, data, indices) -> list[dict]:
    """Refit under the prior combinations ``indices`` (a task: same numbers wherever it runs)."""
    from ..api import load_data

    source = load_data(spec, data)
    combos = prior_combinations(spec)
    rows = []
    for index in indices:
        names = combos[index]
        prior_set = spec.priors
        for name in names.values():
            prior_set = prior_set.with_preset(spec.scale, name)
        result, seconds, compiled = _timed_fit(spec.with_priors(prior_set), source)
        columns = {"effect_prior": names["effect"], "heterogeneity_prior": names["heterogeneity"]}
        if "design_bias" in names:
            columns["design_bias_prior"] = names["design_bias"]
        if spec.priors.baseline is not None:
            columns["baseline_prior"] = names.get("baseline", spec.priors.names.get("baseline", "custom"))
        rows.append({"index": int(index), **columns, **headline(result),
                     "diagnostics_passed": bool(result.diagnostics.passed),
                     "diagnostics_failed": failed_checks(result.diagnostics), "seconds": seconds,
                     "recompiled": bool(compiled)})
    return rows


def prior_sensitivity(spec, data: Any = None, *, workers: int | None = None, scheduler: str | None = None,
                      progress: Callable | None = None) -> PriorSensitivity:
    """Refit under each effect × heterogeneity preset; psense of the spec's own priors.

    ``workers`` / ``scheduler`` spread the refits over Dask workers (one combination per
    task; each worker compiles a prior family once). ``progress(done, total, failed, eta)`` is
    called as refits finish.
    """
    from ..api import load_data
    from ..engine.distributed import run_tasks

    source = load_data(spec, data)
    base, first_seconds, compiles = _timed_fit(spec, source)
    psense = power_scaling(base)
    combos = prior_combinations(spec)
    rows, failures = run_tasks(fit_prior_combinations, [[i] for i in range(len(combos))], args=(spec, data),
                               workers=workers, scheduler=scheduler, key="index", progress=progress)
    if failures:
        from ..io.errors import InputError

        raise InputError("prior-sensitivity refits failed twice: " + "; ".join(
            f"{' + '.join(combos[f['items'][0]].values())}: {f['error']}" for f in failures))
    table = pd.DataFrame(rows).sort_values("index").drop(columns="index").reset_index(drop=True)
    compiles += int(table["recompiled"].sum())
    refits = list(table.loc[~table["recompiled"], "seconds"])
    return PriorSensitivity(spec.outcome, spec.outcome_type.measure, table, psense, _verdict(table, spec), first_seconds,
                            refits, compiles, benefit_event(spec))


def power_scaling(result) -> pd.DataFrame:
    """psense of the top-level parameters: prior and likelihood sensitivity and a diagnosis."""
    import arviz_stats as azs

    roles = result.outcome.roles
    candidates = (roles.pooled, roles.heterogeneity, "emax", "ed50", "dose_slope", *result.outcome.summary_nuisance())
    names = [v for v in candidates if v in result.posterior and v in result.tree["log_prior"]]
    import logging

    # psense_summary logs generic advice; its diagnosis column carries the verdict we show
    logger = logging.getLogger("arviz_stats")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            summary = azs.psense_summary(result.tree, var_names=names, round_to=6)
    finally:
        logger.setLevel(level)
    return summary if isinstance(summary, pd.DataFrame) else pd.DataFrame(summary)


def psense_explanation(psense: pd.DataFrame) -> str:
    """What psense's "potential prior-data conflict" means for the parameters it names, and
    what to look at ("" when no parameter has it)."""
    if "diagnosis" not in psense:
        return ""
    named = [str(p) for p, d in psense["diagnosis"].items() if "conflict" in str(d)]
    if not named:
        return ""
    which = ", ".join(named)
    return (f"Potential prior-data conflict ({which}): power-scaling the prior and power-scaling the likelihood "
            f"both move the posterior of {which} (both values above 0.05). The prior is not vague where the data "
            "are, and the two pull in different directions, so the prior still shapes this part of the answer. "
            "Look at the prior-sensitivity rows (does P(benefit) change under the wider presets?) and at the "
            f"prior and posterior densities of {which} (does the posterior sit in the prior's tail?).")


def _verdict(table: pd.DataFrame, spec) -> str:
    what = spec.outcome_type.benefit_words(spec)
    lines = []
    for label, holds in CONCLUSIONS:
        held = table["prob_benefit"].map(holds)
        if held.all():
            lines.append(f"'{label}' holds under every prior")
        elif not held.any():
            lines.append(f"'{label}' holds under no prior")
        else:
            columns = [c for c in ("effect_prior", "heterogeneity_prior", "design_bias_prior", "baseline_prior")
                       if c in table]
            failing = table.loc[~held, columns].apply(" + ".join, axis=1)
            lines.append(f"'{label}' depends on the prior: it fails under {', '.join(failing)}")
    lo, hi = table["prob_benefit"].min(), table["prob_benefit"].max()
    return (f"P({what}) ranges from {lo:.3f} to {hi:.3f} across {len(table)} prior combinations. "
            + "; ".join(lines) + ".")


# -- leave one study out ------------------------------------------------------------------


@dataclass(frozen=True)
class Influence:
    outcome: str  # what the effect is (see bayes_msc.outcomes)
    measure: Any  # the analysis' EffectMeasure
    table: pd.DataFrame  # one row per study: headline numbers without it, change, Pareto k
    full: dict
    most_influential: str
    statement: str
    first_fit_seconds: float
    refit_seconds: list[float]
    compiles_after_first: int
    benefit: str = ""  # what P(benefit) is the probability of: "P(OR < 1); benefit = decrease"

    def to_dict(self) -> dict:
        return {
            "outcome": self.outcome,
            "benefit": self.benefit,
            "full": self.full,
            "table": self.table.to_dict(orient="records"),
            "most_influential": self.most_influential,
            "statement": self.statement,
            "first_fit_seconds": self.first_fit_seconds,
            "median_refit_seconds": float(np.median(self.refit_seconds)) if self.refit_seconds else None,
            "compiles_after_first": self.compiles_after_first,
        }


def refit_without_studies(spec, data, indices) -> list[dict]:
    """Refit with each study ``indices`` (positions in the evidence's study list) masked — a
    task for :func:`bayes_msc.engine.distributed.run_tasks`: same numbers wherever it runs."""
    from ..api import load_data

    source = load_data(spec, data)
    evidence = spec.outcome_type.build_evidence(source, spec)
    rows = []
    for index in indices:
        study = evidence.studies[index]
        result, seconds, compiled = _timed_fit(spec, source, evidence.masked({study}))
        rows.append({"index": int(index), "study_id": study, **headline(result), "seconds": seconds,
                     "compiled": compiled})
    return rows


def leave_one_study_out(spec, data: Any = None, *, workers: int | None = None,
                        scheduler: str | None = None, progress: Callable | None = None) -> Influence:
    """Refit with each study masked; PSIS-LOO Pareto k per study from the full fit.

    The refits run through :func:`bayes_msc.engine.distributed.run_tasks`: here, or on Dask
    ``workers`` / a ``scheduler`` (the full fit has filled the compile cache they load from).
    ``progress(done, total, failed, eta)`` is called as refits finish.
    """
    from ..api import load_data
    from .loo import loo_by_study

    source = load_data(spec, data)
    evidence = spec.outcome_type.build_evidence(source, spec)
    full, first_seconds, _ = _timed_fit(spec, source, evidence)
    loo, studies = loo_by_study(full.tree)
    pareto_k = dict(zip(studies, np.asarray(loo.pareto_k).ravel()))
    base = headline(full)
    labels = evidence.inclusion.set_index("study_id")["label"]
    from ..engine.distributed import run_tasks, task_chunks

    n_studies = len(evidence.studies)
    # here, one study per task, so that progress counts refits; on workers, guided chunks
    chunk = n_studies if workers or scheduler else 1
    refitted, failures = run_tasks(refit_without_studies, task_chunks(n_studies, workers, max_size=chunk),
                                   args=(spec, data), workers=workers, scheduler=scheduler, key="index",
                                   progress=progress)
    if failures:
        from ..io.errors import InputError

        raise InputError("leave-one-study-out refits failed twice: " + "; ".join(
            f"{[evidence.studies[i] for i in f['items']]}: {f['error']}" for f in failures))
    rows, refits, compiles = [], [], 0
    for numbers in sorted(refitted, key=lambda row: row["index"]):
        study, seconds = numbers.pop("study_id"), numbers.pop("seconds")
        compiles += numbers.pop("compiled")
        del numbers["index"]
        refits.append(seconds)
        rows.append({"study_id": study, "label": labels.get(study, study), **numbers,
                     "change_prob_benefit": numbers["prob_benefit"] - base["prob_benefit"],
                     "change_effect_median": numbers["effect_median"] - base["effect_median"],
                     "pareto_k": float(pareto_k.get(study, np.nan)), "seconds": seconds})
    table = pd.DataFrame(rows)
    top = table.loc[table["change_prob_benefit"].abs().idxmax()]
    unit, digits = spec.outcome_type.measure.short, spec.outcome_type.measure.digits
    high_k = int((table["pareto_k"] > 0.7).sum())
    statement = (
        f"Most influential: {top['label']} — without it P(benefit) is {top['prob_benefit']:.3f} "
        f"(full data {base['prob_benefit']:.3f}) and the pooled {unit} {top['effect_median']:{digits}} "
        f"(full {base['effect_median']:{digits}}). "
        + (f"{high_k} of {len(table)} studies have Pareto k > 0.7: for them PSIS-LOO is unreliable "
           "and the refits above, not LOO, measure their influence." if high_k else "All Pareto k <= 0.7.")
    )
    return Influence(spec.outcome, spec.outcome_type.measure, table, base, str(top["study_id"]), statement, first_seconds,
                     refits, compiles, benefit_event(spec))


def benefit_event(spec) -> str:
    """What P(benefit) is the probability of, for tables of refits: "P(OR < 1); benefit = decrease"."""
    outcome = spec.outcome_type
    direction = outcome.benefit_direction(spec)
    sign = "<" if direction == "decrease" else ">"
    return f"P({outcome.measure.short} {sign} {outcome.measure.null:g}); benefit = {direction}"

"""Bayesian small-study adjustment: the pooled effect of an infinitely large trial.

The analysis refits the spec with the ``small_study`` covariate (:mod:`bayes_msc.models.regression`)
inside the hierarchical model::

    theta_j = mu + beta x_j + tau z_j,    x_j = (1 / N_j) / mean(1 / N)     (mortality; Peters-type)
                                          x_j = s_j / mean(s)               (normal-normal; PET)

so ``mu`` is the effect at ``x = 0``, a trial of infinite size: the limit meta-analysis idea of
Rücker et al. (Biostatistics 2011;12:122) and Moreno et al. (BMC Med Res Methodol 2009;9:2), with
the precision regression of Egger / Peters et al. (JAMA 2006;295:676) and Stanley & Doucouliagos'
PET (Res Synth Methods 2014;5:60) as a term of the Bayesian model rather than a weighted least
squares fit. 1/N, not the SE, for odds ratios: a log odds ratio's SE depends on its own event
counts, which correlates the two even without any small-study effect (Peters 2006). PEESE (SE^2)
is not offered: it is PET's correction when an effect exists, and with about ten trials the switch
between them cannot be estimated.

Reported: the slope ``beta`` (per the included trials' harmonic-mean size against an infinite
trial), P(small trials show more benefit) = P(beta in the benefit direction), the adjusted
pooled effect and its P(benefit) beside the unadjusted ones, and a RoBMA-flavoured (Bartoš et
al., Res Synth Methods 2023;14:99) posterior probability that the slope is not zero from the
Savage–Dickey density ratio at 0 (a fixed-bandwidth kernel estimate of the posterior density,
a mean over draws, so its Monte Carlo error is an MCSE of a mean) with prior odds 1:1.

What about ten trials can show: the slope is learned from how the effects of a few small trials
differ from one or two larger ones; it is confounded with anything else that differs between small
and large trials (population, product, era), and a posterior that still looks like its prior says
the data cannot tell. The adjusted effect is an extrapolation to a trial larger than any observed,
so its interval is wider; that is its honest price, not a defect.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..models.regression import SMALL_STUDY, term_summary

HONEST_LIMITS = (
    "With about ten trials the small-study slope is weakly identified: it is learned from how a few small trials "
    "differ from one or two large ones, and it is confounded with whatever else differs between them (population, "
    "product, era). Small-study effects are not proof of publication bias, and their absence in this posterior is "
    "not proof of none. The adjusted effect extrapolates to a trial larger than any observed, so its interval is wider."
)


@dataclass(frozen=True)
class SmallStudyResult:
    """The unadjusted and adjusted pooled effects, the slope and the evidence for it."""

    analysis: str
    measure: str
    benefit_direction: str
    unadjusted: dict[str, Any]
    adjusted: dict[str, Any]
    slope: dict[str, Any]
    prob_small_study_effect: dict[str, float]
    slope_nonzero: dict[str, Any]
    coding: dict[str, Any]
    honest_limits: str = HONEST_LIMITS
    simulation: dict | None = field(default=None)

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


def _pooled(result) -> dict[str, Any]:
    d, m = result.decisions, result.outcome.measure
    return {"median": d.pooled_effect.median, "lower": d.pooled_effect.lower, "upper": d.pooled_effect.upper,
            "ci_prob": d.pooled_effect.ci_prob, "prob_benefit": d.prob_benefit.prob,
            "prob_benefit_mcse": d.prob_benefit.mcse, "tau_median": d.tau.median, "label": m.short}


def savage_dickey(slope_draws, prior) -> dict[str, Any]:
    """P(slope != 0 | data) with prior odds 1:1, from the Savage–Dickey ratio
    BF01 = p(beta = 0 | data) / p(beta = 0). The posterior density at 0 is a Gaussian kernel
    estimate with a fixed (Silverman) bandwidth h: the posterior mean of K_h(beta), so its MCSE is
    arviz-stats' MCSE of that mean (the kernel's smoothing bias is not in it)."""
    import arviz_stats as azs
    import xarray as xr
    from scipy import stats

    values = np.asarray(slope_draws)
    flat = values.ravel()
    sd = flat.std(ddof=1)
    iqr = np.subtract(*np.quantile(flat, [0.75, 0.25]))
    bandwidth = 0.9 * min(sd, iqr / 1.349) * len(flat) ** (-0.2)
    kernel = xr.DataArray(stats.norm.pdf(0.0, loc=values, scale=bandwidth), dims=("chain", "draw"))
    density = float(kernel.mean())
    density_mcse = float(azs.mcse(kernel, method="mean"))
    prior_density = float(prior.scipy().pdf(0.0))
    bf01 = density / prior_density
    prob = 1.0 / (1.0 + bf01)
    return {"posterior_density_at_zero": density, "posterior_density_mcse": density_mcse,
            "prior_density_at_zero": prior_density, "bandwidth": bandwidth, "bf01": bf01,
            "bf10": 1.0 / bf01 if bf01 > 0 else math.inf,
            "prob_nonzero": prob, "prob_nonzero_mcse": prob * prob * density_mcse / prior_density,
            "prior_odds": "1:1",
            "method": "Savage-Dickey density ratio at 0 (fixed-bandwidth Gaussian kernel estimate of the posterior "
                      "density; MCSE of that mean)"}


def small_study_analysis(spec, data=None, *, progress_bar: bool = False) -> SmallStudyResult:
    """Fit ``spec`` without and with the ``small_study`` term on the same studies, and compare."""
    from ..api import fit_spec, load_data
    from ..io.errors import InputError

    spec.check_priors_stated()
    if SMALL_STUDY in spec.model.covariates:
        raise InputError("the small-study analysis adds the small_study covariate itself; leave it out of --covariate")
    adjusted_spec = spec.with_model(covariates=(*spec.model.covariates, SMALL_STUDY))
    source = load_data(spec, data)
    adjusted = fit_spec(adjusted_spec, source, progress_bar=progress_bar, compare_designs=False)
    # the same studies: the adjusted fit's evidence (a study without a size is never excluded, but
    # another covariate may have excluded some)
    unadjusted = fit_spec(spec, evidence=adjusted.evidence, progress_bar=progress_bar, compare_designs=False)
    return summarise(spec, unadjusted, adjusted)


def summarise(spec, unadjusted, adjusted) -> SmallStudyResult:
    """The comparison of an unadjusted and a small-study-adjusted fit (see the module docstring)."""
    from ..decisions import probability
    from ..models.regression import covariate_design

    beta = adjusted.posterior["covariate_effect"].sel(covariate_term=SMALL_STUDY)
    direction = adjusted.decisions.benefit_direction
    # x grows as trials get smaller: small trials show more benefit when beta points the benefit way
    event = beta < 0 if direction == "decrease" else beta > 0
    more_benefit = probability(event)
    design = covariate_design(adjusted.evidence, adjusted.spec.model.covariates)
    coding = next(c for c in design.covariates if c.name == SMALL_STUDY).to_dict()
    return SmallStudyResult(
        analysis=spec.name, measure=adjusted.outcome.measure.name, benefit_direction=direction,
        unadjusted=_pooled(unadjusted), adjusted=_pooled(adjusted),
        slope=term_summary(beta, adjusted.spec.priors.covariate, spec.decision.ci_prob),
        prob_small_study_effect={"prob": more_benefit.prob, "mcse": more_benefit.mcse,
                                 "event": "small trials show more benefit than large ones (slope "
                                          + ("< 0" if direction == "decrease" else "> 0") + ")"},
        slope_nonzero=savage_dickey(beta.transpose("chain", "draw").values, adjusted.spec.priors.covariate),
        coding=coding,
    )


def render_small_study(result: SmallStudyResult) -> str:
    u, a, s = result.unadjusted, result.adjusted, result.slope
    label = u["label"]
    better = "<" if result.benefit_direction == "decrease" else ">"
    null = 1 if result.measure == "odds ratio" else 0
    pct = round(100 * u["ci_prob"])
    nz = result.slope_nonzero
    lines = [
        f"Small-study adjustment ({result.analysis}; {label}, medians with {pct}% equal-tailed intervals)",
        f"  unadjusted pooled {label:<10} {u['median']:.2f} ({u['lower']:.2f} to {u['upper']:.2f})   "
        f"P({label} {better} {null}) {u['prob_benefit']:.3f} (MCSE {u['prob_benefit_mcse']:.3f})",
        f"  adjusted pooled {label:<12} {a['median']:.2f} ({a['lower']:.2f} to {a['upper']:.2f})   "
        f"P({label} {better} {null}) {a['prob_benefit']:.3f} (MCSE {a['prob_benefit_mcse']:.3f})   "
        "(a trial of infinite size)",
        f"  small-study slope        {s['median']:+.2f} ({s['lower']:+.2f} to {s['upper']:+.2f}) on the model scale; "
        f"contraction {s['contraction']:.2f}" + ("  (mostly prior)" if s["mostly_prior"] else ""),
        f"    x: {result.coding['coding']}",
        f"  P(small-study effect: {result.prob_small_study_effect['event']}) "
        f"{result.prob_small_study_effect['prob']:.3f} (MCSE {result.prob_small_study_effect['mcse']:.3f})",
        f"  P(slope != 0 | data), prior odds 1:1 (Savage-Dickey) {nz['prob_nonzero']:.2f} "
        f"(MCSE {nz['prob_nonzero_mcse']:.2f}; BF10 {nz['bf10']:.2f})",
        "  " + result.honest_limits,
    ]
    return "\n".join(lines)


# -- a simulation check: is a known slope recovered, and is P(benefit) left alone without one? --


def simulation_check(spec, data=None, *, reps: int = 20, slopes: tuple[float, ...] = (0.0, -0.5),
                     log_or: float = math.log(0.7), tau: float = 0.2, seed: int = 20261206,
                     draws: int = 500, tune: int = 500, chains: int = 2) -> dict[str, Any]:
    """Registers shaped like ``spec``'s (its included trials, arm sizes and observed control risks),
    deaths simulated with study log odds ratio ``log_or + slope * x_j + tau z_j``; each fitted with
    and without the small_study term. Per slope: how often the 95% interval covers the slope, and
    how far the adjusted P(benefit) sits from the unadjusted one."""
    from ..api import load_data
    from ..engine import streams
    from ..engine.sampling import compile_analysis
    from ..models.regression import covariate_design
    from ..outcomes.mortality import MortalityOutcome
    from .simstudy import control_logits

    base = spec.with_sampler(draws=draws, tune=tune, chains=chains)
    adjusted_spec = base.with_model(covariates=(SMALL_STUDY,))
    parts = adjusted_spec.outcome_type
    evidence = parts.build_evidence(load_data(adjusted_spec, data), adjusted_spec)
    padding = parts.simulation_padding(evidence)  # a bound's simulated configurations: one shape for all
    x = covariate_design(evidence, (SMALL_STUDY,)).matrix[:, 0]
    fits = {}
    for which, variant in (("adjusted", adjusted_spec), ("unadjusted", base)):
        inputs = parts.pad_inputs(parts.make_inputs(evidence, variant.priors, variant.model), padding)
        fits[which] = (variant, compile_analysis(inputs, lambda i, v=variant: v.outcome_type.build_model(i, v.priors)))
    arms = evidence.arms
    study = arms["study_index"].to_numpy()
    baseline = control_logits(evidence)
    rows = []
    for s_index, slope in enumerate(slopes):
        for rep in range(reps):
            rng = streams.stream(seed, streams.SMALL_STUDY_REPLICATE, s_index, rep)
            truth = {"tau": tau, "z": rng.standard_normal(len(evidence.studies)), "baseline_logit": baseline,
                     "arm_curve": (log_or + slope * x)[study]}
            simulated = MortalityOutcome(likelihood="arm").simulate(evidence, truth, rng)
            row = {"slope": slope, "rep": rep}
            for which, (variant, compiled) in fits.items():
                inputs = parts.pad_inputs(parts.make_inputs(simulated, variant.priors, variant.model), padding)
                tree = compiled.with_inputs(inputs).sample(variant.with_sampler(seed=int(rng.integers(2**31))).sampler)
                post = tree["posterior"]
                row[f"{which}_prob_benefit"] = float((post["log_or"].values < 0).mean())
                row[f"{which}_divergences"] = int(tree["sample_stats"]["diverging"].sum())
                if which == "adjusted":
                    b = post["covariate_effect"].values[..., 0].ravel()
                    lo, hi = np.quantile(b, [0.025, 0.975])
                    row.update(slope_lower=float(lo), slope_upper=float(hi), slope_median=float(np.median(b)),
                               covered=bool(lo <= slope <= hi))
            rows.append(row)
    summary = {}
    for slope in slopes:
        mine = [r for r in rows if r["slope"] == slope]
        diffs = np.array([r["adjusted_prob_benefit"] - r["unadjusted_prob_benefit"] for r in mine])
        covered = np.array([r["covered"] for r in mine], dtype=float)
        summary[f"{slope:g}"] = {
            "reps": len(mine), "coverage_95": float(covered.mean()),
            "coverage_mc_se": float(math.sqrt(covered.mean() * (1 - covered.mean()) / len(mine))),
            "slope_median_mean": float(np.mean([r["slope_median"] for r in mine])),
            "prob_benefit_unadjusted_mean": float(np.mean([r["unadjusted_prob_benefit"] for r in mine])),
            "prob_benefit_adjusted_mean": float(np.mean([r["adjusted_prob_benefit"] for r in mine])),
            "prob_benefit_shift_mean": float(diffs.mean()), "prob_benefit_shift_abs_mean": float(np.abs(diffs).mean()),
            "divergent_fits": int(sum(r["adjusted_divergences"] > 0 or r["unadjusted_divergences"] > 0 for r in mine)),
        }
    return {"settings": {"reps": reps, "slopes": list(slopes), "log_or": log_or, "tau": tau, "seed": seed,
                         "draws": draws, "tune": tune, "chains": chains, "studies": list(evidence.studies),
                         "x": x.tolist(), "likelihood": spec.model.likelihood},
            "summary": summary, "rows": rows}


__all__ = ["SmallStudyResult", "render_small_study", "savage_dickey", "simulation_check", "small_study_analysis",
           "summarise"]


"""Decision quantities: the one home of "posterior probability of benefit" and its relatives.

Layered as arviz-stats is: small functions on xarray draws (:func:`interval`,
:func:`probability`) and the mortality summary built from them. Intervals are equal-tailed
(``ci_kind = "eti"``) at ``ci_prob`` (0.95 unless the spec says otherwise); every
probability carries its Monte Carlo standard error, computed by arviz-stats from the
indicator's autocorrelation (not the iid formula, which understates it).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import xarray as xr

CI_KIND = "eti"


@dataclass(frozen=True)
class Interval:
    median: float
    mean: float
    lower: float
    upper: float
    mcse_median: float
    ci_prob: float
    ci_kind: str = CI_KIND

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Probability:
    prob: float
    mcse: float

    def to_dict(self) -> dict:
        return asdict(self)

    def __str__(self) -> str:
        return f"{self.prob:.3f} (MCSE {self.mcse:.3f})"


def interval(draws: xr.DataArray, ci_prob: float) -> Interval:
    """Median, mean and equal-tailed ``ci_prob`` interval of scalar draws (chain, draw)."""
    import arviz_stats as azs

    bounds = azs.eti(draws, prob=ci_prob).values
    return Interval(
        median=float(draws.median()),
        mean=float(draws.mean()),
        lower=float(bounds[0]),
        upper=float(bounds[1]),
        mcse_median=float(azs.mcse(draws, method="median")),
        ci_prob=ci_prob,
    )


def probability(event: xr.DataArray) -> Probability:
    """P(event) with its MCSE; ``event`` is a boolean DataArray over (chain, draw)."""
    import arviz_stats as azs

    indicator = event.astype("float64")
    p = float(indicator.mean())
    # A constant indicator has no Monte Carlo variation (arviz returns NaN there).
    mcse = 0.0 if p in (0.0, 1.0) else float(azs.mcse(indicator, method="mean"))
    return Probability(p, mcse)


def predictive_effect(mean: xr.DataArray, tau: xr.DataArray, seed: int) -> xr.DataArray:
    """Draws of the effect in a new trial: mean + tau * eps, eps ~ N(0, 1) per draw.

    Seeded from the run's seed so a repeated fit reproduces it bit for bit.
    """
    rng = np.random.default_rng([seed, 0x5EED])
    eps = rng.standard_normal(mean.shape)
    return mean + tau * xr.DataArray(eps, dims=mean.dims, coords=mean.coords)


def absolute_risk_reduction(log_or: xr.DataArray, baseline_risk: float) -> xr.DataArray:
    """Control risk minus treated risk at ``baseline_risk`` (positive favours cells)."""
    from scipy.special import expit, logit

    treated = expit(logit(baseline_risk) + log_or)
    return baseline_risk - treated


def number_needed_to_treat(arr: Interval) -> dict:
    """NNT from the ARR summary, with Altman's (BMJ 1998) wording when the interval crosses 0.

    NNT's posterior is unbounded when ARR can be 0, so it is stated from the ARR median and
    the ARR interval bounds rather than summarised as a distribution.
    """

    def nnt(value: float) -> float | None:
        return None if value == 0 else 1.0 / value

    median = nnt(arr.median)
    if arr.lower > 0:
        text = f"NNT {1 / arr.median:.1f} (benefit: {1 / arr.upper:.1f} to {1 / arr.lower:.1f})"
    elif arr.upper < 0:
        text = f"NNH {-1 / arr.median:.1f} (harm: {-1 / arr.lower:.1f} to {-1 / arr.upper:.1f})"
    else:
        head = f"NNT {1 / arr.median:.1f}" if arr.median > 0 else f"NNH {-1 / arr.median:.1f}"
        text = f"{head} (interval from NNT {1 / arr.upper:.1f} for benefit through infinity to NNH {-1 / arr.lower:.1f} for harm)"
    return {"median": median, "benefit_bound": nnt(arr.upper), "harm_bound": nnt(arr.lower), "text": text}


@dataclass(frozen=True)
class MortalityDecisions:
    """The mortality answer, on the odds-ratio scale (OR < 1 favours cells)."""

    pooled_or: Interval
    predictive_or: Interval
    tau: Interval
    prob_or_below_1: Probability
    prob_or_below_threshold: Probability
    predictive_prob_or_below_1: Probability
    threshold_or: float
    baseline_risk: float
    arr: Interval
    nnt: dict

    def to_dict(self) -> dict:
        return {
            "pooled_or": self.pooled_or.to_dict(),
            "predictive_or": self.predictive_or.to_dict(),
            "tau": self.tau.to_dict(),
            "prob_or_below_1": self.prob_or_below_1.to_dict(),
            "prob_or_below_threshold": self.prob_or_below_threshold.to_dict(),
            "predictive_prob_or_below_1": self.predictive_prob_or_below_1.to_dict(),
            "threshold_or": self.threshold_or,
            "baseline_risk": self.baseline_risk,
            "absolute_risk_reduction": self.arr.to_dict(),
            "nnt": self.nnt,
        }


def mortality_decisions(posterior: xr.Dataset, *, threshold_or: float, baseline_risk: float, ci_prob: float) -> MortalityDecisions:
    log_or = posterior["log_or"]
    log_or_new = posterior["log_or_new"]
    arr = interval(absolute_risk_reduction(log_or, baseline_risk), ci_prob)
    return MortalityDecisions(
        pooled_or=interval(np.exp(log_or), ci_prob),
        predictive_or=interval(np.exp(log_or_new), ci_prob),
        tau=interval(posterior["tau"], ci_prob),
        prob_or_below_1=probability(log_or < 0),
        prob_or_below_threshold=probability(log_or < np.log(threshold_or)),
        predictive_prob_or_below_1=probability(log_or_new < 0),
        threshold_or=threshold_or,
        baseline_risk=baseline_risk,
        arr=arr,
        nnt=number_needed_to_treat(arr),
    )


def benefit_event(effect: xr.DataArray, threshold: float, direction: str) -> xr.DataArray:
    """The event "benefit beyond ``threshold``" for a continuous effect (same units).

    ``direction`` "increase": effect > threshold (PaO2/FiO2); "decrease": effect < threshold.
    """
    return effect > threshold if direction == "increase" else effect < threshold


@dataclass(frozen=True)
class ContinuousDecisions:
    """The answer for a mean-difference outcome (oxygenation, or any normal-normal pooling)."""

    pooled: Interval
    predictive: Interval
    tau: Interval
    prob_benefit: Probability
    prob_meaningful: Probability
    predictive_prob_benefit: Probability
    meaningful_threshold: float  # signed, in the effect's units
    direction: str
    unit: str
    natural_course: Interval | None = None

    def to_dict(self) -> dict:
        out = {
            "pooled_difference": self.pooled.to_dict(),
            "predictive_difference": self.predictive.to_dict(),
            "tau": self.tau.to_dict(),
            "prob_benefit": self.prob_benefit.to_dict(),
            "prob_clinically_meaningful": self.prob_meaningful.to_dict(),
            "predictive_prob_benefit": self.predictive_prob_benefit.to_dict(),
            "clinically_meaningful_threshold": self.meaningful_threshold,
            "benefit_direction": self.direction,
            "unit": self.unit,
        }
        if self.natural_course is not None:
            out["natural_course_mean"] = self.natural_course.to_dict()
        return out


def continuous_decisions(
    posterior: xr.Dataset, *, meaningful: float, direction: str, ci_prob: float, unit: str
) -> ContinuousDecisions:
    signed = meaningful if direction == "increase" else -meaningful
    return ContinuousDecisions(
        pooled=interval(posterior["mu"], ci_prob),
        predictive=interval(posterior["mu_new"], ci_prob),
        tau=interval(posterior["tau"], ci_prob),
        prob_benefit=probability(benefit_event(posterior["mu"], 0.0, direction)),
        prob_meaningful=probability(benefit_event(posterior["mu"], signed, direction)),
        predictive_prob_benefit=probability(benefit_event(posterior["mu_new"], 0.0, direction)),
        meaningful_threshold=signed,
        direction=direction,
        unit=unit,
        natural_course=interval(posterior["nc_mean"], ci_prob) if "nc_mean" in posterior else None,
    )

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

from .engine.streams import PREDICTIVE_EFFECT, stream

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
    # the interval ends are quantiles: their own MCSE (tails mix worse than the median)
    mcse_lower: float = float("nan")
    mcse_upper: float = float("nan")

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
        mcse_lower=float(azs.mcse(draws, method="quantile", prob=(1 - ci_prob) / 2)),
        mcse_upper=float(azs.mcse(draws, method="quantile", prob=(1 + ci_prob) / 2)),
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
    rng = stream(seed, PREDICTIVE_EFFECT)
    eps = rng.standard_normal(mean.shape)
    return mean + tau * xr.DataArray(eps, dims=mean.dims, coords=mean.coords)


def treated_risk(log_or, baseline_risk: float):
    """The risk with cells when the control risk is ``baseline_risk``: expit(logit(p0) + log OR).

    The model is the arm-level binomial-logit model, whose effect is the log odds ratio; a risk
    ratio or a risk difference is a function of it and of a control risk, not a parameter of its
    own (see :func:`risk_ratio`)."""
    from scipy.special import expit, logit

    return expit(logit(baseline_risk) + log_or)


def risk_ratio(log_or, baseline_risk: float):
    """Risk ratio (cells / control) at control risk ``baseline_risk``: expit(logit(p0) + log OR) / p0.

    Why a functional at a stated control risk, not a log-binomial model: a log-binomial
    likelihood bounds each arm's risk at 1, so the risk ratio's range depends on the baselines,
    and with few small trials and zero cells the posterior piles up against that boundary
    (Warn, Thompson & Spiegelhalter 2002, Stat Med 21:1601-1623; Bakbergenuly, Hoaglin &
    Kulinskaya 2019, "Pitfalls of using the risk ratio in meta-analysis", Res Synth Methods
    10:398-419, who show the log-binomial model's biases and recommend the logit GLMM). The odds
    ratio is the scale on which one effect fits every control risk; the risk ratio follows from it
    at the risk stated.
    Monotone increasing in the log OR at any p0 in (0, 1): P(RR < 1) = P(OR < 1)."""
    return treated_risk(log_or, baseline_risk) / baseline_risk


def risk_difference(log_or, baseline_risk: float):
    """Risk difference (cells minus control) at control risk ``baseline_risk``:
    expit(logit(p0) + log OR) - p0; negative favours cells when fewer deaths are better
    (see :func:`risk_ratio` for why a functional of the log OR)."""
    return treated_risk(log_or, baseline_risk) - baseline_risk


def log_or_at_risk_ratio(rr: float, baseline_risk: float) -> float:
    """The log odds ratio whose risk ratio at ``baseline_risk`` is ``rr`` (needs 0 < rr * p0 < 1)."""
    from scipy.special import logit

    return float(logit(rr * baseline_risk) - logit(baseline_risk))


def log_or_at_risk_difference(rd: float, baseline_risk: float) -> float:
    """The log odds ratio whose risk difference at ``baseline_risk`` is ``rd`` (needs 0 < p0 + rd < 1)."""
    from scipy.special import logit

    return float(logit(baseline_risk + rd) - logit(baseline_risk))


def absolute_risk_reduction(log_or: xr.DataArray, baseline_risk: float) -> xr.DataArray:
    """Control risk minus treated risk at ``baseline_risk`` (positive favours cells)."""
    return baseline_risk - treated_risk(log_or, baseline_risk)


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


def benefit_event(effect: xr.DataArray, threshold: float, direction: str) -> xr.DataArray:
    """The event "benefit beyond ``threshold``" for a continuous effect (same units).

    ``direction`` "increase": effect > threshold (PaO2/FiO2); "decrease": effect < threshold.
    """
    return effect > threshold if direction == "increase" else effect < threshold


@dataclass(frozen=True)
class Extra:
    """An outcome-specific decision quantity (ARR and NNT for mortality, the natural course for
    oxygenation): its key in ``summary.json``, its words, and its value."""

    key: str
    label: str
    value: "Interval | Probability | dict | float"
    digits: str = ".3f"

    def to_json(self):
        return self.value.to_dict() if hasattr(self.value, "to_dict") else self.value


@dataclass(frozen=True)
class Decisions:
    """The answer of any analysis, in one vocabulary across outcomes.

    The pooled and new-trial effects are on the outcome's *stated* scale (an odds ratio for
    mortality, or the risk ratio or risk difference at the baseline risk its spec states, see
    :func:`risk_ratio`; mmHg for oxygenation); ``tau`` is on the model's scale (log OR, mmHg), where
    heterogeneity is defined. ``benefit_threshold`` and ``meaningful_threshold`` are stated
    too: P(benefit) = P(effect beyond ``benefit_threshold`` in ``benefit_direction``).
    """

    measure: str  # "odds ratio", "mean difference", ...
    unit: str  # "" for ratios; "mmHg" ...
    model_scale: str  # what the model's parameters are on: "log odds ratio", "mmHg", ...
    pooled_effect: Interval
    predictive_effect: Interval
    tau: Interval
    prob_benefit: Probability
    prob_meaningful: Probability
    predictive_prob_benefit: Probability
    benefit_threshold: float
    meaningful_threshold: float  # signed, stated scale
    benefit_direction: str  # "decrease" (OR < 1) or "increase"
    extra: tuple[Extra, ...] = ()

    def get(self, key: str):
        """The value of an outcome-specific quantity, e.g. ``"absolute_risk_reduction"``."""
        for item in self.extra:
            if item.key == key:
                return item.value
        raise KeyError(key)

    def event(self, threshold: float, where: str = "pooled") -> str:
        """What a probability is of, in words: "P(pooled odds ratio < 1); benefit = decrease"."""
        sign = "<" if self.benefit_direction == "decrease" else ">"
        unit = f" {self.unit}" if self.unit else ""
        return f"P({where} {self.measure} {sign} {threshold:g}{unit}); benefit = {self.benefit_direction}"

    def headline(self) -> dict[str, float]:
        """The numbers tables compare across fits (sensitivity, influence, provenance): the
        pooled effect (stated scale) and its interval, P(benefit) and P(clinically meaningful
        benefit) with MCSEs, and τ's median."""
        return {
            "effect_median": self.pooled_effect.median, "effect_lower": self.pooled_effect.lower,
            "effect_upper": self.pooled_effect.upper,
            "prob_benefit": self.prob_benefit.prob, "prob_benefit_mcse": self.prob_benefit.mcse,
            "prob_meaningful": self.prob_meaningful.prob, "prob_meaningful_mcse": self.prob_meaningful.mcse,
            "tau_median": self.tau.median,
        }

    def to_dict(self) -> dict:
        return {
            "measure": self.measure,
            "unit": self.unit,
            "model_scale": self.model_scale,
            "pooled_effect": self.pooled_effect.to_dict(),
            "predictive_effect": self.predictive_effect.to_dict(),
            "tau": self.tau.to_dict(),
            # each probability says what it is the probability of: measure, direction, threshold
            "prob_benefit": {**self.prob_benefit.to_dict(), "event": self.event(self.benefit_threshold)},
            "prob_meaningful": {**self.prob_meaningful.to_dict(), "event": self.event(self.meaningful_threshold)},
            "predictive_prob_benefit": {**self.predictive_prob_benefit.to_dict(),
                                        "event": self.event(self.benefit_threshold, "in a new trial")},
            "benefit_threshold": self.benefit_threshold,
            "meaningful_threshold": self.meaningful_threshold,
            "benefit_direction": self.benefit_direction,
            "outcome_specific": {item.key: item.to_json() for item in self.extra},
        }


def reweighted_mcse(log_weights: np.ndarray, event: np.ndarray, relative_efficiency: float = 1.0) -> float:
    """Monte Carlo SE of a self-normalised importance-sampling estimate of P(event):
    sqrt(sum w_i^2 (e_i - p)^2) with normalised weights (the delta-method variance of a ratio
    estimate; Owen 2013, ch. 9), inflated by 1/sqrt(``relative_efficiency``) = sqrt(N / ESS)
    of the MCMC draws for their autocorrelation."""
    lw = np.asarray(log_weights, float)
    w = np.exp(lw - lw.max())
    w /= w.sum()
    e = np.asarray(event, float)
    p = float(w @ e)
    return float(np.sqrt((w**2 * (e - p) ** 2).sum()) / np.sqrt(max(min(relative_efficiency, 1.0), 1e-6)))

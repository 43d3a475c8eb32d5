"""The control risk of the next trial, from a hierarchical model of the register's control arms.

Each trial's control arm is a binomial count with its own control log-odds ``a_j``; the
``a_j`` are exchangeable::

    deaths_j ~ Binomial(n_j, expit(a_j)),   a_j ~ Normal(m, s^2)
    m ~ the spec's baseline prior (here a prior on the mean control log-odds),
    s ~ Half-normal(1.0) (the ``baseline_sd_1.0`` preset) unless the spec sets one

and a new trial's control log-odds is ``m + s * eps``. Each trial's estimation error stays
inside the binomial likelihood, so a control arm of 0/35 or 2/29 widens the predictive
distribution only as far as its count is uncertain: it is not counted as spread between
trials (which a per-draw mean and SD of fitted control log-odds does).

The posterior of (m, s) is computed on a grid, without MCMC: ``a_j`` is integrated out
exactly over fine bins of the log-odds (each bin weighted by its normal probability, so the
integral holds for any s, however small). The predictive distribution of the new control
risk is then a finite mixture of logit-normals, whose CDF, quantiles and the share below a
risk are exact up to the grid; draws for assurance are taken from the same mixture.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import optimize, special, stats

from ..io.errors import InputError
from ..priors import HalfNormal, Normal

HETEROGENEITY_DEFAULT = HalfNormal(1.0)  # the baseline_sd_1.0 preset
_LOGIT_STEP = 0.04  # bins of the control log-odds a_j (likelihood SD >= ~0.1 for n <= ~400 per arm)
_LOGIT_RANGE = (-12.0, 10.0)
_M_GRID = np.arange(-10.0, 8.0 + 1e-9, 0.05)
_S_STEP = 0.025
_S_MAX = 5.0


@dataclass(frozen=True)
class ControlArm:
    """One trial's control arm: the death counts its report allows (one for an exact count)."""

    study_id: str
    deaths: tuple[int, ...]
    n: int


def control_arms(evidence) -> tuple[list[ControlArm], list[str]]:
    """The control arms of the mortality evidence, and the studies left out with the reason.

    Several control arms of one trial are added up (one control risk per trial); a bound
    on a control arm's deaths enters as every count it allows; a total across arms does not
    say how many died in the control arm, so its study is left out."""
    arms = evidence.arms
    treated = arms["treated"].to_numpy(int)
    control_index = {int(i) for i in np.flatnonzero(treated == 0)}  # sizes may be unknown (NA) here
    exact = evidence.exact
    counts: dict[str, list[tuple[tuple[int, ...], int]]] = {}
    left_out: list[str] = []
    dropped: set[str] = set()
    for row in exact.itertuples():
        if int(row.arm_index) in control_index and int(row.n) > 0:
            counts.setdefault(row.study_id, []).append(((int(row.deaths),), int(row.n)))
    for report in evidence.partial:
        in_control = [a for a in report.configurations[0].counts if a.arm_index in control_index]
        if not in_control:
            continue
        if report.kind != "bounded":
            left_out.append(f"{report.study_id} (a total across arms: its control deaths are not reported)")
            dropped.add(report.study_id)
            continue
        options = sorted({sum(a.deaths for a in c.counts if a.arm_index in control_index)
                          for c in report.configurations})
        n = sum(a.n for a in in_control)
        if n > 0:  # a masked study's report carries no data
            counts.setdefault(report.study_id, []).append((tuple(options), n))
    out = []
    for study, parts in counts.items():
        if study in dropped:
            continue
        deaths: set[int] = {0}
        for options, _ in parts:  # every sum of one option per control arm
            deaths = {d + o for d in deaths for o in options}
        out.append(ControlArm(study, tuple(sorted(deaths)), sum(n for _, n in parts)))
    return out, left_out


@dataclass(frozen=True)
class ControlRiskModel:
    """The grid posterior of (m, s) and the predictive distribution of a new control risk."""

    arms: tuple[ControlArm, ...]
    m: np.ndarray  # grid cell centres (flattened pairs)
    s: np.ndarray
    weight: np.ndarray  # posterior probability of each cell
    mean_prior: Normal
    sd_prior: HalfNormal
    left_out: tuple[str, ...] = ()
    edges: np.ndarray | None = None  # bins of the control log-odds a_j
    arm_loglik: np.ndarray | None = None  # log P(report_j | a) at each bin's centre: (arms, bins)

    def cdf(self, risk) -> np.ndarray:
        """P(new trial's control risk <= risk)."""
        x = special.logit(np.clip(np.asarray(risk, float), 1e-300, 1 - 1e-16))[..., None]
        return (self.weight * special.ndtr((x - self.m) / self.s)).sum(-1)

    def quantile(self, q: float) -> float:
        return float(special.expit(optimize.brentq(
            lambda x: float((self.weight * special.ndtr((x - self.m) / self.s)).sum()) - q, -40.0, 40.0, xtol=1e-10)))

    def draws(self, size: int, rng: np.random.Generator) -> np.ndarray:
        """Draws of a new trial's control risk: a cell by its posterior probability, a point
        uniformly inside it, then a new trial's log-odds m + s * eps."""
        cell = rng.choice(len(self.weight), size=size, p=self.weight)
        m = self.m[cell] + rng.uniform(-0.5, 0.5, size) * (_M_GRID[1] - _M_GRID[0])
        s = np.abs(self.s[cell] + rng.uniform(-0.5, 0.5, size) * _S_STEP)
        return special.expit(m + s * rng.standard_normal(size))

    def trial_draws(self, rng: np.random.Generator) -> tuple[np.ndarray, float, float]:
        """One joint posterior draw of every trial's own control log-odds ``a_j``.

        (m, s) is a grid cell drawn by its posterior probability; each ``a_j`` is then drawn from
        its exact conditional posterior given (m, s) and its own count, on the same bins that
        integrated it out (bin mass under Normal(m, s^2) x the binomial likelihood of its
        report), uniformly within the chosen bin. Returns the ``a_j`` in the order of
        :attr:`arms`, and the (m, s) of the draw (for trials without a control count, whose
        control log-odds is then a new trial's, ``m + s * eps``).
        """
        if self.edges is None or self.arm_loglik is None:
            raise ValueError("this control-risk model was built without its bins (use fit_control_risk)")
        cell = int(rng.choice(len(self.weight), p=self.weight))
        m, s = float(self.m[cell]), float(self.s[cell])
        with np.errstate(divide="ignore"):
            log_mass = np.log(np.diff(special.ndtr((self.edges - m) / s)))
        log_post = log_mass[None, :] + self.arm_loglik
        post = np.exp(log_post - log_post.max(1, keepdims=True))
        cdf = np.cumsum(post, axis=1)
        u = rng.uniform(size=len(self.arms)) * cdf[:, -1]
        index = np.array([int(np.searchsorted(row, x, side="right")) for row, x in zip(cdf, u)])
        index = np.minimum(index, len(self.edges) - 2)
        low = self.edges[index]
        return low + rng.uniform(size=len(self.arms)) * (self.edges[1] - self.edges[0]), m, s

    def posterior_summary(self) -> dict:
        def wq(x, q):
            order = np.argsort(x)
            c = np.cumsum(self.weight[order])
            return float(x[order][np.searchsorted(c, q)])

        return {"mean_logit_median": wq(self.m, 0.5), "between_trial_sd_median": wq(self.s, 0.5),
                "between_trial_sd_95": [wq(self.s, 0.025), wq(self.s, 0.975)]}

    def describe(self) -> str:
        return (f"predicted for a new trial by a hierarchical model of the {len(self.arms)} control arms (exchangeable "
                f"control log-odds, each trial's binomial count in the likelihood; mean ~ "
                f"{self.mean_prior.describe()}, between-trial SD ~ {self.sd_prior.describe()})"
                + (f"; left out: {', '.join(self.left_out)}" if self.left_out else ""))


def _log_likelihood_on_bins(arms, centres) -> np.ndarray:
    """log P(report_j | a) at each bin centre: (studies, bins)."""
    p = special.expit(centres)
    out = np.empty((len(arms), len(centres)))
    for j, arm in enumerate(arms):
        out[j] = special.logsumexp(
            np.stack([stats.binom.logpmf(d, arm.n, p) for d in arm.deaths]), axis=0)
    return out


def fit_control_risk(evidence, priors=None) -> ControlRiskModel:
    """The hierarchical model of the control arms (see the module docstring)."""
    arms, left_out = control_arms(evidence)
    if not arms:
        raise InputError("no control arm with reported deaths in the evidence: give the control risk "
                         "(--control-risk P, or --control-risk baseline for the spec's baseline risk)")
    mean_prior = getattr(priors, "baseline", None) if priors is not None else None
    if not isinstance(mean_prior, Normal):
        mean_prior = Normal(0.0, 2.0)
    sd_prior = getattr(priors, "baseline_heterogeneity", None) if priors is not None else None
    if not isinstance(sd_prior, HalfNormal):
        sd_prior = HETEROGENEITY_DEFAULT
    edges = np.arange(_LOGIT_RANGE[0], _LOGIT_RANGE[1] + 1e-9, _LOGIT_STEP)
    centres = (edges[:-1] + edges[1:]) / 2
    loglik = _log_likelihood_on_bins(arms, centres)
    shift = loglik.max(1, keepdims=True)
    lik = np.exp(loglik - shift).T  # (bins, studies)
    s_grid = np.arange(_S_STEP / 2, _S_MAX, _S_STEP)
    m_grid = _M_GRID
    log_post = np.empty((len(m_grid), len(s_grid)))
    for i, s in enumerate(s_grid):
        bins = np.diff(special.ndtr((edges[None, :] - m_grid[:, None]) / s), axis=1)  # (m, bins)
        with np.errstate(divide="ignore"):
            log_post[:, i] = np.log(bins @ lik).sum(1)
    log_post += shift.sum() + mean_prior.scipy().logpdf(m_grid)[:, None] + sd_prior.scipy().logpdf(s_grid)[None, :]
    weight = np.exp(log_post - log_post.max())
    weight /= weight.sum()
    edge_mass = weight[[0, -1], :].sum() + weight[:, -1].sum()
    if edge_mass > 1e-4:
        raise InputError("the control arms' hierarchical model reaches the edge of its grid "
                         f"(mass {edge_mass:.1e}): give the control risk (--control-risk)")
    mm, ss = np.meshgrid(m_grid, s_grid, indexing="ij")
    keep = weight.ravel() > 1e-12 * weight.max()
    w = weight.ravel()[keep]
    return ControlRiskModel(tuple(arms), mm.ravel()[keep], ss.ravel()[keep], w / w.sum(), mean_prior, sd_prior,
                            tuple(left_out), edges, loglik)


def summarise(model: ControlRiskModel, below: float = 0.05) -> dict:
    """Median, 95% interval and the share of new trials with a control risk below ``below``."""
    return {"median": model.quantile(0.5), "lower_95": model.quantile(0.025), "upper_95": model.quantile(0.975),
            "share_below": {"risk": below, "prob": float(model.cdf(below))}, **model.posterior_summary()}


def logit_normal_note(model: ControlRiskModel) -> str:
    s = model.posterior_summary()
    return (f"posterior median of the mean control risk {special.expit(s['mean_logit_median']):.3f}, "
            f"between-trial SD {s['between_trial_sd_median']:.2f} on the log-odds scale "
            f"(95% {s['between_trial_sd_95'][0]:.2f} to {s['between_trial_sd_95'][1]:.2f})")


"""Assurance and operating characteristics of a two-arm trial of n patients per arm.

Two analyses the next trial might run:

* **frequentist**: a two-sided Wald test at level alpha of the log odds ratio (deaths; 0.5
  added to every cell, Haldane-Anscombe, so zero cells have an estimate) or of the mean
  difference (continuous; z-test with the outcome SD as known). Success = significant AND
  in the direction that favours cells.
* **Bayesian**: the robust MAP prior (:mod:`.map_prior`) updated with the trial's normal
  approximate likelihood (conjugate: the posterior is again a normal mixture) — or, for
  deaths in trials of up to :data:`EXACT_MAX_N` per arm, where the approximation matters,
  with the exact binomial likelihood by quadrature; success when every criterion of the rule
  holds, e.g. P(OR < 1) > 0.975 (dual criteria as in RBesT).

No trial is simulated and no posterior is sampled per trial:

* deaths: for each n the decision is computed once for every possible outcome
  (x_control, x_cells) in {0..n}^2; the probability of success is then the exact binomial
  probability of the success region — for a fixed truth a sum, for assurance that sum
  averaged over the design prior's draws (one matrix product). Exact in the outcomes; Monte
  Carlo only over the draws of the uncertain truth.
* continuous: the estimate is N(theta, 2 sd^2 / n); success regions are half-lines (the
  posterior is stochastically increasing in the estimate: the normal likelihood has a
  monotone likelihood ratio), so P(success | theta, sd) is one normal CDF per draw.

Assurance (O'Hagan, Stevens & Campbell 2005) = P(success) averaged over the design prior:
the new trial's effect drawn from the posterior predictive (the MCMC draws, not the
mixture) and, for deaths, the control risk of a new trial drawn from the register's control
arms (or fixed); for continuous outcomes the outcome SD drawn from its posterior given the
register's arm SDs (or fixed).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from scipy import special, stats

from .map_prior import NormalMixture

DEFAULT_N_GRID = (25, 50, 75, 100, 150, 200, 300, 400, 600, 800)
ASSURANCE_DRAWS = 4000
# Up to this many per arm the Bayesian analysis of deaths uses the exact binomial likelihood
# (quadrature); above it the normal approximation of the log OR. On the mortality design the
# two decide differently for outcomes of predictive probability ~6% at 25 per arm, ~5% at 50
# and ~2% at 100 (`approximation_check`); quadrature costs ~1 s at 50 and ~30 s at 100.
EXACT_MAX_N = 50


@dataclass(frozen=True)
class Criterion:
    """P(effect favours cells beyond ``threshold``) > ``prob`` (threshold on the effect scale)."""

    threshold: float
    prob: float


@dataclass(frozen=True)
class Trial:
    """What the next trial's analysis needs: the outcome's direction of benefit, the
    test level and the Bayesian rule with its prior."""

    binary: bool
    direction: int  # -1: smaller effect favours cells (log OR); +1: larger
    alpha: float
    rule: tuple[Criterion, ...]
    prior: NormalMixture
    test: str = "log_or"  # frequentist test for deaths: "log_or" (Wald) or "risk_difference"
    exact_max_n: int = EXACT_MAX_N  # deaths: Bayesian analysis by exact-binomial quadrature up to this n

    # -- deaths ---------------------------------------------------------------------------

    def binary_estimates(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Log OR (cells vs control) and its SE for every outcome: arrays [x_control, x_cells]."""
        x = np.arange(n + 1, dtype=float)
        log_odds = np.log((x + 0.5) / (n - x + 0.5))
        var = 1.0 / (x + 0.5) + 1.0 / (n - x + 0.5)
        return log_odds[None, :] - log_odds[:, None], np.sqrt(var[:, None] + var[None, :])

    def risk_difference_statistic(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Risk difference (cells - control) and its SE under H0 (pooled risk): the classical
        two-proportion z-test (equal to Pearson's chi-square test), arrays [x_control, x_cells].
        A table with no deaths, or all, has SE 0 and is not significant."""
        x = np.arange(n + 1, dtype=float)
        diff = (x[None, :] - x[:, None]) / n
        pooled = (x[None, :] + x[:, None]) / (2 * n)
        se = np.sqrt(2 * pooled * (1 - pooled) / n)
        return diff, np.where(se > 0, se, np.inf)

    def binary_success(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Success regions (frequentist, Bayesian) over outcomes [x_control, x_cells]; the
        Bayesian analysis is always on the log OR, the MAP prior's scale."""
        estimate, se = self.binary_estimates(n)
        test = (estimate, se) if self.test == "log_or" else self.risk_difference_statistic(n)
        bayes = self.exact_bayesian_success(n) if n <= self.exact_max_n else self.bayesian_success(estimate, se)
        return self.frequentist_success(*test), bayes

    def exact_bayesian_success(self, n: int) -> np.ndarray:
        """The Bayesian rule with the exact binomial likelihood (see :meth:`exact_posterior`)."""
        ok = np.ones((n + 1, n + 1), bool)
        for c in self.rule:
            p = self.exact_posterior(n, c.threshold)
            ok &= (p if self.direction < 0 else 1 - p) > c.prob
        return ok

    @functools.lru_cache(maxsize=64)
    def exact_posterior(self, n: int, threshold: float, *, baseline_sd: float = 2.0, points: int = 241) -> np.ndarray:
        """P(log OR < ``threshold`` | x_control, x_cells) for every outcome, with the exact
        binomial likelihood, by quadrature: the control log-odds are integrated out under a
        N(0, ``baseline_sd``^2) prior (the mortality model's default baseline prior), the log
        OR has the robust MAP prior. Where it matters, in small trials."""
        # log OR in [-6, 6] (OR 0.0025 to 400) in steps of 0.01: the posterior of a trial of
        # >= 10 per arm lies inside; the control log-odds over +-6 prior SDs
        theta = np.linspace(-6.0, 6.0, 1201)
        alpha = np.linspace(-6 * baseline_sd, 6 * baseline_sd, points)
        k = np.arange(n + 1, dtype=float)
        log_choose = special.gammaln(n + 1) - special.gammaln(k + 1) - special.gammaln(n - k + 1)

        def pmf(logit):  # (len(logit), n + 1)
            return np.exp(log_choose - k * np.logaddexp(0, -logit[:, None]) - (n - k) * np.logaddexp(0, logit[:, None]))

        l0 = pmf(alpha) * stats.norm.pdf(alpha, 0, baseline_sd)[:, None]  # (A, n+1), prior weight folded in
        prior = self.prior.pdf(theta)
        post = np.empty((len(theta), n + 1, n + 1))
        for t, th in enumerate(theta):  # sum over the control log-odds: one matrix product per theta
            post[t] = prior[t] * (l0.T @ pmf(alpha + th))
        # midpoint rule on equal steps: each grid cell counts by the fraction of it below the threshold
        step = theta[1] - theta[0]
        below = np.clip((threshold - theta) / step + 0.5, 0.0, 1.0)
        return np.tensordot(below, post, axes=1) / post.sum(0)

    # -- both ---------------------------------------------------------------------------

    def frequentist_reject(self, estimate, se) -> np.ndarray:
        """The two-sided test's rejection region, either direction (its size is alpha)."""
        return np.abs(np.asarray(estimate) / np.asarray(se)) > stats.norm.isf(self.alpha / 2)

    def frequentist_success(self, estimate, se) -> np.ndarray:
        z = stats.norm.isf(self.alpha / 2)
        return self.direction * np.asarray(estimate) / np.asarray(se) > z

    def bayesian_success(self, estimate, se) -> np.ndarray:
        posterior = self.prior.update(estimate, se)
        ok = np.ones(np.shape(estimate), bool)
        for c in self.rule:
            p = posterior.prob_below(c.threshold) if self.direction < 0 else posterior.prob_above(c.threshold)
            ok &= p > c.prob
        return ok

    # -- continuous -----------------------------------------------------------------------

    def continuous_boundary(self, se: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per SE: the smallest signed estimate (direction * estimate) that succeeds,
        frequentist and Bayesian; the Bayesian one by vectorised bisection."""
        se, back = np.unique(np.asarray(se, float), return_inverse=True)  # one bisection per distinct SE
        freq = stats.norm.isf(self.alpha / 2) * se
        _, m, s = self.prior.arrays()
        lo = np.full(se.shape, float(-(np.abs(m) + 12 * s).max()) - 12 * se.max())
        hi = -lo
        for _ in range(80):
            mid = (lo + hi) / 2
            ok = self.bayesian_success(self.direction * mid, se)
            hi = np.where(ok, mid, hi)
            lo = np.where(ok, lo, mid)
        never = ~self.bayesian_success(self.direction * hi, se)
        return freq[back], np.where(never, np.inf, hi)[back]


def binomial_pmf_matrix(n: int, risks: np.ndarray) -> np.ndarray:
    """pmf of Binomial(n, p) for each p: shape (len(risks), n + 1) (log-gamma form: the
    same numbers as scipy.stats.binom.pmf, several times faster on large grids)."""
    k = np.arange(n + 1, dtype=float)
    p = np.clip(np.asarray(risks, float), 1e-300, 1 - 1e-16)[:, None]
    log_choose = special.gammaln(n + 1) - special.gammaln(k + 1) - special.gammaln(n - k + 1)
    return np.exp(log_choose + special.xlogy(k, p) + special.xlog1py(n - k, -p))


def binary_success_probability(region: np.ndarray, n: int, control_risks, cell_risks) -> np.ndarray:
    """P(outcome in ``region``) for each pair of true risks (exact binomial sums)."""
    a = binomial_pmf_matrix(n, control_risks)
    b = binomial_pmf_matrix(n, cell_risks)
    return np.einsum("di,ij,dj->d", a, region.astype(float), b)


def binary_predictive(n: int, control_risks, cell_risks) -> np.ndarray:
    """Joint predictive probabilities of the outcomes [x_control, x_cells] averaged over
    draws of (control risk, cell risk): the mean of products of binomial pmfs, one matrix
    product. Assurance of a design is this matrix summed over its success region."""
    a = binomial_pmf_matrix(n, control_risks)
    b = binomial_pmf_matrix(n, cell_risks)
    return a.T @ b / len(a)


def continuous_success_probability(boundary: np.ndarray, signed_effect, se) -> np.ndarray:
    """P(direction * estimate > boundary) for estimate ~ N(effect, se^2)."""
    return special.ndtr((np.asarray(signed_effect) - boundary) / se)


@dataclass(frozen=True)
class DesignPrior:
    """Draws of the truth the next trial may meet (same length, paired)."""

    effect: np.ndarray  # new-trial effect (posterior predictive)
    control_risk: np.ndarray | None = None  # deaths: control risk of the new trial
    sd: np.ndarray | None = None  # continuous: outcome SD

    def thinned(self, size: int, rng: np.random.Generator) -> "DesignPrior":
        if len(self.effect) <= size:
            return self
        index = rng.choice(len(self.effect), size=size, replace=False)
        pick = lambda a: None if a is None else np.asarray(a)[index]  # noqa: E731
        return DesignPrior(pick(self.effect), pick(self.control_risk), pick(self.sd))


@dataclass(frozen=True)
class Scenario:
    """A fixed truth for operating characteristics."""

    label: str
    effect: float
    control_risk: float | None = None
    sd: float | None = None


def evaluate(trial: Trial, n_grid, design_prior: DesignPrior | None, scenarios: list[Scenario]) -> list[dict]:
    """One row per n: assurance (both analyses; skipped when ``design_prior`` is None) and
    P(success) under each fixed scenario."""
    rows = []
    for n in n_grid:
        n = int(n)
        row = {"n_per_arm": n}
        if trial.binary:
            freq, bayes = trial.binary_success(n)
            if design_prior is not None:
                p0 = design_prior.control_risk
                p1 = special.expit(special.logit(p0) + design_prior.effect)
                joint = binary_predictive(n, p0, p1)
                row["assurance_frequentist"] = float(joint[freq].sum())
                row["assurance_bayesian"] = float(joint[bayes].sum())
            for sc in scenarios:
                q1 = special.expit(special.logit(sc.control_risk) + sc.effect)
                row[f"frequentist|{sc.label}"] = float(binary_success_probability(freq, n, [sc.control_risk], [q1])[0])
                row[f"bayesian|{sc.label}"] = float(binary_success_probability(bayes, n, [sc.control_risk], [q1])[0])
        else:
            if design_prior is not None:
                se = np.sqrt(2.0 / n) * design_prior.sd
                freq, bayes = trial.continuous_boundary(se)
                signed = trial.direction * design_prior.effect
                row["assurance_frequentist"] = float(continuous_success_probability(freq, signed, se).mean())
                row["assurance_bayesian"] = float(continuous_success_probability(bayes, signed, se).mean())
            for sc in scenarios:
                se1 = np.sqrt(2.0 / n) * np.array([sc.sd])
                f1, b1 = trial.continuous_boundary(se1)
                row[f"frequentist|{sc.label}"] = float(continuous_success_probability(f1, trial.direction * sc.effect, se1)[0])
                row[f"bayesian|{sc.label}"] = float(continuous_success_probability(b1, trial.direction * sc.effect, se1)[0])
        rows.append(row)
    return rows


def approximation_check(trial: Trial, n_grid, design_prior: DesignPrior, max_n: int = EXACT_MAX_N) -> list[dict]:
    """Deaths: how often the normal-approximate Bayesian analysis decides differently from the
    exact binomial one (quadrature), as predictive probability of the outcomes where they
    differ, and the assurance under each, for every n <= ``max_n`` of the grid."""
    rows = []
    for n in [int(n) for n in n_grid if n <= max_n]:
        approx = trial.bayesian_success(*trial.binary_estimates(n))
        exact = trial.exact_bayesian_success(n)
        p0 = design_prior.control_risk
        joint = binary_predictive(n, p0, special.expit(special.logit(p0) + design_prior.effect))
        rows.append({"n_per_arm": n, "prob_decisions_differ": float(joint[approx != exact].sum()),
                     "assurance_normal_approximation": float(joint[approx].sum()),
                     "assurance_exact_binomial": float(joint[exact].sum())})
    return rows


def smallest_n(trial: Trial, design_prior: DesignPrior, rows: list[dict], target: float, key: str,
               scenarios: list[Scenario] = ()) -> int | None:
    """Smallest n per arm whose ``key`` column (e.g. "assurance_bayesian", or
    "frequentist|posterior median" for power at a scenario) reaches ``target``.

    The first grid point that reaches it, refined by bisection between it and the grid
    point before (assumes the probability rises with n between two grid points; discrete
    outcomes can make it wobble by a fraction of a percent). None: not reached on the grid.
    """
    hit = next((i for i, r in enumerate(rows) if r[key] >= target), None)
    if hit is None:
        return None
    high = rows[hit]["n_per_arm"]
    low = rows[hit - 1]["n_per_arm"] if hit > 0 else 1
    prior = design_prior if key.startswith("assurance_") else None  # power needs no design prior
    while high - low > 1:
        mid = (low + high) // 2
        if mid >= 2 and evaluate(trial, [mid], prior, list(scenarios))[0][key] >= target:
            high = mid
        else:
            low = mid
    return high

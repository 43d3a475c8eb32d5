"""The meta-analytic-predictive (MAP) prior of a new trial's effect, as a mixture of normals.

The MAP prior (Neuenschwander et al. 2010; Schmidli et al. 2014) is the posterior predictive
distribution of the effect in a new trial: the pooled effect plus a new draw of the between-
trial deviation (``log_or_new`` / ``mu_new``). A trial analysis needs it in closed form, so
it is approximated by a mixture of normals fitted to the MCMC draws by EM, with the number of
components chosen by BIC; how far the mixture is from the draws is stated (Kolmogorov-
Smirnov distance and quantiles side by side).

Robustification (Schmidli et al. 2014) adds a vague component of stated weight, centred on
"no effect", with the unit-information scale sigma (one patient per arm at no effect), so a
new trial that conflicts with the past is not overruled by it. The prior's effective sample
size is the expected local-information ratio, ELIR (Neuenschwander, Weber, Schmidli &
O'Hagan 2020, Biometrics 76:578): ESS = E_prior[ i(theta) / I_F(theta) ], i the prior's own
information (minus the second derivative of its log density) and I_F the Fisher information
of one patient per arm — so the ESS counts patients per arm. The ESS reported is RBesT's for
a normal mixture: I_F = 1/sigma^2, constant, with the sigma written to the exported JSON
(:func:`constant_information_ess`), so ``RBesT::ess(read_mix_json(...), "elir")`` gives the
same number; the robust component then weighs one patient per arm. With the binomial
information of the log OR, which varies with theta (:func:`binary_unit_information`), a
vague component far out in the tails, where one patient carries little information, counts
for many more patients: that ELIR is shown beside it, named as θ-dependent.

:func:`to_rbest_json` writes the mixture as RBesT's ``write_mix_json`` does (``meta`` with
the R attributes, ``comp`` the 3 x K matrix row by row: weights, means, SDs), so
``RBesT::read_mix_json`` reads it back.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import optimize, special, stats

MAX_COMPONENTS = 4
QUANTILE_PROBS = (0.025, 0.1, 0.25, 0.5, 0.75, 0.9, 0.975)


@dataclass(frozen=True)
class NormalMixture:
    """sum_k w_k N(m_k, s_k^2), on the effect scale (log OR, or mmHg)."""

    weights: tuple[float, ...]
    means: tuple[float, ...]
    sds: tuple[float, ...]

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return np.asarray(self.weights), np.asarray(self.means), np.asarray(self.sds)

    @property
    def n_components(self) -> int:
        return len(self.weights)

    def mean(self) -> float:
        w, m, _ = self.arrays()
        return float(w @ m)

    def sd(self) -> float:
        w, m, s = self.arrays()
        return float(math.sqrt(w @ (s**2 + m**2) - (w @ m) ** 2))

    def pdf(self, x) -> np.ndarray:
        w, m, s = self.arrays()
        x = np.asarray(x, float)[..., None]
        return (w * stats.norm.pdf(x, m, s)).sum(-1)

    def cdf(self, x) -> np.ndarray:
        w, m, s = self.arrays()
        x = np.asarray(x, float)[..., None]
        return (w * special.ndtr((x - m) / s)).sum(-1)

    def ppf(self, q: float) -> float:
        """Quantile by root finding (the mixture CDF has no closed-form inverse)."""
        w, m, s = self.arrays()
        lo, hi = float((m - 12 * s).min()), float((m + 12 * s).max())
        return float(optimize.brentq(lambda x: float(self.cdf(x)) - q, lo, hi, xtol=1e-10))

    def sample(self, size: int, rng: np.random.Generator) -> np.ndarray:
        w, m, s = self.arrays()
        k = rng.choice(len(w), size=size, p=w / w.sum())
        return rng.normal(m[k], s[k])

    def update(self, estimate, se) -> "PosteriorMixture":
        """Conjugate update with normal likelihoods N(estimate | theta, se^2), vectorised over
        trials (``estimate``/``se`` arrays of one shape): the posterior is again a mixture."""
        w, m, s = self.arrays()
        y = np.asarray(estimate, float)[..., None]
        v = np.asarray(se, float)[..., None] ** 2
        total = s**2 + v
        log_w = np.log(w) + stats.norm.logpdf(y, m, np.sqrt(total))
        post_w = np.exp(log_w - special.logsumexp(log_w, axis=-1, keepdims=True))
        post_var = s**2 * v / total
        post_mean = (m * v + y * s**2) / total
        return PosteriorMixture(post_w, post_mean, np.sqrt(post_var))

    def to_dict(self) -> dict:
        return {"weights": list(self.weights), "means": list(self.means), "sds": list(self.sds)}


@dataclass(frozen=True)
class PosteriorMixture:
    """A batch of mixtures (one per simulated trial): arrays of shape (..., K)."""

    weights: np.ndarray
    means: np.ndarray
    sds: np.ndarray

    def prob_below(self, threshold: float) -> np.ndarray:
        return (self.weights * special.ndtr((threshold - self.means) / self.sds)).sum(-1)

    def prob_above(self, threshold: float) -> np.ndarray:
        return (self.weights * special.ndtr((self.means - threshold) / self.sds)).sum(-1)


# -- EM fit ------------------------------------------------------------------------------


@dataclass(frozen=True)
class MixtureFit:
    """A mixture fitted to draws, and how well it reproduces them."""

    mixture: NormalMixture
    criterion: str
    scores: dict[int, float]  # BIC per number of components tried
    ks_distance: float  # sup |mixture CDF - empirical CDF of the draws|
    quantiles: list[dict]  # prob, draws, mixture

    @property
    def max_quantile_error(self) -> float:
        return max(abs(q["draws"] - q["mixture"]) for q in self.quantiles)

    def to_dict(self) -> dict:
        return {"mixture": self.mixture.to_dict(), "criterion": self.criterion,
                "scores": {str(k): v for k, v in self.scores.items()}, "ks_distance": self.ks_distance,
                "quantiles": self.quantiles}


def _log_normal(x: np.ndarray, m: np.ndarray, s: np.ndarray) -> np.ndarray:
    return -0.5 * ((x - m) / s) ** 2 - np.log(s) - 0.5 * math.log(2 * math.pi)


def em_normal_mixture(x: np.ndarray, k: int, *, max_iter: int = 500, tol: float = 1e-8) -> tuple[NormalMixture, float]:
    """Maximum-likelihood k-component normal mixture of the sample ``x`` by EM.

    Started from the sample's quantiles (deterministic: the same draws give the same
    mixture). A component's SD is kept above 1e-6 times the sample SD so EM cannot collapse
    a component onto one draw. Returns the mixture and its log-likelihood.
    """
    x = np.asarray(x, float).ravel()
    floor = 1e-6 * x.std()
    probs = (np.arange(k) + 0.5) / k
    means = np.quantile(x, probs)
    sds = np.full(k, x.std() / k)
    weights = np.full(k, 1.0 / k)
    previous = -np.inf
    loglik = previous
    for _ in range(max_iter):
        log_dens = np.log(weights) + _log_normal(x[:, None], means, sds)
        top = log_dens.max(axis=1)
        norm = top + np.log(np.exp(log_dens - top[:, None]).sum(axis=1))
        loglik = float(norm.sum())
        resp = np.exp(log_dens - norm[:, None])
        mass = resp.sum(0)
        weights = mass / len(x)
        means = (resp * x[:, None]).sum(0) / mass
        sds = np.maximum(np.sqrt((resp * (x[:, None] - means) ** 2).sum(0) / mass), floor)
        if loglik - previous < tol * abs(loglik):
            break
        previous = loglik
    order = np.argsort(-weights)
    mix = NormalMixture(tuple(map(float, weights[order])), tuple(map(float, means[order])), tuple(map(float, sds[order])))
    return mix, loglik


def fit_mixture(draws, *, max_components: int = MAX_COMPONENTS) -> MixtureFit:
    """The mixture with 1..``max_components`` components that minimises BIC on the draws.

    BIC = -2 log L + (3K - 1) log N (Schwarz 1978). RBesT's ``automixfit`` uses AIC; BIC
    is chosen here because the draws are many (thousands) and AIC then keeps adding
    components that change no decision.
    """
    x = np.asarray(draws, float).ravel()
    x = x[np.isfinite(x)]
    scores, fits = {}, {}
    for k in range(1, max_components + 1):
        mix, loglik = em_normal_mixture(x, k)
        if k > 1 and min(mix.weights) < 1e-3:  # an empty component: more would not help
            break
        fits[k] = mix
        scores[k] = -2 * loglik + (3 * k - 1) * math.log(len(x))
    best = min(scores, key=scores.get)
    mixture = fits[best]
    return MixtureFit(mixture, "BIC", scores, ks_distance(mixture, x), quantile_table(mixture, x))


def ks_distance(mixture: NormalMixture, draws: np.ndarray) -> float:
    x = np.sort(np.asarray(draws, float).ravel())
    f = mixture.cdf(x)
    n = len(x)
    return float(max(np.max(np.arange(1, n + 1) / n - f), np.max(f - np.arange(n) / n)))


def quantile_table(mixture: NormalMixture, draws: np.ndarray, probs=QUANTILE_PROBS) -> list[dict]:
    return [{"prob": p, "draws": float(np.quantile(draws, p)), "mixture": mixture.ppf(p)} for p in probs]


# -- robustification and effective sample size ------------------------------------------


def robustify(mixture: NormalMixture, weight: float, mean: float, sd: float) -> NormalMixture:
    """Add a vague component N(``mean``, ``sd``^2) with prior weight ``weight`` (Schmidli 2014).

    As RBesT's ``robustify``: the informative part keeps relative weights, scaled by
    1 - ``weight``; the vague component is the unit-information prior (``sd`` = the SD of
    one patient per arm).
    """
    if not 0 <= weight < 1:
        raise ValueError(f"robust weight must be in [0, 1), got {weight}")
    if weight == 0:
        return mixture
    w, m, s = mixture.arrays()
    return NormalMixture(
        tuple(map(float, (1 - weight) * w)) + (float(weight),),
        tuple(map(float, m)) + (float(mean),),
        tuple(map(float, s)) + (float(sd),),
    )


def prior_information(mixture: NormalMixture, theta: np.ndarray) -> np.ndarray:
    """i(theta) = -d^2/dtheta^2 log p(theta) of the mixture, in closed form.

    With p = sum w_k phi_k: i = (p'/p)^2 - p''/p, phi_k' = -z_k/s_k phi_k,
    phi_k'' = (z_k^2 - 1)/s_k^2 phi_k, z_k = (theta - m_k)/s_k.
    """
    w, m, s = mixture.arrays()
    t = np.asarray(theta, float)[..., None]
    z = (t - m) / s
    log_phi = np.log(w) + stats.norm.logpdf(t, m, s)
    log_p = special.logsumexp(log_phi, axis=-1, keepdims=True)
    r = np.exp(log_phi - log_p)  # component responsibilities at theta
    d1 = (r * (-z / s)).sum(-1)
    d2 = (r * (z**2 - 1) / s**2).sum(-1)
    return d1**2 - d2


def elir_ess(mixture: NormalMixture, unit_information: Callable[[np.ndarray], np.ndarray], *, points: int = 40001) -> float:
    """Effective sample size by the expected local-information ratio (Neuenschwander 2020).

    ESS = integral p(theta) i(theta) / I_F(theta) dtheta, with ``unit_information`` the
    Fisher information I_F of one patient per arm at theta. For a single normal N(m, s^2)
    and constant I_F = 1/sigma^2 this is sigma^2 / s^2, the canonical answer.
    Integrated on a fine grid over every component's +-12 SD (trapezoid rule).
    """
    _, m, s = mixture.arrays()
    grid = np.linspace(float((m - 12 * s).min()), float((m + 12 * s).max()), points)
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        integrand = mixture.pdf(grid) * prior_information(mixture, grid) / unit_information(grid)
    # far in the tails p(theta) underflows to 0 while 1/I_F overflows: the product is 0
    integrand = np.where(mixture.pdf(grid) > 0, integrand, 0.0)
    return float(np.trapezoid(integrand, grid))


def constant_information_ess(mixture: NormalMixture, sigma: float) -> float:
    """RBesT's ELIR ESS of a normal mixture: Fisher information 1/``sigma``^2 for every theta
    (``ess(mix, method = "elir", sigma = sigma)``). A single N(m, s^2) gives sigma^2 / s^2."""
    value = 1.0 / float(sigma) ** 2
    return elir_ess(mixture, lambda theta: np.full(np.shape(theta), value))


def binary_unit_information(control_risk: float) -> Callable[[np.ndarray], np.ndarray]:
    """Fisher information on the log OR of one patient per arm at control risk p0.

    var(log OR estimate) with n per arm is (1/(p0 q0) + 1/(p1 q1)) / n, p1 = expit(logit p0 + theta).
    """
    p0 = float(control_risk)

    def info(theta):
        x = special.logit(p0) + np.asarray(theta, float)
        p1q1 = special.expit(x) * special.expit(-x)  # no 1 - p1: it rounds to 0 far out
        return 1.0 / (1.0 / (p0 * (1 - p0)) + 1.0 / p1q1)

    return info


def normal_unit_information(sd: float) -> Callable[[np.ndarray], np.ndarray]:
    """Fisher information on a mean difference of one patient per arm: 1 / (2 sd^2)."""
    value = 1.0 / (2.0 * float(sd) ** 2)
    return lambda theta: np.full(np.shape(theta), value)


# -- export ------------------------------------------------------------------------------


def to_rbest_json(mixture: NormalMixture, *, sigma: float, names: list[str] | None = None, digits: int = 6) -> str:
    """The mixture in the JSON layout of RBesT's ``write_mix_json`` (RBesT >= 1.8-2).

    ``comp`` is the 3 x K matrix row by row (weights, means, SDs); ``meta`` holds the R
    attributes of a ``normMix``: dim, dimnames, class, the reference scale ``sigma``, the
    likelihood and the link. jsonlite writes R scalars as length-one arrays; so does this.
    """
    names = list(names or [f"comp{i + 1}" for i in range(mixture.n_components)])
    w, m, s = mixture.arrays()
    payload = {
        "meta": {
            "dim": [3, mixture.n_components],
            "dimnames": [["w", "m", "s"], names],
            "class": ["normMix", "mix"],
            "sigma": [round(float(sigma), digits)],
            "likelihood": ["normal"],
            "link": ["identity"],
        },
        "comp": [[round(float(v), digits) for v in row] for row in (w, m, s)],
    }
    return json.dumps(payload, indent=2)


def from_rbest_json(text: str) -> tuple[NormalMixture, float]:
    """Read :func:`to_rbest_json`'s layout (or RBesT's own) back: the mixture and sigma."""
    payload = json.loads(text)
    w, m, s = (np.atleast_1d(np.asarray(row, float)) for row in payload["comp"])
    sigma = payload["meta"].get("sigma")
    sigma = float(np.atleast_1d(sigma)[0]) if sigma is not None else float("nan")
    w = w / w.sum()  # as read_mix_json(rescale = TRUE)
    return NormalMixture(tuple(map(float, w)), tuple(map(float, m)), tuple(map(float, s))), sigma


# -- a target population's MAP prior -------------------------------------------------------------


def population_effect_draws(result, seed: int) -> tuple[np.ndarray, np.ndarray] | None:
    """(pooled, new-trial) log OR draws of a fit's target population
    (:mod:`bayes_msc.models.populations`): ``log_or + population_sd * population_z[target]``
    and that plus ``tau * eps``; None for a fit without a target population. The new trial's
    MAP prior is then the target's predictive, which borrows from the other populations' trials
    only as far as the between-population SD allows."""
    selector = getattr(result.spec.model, "population", None)
    if selector is None:
        return None
    from ..decisions import predictive_effect
    from ..models.populations import population_effects

    post = result.posterior
    target = population_effects(post).sel(population=selector.target)
    new = predictive_effect(target, post["tau"], seed)
    return (np.asarray(target.transpose("chain", "draw").values).reshape(-1),
            np.asarray(new.transpose("chain", "draw").values).reshape(-1))


def population_borrowing(result, register, map_mixture: NormalMixture, sigma: float) -> dict | None:
    """How many patients' worth of the target population's MAP prior come from outside it.

    ESS from outside = ESS(MAP prior of the population model, all trials) - ESS(MAP prior of
    the pooled model fitted to the population's own trials alone), both by ELIR at constant
    Fisher information 1/sigma^2 (RBesT's normal-mixture ESS, as :func:`constant_information_ess`),
    in patients per arm. It can be negative: the other populations' trials may widen the
    prediction (a larger tau, or a target effect pulled away from its own trials) rather than
    narrow it. None for a fit without a target population."""
    selector = getattr(result.spec.model, "population", None)
    if selector is None:
        return None
    from ..api import fit_spec, load_data
    from ..models.populations import population_summary

    block = population_summary(result)
    own = block["studies"]
    spec = result.spec.with_population(None).with_evidence(evidence_set="studies:" + ",".join(own))
    source = load_data(spec, register) if not hasattr(register, "studies") else register
    alone = fit_spec(spec, source)
    own_fit = fit_mixture(np.asarray(alone.posterior["log_or_new"].values).reshape(-1))
    full = constant_information_ess(map_mixture, sigma)
    inside = constant_information_ess(own_fit.mixture, sigma)
    return {
        "population": selector.label, "studies_in_population": own,
        "ess_population_model": full, "ess_population_trials_alone": inside, "ess_from_outside": full - inside,
        "unit": "patients per arm",
        "definition": ("ESS (ELIR at constant Fisher information 1/sigma^2, RBesT's for a normal mixture) of the MAP "
                       "prior from the population model on all trials, minus that of the MAP prior from the pooled "
                       "model fitted to the population's own trials alone"),
        "alone_map_prior": own_fit.to_dict(), "alone_diagnostics": alone.diagnostics.verdict(),
        "alone_spec_hash": spec.content_hash(),
    }

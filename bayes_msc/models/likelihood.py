"""Likelihood terms shared by the binomial models.

Partly reported counts are written as mixtures over *configurations* (see
``bayes_msc.evidence.mortality``): for report ``o`` with configurations ``c`` and arms ``k``

    log L_o = logsumexp_c [ log w_oc + sum_k log Binom(d_ock | n_ock, p_ock) ]

An interval-censored count is the one-arm case with one configuration per allowed count; a
total across arms enumerates the allocations and the ways to split the total. Arrays are
padded to a common (C, K): a padded arm slot has d = n = 0 (log-probability exactly 0) and a
padded configuration has weight -inf, so padding never changes the value.

Counts are carried as float64 and the log binomial coefficients are computed once in numpy
(:func:`log_binomial_coefficient`): they are data, so the compiled sampler only evaluates
``log C - d softplus(-x) - (n - d) softplus(x)``, a handful of fused operations.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..evidence.mortality import PartialReport


def log_binomial_coefficient(n, deaths) -> np.ndarray:
    """log C(n, deaths), elementwise (0 for the empty slot n = deaths = 0)."""
    from scipy.special import gammaln

    n = np.asarray(n, dtype="float64")
    deaths = np.asarray(deaths, dtype="float64")
    return gammaln(n + 1.0) - gammaln(deaths + 1.0) - gammaln(n - deaths + 1.0)


@dataclass(frozen=True)
class PartialArrays:
    """Dense, padded arrays of the partial reports: shapes (O, C, K) and (O, C).

    ``arm_index`` is integer (it fixes the model's layout); counts are float64.
    """

    arm_index: np.ndarray
    deaths: np.ndarray
    n: np.ndarray
    log_choose: np.ndarray
    log_weight: np.ndarray

    @property
    def shape(self) -> tuple[int, int, int]:
        return self.arm_index.shape


def pack_partial_reports(reports: tuple[PartialReport, ...]) -> PartialArrays:
    n_obs = len(reports)
    n_conf = max((len(r.configurations) for r in reports), default=1)
    n_arm = max((len(c.counts) for r in reports for c in r.configurations), default=1)
    arm_index = np.zeros((n_obs, n_conf, n_arm), dtype="int64")
    deaths = np.zeros((n_obs, n_conf, n_arm))
    n = np.zeros((n_obs, n_conf, n_arm))
    log_weight = np.full((n_obs, n_conf), -np.inf)
    for o, report in enumerate(reports):
        for c, config in enumerate(report.configurations):
            log_weight[o, c] = config.log_weight
            for k, count in enumerate(config.counts):
                arm_index[o, c, k] = count.arm_index
                deaths[o, c, k] = count.deaths
                n[o, c, k] = count.n
        # Padded configurations read the same arms as the first one: the index array (part of
        # the compiled layout) then depends only on which arms a report covers, not on how
        # many configurations its counts allow, and their weight -inf removes them anyway.
        arm_index[o, len(report.configurations):] = arm_index[o, 0]
    return PartialArrays(arm_index, deaths, n, log_binomial_coefficient(n, deaths), log_weight)


def binomial_logpmf_logit(deaths, n, log_choose, logit_p):
    """log Binom(deaths | n, sigmoid(logit_p)) written with softplus for stability (pytensor).

    ``log_choose`` is :func:`log_binomial_coefficient` of the data, precomputed.
    """
    import pytensor.tensor as pt

    # log p = -softplus(-x), log(1-p) = -softplus(x); 0 * finite = 0 keeps n = 0 slots exact.
    return log_choose - deaths * pt.softplus(-logit_p) - (n - deaths) * pt.softplus(logit_p)


def binomial_logpmf_logit_numpy(deaths, n, log_choose, logit_p) -> np.ndarray:
    """:func:`binomial_logpmf_logit` in numpy, for the pointwise log-likelihood (PSIS-LOO).

    Written on the logit scale, as the sampler's term is: ``binom.logpmf(d, n, expit(x))``
    loses ``log(1 - p)`` to cancellation near x = +30 (0.07 nats on 65 patients) and gives
    -inf beyond x ~ 37, where the sampler's value is finite.
    """
    from scipy.special import log_expit

    return log_choose + deaths * log_expit(logit_p) + (n - deaths) * log_expit(-logit_p)


def partial_report_logp(value, logit_p, deaths, n, log_choose, log_weight):
    """Log-likelihood of each partial report (pytensor; used as a CustomDist ``logp``).

    ``logit_p``, ``deaths``, ``n``, ``log_choose`` have shape (O, C, K) — the arm log-odds
    already gathered per slot — and ``log_weight`` (O, C). ``value`` is a placeholder: what
    was reported is entirely encoded in the configuration arrays.
    """
    import pytensor.tensor as pt

    per_config = log_weight + binomial_logpmf_logit(deaths, n, log_choose, logit_p).sum(axis=-1)
    return pt.logsumexp(per_config, axis=-1) + 0.0 * value


def partial_report_logp_numpy(arrays: PartialArrays, logit_p: np.ndarray) -> np.ndarray:
    """The same quantity in numpy/scipy, for tests and post-processing."""
    from scipy import special

    # leading dims of logit_p: draws; an empty slot (d = n = 0) gives exactly 0
    slot = binomial_logpmf_logit_numpy(arrays.deaths, arrays.n, arrays.log_choose, logit_p[..., arrays.arm_index])
    return special.logsumexp(arrays.log_weight + slot.sum(axis=-1), axis=-1)

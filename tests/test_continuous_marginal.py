"""The continuous model's study-level effects integrated out, and drawn back.

The sampler sees each study's estimates with ``z_j`` (and ``u_j``, the natural course)
integrated out; :func:`bayes_msc.models.continuous.recover_study_draws` then draws them from
their conditional normal. Both are checked against plain multivariate-normal algebra
(scipy's density; the conditional of a joint normal, Σ_xy Σ_yy^-1), not against the
determinant-lemma and Woodbury forms the code uses.
"""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from scipy import stats

from bayes_msc.models.continuous import _study_indicator, study_marginal_log_density


def random_layout(rng, n_studies=4):
    """Studies with a contrast, a cell arm and a control arm, a cell arm alone (single-arm
    study), two cell arms (two doses) and a control, at realistic SEs (mmHg)."""
    kinds = [[("contrast", 1)], [("arm", 1), ("arm", 0)], [("arm", 1)], [("arm", 1), ("arm", 1), ("arm", 0)],
             [("contrast", 1), ("arm", 1), ("arm", 0)]]
    study, treated, is_arm = [], [], []
    for j in range(n_studies):
        for kind, t in kinds[j % len(kinds)]:
            study.append(j)
            treated.append(float(t))
            is_arm.append(1.0 if kind == "arm" else 0.0)
    n = len(study)
    return (np.array(study), np.array(treated), np.array(is_arm),
            rng.uniform(5, 40, n), rng.normal(0, 60, n))


def joint_covariance(study, treated, is_arm, se, tau, nc_sd):
    """Cov of the estimates: terms share their study's effect (if treated) and natural course
    (if an arm)."""
    same = study[:, None] == study[None, :]
    return (np.diag(se ** 2) + tau ** 2 * same * np.outer(treated, treated)
            + nc_sd ** 2 * same * np.outer(is_arm, is_arm))


@pytest.mark.parametrize("tau, nc_sd", [(20.0, 30.0), (1e-4, 25.0), (35.0, 0.0), (1e-5, 1e-5), (200.0, 150.0)])
def test_marginal_density_is_the_multivariate_normal(tau, nc_sd):
    rng = np.random.default_rng(7)
    study, treated, is_arm, se, residual = random_layout(rng, 5)
    indicator = _study_indicator(study, 5)
    got = study_marginal_log_density(np, residual, se ** 2, treated, is_arm, indicator, tau, nc_sd)
    cov = joint_covariance(study, treated, is_arm, se, tau, nc_sd)
    for j in range(5):
        k = study == j
        expected = stats.multivariate_normal(np.zeros(k.sum()), cov[np.ix_(k, k)]).logpdf(residual[k])
        np.testing.assert_allclose(got[j], expected, rtol=1e-10)


def test_marginal_density_broadcasts_over_draws():
    """The numpy path takes (chain, draw, term) arrays and (chain, draw, 1) scales."""
    rng = np.random.default_rng(3)
    study, treated, is_arm, se, residual = random_layout(rng, 4)
    indicator = _study_indicator(study, 4)
    taus, ncs = np.array([[5.0, 40.0]]), np.array([[12.0, 0.5]])
    got = study_marginal_log_density(np, np.broadcast_to(residual, (1, 2, len(se))), se ** 2, treated, is_arm,
                                     indicator, taus[..., None], ncs[..., None])
    for d in range(2):
        one = study_marginal_log_density(np, residual, se ** 2, treated, is_arm, indicator, taus[0, d], ncs[0, d])
        np.testing.assert_allclose(got[0, d], one, rtol=1e-12)


def test_recovered_study_draws_follow_the_conditional_normal():
    """For one hyperparameter value repeated over many draws, the recovered (theta_j, nc_j)
    have the mean and covariance of the conditional normal given the estimates."""
    from types import SimpleNamespace

    import pandas as pd

    from bayes_msc.models.continuous import continuous_inputs, recover_study_draws
    from bayes_msc.spec import load_spec

    rng = np.random.default_rng(11)
    study, treated, is_arm, se, estimate = random_layout(rng, 4)
    studies = tuple(f"s{j}" for j in range(4))
    terms = pd.DataFrame({"study_id": [studies[j] for j in study], "study_index": study, "treated": treated,
                          "kind": np.where(is_arm == 1, "arm", "contrast"), "arm": None, "comparator": "",
                          "se": se, "estimate": estimate})
    inputs = continuous_inputs(SimpleNamespace(terms=terms, studies=studies, natural_course=True),
                               load_spec("oxygenation").priors)
    point = {"mu": 12.0, "tau": 18.0, "nc_mean": 30.0, "nc_sd": 22.0}
    n = 40_000
    posterior = xr.Dataset({k: (("chain", "draw"), np.full((1, n), v)) for k, v in point.items()},
                           coords={"chain": [0], "draw": np.arange(n)})
    out = recover_study_draws(posterior, inputs, seed=5)
    theta = out["study_effect"].values[0]
    nc = out["natural_course"].values[0]
    # joint normal of x = (theta, nc) and y; conditional mean and covariance by Σ_xy Σ_yy^-1
    J = 4
    onehot = _study_indicator(study, J).T  # (T, J)
    mean_x = np.r_[np.full(J, point["mu"]), np.full(J, point["nc_mean"])]
    cov_x = np.diag(np.r_[np.full(J, point["tau"] ** 2), np.full(J, point["nc_sd"] ** 2)])
    loading = np.hstack([onehot * treated[:, None], onehot * is_arm[:, None]])  # y = loading x + e
    cov_y = loading @ cov_x @ loading.T + np.diag(se ** 2)
    gain = cov_x @ loading.T @ np.linalg.inv(cov_y)
    cond_mean = mean_x + gain @ (estimate - loading @ mean_x)
    cond_cov = cov_x - gain @ loading @ cov_x
    draws = np.hstack([theta, nc])
    mcse = np.sqrt(np.diag(cond_cov) / n)
    assert np.all(np.abs(draws.mean(0) - cond_mean) < 4.5 * mcse)
    var = np.diag(cond_cov)
    cov_se = np.sqrt((np.outer(var, var) + cond_cov ** 2) / n)  # sampling SE of each covariance entry
    assert np.all(np.abs(np.cov(draws.T) - cond_cov) < 5 * cov_se)
    # the recovered z are the standardised deviations the model's other functions read
    np.testing.assert_allclose(out["study_effect_z"].values[0], (theta - point["mu"]) / point["tau"], rtol=1e-9, atol=1e-12)
    # seeded: the same draws again
    again = recover_study_draws(posterior, inputs, seed=5)
    np.testing.assert_array_equal(again["study_effect"].values, out["study_effect"].values)

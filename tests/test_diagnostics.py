"""The diagnostics gate with negative controls: synthetic chains that must fail it.

Each bad chain set is built so that the quantity it spoils sits *between* the published
threshold and a looser one (R-hat 1.01 vs 1.05, ESS 400 vs 100-200, E-BFMI 0.3 vs 0.2): a gate
whose thresholds were loosened lets them through, and this file fails. Where the quantity has a
closed form (ESS and E-BFMI of an AR(1) chain) the test checks the construction against it
before trusting it; the good control must pass every check.

Thresholds: Vehtari, Gelman, Simpson, Carpenter, Bürkner, Bayesian Analysis 2021 (R-hat <=
1.01, bulk and tail ESS >= 400 for 4 chains); Betancourt 2016, arXiv:1604.00695 (E-BFMI >= 0.3).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import xarray as xr

from bayes_msc.engine.diagnostics import diagnose

CHAINS, DRAWS = 4, 1000


def ar1(rho: float, rng, chains: int = CHAINS, draws: int = DRAWS) -> np.ndarray:
    """Stationary AR(1) chains with unit marginal variance."""
    x = np.empty((chains, draws))
    x[:, 0] = rng.normal(size=chains)
    innovation = math.sqrt(1 - rho**2)
    for t in range(1, draws):
        x[:, t] = rho * x[:, t - 1] + innovation * rng.normal(size=chains)
    return x


def make_tree(posterior: dict[str, np.ndarray], *, energy=None, diverging=None, maxdepth=None, rng=None):
    """A DataTree shaped like a nutpie fit: posterior and sample_stats over (chain, draw)."""
    rng = rng or np.random.default_rng(0)
    shape = next(iter(posterior.values())).shape[:2]
    coords = {"chain": np.arange(shape[0]), "draw": np.arange(shape[1])}

    def da(values):
        extra = tuple(f"{name}_dim_{i}" for i, name in enumerate(range(values.ndim - 2)))
        return xr.DataArray(values, dims=("chain", "draw", *extra))

    stats = xr.Dataset({
        "energy": (("chain", "draw"), rng.normal(size=shape) if energy is None else energy),
        "diverging": (("chain", "draw"), np.zeros(shape, bool) if diverging is None else diverging),
        "maxdepth_reached": (("chain", "draw"), np.zeros(shape, bool) if maxdepth is None else maxdepth),
    }, coords=coords)
    post = xr.Dataset({name: da(values) for name, values in posterior.items()}).assign_coords(coords)
    return xr.DataTree.from_dict({"posterior": post, "sample_stats": stats})


def checks(diagnostics) -> dict:
    return {c.name: c for c in diagnostics.checks}


def failed(diagnostics) -> set[str]:
    return {c.name for c in diagnostics.checks if not c.passed}


@pytest.fixture
def rng():
    """A fresh, fixed stream per test: a test's data do not depend on which tests ran before."""
    return np.random.default_rng(2021)


def good_posterior(rng) -> dict:
    return {"mu": rng.normal(size=(CHAINS, DRAWS)), "theta": rng.normal(size=(CHAINS, DRAWS, 3))}


def test_independent_chains_pass_every_check(rng):
    diag = diagnose(make_tree(good_posterior(rng)), ["mu", "theta"])
    assert failed(diag) == set(), diag.to_dict()
    assert diag.passed and diag.verdict().startswith("PASS")
    # per-element rows are labelled by coordinate; ESS of iid draws is about N
    assert list(diag.per_variable.index) == ["mu", "theta[0]", "theta[1]", "theta[2]"]
    assert (diag.per_variable["ess_bulk"] > 0.8 * CHAINS * DRAWS).all()


def test_the_thresholds_are_the_published_ones(rng):
    diag = checks(diagnose(make_tree(good_posterior(rng)), ["mu"]))
    assert diag["R-hat"].threshold == "<= 1.01"  # Vehtari et al. 2021
    assert diag["bulk ESS"].threshold == ">= 400" and diag["tail ESS"].threshold == ">= 400"
    assert diag["E-BFMI"].threshold == ">= 0.3"  # Betancourt 2016
    assert diag["divergences"].threshold == "= 0" and diag["maxdepth_reached"].threshold == "= 0"


def test_one_chain_shifted_fails_r_hat_even_when_the_shift_is_small(rng):
    # One of four chains shifted by delta sd. Split R-hat sees 8 half-chains, 2 of them shifted:
    # between-chain variance ~ delta^2 (8/7)(1/4)(3/4), so R-hat ~ sqrt(1 + (3/14) delta^2);
    # delta = 0.5 gives ~1.026 — above 1.01, below a loosened 1.05.
    delta = 0.5
    x = rng.normal(size=(CHAINS, DRAWS))
    x[0] += delta
    theory = math.sqrt(1 + 3 / 14 * delta**2)
    diag = diagnose(make_tree({"mu": x, "other": rng.normal(size=(CHAINS, DRAWS))}), ["mu", "other"])
    r_hat = checks(diag)["R-hat"]
    assert 1.01 < r_hat.value < 1.05, (r_hat.value, theory)
    assert abs(r_hat.value - theory) < 0.01
    # the shift also inflates the variance that bulk ESS divides by, so ESS may fail too
    assert "R-hat" in failed(diag) and failed(diag) <= {"R-hat", "bulk ESS", "tail ESS"}
    assert r_hat.detail == "worst: mu"
    assert not diag.passed and "R-hat" in diag.verdict() and diag.verdict().startswith("FAIL")


def test_chains_with_different_means_fail_r_hat(rng):
    x = rng.normal(size=(CHAINS, DRAWS)) + np.arange(CHAINS)[:, None]
    assert "R-hat" in failed(diagnose(make_tree({"mu": x}), ["mu"]))


def test_autocorrelated_chains_fail_bulk_ess(rng):
    # AR(1): ESS = N (1 - rho) / (1 + rho). rho = 0.86 gives ~301 of 4000 draws: under 400,
    # over a loosened 200. (Tail ESS, of quantile indicators, is higher: see the next test.)
    rho = 0.86
    theory = CHAINS * DRAWS * (1 - rho) / (1 + rho)
    diag = diagnose(make_tree({"mu": ar1(rho, rng)}), ["mu"])
    bulk = checks(diag)["bulk ESS"]
    assert 200 < bulk.value < 400 and abs(bulk.value - theory) < 0.3 * theory
    # slowly mixing chains also have noisy chain means, so R-hat may fail as well
    assert "bulk ESS" in failed(diag) and failed(diag) <= {"R-hat", "bulk ESS", "tail ESS"}


def test_strongly_autocorrelated_chains_fail_tail_ess(rng):
    # rho = 0.93: bulk ESS ~ 145; the tail ESS (5% and 95% quantile indicators) stays under 400
    diag = diagnose(make_tree({"mu": ar1(0.93, rng)}), ["mu"])
    assert checks(diag)["tail ESS"].value < 400
    assert {"bulk ESS", "tail ESS"} <= failed(diag) <= {"R-hat", "bulk ESS", "tail ESS"}


def test_mildly_autocorrelated_chains_pass(rng):
    # rho = 0.5: ESS ~ 4000 / 3 ~ 1333, well above 400: the ESS checks are not trigger-happy
    assert failed(diagnose(make_tree({"mu": ar1(0.5, rng)}), ["mu"])) == set()


def test_a_single_divergence_fails(rng):
    diverging = np.zeros((CHAINS, DRAWS), bool)
    diverging[2, 17] = True
    diag = diagnose(make_tree(good_posterior(rng), diverging=diverging), ["mu"])
    assert failed(diag) == {"divergences"}
    assert checks(diag)["divergences"].value == 1
    assert checks(diag)["divergences"].detail == f"of {CHAINS * DRAWS} draws"


def test_a_single_maximum_tree_depth_hit_fails(rng):
    maxdepth = np.zeros((CHAINS, DRAWS), bool)
    maxdepth[0, 999] = True
    maxdepth[3, 0] = True
    diag = diagnose(make_tree(good_posterior(rng), maxdepth=maxdepth), ["mu"])
    assert failed(diag) == {"maxdepth_reached"}
    assert checks(diag)["maxdepth_reached"].value == 2


def test_low_e_bfmi_in_one_chain_fails(rng):
    # E-BFMI = sum (E_t - E_{t-1})^2 / sum (E_t - mean E)^2; for AR(1) energy it is 2 (1 - rho).
    # rho = 0.875 gives ~0.25 in one chain (under 0.3, over a loosened 0.2); the others ~2.
    energy = rng.normal(size=(CHAINS, DRAWS))
    energy[1] = ar1(0.875, rng, chains=1)[0]
    by_hand = np.sum(np.diff(energy, axis=1) ** 2, axis=1) / np.sum((energy - energy.mean(axis=1, keepdims=True)) ** 2, axis=1)
    assert 0.2 < by_hand[1] < 0.3 and (np.delete(by_hand, 1) > 1.5).all()
    diag = diagnose(make_tree(good_posterior(rng), energy=energy), ["mu"])
    assert failed(diag) == {"E-BFMI"}
    assert checks(diag)["E-BFMI"].value == pytest.approx(by_hand.min(), rel=1e-6)


@pytest.mark.filterwarnings("ignore:invalid value encountered:RuntimeWarning")
def test_a_stuck_parameter_fails_instead_of_being_skipped(rng):
    # Every chain stuck at one value: R-hat is undefined (NaN; ArviZ calls the ESS of a
    # constant N). A max that skips NaN reports the other parameter's fine R-hat and passes.
    stuck = np.full((CHAINS, DRAWS), 0.7)
    diag = diagnose(make_tree({"stuck": stuck, "fine": rng.normal(size=(CHAINS, DRAWS))}), ["fine", "stuck"])
    assert failed(diag) == {"R-hat"}
    assert checks(diag)["R-hat"].detail == "worst: stuck (undefined)"
    out = diag.to_dict()
    assert out["passed"] is False
    assert next(c for c in out["checks"] if c["name"] == "R-hat")["value"] is None  # JSON null, not NaN

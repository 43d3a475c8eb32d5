"""Derivations of estimate and SE from reported numbers, checked against hand arithmetic.

Expected values are written out as literals (worked by hand, quantiles from a normal
table), never recomputed with the formula under test. The numbers are those of the
trials the register derives from:

* Monsel 2022 (STROMA-CoV-2), PaO2/FiO2 change day 0 -> 7, median [IQR]:
  UC-MSC 54.3 [-15.5, 93.3] (n 21), placebo 25.3 [-33.3, 104.6] (n 24);
  adjusted difference 7.4 (95% CI -44.7 to 59.7).
* BC-U001, middle dose: within-group change +100.07 mmHg, P < 0.001.
"""

from __future__ import annotations

import dataclasses

import pytest

from bayes_msc.evidence.derivations import (
    RICE_INTERCEPT,
    RICE_R,
    RICE_SLOPE,
    Derived,
    difference_of_independent,
    mean_from_median_iqr,
    pf_change_from_sf_change,
    se_from_ci,
    se_from_p,
    se_from_sd,
    sd_from_iqr,
)

# Monsel 2022, UC-MSC arm and placebo arm.
MSC_MEDIAN, MSC_Q1, MSC_Q3, MSC_N = 54.3, -15.5, 93.3, 21
PLACEBO_MEDIAN, PLACEBO_Q1, PLACEBO_Q3, PLACEBO_N = 25.3, -33.3, 104.6, 24


def test_derived_is_frozen_and_point_by_default():
    derived = Derived(1.0, "x = 1", "ref")
    assert derived.bound == ""
    with pytest.raises(dataclasses.FrozenInstanceError):
        derived.value = 2.0  # type: ignore[misc]


# --- mean from median and IQR


def test_wan_mean_monsel_msc_arm():
    # (-15.5 + 54.3 + 93.3) / 3 = 132.1 / 3 = 44.0333
    derived = mean_from_median_iqr(MSC_MEDIAN, MSC_Q1, MSC_Q3)
    assert derived.value == pytest.approx(44.0333, abs=1e-4)
    assert derived.bound == ""
    assert "Wan" in derived.reference
    assert "(-15.5)" in derived.formula and "44.03" in derived.formula


def test_wan_mean_ignores_n():
    # Wan's C3 mean does not use n: placebo (-33.3 + 25.3 + 104.6) / 3 = 96.6 / 3 = 32.2
    with_n = mean_from_median_iqr(PLACEBO_MEDIAN, PLACEBO_Q1, PLACEBO_Q3, n=PLACEBO_N)
    without_n = mean_from_median_iqr(PLACEBO_MEDIAN, PLACEBO_Q1, PLACEBO_Q3)
    assert with_n.value == pytest.approx(32.2, abs=1e-9)
    assert without_n.value == with_n.value


def test_luo_mean_monsel_msc_arm():
    # w = 0.7 + 0.39/21 = 0.718571; mid-quartile (-15.5 + 93.3)/2 = 38.9
    # 0.718571 x 38.9 + 0.281429 x 54.3 = 27.9524 + 15.2816 = 43.2340
    derived = mean_from_median_iqr(MSC_MEDIAN, MSC_Q1, MSC_Q3, n=MSC_N, method="luo2018")
    assert derived.value == pytest.approx(43.2340, abs=1e-3)
    assert "Luo" in derived.reference
    assert "0.39/21" in derived.formula


def test_luo_mean_large_n_tends_to_fixed_weights():
    # n -> infinity: 0.7 x 38.9 + 0.3 x 54.3 = 27.23 + 16.29 = 43.52
    derived = mean_from_median_iqr(MSC_MEDIAN, MSC_Q1, MSC_Q3, n=10**9, method="luo2018")
    assert derived.value == pytest.approx(43.52, abs=1e-6)


def test_luo_mean_needs_n():
    with pytest.raises(ValueError, match="pass n"):
        mean_from_median_iqr(MSC_MEDIAN, MSC_Q1, MSC_Q3, method="luo2018")


@pytest.mark.parametrize(
    "median, q1, q3, kwargs",
    [
        (54.3, 93.3, -15.5, {}),  # quartiles swapped
        (120.0, -15.5, 93.3, {}),  # median above q3
        (54.3, -15.5, 93.3, {"method": "hozo2005"}),  # unknown method
        (54.3, -15.5, 93.3, {"method": "luo2018", "n": 1}),  # no spread in one patient
        (float("nan"), -15.5, 93.3, {}),
    ],
)
def test_mean_from_median_iqr_rejects(median, q1, q3, kwargs):
    with pytest.raises(ValueError):
        mean_from_median_iqr(median, q1, q3, **kwargs)


# --- SD from IQR


def test_wan_sd_with_n_monsel_msc_arm():
    # eta(21) = 2 x Phi^-1((15.75 - 0.125) / 21.25) = 2 x Phi^-1(0.735294) = 2 x 0.628904
    #         = 1.257808;  SD = 108.8 / 1.257808 = 86.4997
    derived = sd_from_iqr(MSC_Q1, MSC_Q3, n=MSC_N)
    assert derived.value == pytest.approx(86.4997, abs=1e-3)
    assert "1.2578" in derived.formula
    assert derived.bound == ""


def test_wan_sd_with_n_monsel_placebo_arm():
    # eta(24) = 2 x Phi^-1((18 - 0.125) / 24.25) = 2 x Phi^-1(0.737113) = 1.268943
    # SD = (104.6 - (-33.3)) / 1.268943 = 137.9 / 1.268943 = 108.673
    derived = sd_from_iqr(PLACEBO_Q1, PLACEBO_Q3, n=PLACEBO_N)
    assert derived.value == pytest.approx(108.673, abs=1e-3)


def test_sd_large_sample_limit_when_n_unknown():
    # 2 x Phi^-1(0.75) = 2 x 0.674490 = 1.348980;  108.8 / 1.348980 = 80.65
    derived = sd_from_iqr(MSC_Q1, MSC_Q3)
    assert derived.value == pytest.approx(80.65, abs=0.01)
    assert "1.349" in derived.formula


def test_small_sample_sd_is_larger_than_limit():
    # Sample quartiles of a small sample are pulled in, so eta(n) < 1.349.
    assert sd_from_iqr(MSC_Q1, MSC_Q3, n=MSC_N).value > sd_from_iqr(MSC_Q1, MSC_Q3).value


@pytest.mark.parametrize("q1, q3, n", [(93.3, -15.5, 21), (-15.5, 93.3, 1), (-15.5, 93.3, 0)])
def test_sd_from_iqr_rejects(q1, q3, n):
    with pytest.raises(ValueError):
        sd_from_iqr(q1, q3, n=n)


# --- SE from a confidence interval


def test_se_from_ci_monsel_adjusted_difference():
    # (59.7 - (-44.7)) / (2 x 1.959964) = 104.4 / 3.919928 = 26.6331
    derived = se_from_ci(-44.7, 59.7)
    assert round(derived.value, 2) == 26.63
    assert derived.value == pytest.approx(26.6331, abs=1e-3)
    assert derived.formula == "SE = (59.7 - (-44.7)) / (2 x 1.96) = 26.63"
    assert "6.5.2.2" in derived.reference


def test_se_from_ci_90_percent():
    # z_0.95 = 1.644854, so a 90% interval of +/- 1.644854 has SE 1.
    derived = se_from_ci(-1.644854, 1.644854, ci_prob=0.90)
    assert derived.value == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize(
    "lower, upper, ci_prob",
    [(59.7, -44.7, 0.95), (7.4, 7.4, 0.95), (-44.7, 59.7, 0.0), (-44.7, 59.7, 1.0),
     (-44.7, 59.7, 95)],
)
def test_se_from_ci_rejects(lower, upper, ci_prob):
    with pytest.raises(ValueError):
        se_from_ci(lower, upper, ci_prob)


# --- SE from a P value


def test_se_from_p_two_sided_005():
    # p = 0.05 two-sided: z = Phi^-1(0.975) = 1.959964; an estimate of 1.959964 has SE 1.
    derived = se_from_p(1.959964, 0.05)
    assert derived.value == pytest.approx(1.0, abs=1e-5)
    assert derived.bound == ""
    assert "1.96" in derived.formula


def test_se_from_p_one_sided():
    # one-sided p = 0.025 is the same z, 1.959964; sign of the estimate does not matter.
    derived = se_from_p(-1.959964, 0.025, two_sided=False)
    assert derived.value == pytest.approx(1.0, abs=1e-5)


def test_se_from_p_bc_u001_upper_bound():
    # "P < 0.001": z = Phi^-1(0.9995) = 3.290527; 100.07 / 3.290527 = 30.4115.
    # The true P is smaller, so the true SE is below this: an upper bound.
    derived = se_from_p(100.07, 0.001, bound=True)
    assert derived.value == pytest.approx(30.41, abs=0.005)
    assert derived.bound == "upper"
    assert "upper bound" in derived.formula
    assert "3.2905" in derived.formula
    assert "6.5.2.3" in derived.reference


def test_se_from_p_exact_p_is_a_point_value():
    derived = se_from_p(100.07, 0.001)
    assert derived.value == pytest.approx(30.41, abs=0.005)
    assert derived.bound == ""


@pytest.mark.parametrize(
    "estimate, p", [(7.4, 0.0), (7.4, 1.0), (7.4, -0.1), (7.4, 1.5), (0.0, 0.05)]
)
def test_se_from_p_rejects(estimate, p):
    with pytest.raises(ValueError):
        se_from_p(estimate, p)


# --- SE from SD


def test_se_from_sd_monsel_msc_arm():
    # 86.4997 / sqrt(21) = 86.4997 / 4.582576 = 18.8758
    derived = se_from_sd(86.4997, 21)
    assert derived.value == pytest.approx(18.8758, abs=1e-3)


@pytest.mark.parametrize("sd, n", [(-1.0, 21), (86.5, 1), (86.5, 0), (86.5, 20.5)])
def test_se_from_sd_rejects(sd, n):
    with pytest.raises(ValueError):
        se_from_sd(sd, n)


# --- S/F to P/F


def test_rice_constants():
    assert (RICE_INTERCEPT, RICE_SLOPE, RICE_R) == (64.0, 0.84, 0.89)


def test_pf_change_from_sf_change():
    # dP/F = 42 / 0.84 = 50.0;  SE = 10 / 0.84 / 0.89 = 11.9048 / 0.89 = 13.3761
    estimate, se = pf_change_from_sf_change(42.0, 10.0)
    assert estimate.value == pytest.approx(50.0, abs=1e-9)
    assert se.value == pytest.approx(13.376, abs=1e-3)
    assert "Rice" in estimate.reference and "Rice" in se.reference
    # The variance inflation 1 / 0.89^2 = 1.262 is an assumption and must say so.
    assert "ASSUMPTION" in se.formula and "1.262" in se.formula


def test_pf_change_rejects_nonpositive_se():
    with pytest.raises(ValueError):
        pf_change_from_sf_change(42.0, 0.0)


# --- difference of independent arms


def test_difference_of_independent_simple():
    # 5 - 2 = 3;  sqrt(3^2 + 4^2) = 5
    difference, se = difference_of_independent(5.0, 3.0, 2.0, 4.0)
    assert difference.value == pytest.approx(3.0)
    assert se.value == pytest.approx(5.0)


def test_monsel_arm_level_difference_chain():
    # The arm-level route for Monsel (Wan mean, Wan SD with n, SE of the mean):
    # MSC 44.0333 (SE 18.8758), placebo 32.2 (SE 108.673 / sqrt(24) = 108.673 / 4.898979
    # = 22.1828); difference 11.8333, SE sqrt(18.8758^2 + 22.1828^2)
    # = sqrt(356.296 + 492.077) = sqrt(848.373) = 29.1268.
    msc_mean = mean_from_median_iqr(MSC_MEDIAN, MSC_Q1, MSC_Q3)
    msc_se = se_from_sd(sd_from_iqr(MSC_Q1, MSC_Q3, n=MSC_N).value, MSC_N)
    placebo_mean = mean_from_median_iqr(PLACEBO_MEDIAN, PLACEBO_Q1, PLACEBO_Q3)
    placebo_se = se_from_sd(sd_from_iqr(PLACEBO_Q1, PLACEBO_Q3, n=PLACEBO_N).value, PLACEBO_N)
    difference, se = difference_of_independent(
        msc_mean.value, msc_se.value, placebo_mean.value, placebo_se.value
    )
    assert placebo_se.value == pytest.approx(22.1828, abs=1e-3)
    assert difference.value == pytest.approx(11.8333, abs=1e-3)
    assert se.value == pytest.approx(29.1268, abs=1e-3)


def test_difference_of_independent_rejects_negative_se():
    with pytest.raises(ValueError):
        difference_of_independent(5.0, -3.0, 2.0, 4.0)

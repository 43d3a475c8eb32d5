"""From numbers as trials reported them to an estimate and a standard error.

The continuous outcomes (PaO2/FiO2 and similar) enter the model as normal likelihoods,
``estimate ~ Normal(theta, SE)``. Trials rarely report that pair directly: they give a
median and interquartile range, a confidence interval, a P value, an S/F ratio instead of a
P/F ratio. Each function here performs one such step, with the published method it follows,
and returns a :class:`Derived` that carries the number *and* the arithmetic with the inputs
substituted, so that the register and the report can show exactly how a number was obtained.

All functions are pure (numbers in, numbers out) and raise :class:`ValueError` for inputs
the method cannot handle, rather than returning something plausible-looking.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# Rice TW et al., Chest 2007;132:410-417: linear regression of S/F on P/F in ARDS Network
# patients (SpO2 <= 97%): S/F = 64 + 0.84 x P/F, with correlation r = 0.89.
RICE_INTERCEPT = 64.0
RICE_SLOPE = 0.84
RICE_R = 0.89

# 2 x Phi^-1(0.75): the width of the normal IQR in SDs. Cochrane rounds it to 1.35.
_IQR_WIDTH_LARGE_SAMPLE = 1.3489795003921634

_REF_WAN = "Wan X et al., BMC Med Res Methodol 2014;14:135"
_REF_LUO = "Luo D et al., Stat Methods Med Res 2018;27:1785-1805"
_REF_COCHRANE = "Cochrane Handbook v6.4"
_REF_RICE = "Rice TW et al., Chest 2007;132:410-417"


@dataclass(frozen=True)
class Derived:
    """A derived number with the arithmetic and the source that produced it.

    Attributes
    ----------
    value
        The derived number.
    formula
        Human-readable arithmetic with the inputs substituted,
        e.g. ``"SE = (59.7 - (-44.7)) / (2 x 1.96) = 26.63"``.
    reference
        Short citation of the method.
    bound
        ``""`` when ``value`` is a point value; ``"upper"`` when the report only allows an
        upper bound (``value`` is then that bound).
    """

    value: float
    formula: str
    reference: str
    bound: str = ""


# --- formatting: inputs as given, results rounded for reading (value keeps full precision)


def _inp(x: float) -> str:
    """An input as the trial reported it; negatives in parentheses so "a - (-b)" reads."""
    text = f"{x:g}"
    return f"({text})" if x < 0 else text


def _const(x: float) -> str:
    """A computed constant (a z or eta), to 4 decimals without trailing zeros."""
    return f"{x:.4f}".rstrip("0").rstrip(".")


def _out(x: float) -> str:
    """A result: 2 decimals, or 4 significant digits for small numbers (log scale SEs)."""
    return f"{x:.2f}" if abs(x) >= 1 else f"{x:.4g}"


# --- checks shared by several derivations


def _check_finite(**values: float | None) -> None:
    for name, x in values.items():
        if x is not None and not math.isfinite(x):
            raise ValueError(f"{name} must be a finite number, got {x!r}")


def _check_n(n: float, what: str) -> None:
    # A sample size below 2 has no spread; an SD or quartile-based estimate is meaningless.
    if not math.isfinite(n) or n != int(n) or n < 2:
        raise ValueError(f"{what} needs a whole sample size n >= 2, got n={n!r}")


def _check_quartiles(q1: float, q3: float) -> None:
    if q3 < q1:
        raise ValueError(f"third quartile ({q3}) is below the first quartile ({q1})")


# --- median and IQR to mean and SD


def mean_from_median_iqr(
    median: float, q1: float, q3: float, n: int | None = None, method: str = "wan2014"
) -> Derived:
    """Estimate a sample mean from its median and interquartile range.

    Trials of skewed outcomes (a change in P/F from day 0 to day 7 is one) report
    median [Q1, Q3]; a normal likelihood on the mean needs a mean.

    Parameters
    ----------
    median, q1, q3
        Sample median and first and third quartiles, in the outcome's units.
    n
        Sample size. Not used by ``"wan2014"``; required by ``"luo2018"``.
    method
        ``"wan2014"``: Wan et al. 2014, scenario C3, the unweighted average
        ``(q1 + median + q3) / 3``.
        ``"luo2018"``: Luo et al. 2018, scenario S2, the optimally weighted estimator
        ``w (q1 + q3) / 2 + (1 - w) median`` with ``w = 0.7 + 0.39 / n``, which gives
        the median more weight in small samples, where the quartiles are noisier.

    Returns
    -------
    Derived
        The estimated mean.

    Raises
    ------
    ValueError
        If the quartiles are not ordered around the median, the method is unknown, or
        ``"luo2018"`` is asked for without a usable ``n``.

    Notes
    -----
    Both assume an approximately normal sample; for skewed data the estimate is biased
    towards the median, which is why it is reported as a derivation, not a primary value.

    The Luo weights were checked against two independent implementations: the CRAN
    package ``metaBLUE`` (``Luo.mean``, type ``"S2"``:
    ``(0.7 + 0.39/n) * (q1 + q3)/2 + (0.3 - 0.39/n) * m``) and the CRAN package ``meta``
    (``mean.sd.iqr``, commented "Luo et al. (2018), equation (15)"), which agree with the
    formula above; ``metafor`` (``conv.fivenum``) uses the same weight ``0.7 + 0.39/n``.

    References
    ----------
    Wan X, Wang W, Liu J, Tong T. Estimating the sample mean and standard deviation from
    the sample size, median, range and/or interquartile range. BMC Med Res Methodol
    2014;14:135.

    Luo D, Wan X, Liu J, Tong T. Optimally estimating the sample mean from the sample
    size, median, mid-range, and/or mid-quartile range. Stat Methods Med Res
    2018;27(6):1785-1805.
    """
    _check_finite(median=median, q1=q1, q3=q3)
    _check_quartiles(q1, q3)
    if not q1 <= median <= q3:
        raise ValueError(f"median ({median}) must lie between q1 ({q1}) and q3 ({q3})")

    if method == "wan2014":
        value = (q1 + median + q3) / 3
        formula = f"mean = ({_inp(q1)} + {_inp(median)} + {_inp(q3)}) / 3 = {_out(value)}"
        return Derived(value, formula, f"{_REF_WAN}, scenario C3")

    if method == "luo2018":
        if n is None:
            raise ValueError(
                "method 'luo2018' weights the quartiles by sample size: pass n "
                "(or use method='wan2014', which does not need it)"
            )
        _check_n(n, "method 'luo2018'")
        weight = 0.7 + 0.39 / n
        value = weight * (q1 + q3) / 2 + (1 - weight) * median
        formula = (
            f"mean = (0.7 + 0.39/{n:g}) x ({_inp(q1)} + {_inp(q3)}) / 2"
            f" + (0.3 - 0.39/{n:g}) x {_inp(median)}"
            f" = {_const(weight)} x {_inp((q1 + q3) / 2)} + {_const(1 - weight)} x {_inp(median)}"
            f" = {_out(value)}"
        )
        return Derived(value, formula, f"{_REF_LUO}, scenario S2")

    raise ValueError(f"unknown method {method!r}: use 'wan2014' or 'luo2018'")


def sd_from_iqr(q1: float, q3: float, n: int | None = None) -> Derived:
    """Estimate a sample standard deviation from the interquartile range.

    For a normal sample the IQR spans ``eta(n)`` standard deviations. Wan et al. 2014
    (scenario C3, formula 16) approximate the expected width of the sample IQR by

        eta(n) = 2 Phi^-1((0.75 n - 0.125) / (n + 0.25)),

    which is below its limit ``2 Phi^-1(0.75) = 1.349`` for small ``n`` (sample quartiles
    are pulled in), so using the limit for a small trial would *understate* the SD.

    Parameters
    ----------
    q1, q3
        First and third quartiles.
    n
        Sample size. ``None`` uses the large-sample limit ``2 Phi^-1(0.75) = 1.349``
        (the Cochrane Handbook's "divide by 1.35" for an IQR, chapter 6), for reports
        without an arm size.

    Returns
    -------
    Derived
        The estimated SD.

    Raises
    ------
    ValueError
        If ``q3 < q1`` or ``n < 2``.

    References
    ----------
    Wan X, Wang W, Liu J, Tong T. BMC Med Res Methodol 2014;14:135, formula (16).
    """
    from scipy.stats import norm

    _check_finite(q1=q1, q3=q3)
    _check_quartiles(q1, q3)
    iqr = q3 - q1
    if n is None:
        value = iqr / _IQR_WIDTH_LARGE_SAMPLE
        formula = (
            f"SD = ({_inp(q3)} - {_inp(q1)}) / {_const(_IQR_WIDTH_LARGE_SAMPLE)}"
            f" = {_out(value)}  [large-sample limit 2 x Phi^-1(0.75); n not given]"
        )
        return Derived(value, formula, f"{_REF_WAN}, scenario C3 (n -> infinity)")

    _check_n(n, "sd_from_iqr")
    quantile = (0.75 * n - 0.125) / (n + 0.25)
    eta = 2 * float(norm.ppf(quantile))
    value = iqr / eta
    formula = (
        f"SD = ({_inp(q3)} - {_inp(q1)}) / eta({n:g}),"
        f" eta = 2 x Phi^-1((0.75 x {n:g} - 0.125) / ({n:g} + 0.25))"
        f" = 2 x Phi^-1({_const(quantile)}) = {_const(eta)};"
        f" SD = {_out(iqr)} / {_const(eta)} = {_out(value)}"
    )
    return Derived(value, formula, f"{_REF_WAN}, scenario C3")


# --- confidence intervals, P values, SDs to SEs


def se_from_ci(lower: float, upper: float, ci_prob: float = 0.95) -> Derived:
    """Standard error of an estimate from its (symmetric, normal-based) confidence interval.

    A normal-theory interval is ``estimate +/- z SE``, so its width is ``2 z SE``, with
    ``z = Phi^-1((1 + ci_prob) / 2)`` (1.96 for 95%). The estimate itself is not needed.
    For ratios, pass the interval on the log scale.

    Parameters
    ----------
    lower, upper
        Interval limits, on the scale where the interval is symmetric.
    ci_prob
        Coverage of the interval, e.g. 0.95.

    Returns
    -------
    Derived
        The SE.

    Raises
    ------
    ValueError
        If ``upper <= lower`` or ``ci_prob`` is not strictly between 0 and 1.

    Notes
    -----
    For small trials whose interval was t-based the Handbook divides by a t quantile
    instead; the normal quantile then slightly overstates precision.

    References
    ----------
    Higgins JPT et al. (eds). Cochrane Handbook for Systematic Reviews of Interventions,
    version 6.4, 2023, §6.5.2.2 (SE from a confidence interval).
    """
    from scipy.stats import norm

    _check_finite(lower=lower, upper=upper, ci_prob=ci_prob)
    if not 0 < ci_prob < 1:
        raise ValueError(f"ci_prob must be strictly between 0 and 1, got {ci_prob}")
    if upper <= lower:
        raise ValueError(f"upper limit ({upper}) must exceed lower limit ({lower})")
    z = float(norm.ppf((1 + ci_prob) / 2))
    value = (upper - lower) / (2 * z)
    formula = f"SE = ({_inp(upper)} - {_inp(lower)}) / (2 x {_const(z)}) = {_out(value)}"
    return Derived(value, formula, f"{_REF_COCHRANE} §6.5.2.2")


def se_from_p(
    estimate: float, p: float, *, bound: bool = False, two_sided: bool = True
) -> Derived:
    """Standard error of an estimate from its P value (Wald test against zero).

    If the test was ``z = estimate / SE``, the P value fixes z: ``z = Phi^-1(1 - p/2)``
    two-sided (``Phi^-1(1 - p)`` one-sided), so ``SE = |estimate| / z``.

    Parameters
    ----------
    estimate
        The estimate that was tested against zero (differences on their own scale,
        ratios on the log scale).
    p
        The reported P value.
    bound
        ``True`` when the report only says "P < p". The true P is smaller, so the true z
        is larger and the true SE *smaller* than ``|estimate| / z``: the result is then an
        upper bound on the SE (``bound="upper"``). Using it as the SE is conservative
        (it understates the precision).
    two_sided
        Whether ``p`` is two-sided (the usual report).

    Returns
    -------
    Derived
        The SE, or an upper bound on it.

    Raises
    ------
    ValueError
        If ``p`` is not strictly between 0 and 1 or ``estimate`` is zero (no z can be
        recovered from a zero estimate).

    Notes
    -----
    Assumes a normal (Wald) test; a t test in a small sample has a larger critical value,
    so the derived SE is somewhat too large.

    References
    ----------
    Higgins JPT et al. (eds). Cochrane Handbook for Systematic Reviews of Interventions,
    version 6.4, 2023, §6.5.2.3 (SE from a P value).
    """
    from scipy.stats import norm

    _check_finite(estimate=estimate, p=p)
    if not 0 < p < 1:
        raise ValueError(f"p must be strictly between 0 and 1, got {p}")
    if estimate == 0:
        raise ValueError("estimate is 0: a P value does not determine the SE of a zero estimate")
    tail = p / 2 if two_sided else p
    z = float(norm.ppf(1 - tail))
    value = abs(estimate) / z
    sides = "two-sided" if two_sided else "one-sided"
    z_text = f"Phi^-1(1 - {p:g}/2)" if two_sided else f"Phi^-1(1 - {p:g})"
    formula = f"z = {z_text} = {_const(z)} ({sides}); SE = |{estimate:g}| / {_const(z)}"
    if bound:
        formula += (
            f" = {_out(value)}; upper bound: reported P < {p:g}, so the true z is larger"
            f" and the true SE < {_out(value)}"
        )
        return Derived(value, formula, f"{_REF_COCHRANE} §6.5.2.3", bound="upper")
    formula += f" = {_out(value)}"
    return Derived(value, formula, f"{_REF_COCHRANE} §6.5.2.3")


def se_from_sd(sd: float, n: int) -> Derived:
    """Standard error of a sample mean from the sample SD: ``SE = SD / sqrt(n)``.

    Parameters
    ----------
    sd
        Sample standard deviation (reported or derived, e.g. by :func:`sd_from_iqr`).
    n
        Number of patients the mean was computed over.

    Returns
    -------
    Derived
        The SE of the mean.

    Raises
    ------
    ValueError
        If ``sd`` is negative or ``n < 2``.

    References
    ----------
    Cochrane Handbook for Systematic Reviews of Interventions, version 6.4, §6.5.2.2.
    """
    _check_finite(sd=sd)
    if sd < 0:
        raise ValueError(f"sd must be non-negative, got {sd}")
    _check_n(n, "se_from_sd")
    value = sd / math.sqrt(n)
    formula = f"SE = {_inp(sd)} / sqrt({n:g}) = {_out(value)}"
    return Derived(value, formula, f"{_REF_COCHRANE} §6.5.2.2")


# --- scale conversion and contrasts


def pf_change_from_sf_change(delta_sf: float, se_sf: float) -> tuple[Derived, Derived]:
    """Convert a change in SpO2/FiO2 (S/F) into a change in PaO2/FiO2 (P/F).

    Some trials report oxygenation as S/F. Rice et al. 2007 fitted
    ``S/F = 64 + 0.84 x P/F`` (r = 0.89). A *change* in S/F therefore corresponds to a
    change in P/F of ``delta_sf / 0.84``: the intercept cancels in a difference.

    The SE is scaled by the same slope and then inflated:
    ``SE_pf = (se_sf / 0.84) / r``, i.e. the variance is multiplied by
    ``1 / r^2 = 1 / 0.89^2 = 1.262``.

    ASSUMPTION: the regression maps S/F to P/F imperfectly; a converted change carries
    the trial's sampling error *plus* the scatter of P/F around the line. Rice et al. give
    the correlation, not a residual SD for within-patient changes, so that extra error is
    represented by dividing the SE by r (the share of P/F variation the S/F line does not
    explain grows as r falls). This is a modelling choice, not a result of the paper; it
    widens the likelihood of converted studies rather than treating them as P/F
    measurements.

    Parameters
    ----------
    delta_sf
        Change (or difference) in S/F, in the S/F units the trial used.
    se_sf
        Its standard error.

    Returns
    -------
    tuple of Derived
        ``(estimate, se)`` on the P/F scale.

    Raises
    ------
    ValueError
        If ``se_sf`` is not positive.

    References
    ----------
    Rice TW, Wheeler AP, Bernard GR, Hayden DL, Schoenfeld DA, Ware LB. Comparison of
    the SpO2/FIO2 ratio and the PaO2/FIO2 ratio in patients with acute lung injury or
    ARDS. Chest 2007;132(2):410-417.
    """
    _check_finite(delta_sf=delta_sf, se_sf=se_sf)
    if se_sf <= 0:
        raise ValueError(f"se_sf must be positive, got {se_sf}")
    estimate = delta_sf / RICE_SLOPE
    se = se_sf / RICE_SLOPE / RICE_R
    reference = f"{_REF_RICE} (S/F = {RICE_INTERCEPT:g} + {RICE_SLOPE:g} x P/F, r = {RICE_R:g})"
    return (
        Derived(estimate, f"dP/F = {_inp(delta_sf)} / {RICE_SLOPE:g} = {_out(estimate)}",
                reference),
        Derived(
            se,
            f"SE = ({_inp(se_sf)} / {RICE_SLOPE:g}) / {RICE_R:g} = {_out(se)}"
            f"  [ASSUMPTION: /r inflates the variance x{1 / RICE_R**2:.3f}"
            " for regression scatter]",
            reference,
        ),
    )


def difference_of_independent(
    est_a: float, se_a: float, est_b: float, se_b: float
) -> tuple[Derived, Derived]:
    """Difference of two independent estimates, ``a - b``, and its SE.

    Used for arm-level reports (treated ``a`` minus control ``b``): the arms of a
    randomised trial are independent samples, so their variances add:
    ``SE = sqrt(se_a^2 + se_b^2)``. Unlike a reported adjusted difference, this ignores
    any baseline adjustment, and is accordingly less precise.

    Parameters
    ----------
    est_a, se_a
        Estimate and SE of the first (treated) arm.
    est_b, se_b
        Estimate and SE of the second (control) arm.

    Returns
    -------
    tuple of Derived
        ``(difference, se)``.

    Raises
    ------
    ValueError
        If an SE is negative.

    References
    ----------
    Standard result Var(a - b) = Var(a) + Var(b) for independent a, b; the same addition
    of the two groups' variances underlies the SE of a mean difference in the Cochrane
    Handbook for Systematic Reviews of Interventions, version 6.4, §6.5.2.3.
    """
    _check_finite(est_a=est_a, se_a=se_a, est_b=est_b, se_b=se_b)
    if se_a < 0 or se_b < 0:
        raise ValueError(f"standard errors must be non-negative, got {se_a} and {se_b}")
    difference = est_a - est_b
    se = math.hypot(se_a, se_b)
    reference = "Var(a - b) = Var(a) + Var(b), a and b independent"
    return (
        Derived(difference, f"diff = {_inp(est_a)} - {_inp(est_b)} = {_out(difference)}",
                reference),
        Derived(se, f"SE = sqrt({_inp(se_a)}^2 + {_inp(se_b)}^2) = {_out(se)}", reference),
    )

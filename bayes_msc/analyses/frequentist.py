"""The classic frequentist rows beside the Bayesian answer, and the small-study-effect tests.

A reviewer reads a Bayesian meta-analysis against the numbers every meta-analysis reports:
Cochran's Q, I², the fixed-effect Mantel–Haenszel and Peto odds ratios, the inverse-variance
fixed effect, random effects by REML (with the Hartung–Knapp–Sidik–Jonkman interval),
DerSimonian–Laird and Paule–Mandel, the prediction interval, and the regression tests for
small-study effects (Egger; Peters for odds ratios). This module computes them with
well-kept libraries and writes only the glue:

* per-study log odds ratios: :func:`statsmodels.stats.meta_analysis.effectsize_2proportions`
  (0.5 added to every cell of a table with a zero cell, and to no other table);
* Mantel–Haenszel: :class:`statsmodels.stats.contingency_tables.StratifiedTable` (variance of
  Robins, Breslow & Greenland 1986);
* inverse-variance fixed effect, DerSimonian–Laird, Paule–Mandel:
  :func:`statsmodels.stats.meta_analysis.combine_effects`;
* REML, its Knapp–Hartung interval and the Q-profile interval of τ²: PyMARE
  (:class:`pymare.estimators.VarianceBasedLikelihoodEstimator`, :func:`pymare.stats.q_profile`);
* Peto's one-step odds ratio, the prediction interval (Higgins, Thompson & Spiegelhalter 2009,
  t with k − 2 degrees of freedom) and the regression tests are a few lines of closed form.

Two layers: :func:`binary_meta_analysis` and :func:`generic_meta_analysis` take plain arrays;
:func:`frequentist_summary` takes a fitted :class:`~bayes_msc.results.FitResult`, decides which
studies can enter a classic analysis (and says why the others cannot) and puts the Bayesian
answer beside the rows.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from ..evidence.empirical import CORRECTION
from ..io.errors import InputError

# Sterne et al. 2011 (BMJ 343:d4002): tests for funnel-plot asymmetry only with at least 10 studies
MIN_STUDIES_ASYMMETRY = 10
DEFAULT_LEVEL = 0.95


# -- results ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class PooledRow:
    """One pooled estimate, on the model's scale (a log odds ratio for a binary outcome).

    ``interval`` names how the interval was formed: "Wald z", "Robins-Breslow-Greenland",
    "HKSJ t(k-1)", "prediction t(k-2)". ``tau2`` is the between-study variance the row used
    (0 for fixed effect); ``p_value`` tests "no effect" the row's way (NaN for a prediction).
    """

    method: str
    model: str  # "fixed" | "random" | "prediction"
    estimate: float
    se: float
    lower: float
    upper: float
    interval: str
    tau2: float
    p_value: float
    k: int
    note: str = ""


@dataclass(frozen=True)
class Heterogeneity:
    """Cochran's Q on the inverse-variance weights, I² and H.

    ``i2`` is Higgins & Thompson's (Q − df)/Q, floored at 0; ``i2_reml`` is I² from the REML τ²
    (τ²/(τ² + s²) with s² the typical within-study variance, metafor's definition), and
    ``i2_lower``/``i2_upper`` its interval from the Q-profile interval of τ² (Viechtbauer 2007).
    """

    q: float
    df: int
    p_value: float
    i2: float
    i2_reml: float
    i2_lower: float
    i2_upper: float
    h: float
    tau2_lower: float
    tau2_upper: float
    typical_variance: float
    interval_method: str = "Q-profile (Viechtbauer 2007), I² = τ²/(τ² + s²)"


@dataclass(frozen=True)
class AsymmetryTest:
    """A regression test for small-study effects (funnel-plot asymmetry).

    A weighted regression of the effect on ``predictor`` with a multiplicative dispersion
    (ordinary weighted least squares); ``tested`` says which coefficient carries the test
    ("slope" for both forms here: Egger's intercept is the slope on the SE in this form).
    """

    name: str
    predictor: str
    weights: str
    k: int
    intercept: float
    intercept_se: float
    slope: float
    slope_se: float
    t: float
    df: int
    p_value: float
    tested: str = "slope"
    note: str = ""


@dataclass(frozen=True)
class MetaAnalysis:
    """What the array layer returns: the pooled rows, heterogeneity and small-study tests."""

    rows: tuple[PooledRow, ...]
    heterogeneity: Heterogeneity | None
    asymmetry: tuple[AsymmetryTest, ...]
    notes: tuple[str, ...] = ()

    def row(self, method: str) -> PooledRow:
        for r in self.rows:
            if r.method == method:
                return r
        raise KeyError(method)


@dataclass(frozen=True)
class FrequentistSummary:
    """The frequentist rows of one fitted analysis, beside its Bayesian answer.

    Attributes
    ----------
    analysis, measure, stated
        The analysis name, the effect measure's name ("odds ratio") and whether its rows are
        shown exponentiated (``log_scale``).
    studies
        One row per study of the fit's evidence: its effect and SE as entered, and
        ``in_rows``/``reason`` (why a study is not in the frequentist rows).
    result
        The :class:`MetaAnalysis` (model scale).
    bayesian
        The Bayesian pooled effect (median and equal-tailed interval, stated scale) and its
        probability of benefit, for the side-by-side line.
    """

    analysis: str
    measure: str
    short: str
    log_scale: bool
    digits: str
    level: float
    studies: pd.DataFrame
    result: MetaAnalysis
    bayesian: dict[str, Any]
    notes: tuple[str, ...] = field(default_factory=tuple)

    def stated(self, value: float) -> float:
        return math.exp(value) if self.log_scale and np.isfinite(value) else value

    def to_frame(self) -> pd.DataFrame:
        """The pooled rows on the stated scale (an odds ratio for a binary outcome)."""
        records = []
        for r in self.result.rows:
            records.append({
                "method": r.method, "model": r.model, "k": r.k, self.short: self.stated(r.estimate),
                "lower": self.stated(r.lower), "upper": self.stated(r.upper), "interval": r.interval,
                "tau2": r.tau2, "p_value": r.p_value, "note": r.note,
            })
        return pd.DataFrame(records)

    def to_dict(self) -> dict:
        het = self.result.heterogeneity
        return {
            "analysis": self.analysis,
            "measure": self.measure,
            "stated_scale": "exp(model scale)" if self.log_scale else "model scale",
            "level": self.level,
            "rows": self.to_frame().to_dict(orient="records"),
            "rows_model_scale": [asdict(r) for r in self.result.rows],
            "heterogeneity": None if het is None else asdict(het),
            "small_study_tests": [asdict(t) for t in self.result.asymmetry],
            "studies": self.studies.to_dict(orient="records"),
            "bayesian": self.bayesian,
            "notes": list(self.notes + self.result.notes),
        }


# -- per-study effects (array layer) ---------------------------------------------------------


def binary_study_effects(deaths_t, n_t, deaths_c, n_c) -> pd.DataFrame:
    """Per-study log odds ratios (cells vs control) and their variances.

    ``CORRECTION`` is added to every cell of a table with a zero cell, and to no
    other table (the correction the report's forest plot shows); a study with no deaths (or
    only deaths) in both arms is marked ``double_zero``: it carries no information on an odds
    ratio and is left out of the odds-ratio rows. The log odds ratio and its Woolf variance
    come from :func:`statsmodels.stats.meta_analysis.effectsize_2proportions` on the corrected
    cells (its own constant correction would add to every table, zero cell or not).
    """
    from statsmodels.stats.meta_analysis import effectsize_2proportions

    a, n1, c, n2 = (np.asarray(x, float) for x in (deaths_t, n_t, deaths_c, n_c))
    _check_counts(a, n1, c, n2)
    double_zero = ((a == 0) & (c == 0)) | ((a == n1) & (c == n2))
    corrected = ~double_zero & ((a == 0) | (a == n1) | (c == 0) | (c == n2))
    add = np.where(corrected, CORRECTION, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_or, variance = effectsize_2proportions(a + add, n1 + 2 * add, c + add, n2 + 2 * add,
                                                   statistic="odds-ratio")
    log_or = np.where(double_zero, np.nan, log_or)
    variance = np.where(double_zero, np.nan, variance)
    return pd.DataFrame({"log_or": log_or, "variance": variance, "corrected": corrected, "double_zero": double_zero})


def _check_counts(a, n1, c, n2) -> None:
    if not (a.shape == n1.shape == c.shape == n2.shape) or a.ndim != 1:
        raise InputError("deaths and group sizes: four arrays of the same length expected")
    for name, x in (("deaths_t", a), ("n_t", n1), ("deaths_c", c), ("n_c", n2)):
        if not np.all(np.isfinite(x)) or np.any(x < 0) or np.any(x != np.round(x)):
            raise InputError(f"{name}: counts must be whole numbers >= 0")
    if np.any(a > n1) or np.any(c > n2) or np.any(n1 == 0) or np.any(n2 == 0):
        raise InputError("each arm needs n >= 1 and deaths <= n")


# -- pooled rows (array layer) ---------------------------------------------------------------


def mantel_haenszel(deaths_t, n_t, deaths_c, n_c, *, level: float = DEFAULT_LEVEL) -> PooledRow:
    """Fixed-effect Mantel–Haenszel log odds ratio, Robins–Breslow–Greenland variance
    (statsmodels' :class:`~statsmodels.stats.contingency_tables.StratifiedTable`; no
    continuity correction: MH needs none)."""
    from statsmodels.stats.contingency_tables import StratifiedTable

    a, n1, c, n2 = (np.asarray(x, float) for x in (deaths_t, n_t, deaths_c, n_c))
    tables = np.array([[a, n1 - a], [c, n2 - c]])
    k = len(a)
    ad = np.sum(a * (n2 - c) / (n1 + n2))
    bc = np.sum((n1 - a) * c / (n1 + n2))
    if ad == 0 or bc == 0:
        return PooledRow("Mantel-Haenszel", "fixed", np.nan, np.nan, np.nan, np.nan, "Robins-Breslow-Greenland",
                         0.0, np.nan, k, "not estimable: no deaths on one side of every table's odds ratio")
    table = StratifiedTable(tables)
    est, se = float(table.logodds_pooled), float(table.logodds_pooled_se)
    lower, upper = (float(x) for x in table.logodds_pooled_confint(alpha=1 - level))
    return PooledRow("Mantel-Haenszel", "fixed", est, se, lower, upper, "Robins-Breslow-Greenland", 0.0,
                     _z_p(est / se), k)


def peto(deaths_t, n_t, deaths_c, n_c, *, level: float = DEFAULT_LEVEL) -> PooledRow:
    """Peto's one-step log odds ratio: Σ(O − E) / ΣV, SE 1/√ΣV (Yusuf et al. 1985).

    O is the cell arm's deaths, E its expectation under no effect given the table's margins,
    V the hypergeometric variance. No continuity correction is needed; a double-zero table
    has V = 0 and contributes nothing.
    """
    a, n1, c, n2 = (np.asarray(x, float) for x in (deaths_t, n_t, deaths_c, n_c))
    n, deaths = n1 + n2, a + c
    expected = n1 * deaths / n
    variance = n1 * n2 * deaths * (n - deaths) / (n * n * (n - 1))
    total_v = float(variance.sum())
    k = len(a)
    if total_v <= 0:
        return PooledRow("Peto", "fixed", np.nan, np.nan, np.nan, np.nan, "Wald z", 0.0, np.nan, k,
                         "not estimable: no table has deaths and survivors")
    est = float((a - expected).sum()) / total_v
    se = 1 / math.sqrt(total_v)
    z = stats.norm.isf((1 - level) / 2)
    return PooledRow("Peto", "fixed", est, se, est - z * se, est + z * se, "Wald z", 0.0, _z_p(est / se), k)


def inverse_variance_rows(estimate, variance, *, level: float = DEFAULT_LEVEL) -> tuple[list[PooledRow], Heterogeneity | None, tuple[str, ...]]:
    """Inverse-variance fixed effect; random effects by REML (HKSJ and Wald intervals),
    DerSimonian–Laird and Paule–Mandel; the REML prediction interval; heterogeneity."""
    from statsmodels.stats.meta_analysis import combine_effects

    y, v = np.asarray(estimate, float), np.asarray(variance, float)
    if y.shape != v.shape or y.ndim != 1 or not len(y):
        raise InputError("estimates and variances: two non-empty arrays of the same length expected")
    if not (np.all(np.isfinite(y)) and np.all(np.isfinite(v)) and np.all(v > 0)):
        raise InputError("estimates must be finite and variances finite and > 0")
    if not 0 < level < 1:
        raise InputError(f"level must be in (0, 1), got {level}")
    k = len(y)
    z = stats.norm.isf((1 - level) / 2)
    alpha = 1 - level
    notes: list[str] = []
    w = 1 / v
    fe = float(np.sum(w * y) / np.sum(w))
    fe_se = float(1 / math.sqrt(np.sum(w)))
    rows = [PooledRow("Inverse variance", "fixed", fe, fe_se, fe - z * fe_se, fe + z * fe_se, "Wald z", 0.0,
                      _z_p(fe / fe_se), k)]
    if k < 2:
        notes.append("one study: no random-effects model, heterogeneity or prediction interval")
        return rows, None, tuple(notes)

    reml, reml_hksj = _reml(y, v, alpha)
    rows.append(reml_hksj)
    rows.append(reml)
    for method, label in (("chi2", "DerSimonian-Laird"), ("iterated", "Paule-Mandel")):
        with np.errstate(invalid="ignore"):  # its HKSJ variance at a negative moment τ² (not used here)
            combined = combine_effects(y, v, method_re=method, alpha=alpha)
        tau2 = float(combined.tau2)
        note = ""
        if tau2 < 0:  # statsmodels leaves the moment estimate untruncated; τ² >= 0 by definition
            tau2, note = 0.0, "τ² estimate below 0 set to 0 (random effects = fixed effect)"
        if method == "iterated" and not _paule_mandel_solved(y, v, tau2):
            note = "Paule-Mandel iteration did not reach its estimating equation"
        wr = 1 / (v + tau2)
        mean = float(np.sum(wr * y) / np.sum(wr))
        se = float(1 / math.sqrt(np.sum(wr)))
        rows.append(PooledRow(label, "random", mean, se, mean - z * se, mean + z * se, "Wald z", tau2,
                              _z_p(mean / se), k, note))
    rows.append(_prediction(reml, level))
    return rows, _heterogeneity(y, v, reml.tau2, alpha), tuple(notes)


def _reml(y, v, alpha) -> tuple[PooledRow, PooledRow]:
    """REML τ² and the pooled effect with the Wald and the Knapp–Hartung (HKSJ) intervals (PyMARE)."""
    from pymare.estimators import VarianceBasedLikelihoodEstimator

    k = len(y)
    X = np.ones((k, 1))
    out = {}
    for correction in ("wald", "knapp-hartung"):
        fitted = VarianceBasedLikelihoodEstimator(method="REML", small_sample_correction=correction)
        summary = fitted.fit(y=y[:, None], v=v[:, None], X=X).summary()
        fe = summary.get_fe_stats(alpha=alpha)
        out[correction] = (float(fe["est"].ravel()[0]), float(fe["se"].ravel()[0]), float(fe["ci_l"].ravel()[0]),
                           float(fe["ci_u"].ravel()[0]), float(fe["p"].ravel()[0]), float(np.ravel(summary.tau2)[0]))
    est, se, lo, hi, p, tau2 = out["wald"]
    wald = PooledRow("REML", "random", est, se, lo, hi, "Wald z", tau2, p, k)
    est, se, lo, hi, p, tau2 = out["knapp-hartung"]
    hksj = PooledRow("REML (HKSJ)", "random", est, se, lo, hi, "HKSJ t(k-1)", tau2, p, k,
                     "Hartung-Knapp-Sidik-Jonkman: SE scaled by the weighted residual variance, t with k-1 df")
    return wald, hksj


def _prediction(reml: PooledRow, level: float) -> PooledRow:
    """Higgins, Thompson & Spiegelhalter (2009): μ ± t_{k−2} √(τ² + SE(μ)²)."""
    k = reml.k
    if k < 3:
        return PooledRow("Prediction interval (REML)", "prediction", reml.estimate, np.nan, np.nan, np.nan,
                         "prediction t(k-2)", reml.tau2, np.nan, k, "needs at least 3 studies (t with k-2 df)")
    half = stats.t.isf((1 - level) / 2, k - 2) * math.sqrt(reml.tau2 + reml.se**2)
    return PooledRow("Prediction interval (REML)", "prediction", reml.estimate, math.sqrt(reml.tau2 + reml.se**2),
                     reml.estimate - half, reml.estimate + half, "prediction t(k-2)", reml.tau2, np.nan, k,
                     "the effect in a new study like these (Higgins 2009)")


def _paule_mandel_solved(y, v, tau2: float, rtol: float = 1e-3) -> bool:
    """Whether τ² solves the Paule–Mandel equation Q(τ²) = k − 1 (or is 0 with Q(0) < k − 1)."""
    w = 1 / (v + tau2)
    mu = np.sum(w * y) / np.sum(w)
    q = float(np.sum(w * (y - mu) ** 2))
    return (tau2 == 0 and q <= len(y) - 1) or abs(q - (len(y) - 1)) <= rtol * (len(y) - 1)


def _heterogeneity(y, v, tau2_reml: float, alpha: float) -> Heterogeneity:
    from pymare.stats import q_profile

    k = len(y)
    w = 1 / v
    mu = np.sum(w * y) / np.sum(w)
    q = float(np.sum(w * (y - mu) ** 2))
    df = k - 1
    # Higgins & Thompson's typical within-study variance
    s2 = float(df * np.sum(w) / (np.sum(w) ** 2 - np.sum(w**2)))
    bounds = q_profile(y, v, np.ones((k, 1)), alpha=alpha)
    lo, hi = float(np.ravel(bounds["ci_l"])[0]), float(np.ravel(bounds["ci_u"])[0])

    def i2_of(tau2: float) -> float:
        return 100 * tau2 / (tau2 + s2) if np.isfinite(tau2) else np.nan

    return Heterogeneity(
        q=q, df=df, p_value=float(stats.chi2.sf(q, df)), i2=max(0.0, 100 * (q - df) / q) if q > 0 else 0.0,
        i2_reml=i2_of(tau2_reml), i2_lower=i2_of(lo), i2_upper=i2_of(hi), h=math.sqrt(q / df),
        tau2_lower=lo, tau2_upper=hi, typical_variance=s2,
    )


def _z_p(z: float) -> float:
    return float(2 * stats.norm.sf(abs(z)))


# -- small-study effects ---------------------------------------------------------------------


def weighted_regression_test(effect, predictor, weights, *, name: str, predictor_name: str, weights_name: str,
                             note: str = "") -> AsymmetryTest:
    """Weighted least squares of ``effect`` on ``predictor`` with a multiplicative dispersion
    (the residual variance is estimated); t test of the slope with k − 2 degrees of freedom.

    metafor's ``regtest(model="lm", predictor=...)`` is this regression.
    """
    y, x, w = (np.asarray(a, float) for a in (effect, predictor, weights))
    k = len(y)
    if k < 3:
        raise InputError(f"{name}: needs at least 3 studies, got {k}")
    small = (f"only {k} studies: Sterne et al. (2011) advise these tests only with at least "
             f"{MIN_STUDIES_ASYMMETRY}; with fewer they have little power, and a non-significant result "
             "does not show the absence of small-study effects") if k < MIN_STUDIES_ASYMMETRY else ""
    if np.ptp(x) == 0:  # every study the same size or SE: the regression has no slope to test
        return AsymmetryTest(name, predictor_name, weights_name, k, np.nan, np.nan, np.nan, np.nan, np.nan, k - 2,
                             np.nan, "slope", "; ".join(n for n in (note, f"the {predictor_name} is the same in every "
                                                                        "study: no test", small) if n))
    X = np.column_stack([np.ones(k), x])
    sw = np.sqrt(w)
    coef, *_ = np.linalg.lstsq(X * sw[:, None], y * sw, rcond=None)
    resid = y - X @ coef
    dispersion = float(np.sum(w * resid**2) / (k - 2))
    cov = dispersion * np.linalg.inv(X.T @ (w[:, None] * X))
    se = np.sqrt(np.diag(cov))
    t = float(coef[1] / se[1])
    return AsymmetryTest(name, predictor_name, weights_name, k, float(coef[0]), float(se[0]), float(coef[1]),
                         float(se[1]), t, k - 2, float(2 * stats.t.sf(abs(t), k - 2)), "slope",
                         "; ".join(n for n in (note, small) if n))


def asymmetry_notes(tests) -> list[str]:
    """The tests' notes, each said once (a note that another one already contains is left out)."""
    notes = sorted({t.note for t in tests if t.note})
    return [n for n in notes if not any(n != other and n in other for other in notes)]


def egger_test(estimate, se) -> AsymmetryTest:
    """Egger et al. (1997): effect regressed on its SE with weights 1/SE² (the slope here is
    the intercept of Egger's standard-normal-deviate regression, its "bias" coefficient)."""
    se = np.asarray(se, float)
    return weighted_regression_test(estimate, se, 1 / se**2, name="Egger", predictor_name="standard error",
                                    weights_name="1/SE²")


def peters_test(deaths_t, n_t, deaths_c, n_c, log_or) -> AsymmetryTest:
    """Peters et al. (2006, JAMA 295:676): log OR regressed on 1/N (N the study's total size),
    weighted by 1/(1/D + 1/S) with D the study's deaths and S its survivors across both arms
    (the variance of the average event rate, as meta's ``metabias(method="Peters")``)."""
    a, n1, c, n2 = (np.asarray(x, float) for x in (deaths_t, n_t, deaths_c, n_c))
    n = n1 + n2
    deaths, survivors = a + c, n - a - c
    return weighted_regression_test(log_or, 1 / n, 1 / (1 / deaths + 1 / survivors), name="Peters",
                                    predictor_name="1/total sample size", weights_name="1/(1/deaths + 1/survivors)",
                                    note="Peters' test is preferred to Egger's for odds ratios: a log odds ratio "
                                         "and its SE are correlated even without small-study effects")


# -- array-layer entry points ----------------------------------------------------------------


def binary_meta_analysis(deaths_t, n_t, deaths_c, n_c, *, level: float = DEFAULT_LEVEL) -> MetaAnalysis:
    """All rows for arm counts (cells vs control), on the log odds ratio scale.

    Double-zero studies are left out of every odds-ratio row (they carry no information on an
    odds ratio; metafor's ``drop00``).
    """
    a, n1, c, n2 = (np.asarray(x, float) for x in (deaths_t, n_t, deaths_c, n_c))
    effects = binary_study_effects(a, n1, c, n2)
    keep = ~effects["double_zero"].to_numpy()
    notes = []
    if (~keep).any():
        notes.append(f"{int((~keep).sum())} double-zero stud{'y' if (~keep).sum() == 1 else 'ies'} left out "
                     "of the odds-ratio rows (no deaths in either arm: no information on an odds ratio)")
    if effects.loc[keep, "corrected"].any():
        notes.append(f"{CORRECTION:g} added to every cell of {int(effects.loc[keep, 'corrected'].sum())} "
                     "table(s) with a zero cell, for the inverse-variance rows and the small-study tests only "
                     "(Mantel-Haenszel and Peto need no correction)")
    if not keep.any():
        raise InputError("no study with deaths: no odds ratio can be estimated")
    a, n1, c, n2 = a[keep], n1[keep], c[keep], n2[keep]
    y, v = effects.loc[keep, "log_or"].to_numpy(float), effects.loc[keep, "variance"].to_numpy(float)
    rows, het, more = inverse_variance_rows(y, v, level=level)
    rows = [mantel_haenszel(a, n1, c, n2, level=level), peto(a, n1, c, n2, level=level), *rows]
    tests = []
    if len(y) >= 3:
        tests = [peters_test(a, n1, c, n2, y), egger_test(y, np.sqrt(v))]
    else:
        notes.append("fewer than 3 studies: no regression test for small-study effects")
    return MetaAnalysis(tuple(rows), het, tuple(tests), tuple(notes) + more)


def generic_meta_analysis(estimate, se, *, level: float = DEFAULT_LEVEL) -> MetaAnalysis:
    """All rows for per-study estimates with known standard errors (no MH or Peto)."""
    y, s = np.asarray(estimate, float), np.asarray(se, float)
    if s.shape != y.shape or not np.all(np.isfinite(s)) or np.any(s <= 0):
        raise InputError("standard errors must be finite, > 0 and one per estimate")
    rows, het, notes = inverse_variance_rows(y, s**2, level=level)
    tests, more = [], []
    if len(y) >= 3:
        tests = [egger_test(y, s)]
    else:
        more.append("fewer than 3 studies: no regression test for small-study effects")
    return MetaAnalysis(tuple(rows), het, tuple(tests), notes + tuple(more))


# -- API layer -------------------------------------------------------------------------------


def study_effects(result) -> pd.DataFrame:
    """Per study of a fitted result's evidence: what enters the frequentist rows, and why not.

    Binary outcomes: the arm counts of studies whose every arm is an exact count (several
    cell arms are added together against the control, as Cochrane's handbook does for a
    multi-arm trial); the log odds ratio and its SE, with ``corrected`` where
    :data:`CORRECTION` was added. Studies reported only as a bound or a total across
    arms, double-zero studies and non-randomised studies are listed with the reason they are
    not in the rows. Continuous outcomes: each study's contrast (as reported, or arm minus
    control) and its SE.
    """
    evidence = result.evidence
    labels = evidence.inclusion.set_index("study_id")["label"] if "label" in evidence.inclusion else pd.Series(dtype=str)
    allocations = dict(zip(evidence.studies, (evidence.allocation_of(i) if hasattr(evidence, "allocation_of")
                                              else "randomised" for i in range(len(evidence.studies)))))
    if hasattr(evidence, "exact"):
        frame = _binary_rows(evidence)
    else:
        frame = _contrast_rows(evidence)
    frame.insert(1, "label", [labels.get(s, s) for s in frame["study_id"]])
    for i, sid in enumerate(frame["study_id"]):
        allocation = allocations.get(sid, "randomised")
        if frame.loc[i, "in_rows"] and allocation != "randomised":
            frame.loc[i, "in_rows"] = False
            frame.loc[i, "reason"] = (f"non-randomised ({allocation.replace('_', ' ')}): the classic rows pool "
                                      "randomised trials only (the Bayesian fit adjusts it for design bias)")
    return frame


def _binary_rows(evidence) -> pd.DataFrame:
    arms = evidence.arms.reset_index(drop=True)
    exact = {int(r.arm_index): (int(r.deaths), int(r.n)) for r in evidence.exact.itertuples()}
    partial = {}
    for report in evidence.partial:
        partial.setdefault(report.study_id, []).append(report)
    rows = []
    for sid in evidence.studies:
        own = arms[arms["study_id"] == sid]
        row = {"study_id": sid, "deaths_cells": np.nan, "n_cells": np.nan, "deaths_control": np.nan,
               "n_control": np.nan, "log_or": np.nan, "se": np.nan, "corrected": False, "in_rows": False,
               "reason": ""}
        if sid in partial:
            kinds = sorted({r.kind for r in partial[sid]})
            row["reason"] = ("deaths reported only as " + " and ".join(
                {"bounded": "a bound", "total": "a total across arms"}[k] for k in kinds)
                + ": no 2x2 table (the Bayesian model uses the report as it is)")
            rows.append(row)
            continue
        cells = [exact[i] for i in own.index[own["treated"] == 1] if i in exact]
        control = [exact[i] for i in own.index[own["treated"] == 0] if i in exact]
        if not cells or not control:
            row["reason"] = "no control arm with an exact count"
            rows.append(row)
            continue
        a, n1 = sum(d for d, _ in cells), sum(n for _, n in cells)
        c, n2 = sum(d for d, _ in control), sum(n for _, n in control)
        row.update(deaths_cells=a, n_cells=n1, deaths_control=c, n_control=n2)
        effect = binary_study_effects([a], [n1], [c], [n2]).iloc[0]
        if effect["double_zero"]:
            row["reason"] = "double zero (no deaths in either arm): no information on an odds ratio"
        else:
            row.update(log_or=effect["log_or"], se=math.sqrt(effect["variance"]), corrected=bool(effect["corrected"]),
                       in_rows=True)
            if len(cells) > 1:
                row["reason"] = f"{len(cells)} cell arms added together against the control"
        rows.append(row)
    return pd.DataFrame(rows)


def _contrast_rows(evidence) -> pd.DataFrame:
    from ..evidence.derivations import difference_of_independent
    from ..evidence.oxygenation import sd_missing_mask

    terms = evidence.terms
    rows = []
    for sid in evidence.studies:
        own = terms[terms["study_id"] == sid]
        row = {"study_id": sid, "estimate": np.nan, "se": np.nan, "in_rows": False, "reason": ""}
        if "sd_missing" in own and sd_missing_mask(own).any():
            row["reason"] = "SD not reported: no known SE (the Bayesian model borrows the SD from other trials)"
        elif (own["kind"] == "contrast").any():
            t = own[own["kind"] == "contrast"].iloc[0]
            row.update(estimate=float(t["estimate"]), se=float(t["se"]), in_rows=True)
        else:
            treated = own[(own["kind"] == "arm") & (own["treated"] == 1)]
            control = own[(own["kind"] == "arm") & (own["treated"] == 0)]
            if len(treated) == 1 and len(control) == 1:
                diff, diff_se = difference_of_independent(treated["estimate"].iloc[0], treated["se"].iloc[0],
                                                          control["estimate"].iloc[0], control["se"].iloc[0])
                row.update(estimate=float(diff.value), se=float(diff_se.value), in_rows=True,
                           reason="cell arm minus control arm (changes from baseline)")
            else:
                row["reason"] = "no per-study contrast (no control arm, or several cell arms)"
        if row["in_rows"] and bool(own.get("se_is_bound", pd.Series(False)).any()):
            row["reason"] = "; ".join(r for r in (row["reason"], "SE is a bound (used as the SE)") if r)
        rows.append(row)
    return pd.DataFrame(rows)


def frequentist_summary(result, *, level: float | None = None) -> FrequentistSummary:
    """The frequentist rows of a fitted analysis beside its Bayesian answer.

    ``level``: the confidence level (default: the spec's ``decision.ci_prob``, the level of
    the Bayesian interval shown beside it).
    """
    measure = result.outcome.measure
    decisions = result.decisions
    level = float(result.spec.decision.ci_prob if level is None else level)
    if not 0 < level < 1:
        raise InputError(f"frequentist_summary(level=...): expected a level in (0, 1), got {level}")
    studies = study_effects(result)
    used = studies[studies["in_rows"]]
    if used.empty:
        raise InputError(f"{result.spec.name}: no study can enter a classic meta-analysis "
                         f"({'; '.join(sorted(set(studies['reason'])))})")
    binary = "log_or" in studies
    if binary:
        analysis = binary_meta_analysis(used["deaths_cells"], used["n_cells"], used["deaths_control"],
                                        used["n_control"], level=level)
    else:
        analysis = generic_meta_analysis(used["estimate"], used["se"], level=level)
    sign = "<" if decisions.benefit_direction == "decrease" else ">"
    pooled = decisions.pooled_effect
    bayesian = {
        "median": pooled.median, "lower": pooled.lower, "upper": pooled.upper, "ci_prob": pooled.ci_prob,
        "interval": "equal-tailed credible interval",
        "prob_benefit": decisions.prob_benefit.prob, "prob_benefit_mcse": decisions.prob_benefit.mcse,
        "event": f"P({measure.short} {sign} {decisions.benefit_threshold:g})",
    }
    notes = []
    left_out = studies[~studies["in_rows"]]
    if len(left_out):
        notes.append(f"{len(left_out)} of {len(studies)} studies of the Bayesian fit are not in the frequentist "
                     "rows (see the studies table for why)")
    if result.spec.model.dose_response != "none":
        notes.append("the Bayesian fit models dose-response; the classic rows pool one effect per study")
    return FrequentistSummary(
        analysis=result.spec.name, measure=measure.name, short=measure.short, log_scale=measure.log_scale,
        digits=measure.digits, level=level, studies=studies, result=analysis, bayesian=bayesian, notes=tuple(notes),
    )


# -- text ------------------------------------------------------------------------------------


def render_frequentist(summary: FrequentistSummary) -> str:
    """The rows as a fixed-width table, beside the Bayesian answer (what the CLI prints)."""
    d, pct = summary.digits, round(100 * summary.level)
    b = summary.bayesian
    lines = [f"{summary.analysis}: classic frequentist rows ({summary.measure}, {pct}% intervals)", ""]
    width = max(8, len(summary.short))
    lines.append(f"  {'method':<28} {'k':>3} {summary.short:>{width}} {'lower':>8} {'upper':>8}  {'tau2':>7} {'p':>8}  "
                 "interval")
    for r in summary.to_frame().to_dict(orient="records"):
        lines.append(f"  {r['method']:<28} {r['k']:>3} {_f(r[summary.short], d):>{width}} {_f(r['lower'], d):>8} "
                     f"{_f(r['upper'], d):>8}  {_f(r['tau2'], '.4f'):>7} {p_text(r['p_value']):>8}  {r['interval']}")
    het = summary.result.heterogeneity
    if het is not None:
        lines += ["", f"  heterogeneity: Q = {het.q:.2f} (df {het.df}, p {p_text(het.p_value)}); "
                      f"I² = {het.i2:.1f}% (Higgins-Thompson, from Q); H = {het.h:.2f}",
                  f"  I² from the REML τ² = {het.i2_reml:.1f}% ({pct}% CI {het.i2_lower:.1f}% to {het.i2_upper:.1f}%, "
                  f"Q-profile); τ² {pct}% CI {het.tau2_lower:.4f} to {het.tau2_upper:.4f}"]
    for t in summary.result.asymmetry:
        lines.append(f"  {t.name}{"'" if t.name.endswith("s") else "'s"} test ({t.predictor}; weights {t.weights}): slope {t.slope:.3f} (SE {t.slope_se:.3f}), "
                     f"intercept {t.intercept:.3f} (SE {t.intercept_se:.3f}), t = {t.t:.2f} on {t.df} df, p {p_text(t.p_value)}")
    lines += ["", f"  Bayesian: pooled {summary.short} {_f(b['median'], d)} ({round(100 * b['ci_prob'])}% equal-tailed "
                  f"{_f(b['lower'], d)} to {_f(b['upper'], d)}); {b['event']} = {b['prob_benefit']:.3f}"]
    notes = list(summary.notes + summary.result.notes)
    notes += asymmetry_notes(summary.result.asymmetry)
    if notes:
        lines += [""] + [f"  note: {n}" for n in notes]
    studies = summary.studies
    lines += ["", "  studies:"]
    for r in studies.to_dict(orient="records"):
        if "log_or" in r:
            counts = ("" if pd.isna(r["n_cells"]) else
                      f"cells {int(r['deaths_cells'])}/{int(r['n_cells'])} vs control {int(r['deaths_control'])}/{int(r['n_control'])}")
            effect = "" if pd.isna(r["log_or"]) else f"log OR {r['log_or']:+.3f} (SE {r['se']:.3f}){' [+0.5]' if r['corrected'] else ''}"
        else:
            counts, effect = "", "" if pd.isna(r["estimate"]) else f"{r['estimate']:+.3f} (SE {r['se']:.3f})"
        mark = "+" if r["in_rows"] else "-"
        shown = "; ".join(x for x in (counts, effect) if x)
        lines.append(f"  {mark} {r['label']}: " + "; ".join(x for x in (shown, r["reason"]) if x))
    return "\n".join(lines)


def _f(value: float, spec: str) -> str:
    return "–" if value is None or not np.isfinite(value) else format(value, spec)


def p_text(p: float) -> str:
    """A p value as printed: four decimals, "< 0.0001" below that, an en dash when undefined."""
    if p is None or not np.isfinite(p):
        return "–"
    return "< 0.0001" if p < 1e-4 else f"{p:.4f}"

"""The intervals the forest plots draw are the 95% intervals they are labelled as.

Widths come from constants computed here, independently of the report code: the normal
quantile ``scipy.stats.norm.ppf(0.975)`` for a reported estimate +- z SE, and numpy's 2.5% and
97.5% quantiles of the posterior draws for the model's intervals. What is *drawn* is recorded
by wrapping the line-drawing helper, so a plot that draws other numbers than its rows fails too.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

Z = stats.norm.ppf(0.975)  # 1.95996...


def eti95(draws) -> np.ndarray:
    return np.quantile(np.asarray(draws, float).ravel(), [0.025, 0.975])


@pytest.fixture
def drawn(monkeypatch):
    """Every interval line the report figures draw: (lower, upper, colour)."""
    from bayes_msc.report import figures

    lines = []
    original = figures._clipped_line

    def record(ax, lower, upper, y, lo, hi, color, style, width):
        lines.append((float(lower), float(upper), color))
        return original(ax, lower, upper, y, lo, hi, color, style, width)

    monkeypatch.setattr(figures, "_clipped_line", record)
    return lines


def contains_interval(lines, lower, upper, color, rel=1e-9) -> bool:
    return any(c == color and math.isclose(a, lower, rel_tol=rel, abs_tol=1e-9)
               and math.isclose(b, upper, rel_tol=rel, abs_tol=1e-9) for a, b, c in lines)


# -- oxygenation ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def oxygenation_context(hostile_oxygenation):
    from bayes_msc.report.sections import ReportContext

    result, register = hostile_oxygenation
    return ReportContext(result=result, register=register)


def test_oxygenation_forest_rows_are_95_percent_intervals(oxygenation_context):
    from bayes_msc.report.oxygenation import forest_rows

    ctx = oxygenation_context
    rows = forest_rows(ctx)
    terms = rows[rows["kind"] == "term"].reset_index(drop=True)
    reported = ctx.result.evidence.terms.reset_index(drop=True)
    np.testing.assert_allclose(terms["upper"] - terms["est"], Z * reported["se"], rtol=1e-12)
    np.testing.assert_allclose(terms["est"] - terms["lower"], Z * reported["se"], rtol=1e-12)
    post = ctx.result.posterior
    for kind, var in (("natural", "natural_course"), ("effect", "study_effect")):
        part = rows[rows["kind"] == kind].set_index("study_id")
        for sid in ctx.result.evidence.studies:
            lower, upper = eti95(post[var].sel(study=sid))
            assert (part.loc[sid, "lower"], part.loc[sid, "upper"]) == pytest.approx((lower, upper), rel=1e-12)


def test_oxygenation_forest_plot_draws_the_95_percent_intervals(oxygenation_context, drawn):
    from bayes_msc.report import figures
    from bayes_msc.report.oxygenation import NATURAL, forest_rows, forest_section

    ctx = oxygenation_context
    html = forest_section(ctx)
    post = ctx.result.posterior
    rows = forest_rows(ctx)
    colour = {"term": figures.OBSERVED, "natural": NATURAL, "effect": figures.SHRUNK}
    for row in rows[rows["kind"] != "header"].itertuples():
        assert contains_interval(drawn, row.lower, row.upper, colour[row.kind]), row
    reported = ctx.result.evidence.terms
    for t in reported.itertuples():  # each term: estimate +- z SE, from the evidence itself
        assert contains_interval(drawn, t.estimate - Z * t.se, t.estimate + Z * t.se, figures.OBSERVED), t
    lower, upper = eti95(post["mu_new"])
    assert contains_interval(drawn, lower, upper, figures.PREDICTIVE)
    # the caption, legend and data table say 95%, and the text alternative states the same numbers
    from bayes_msc.report.oxygenation import mm

    low, med, up = np.quantile(post["mu"].values.ravel(), [0.025, 0.5, 0.975])
    assert f"Pooled difference {mm(med)} ({mm(low)} to {mm(up)}) mmHg" in html
    assert "95% prediction interval" in html and "90%" not in html


# -- mortality -------------------------------------------------------------------------------------


def hand_log_or(result):
    """Observed log OR and Wald SE per study with one exact cell-arm and one exact control-arm
    count and no zero cell: log(a d / (b c)), sqrt(1/a + 1/b + 1/c + 1/d)."""
    ev = result.evidence
    exact = ev.exact.merge(ev.arms[["study_id", "arm_id", "treated"]], on=["study_id", "arm_id"])
    out = {}
    for sid, part in exact.groupby("study_id"):
        partial = {r.study_id for r in ev.partial}
        if sid in partial or sorted(part["treated"]) != [0, 1] or len(ev.arms[ev.arms.study_id == sid]) != 2:
            continue
        t = part[part.treated == 1].iloc[0]
        c = part[part.treated == 0].iloc[0]
        a, b, cc, d = t.deaths, t.n - t.deaths, c.deaths, c.n - c.deaths
        if min(a, b, cc, d) > 0:
            out[sid] = (math.log(a * d / (b * cc)), math.sqrt(1 / a + 1 / b + 1 / cc + 1 / d))
    return out


def test_mortality_forest_plot_draws_the_95_percent_intervals(small_mortality_fit, drawn):
    from bayes_msc.report import figures
    from bayes_msc.report.mortality import forest_rows, forest_section
    from bayes_msc.report.sections import ReportContext

    result = small_mortality_fit
    forest_section(ReportContext(result=result, register=None))
    post = result.posterior
    rows = forest_rows(result).set_index("study_id")
    observed = hand_log_or(result)
    assert len(observed) >= 2, "the register should have trials with no zero cell"
    for sid, (est, se) in observed.items():
        assert (rows.loc[sid, "obs_lower"], rows.loc[sid, "obs_upper"]) == pytest.approx((est - Z * se, est + Z * se), rel=1e-12)
        assert contains_interval(drawn, est - Z * se, est + Z * se, figures.OBSERVED), sid
    for sid in result.evidence.studies:
        lower, upper = eti95(post["study_log_or"].sel(study=sid))
        assert contains_interval(drawn, lower, upper, figures.SHRUNK), sid
    lower, upper = eti95(post["log_or_new"])
    assert contains_interval(drawn, lower, upper, figures.PREDICTIVE)

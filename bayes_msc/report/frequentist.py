"""The report's frequentist section and its contour-enhanced funnel plot.

:func:`frequentist_section` is a :class:`~bayes_msc.report.sections.Section` builder like the
others: the classic rows (:mod:`bayes_msc.analyses.frequentist`) on the outcome's stated scale,
heterogeneity, the small-study-effect tests and the funnel plot, with the Bayesian answer
beside them. :func:`funnel_figure` returns the matplotlib figure for a notebook or a paper.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from ..io.errors import InputError
from .figures import INK, MUTED, POOLED, SHRUNK, mpl_text, to_svg
from .html import Markup, el, figure, fmt, para, table
from .sections import ReportContext, Section

# Contours of the two-sided p value of each study's own Wald test of "no effect"
# (Peters et al. 2008, J Clin Epidemiol 61:991): darker = smaller p.
CONTOURS = ((0.10, "#e9edf3"), (0.05, "#cbd3df"), (0.01, "#9aa6b8"))
SORTS = (None, "se", "effect")


def funnel_rows(summary, sort: str | None = None) -> pd.DataFrame:
    """The studies in the frequentist rows: ``label, effect, se`` on the model's scale.

    ``sort``: None (the evidence's order), "se" (most precise first) or "effect" (smallest first).
    """
    if sort not in SORTS:
        raise InputError(f"funnel sort: expected one of None, 'se', 'effect'; got {sort!r}")
    studies = summary.studies[summary.studies["in_rows"]]
    effect = studies["log_or"] if "log_or" in studies else studies["estimate"]
    rows = pd.DataFrame({"label": studies["label"].to_numpy(), "effect": effect.to_numpy(float),
                         "se": studies["se"].to_numpy(float)})
    if sort is not None:
        rows = rows.sort_values(sort, kind="stable").reset_index(drop=True)
    return rows


MIN_FUNNEL_STUDIES = 3  # fewer points show no shape: the plot would suggest what it cannot show


def funnel_figure(result, *, sort: str | None = None, summary=None):
    """Contour-enhanced funnel plot of a fitted result: each study's effect (log OR for a
    binary outcome) against its SE (inverted axis, most precise at the top), shaded where a
    study's own test of no effect has p < 0.10, 0.05, 0.01, with the pooled REML estimate and
    the Bayesian posterior median as vertical lines.

    Returns a :class:`matplotlib.figure.Figure` (no pyplot state). ``summary``: a
    :class:`~bayes_msc.analyses.frequentist.FrequentistSummary` already computed for ``result``.
    """
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch
    from matplotlib.lines import Line2D

    from ..analyses.frequentist import frequentist_summary

    summary = summary or frequentist_summary(result)
    rows = funnel_rows(summary, sort)
    if len(rows) < MIN_FUNNEL_STUDIES:
        raise InputError(f"a funnel plot needs at least {MIN_FUNNEL_STUDIES} studies with a classic estimate; "
                         f"this analysis has {len(rows)}")
    log_scale = summary.log_scale
    bayes_median = math.log(summary.bayesian["median"]) if log_scale else summary.bayesian["median"]
    reml = summary.result.row("REML").estimate

    se_max = max(float(rows["se"].max()) * 1.1, 1e-9)
    spread = max(float(np.abs(rows["effect"]).max()), abs(reml), abs(bayes_median))
    half = max(spread * 1.15, stats.norm.isf(0.025) * se_max * 1.15)
    se_grid = np.linspace(0, se_max, 200)

    fig = Figure(figsize=(6.0, 4.2), layout="constrained")
    ax = fig.add_subplot()
    ax.set_facecolor("white")
    for p, colour in CONTOURS:  # widest band first; each smaller p paints its own band over it
        z = stats.norm.isf(p / 2)
        ax.fill_betweenx(se_grid, z * se_grid, half, color=colour, linewidth=0)
        ax.fill_betweenx(se_grid, -half, -z * se_grid, color=colour, linewidth=0)
    ax.axvline(0.0, color=MUTED, linewidth=0.8)
    ax.axvline(reml, color=POOLED, linewidth=1.4, label="pooled, REML")
    ax.axvline(bayes_median, color=SHRUNK, linewidth=1.4, linestyle="--", label="pooled, Bayesian median")
    ax.scatter(rows["effect"], rows["se"], s=28, color=INK, zorder=3, label="study")
    ax.set_xlim(-half, half)
    ax.set_ylim(se_max, 0)
    ax.set_ylabel("standard error")
    if log_scale:
        ticks = [t for t in (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100) if abs(math.log(t)) <= half]
        ax.set_xticks([math.log(t) for t in ticks], [f"{t:g}" for t in ticks])
        ax.set_xlabel(mpl_text(f"{summary.measure} (log scale)"))
    else:
        ax.set_xlabel(mpl_text(summary.measure))
    legend = [Patch(color=c, label=f"study p < {p:g}") for p, c in CONTOURS]
    legend += [Line2D([], [], color=POOLED, linewidth=1.4, label="pooled, REML"),
               Line2D([], [], color=SHRUNK, linewidth=1.4, linestyle="--", label="pooled, Bayesian median"),
               Line2D([], [], marker="o", color=INK, linestyle="", label="study")]
    ax.legend(handles=legend, loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8, frameon=False)
    for spine in ("top", "right"):
        ax.spines[spine].set_visible(False)
    return fig


# -- the section -----------------------------------------------------------------------------


def frequentist_section(ctx: ReportContext) -> Markup | None:
    """The classic rows beside the Bayesian answer; None when no study can enter them."""
    from ..analyses.frequentist import frequentist_summary, p_text
    from ..io.errors import InputError

    try:
        summary = frequentist_summary(ctx.result)
    except InputError:
        return None
    d, pct = summary.digits, round(100 * summary.level)
    frame = summary.to_frame()
    rows = [(r["method"], r["model"], str(r["k"]), fmt(r[summary.short], d), f"{fmt(r['lower'], d)} to {fmt(r['upper'], d)}",
             r["interval"], fmt(r["tau2"], ".3f"), p_text(r["p_value"])) for r in frame.to_dict(orient="records")]
    b = summary.bayesian
    rows.append(("Bayesian (this report)", "random", str(len(ctx.result.evidence.studies)), fmt(b["median"], d),
                 f"{fmt(b['lower'], d)} to {fmt(b['upper'], d)}", f"{round(100 * b['ci_prob'])}% equal-tailed credible",
                 "", f"{b['event']} = {b['prob_benefit']:.3f}"))
    binary = "log_or" in summary.studies
    parts = [
        para(f"For comparison, the estimates a classic meta-analysis reports, from the studies whose data allow "
             f"them (the table below the plot says which and why not), on the {summary.measure} scale with {pct}% "
             "intervals. The Bayesian row is this report's answer"
             + ("; it also uses partial reports, and each arm's deaths without a continuity correction." if binary
                else ".")),
        table(["method", "model", "k", summary.short, f"{pct}% interval", "interval", "τ²", "p / P(benefit)"], rows,
              numeric=(2, 3, 6)),
    ]
    het = summary.result.heterogeneity
    if het is not None:
        parts.append(para(
            f"Heterogeneity: Q = {het.q:.2f} on {het.df} df (p {p_text(het.p_value)}); I² = {het.i2:.1f}% "
            f"(Higgins–Thompson, from Q); I² from the REML τ² {het.i2_reml:.1f}% ({pct}% CI {het.i2_lower:.1f}% to "
            f"{het.i2_upper:.1f}%, from the Q-profile interval of τ², {het.tau2_lower:.3f} to {het.tau2_upper:.3f}); "
            f"H = {het.h:.2f}."))
    if summary.result.asymmetry:
        test_rows = [(t.name, t.predictor, t.weights, str(t.k), f"{t.slope:.3f} ({t.slope_se:.3f})",
                      f"{t.intercept:.3f} ({t.intercept_se:.3f})", f"{t.t:.2f} ({t.df} df)", p_text(t.p_value))
                     for t in summary.result.asymmetry]
        parts.append(table(["test", "predictor", "weights", "k", "slope (SE)", "intercept (SE)", "t", "p"], test_rows,
                           caption="Small-study effects: weighted regression tests (the slope carries the test)",
                           numeric=(3, 4, 5, 6, 7)))
        from ..analyses.frequentist import asymmetry_notes

        for note in asymmetry_notes(summary.result.asymmetry):
            parts.append(para(note + "."))
    if len(funnel_rows(summary)) < MIN_FUNNEL_STUDIES:
        parts.append(para(f"No funnel plot: it needs at least {MIN_FUNNEL_STUDIES} studies with a classic estimate."))
    else:
        fig = funnel_figure(ctx.result, summary=summary)
        try:
            svg = to_svg(fig, "funnel")
        finally:
            fig.clear()
        parts.append(figure(
            svg, caption=(f"Contour-enhanced funnel plot: each study's {'log ' if summary.log_scale else ''}"
                          f"{summary.measure} against its standard error; shading where the study's own test of no "
                          "effect has p < 0.10, 0.05, 0.01. Solid line: pooled REML estimate; dashed: Bayesian "
                          "posterior median. Asymmetry can come from publication bias, from small trials differing in "
                          "patients or quality, or from chance."),
            alt=f"Funnel plot of {len(funnel_rows(summary))} studies", fig_id="funnel"))
    study_rows = []
    for r in summary.studies.to_dict(orient="records"):
        if binary:
            data = ("" if pd.isna(r["n_cells"]) else
                    f"{int(r['deaths_cells'])}/{int(r['n_cells'])} vs {int(r['deaths_control'])}/{int(r['n_control'])}")
            effect = "" if pd.isna(r["log_or"]) else f"{fmt(r['log_or'], '+.3f')} ({fmt(r['se'], '.3f')})"
            effect += " (+0.5 per cell)" if r["corrected"] else ""
            study_rows.append((r["label"], "yes" if r["in_rows"] else "no", data, effect, r["reason"]))
        else:
            effect = "" if pd.isna(r["estimate"]) else f"{fmt(r['estimate'], '+.3f')} ({fmt(r['se'], '.3f')})"
            study_rows.append((r["label"], "yes" if r["in_rows"] else "no", effect, r["reason"]))
    columns = (["study", "in the rows", "deaths (cells vs control)", "log OR (SE)", "note"] if binary
               else ["study", "in the rows", "estimate (SE)", "note"])
    parts.append(el("details", el("summary", "Which studies are in these rows, and why not (click to open)"),
                    table(columns, study_rows)))
    for note in summary.notes + summary.result.notes:
        parts.append(para(note + "."))
    return el("div", *parts)


FREQUENTIST_SECTION = Section("frequentist", "For comparison: classic frequentist rows and small-study effects",
                              frequentist_section)


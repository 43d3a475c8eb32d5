"""The cumulative meta-analysis as a figure and as a report section.

:func:`cumulative_figure` draws one forest-like row per accrual step (the pooled effect's
median and 95% equal-tailed interval given the studies published so far) with P(benefit) in a
right-hand column; a row whose fit failed its diagnostics is drawn hollow and labelled, not
left out. :data:`CUMULATIVE_SECTION` shows it in a report whose context carries a
:class:`~bayes_msc.analyses.cumulative.Cumulative` as ``cumulative`` (or use
:func:`cumulative_section` to bind one).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from ..io.errors import InputError, Location
from .figures import INK, MUTED, POOLED, PREDICTIVE, OR_TICKS, _RC, mpl_text, to_svg
from .html import Markup, el, figure, fmt, para, table
from .sections import ReportContext, Section

# Row order of the figure: oldest first (top), as a cumulative forest plot is read, or newest first.
SORTS = ("oldest-first", "newest-first")
FAILED = "#b3261e"


def _table_and_words(result_or_table: Any) -> tuple[pd.DataFrame, dict, str]:
    table = getattr(result_or_table, "table", result_or_table)
    if not isinstance(table, pd.DataFrame):
        raise InputError(f"cumulative_figure: expected a cumulative result or its table, got "
                         f"{type(result_or_table).__name__}", Location("result_or_table"))
    words = getattr(result_or_table, "words", None) or table.attrs.get("words")
    needed = {"step", "year", "studies", "effect_median", "effect_lower", "effect_upper", "prob_benefit",
              "diagnostics_passed"}
    if words is None or not needed <= set(table.columns):
        missing = ", ".join(sorted(needed - set(table.columns))) or "its words (table.attrs['words'])"
        raise InputError(f"cumulative_figure: not a cumulative table (missing {missing})", Location("result_or_table"))
    by = getattr(result_or_table, "by", "year" if (table["step"].astype(str) == table["year"].astype(str)).all()
                 else "study")
    return table, words, by


def cumulative_figure(result_or_table: Any, *, sort: str | None = None):
    """The cumulative meta-analysis as a ``matplotlib.figure.Figure``.

    ``result_or_table``: a :class:`~bayes_msc.analyses.cumulative.Cumulative` or its
    ``table`` (which carries its words in ``table.attrs``). ``sort``: ``"oldest-first"``
    (default: the first publication year at the top) or ``"newest-first"``. A ratio is drawn
    on a log axis labelled in its own units; the null is a grey line, the clinically
    meaningful threshold a dotted one.
    """
    import matplotlib

    table, words, by = _table_and_words(result_or_table)
    if sort is not None and sort not in SORTS:
        raise InputError(f"sort must be one of {', '.join(SORTS)}, got {sort!r}", Location("sort"))
    rows = table.iloc[::-1] if sort == "newest-first" else table
    log = bool(words.get("log_scale"))
    to_axis = (lambda v: np.log(np.asarray(v, float))) if log else (lambda v: np.asarray(v, float))
    lower, upper, median = (to_axis(rows[c]) for c in ("effect_lower", "effect_upper", "effect_median"))
    null, threshold = float(words.get("null", 0.0)), float(words.get("meaningful_threshold", math.nan))
    finite = np.concatenate([lower, upper, to_axis([null])])
    finite = finite[np.isfinite(finite)]
    span = float(finite.max() - finite.min()) if finite.size else 1.0
    lo, hi = float(finite.min()) - 0.05 * span, float(finite.max()) + 0.05 * span

    n = len(rows)
    with matplotlib.rc_context(_RC):
        from matplotlib.figure import Figure

        fig = Figure(figsize=(8.5, 1.3 + 0.42 * n), layout="constrained")
        grid = fig.add_gridspec(1, 2, width_ratios=(4.2, 1.0))
        ax, right = fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1])
        ys = np.arange(n, 0, -1)
        for y, row, l, u, m in zip(ys, rows.itertuples(), lower, upper, median):
            ok = bool(row.diagnostics_passed)
            color = POOLED if ok else FAILED
            ax.plot([max(l, lo), min(u, hi)], [y, y], "-", color=color, lw=1.6, solid_capstyle="butt")
            ax.plot([m], [y], "D", color=color, mfc=color if ok else "white", ms=6, zorder=3)
            right.text(0.5, y, f"{row.prob_benefit:.3f}", ha="center", va="center", color=INK if ok else FAILED)
        ax.axvline(to_axis([null])[0], color=MUTED, lw=0.8, zorder=0)
        if math.isfinite(threshold) and lo <= to_axis([threshold])[0] <= hi:
            ax.axvline(to_axis([threshold])[0], color=PREDICTIVE, lw=0.8, ls=":", zorder=0)
        labels = []
        for row in rows.itertuples():
            head = f"{row.step}" if by == "year" else f"{row.step} ({row.year})"
            label = f"{head}  (k = {int(row.studies)})"
            if not row.diagnostics_passed:
                label += "  diagnostics FAIL"
            labels.append(mpl_text(label))
        ax.set_yticks(ys, labels)
        for tick, row in zip(ax.get_yticklabels(), rows.itertuples()):
            if not row.diagnostics_passed:
                tick.set_color(FAILED)
        ax.set_ylim(0.4, n + 0.6)
        ax.set_xlim(lo, hi)
        if log:
            ticks = [t for t in OR_TICKS if lo <= math.log(t) <= hi]
            ax.set_xticks([math.log(t) for t in ticks], [f"{t:g}" for t in ticks])
        ax.set_xlabel(mpl_text(f"{words['effect']}, median and 95% equal-tailed interval"
                               + (" (log scale)" if log else "")))
        ax.set_title(mpl_text("Studies published in or before the year" if by == "year"
                              else "Studies up to this one, in (year, label) order"), loc="left", fontsize=10)
        right.set_ylim(ax.get_ylim())
        right.set_xlim(0, 1)
        right.set_axis_off()
        right.set_title(mpl_text(words["benefit"]), fontsize=10)
    return fig


def figure_svg(fig) -> str:
    """The figure as a standalone SVG file's text."""
    return '<?xml version="1.0" encoding="utf-8"?>\n' + str(to_svg(fig, "cumulative"))


# -- the report section ----------------------------------------------------------------------------


def cumulative_content(cumulative) -> Markup:
    """The figure, its numbers and the statement of a cumulative result, as HTML."""
    w = cumulative.words
    d = w["digits"]
    svg = to_svg(cumulative_figure(cumulative), "cumulative")
    year_rows = cumulative.by == "year"
    rows = []
    for r in cumulative.table.itertuples():
        step = str(r.step) if year_rows else f"{r.step} ({r.year})"
        rows.append((step, str(int(r.studies)), r.added,
                     f"{fmt(r.effect_median, d)} ({fmt(r.effect_lower, d)} to {fmt(r.effect_upper, d)})",
                     f"{fmt(r.prob_benefit, '.3f')} ({fmt(r.prob_benefit_mcse, '.3f')})", fmt(r.prob_meaningful, ".3f"),
                     fmt(r.tau_median, ".2f"), str(int(r.divergences)), fmt(r.rhat_max, ".3f"),
                     fmt(min(r.ess_bulk_min, r.ess_tail_min), ".0f"),
                     "pass" if r.diagnostics_passed else f"FAIL: {r.diagnostics_failed}"))
    numbers = table(("Year" if year_rows else "Study (year)", "Studies", "Added", f"{w['effect']} (95% ETI)",
                     f"{w['benefit']} (MCSE)", w["meaningful"], "τ", "Divergences", "R-hat", "min ESS", "Diagnostics"),
                    rows, numeric=(1, 3, 4, 5, 6, 7, 8, 9),
                    caption="Each row is a masked refit of the compiled model of the full analysis: the studies not "
                            "yet published carry no data. The last row is the full fit.")
    return Markup(el("div", figure(svg, caption=f"Cumulative meta-analysis by {'publication year' if year_rows else 'study'}:"
                                    f" the {w['effect']} given the studies published so far, and {w['benefit']}.",
                                    alt=f"Cumulative forest plot of the {w['effect']} by "
                                        f"{'year' if year_rows else 'study'}", data=numbers, fig_id="fig-cumulative"),
                        para(cumulative.statement)))


def build_cumulative(ctx: ReportContext) -> Markup | None:
    """The section's content from ``ctx.cumulative`` (None, and the section left out, when the
    report's context carries no cumulative result)."""
    cumulative = getattr(ctx, "cumulative", None)
    return None if cumulative is None else cumulative_content(cumulative)


CUMULATIVE_SECTION = Section("cumulative", "As the trials accrued", build_cumulative)


def cumulative_section(cumulative) -> Section:
    """A section that shows ``cumulative`` whatever the report's context carries."""
    return Section("cumulative", "As the trials accrued", lambda ctx: cumulative_content(cumulative))

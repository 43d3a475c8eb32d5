"""The report's "Who benefits" section: the mortality effect per level of a categorical covariate.

A forest plot grouped by level (each trial's observed odds ratio and the model's estimate, then
the level's diamond), the per-level table of :mod:`bayes_msc.analyses.subgroups`, the
between-level SD's prior against its posterior, and the words that say when it is mostly prior.

:func:`who_benefits` returns a :class:`~bayes_msc.report.sections.Section` for a layout. The
levels come from the fit itself when it has a target population (``--population``); otherwise
from one extra fit of the population model over the levels of ``by`` (default ``ards_cause``).
:func:`covariate_terms` is where the covariate-regression terms (``models/regression.py``) are
shown when the fit has them.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .html import Markup, el, figure, fmt, join, para, table
from .generic import covariate_terms
from .sections import ReportContext, Section

DEFAULT_BY = "ards_cause"


def who_benefits(by: str = DEFAULT_BY, subgroups=None) -> Section:
    """The "Who benefits" section. ``subgroups``: a ready (fit, :class:`Subgroups`) pair, else
    computed when the report is built (from the fit's own populations, or one extra fit)."""
    return Section("who-benefits", "Who benefits", lambda ctx: who_benefits_section(ctx, by, subgroups))


def _fit_and_table(ctx: ReportContext, by: str, given):
    from ..analyses.subgroups import run_subgroups, subgroups_from_result

    if given is not None:
        return given
    if getattr(ctx.spec.model, "population", None) is not None:
        return ctx.result, subgroups_from_result(ctx.result)
    if "likelihood" not in ctx.result.outcome.model_keys:
        return None
    return run_subgroups(ctx.spec, ctx.register, by)


def who_benefits_section(ctx: ReportContext, by: str = DEFAULT_BY, given=None) -> Markup | None:
    from ..io.errors import InputError

    try:
        found = _fit_and_table(ctx, by, given)
    except InputError as problem:  # e.g. one level of `by` among the included trials: said, not a failure
        terms = covariate_terms(ctx)
        return join([para(f"No subgroups by {by}: {problem}"), *([terms] if terms is not None else [])])
    if found is None:
        return covariate_terms(ctx)
    fit, sub = found
    from .mortality import forest_rows

    rows = forest_rows(fit)
    groups = fit.spec.model.population.group_of()
    rows["level"] = [groups.get(s, "") for s in rows["study_id"]]
    from ..models.populations import population_effects

    effects = population_effects(fit.posterior)
    diamonds = {lv.level: np.quantile(effects.sel(population=lv.level).values.ravel(), [0.5, 0.025, 0.975])
                for lv in sub.levels}
    svg = grouped_forest_plot(rows, [lv.level for lv in sub.levels], diamonds,
                              {lv.level: lv.finding for lv in sub.levels})
    pct = round(100 * sub.ci_prob)
    data_rows = []
    for lv in sub.levels:
        data_rows.append((lv.level, lv.n_trials, lv.n_patients,
                          f"{fmt(lv.odds_ratio_median)} ({fmt(lv.odds_ratio_lower)} to {fmt(lv.odds_ratio_upper)})",
                          f"{lv.prob_benefit:.3f}", "" if lv.finding else "one trial: not a subgroup finding"))
    level_table = table(("Level", "Trials", "Patients", f"OR median ({pct}% CrI)", "P(OR < 1)", "Note"), data_rows,
                        numeric=(1, 2, 3, 4), caption=f"Odds ratio of death, cells vs control, by {sub.by} "
                                                       "(levels partially pooled).")
    sd = sub.between_level_sd
    sd_text = (f"Between-level SD of the log odds ratio: median {sd['median']:.2f} ({pct}% CrI {sd['lower']:.2f} to "
               f"{sd['upper']:.2f}) under the prior {sd['prior']}; prior SD {sd['prior_sd']:.2f}, posterior SD "
               f"{sd['posterior_sd']:.2f} (contraction {sd['contraction']:.2f}).")
    limits = ("With this few trials the data say little about how much the levels differ: this SD is mostly its "
              "prior, so each level's odds ratio leans on the others' by an amount the prior sets. Read a level's "
              "interval, not its median; a different prior on this SD (population_sd_0.25, population_sd_1.0) "
              "moves the levels towards or away from one another." if sd["mostly_prior"] else
              "The data inform how much the levels differ (the posterior SD is well below the prior's).")
    caption = (f"Forest plot by {sub.by}. Brown squares: each trial's observed odds ratio (95% Wald interval, 0.5 "
               "added to the cells of a trial with a zero cell, for display only); blue circles: the model's estimate "
               "for the trial; black diamonds: each level's mean odds ratio under the population model "
               f"({pct}% credible interval), hollow when the level rests on one trial (not a subgroup finding).")
    alt = "; ".join(f"{lv.level}: OR {lv.odds_ratio_median:.2f} ({lv.odds_ratio_lower:.2f} to "
                    f"{lv.odds_ratio_upper:.2f}), {lv.n_trials} trials" for lv in sub.levels)
    how = ("This fit's own populations." if fit is ctx.result else
           f"One further fit of the mortality model with every level of {sub.by} as a population: trials within "
           "levels, levels' mean effects exchangeable with a between-level SD (prior population_heterogeneity).")
    parts = [para(how), figure(svg, caption=caption, alt=f"Grouped forest plot: {alt}", data=level_table),
             para(sd_text), para(limits)]
    parts.extend(para(note) for note in sub.notes if "one trial" in note)
    terms = covariate_terms(ctx)
    if terms is not None:
        parts.append(terms)
    parts.append(para(f"Diagnostics of this fit: {sub.diagnostics}"))
    return join(parts)


def grouped_forest_plot(rows: pd.DataFrame, levels: list[str], diamonds: dict, findings: dict, *,
                        name: str = "who-benefits") -> Markup:
    """Trials grouped by level, each group closed by its level's diamond (log OR axis, labelled as ORs)."""
    import matplotlib

    from .figures import OBSERVED, OR_TICKS, POOLED, SHRUNK, _RC, _clipped_line, _figure, mpl_text, to_svg

    lines: list[tuple[str, object]] = []
    for level in levels:
        for row in rows[rows["level"] == level].itertuples():
            lines.append(("trial", row))
        lines.append(("level", level))
    values = np.concatenate([rows[["obs_lower", "obs_upper", "post_lower", "post_upper"]].to_numpy(float).ravel(),
                             np.concatenate([d for d in diamonds.values()])])
    values = values[np.isfinite(values)]
    lo = max(math.log(0.01), min(-1.0, float(values.min()) - 0.2)) if values.size else -3
    hi = min(math.log(100), max(1.0, float(values.max()) + 0.2)) if values.size else 3
    n = len(lines)
    with matplotlib.rc_context(_RC):
        fig = _figure(9.5, 1.2 + 0.42 * n)
        ax = fig.add_subplot()
        labels, ys = [], []
        for i, (kind, item) in enumerate(lines):
            y = n - i
            ys.append(y)
            if kind == "trial":
                row = item
                labels.append(mpl_text(f"   {row.label}"))
                if row.obs_kind != "none":
                    style = "-" if row.obs_kind == "exact" else ":"
                    _clipped_line(ax, row.obs_lower, row.obs_upper, y + 0.14, lo, hi, OBSERVED, style, 1.2)
                    ax.plot([row.obs_est_low], [y + 0.14], "s", color=OBSERVED, ms=5, zorder=3)
                _clipped_line(ax, row.post_lower, row.post_upper, y - 0.14, lo, hi, SHRUNK, "-", 1.6)
                ax.plot([row.post_median], [y - 0.14], "o", color=SHRUNK, ms=5, zorder=3)
            else:
                m, low, up = diamonds[item]
                labels.append(mpl_text(f"{item} (level)"))
                filled = findings.get(item, True)
                ax.fill([max(low, lo), m, min(up, hi), m], [y, y + 0.25, y, y - 0.25], zorder=3,
                        facecolor=POOLED if filled else "white", edgecolor=POOLED)
        ax.axvline(0, color="#8a93a2", lw=0.8, zorder=0)
        ax.set_yticks(ys, labels)
        ax.set_ylim(0.3, n + 0.7)
        ticks = [t for t in OR_TICKS if lo <= math.log(t) <= hi]
        ax.set_xticks([math.log(t) for t in ticks], [f"{t:g}" for t in ticks])
        ax.set_xlim(lo, hi)
        ax.set_xlabel("odds ratio of death (log scale)  ← favours cells | favours control →")
        return to_svg(fig, name)


__all__ = ["covariate_terms", "grouped_forest_plot", "who_benefits", "who_benefits_section"]

"""Study by study: what each study reported, the model's estimate of its effect, its weight and
its year, and the forest plot drawn from them for a manuscript.

One table (:func:`forest_table`) serves the report's generic forest section and the
``forest`` figure kind, for every outcome:

* the **observed** estimate of a study, computed for display only: from its arm counts when
  the evidence has them (events/n per arm; an empirical odds ratio, risk ratio or risk
  difference with a 95% Wald interval, 0.5 added to every cell of a table with a zero cell),
  otherwise from its reported contrast (estimate ± 1.96 SE);
* the **model's** estimate of the study's effect: the posterior of the outcome's study-level
  variable (shrunk toward the pooled effect), median and 95% equal-tailed interval;
* the **weight**: the study's share of the pooled estimate's precision under the normal
  approximation of the random-effects model, averaged over the posterior of τ
  (:func:`precision_weights`);
* the **year**: from a ``year`` column of the data, or the register's ``publication_year``
  covariate (:func:`study_years`).

Everything is on the model's scale (log odds ratio, mmHg); the figure labels a log-scale axis
with the stated ratios.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..evidence.empirical import EMPIRICAL_FROM_COUNTS, Z95
from ..io.errors import InputError, Location
from .figures import (INK, MUTED, OBSERVED, OR_TICKS, POOLED, PREDICTIVE, SHRUNK, _RC, _clipped_line, _figure,
                      mpl_text)
from .html import fmt

if TYPE_CHECKING:
    from matplotlib.figure import Figure

SORTS = ("year", "weight", "effect", "label")  # the orders a forest plot's studies can take


# -- observed estimates ----------------------------------------------------------------------


@dataclass(frozen=True)
class ArmDeaths:
    """Events in one arm as reported: exact (low == high), a bound, or unknown (None)."""

    low: int | None  # None: not reported for this arm alone
    high: int | None
    n: int | None


def arm_events(evidence) -> dict[int, ArmDeaths]:
    """Events per arm as reported: exact, a bound, or unknown (only a total across arms)."""
    out = {int(r.arm_index): ArmDeaths(int(r.deaths), int(r.deaths), int(r.n)) for r in evidence.exact.itertuples()}
    for report in evidence.partial:
        if report.kind == "bounded" and len(report.arms) == 1:
            counts = [c.counts[0] for c in report.configurations]
            out[counts[0].arm_index] = ArmDeaths(min(c.deaths for c in counts), max(c.deaths for c in counts),
                                                 counts[0].n)
        else:
            for config in report.configurations:
                for count in config.counts:
                    out.setdefault(count.arm_index, ArmDeaths(None, None, None))
    return out


def study_effect_draws(result):
    """Each study's effect on the model scale (chain, draw, study): the outcome's study-level
    variable, or under a dose-response form that has none, the mean of the study's cell arms'
    ``arm_log_or`` (one arm in all but multi-dose trials)."""
    import xarray as xr

    post = result.posterior
    study = result.outcome.roles.study
    if study in post:
        return post[study]
    arms = result.evidence.arms.reset_index(drop=True)
    arm_effect = post["arm_log_or"]
    by_study = [arm_effect.isel(arm=list(arms.index[(arms["study_id"] == sid) & (arms["treated"] == 1)])).mean("arm")
                for sid in result.evidence.studies]
    return xr.concat(by_study, "study").assign_coords(study=list(result.evidence.studies))


def _has_counts(evidence) -> bool:
    return all(hasattr(evidence, name) for name in ("arms", "exact", "partial"))


def _count_text(low, high, n) -> str:
    if low is None or n is None:
        return "–"
    return f"{low}/{n}" if low == high else f"{low}–{high}/{n}"


def _count_rows(result) -> list[dict]:
    """Observed columns of studies with arm counts (events/n per arm)."""
    evidence = result.evidence
    estimator = EMPIRICAL_FROM_COUNTS.get(result.outcome.measure.name)
    arms = evidence.arms.reset_index(drop=True)
    events = arm_events(evidence)
    rows = []
    for sid in evidence.studies:
        groups = {}
        for treated, part in arms[arms["study_id"] == sid].groupby("treated"):
            counts = [events.get(i, ArmDeaths(None, None, None)) for i in part.index]
            if any(c.low is None or c.n is None for c in counts):
                groups[treated] = None
            else:
                groups[treated] = (sum(c.low for c in counts), sum(c.high for c in counts), sum(c.n for c in counts))
        t, c = groups.get(1), groups.get(0)
        row = {"study_id": sid, "events_cells": _count_text(*(t or (None, None, None))),
               "events_control": _count_text(*(c or (None, None, None))), "obs_se": np.nan, "corrected": False}
        if t is None or c is None:
            row.update(obs_kind="none", obs_text="not estimable from the report (events only as a total across arms)",
                       obs_est_low=np.nan, obs_est_high=np.nan, obs_lower=np.nan, obs_upper=np.nan)
        elif estimator is None:
            row.update(obs_kind="none", obs_text=f"cells {row['events_cells']} vs control {row['events_control']}",
                       obs_est_low=np.nan, obs_est_high=np.nan, obs_lower=np.nan, obs_upper=np.nan)
        else:
            # the extremes over the reported range: fewest treated / most control events, and back
            est_lo, se_lo, corr_lo = estimator(t[0], t[2], c[1], c[2])
            est_hi, se_hi, corr_hi = estimator(t[1], t[2], c[0], c[2])
            exact = t[0] == t[1] and c[0] == c[1]
            row.update(
                obs_kind="exact" if exact else "partial",
                obs_text=(f"cells {row['events_cells']} vs control {row['events_control']}"
                          + ("" if exact else " (partial report)")),
                obs_est_low=est_lo, obs_est_high=est_hi,
                obs_lower=est_lo - Z95 * se_lo, obs_upper=est_hi + Z95 * se_hi,
                obs_se=se_lo if exact else np.nan, corrected=corr_lo or corr_hi,
            )
        rows.append(row)
    return rows


def _term_rows(result) -> list[dict]:
    """Observed columns of studies entered as estimates with standard errors: a reported
    contrast, or one cell arm's change minus one control arm's (SEs added in quadrature)."""
    evidence = result.evidence
    terms = evidence.terms
    digits = result.outcome.measure.digits
    rows = []
    for sid in evidence.studies:
        mine = terms[terms["study_id"] == sid]
        contrasts = mine[mine["kind"] == "contrast"]
        treated, control = mine[(mine["kind"] == "arm") & (mine["treated"] == 1)], mine[(mine["kind"] == "arm") & (mine["treated"] == 0)]
        row = {"study_id": sid, "events_cells": "", "events_control": "", "corrected": False}
        if len(contrasts) == 1:
            est, se, bound = float(contrasts["estimate"].iloc[0]), float(contrasts["se"].iloc[0]), bool(contrasts["se_is_bound"].iloc[0])
        elif len(contrasts) == 0 and len(treated) == 1 and len(control) == 1:
            est = float(treated["estimate"].iloc[0] - control["estimate"].iloc[0])
            se = math.hypot(float(treated["se"].iloc[0]), float(control["se"].iloc[0]))
            bound = bool(treated["se_is_bound"].iloc[0] or control["se_is_bound"].iloc[0])
        else:
            row.update(obs_kind="none", obs_text="no single contrast (several terms, or no control arm)",
                       obs_est_low=np.nan, obs_est_high=np.nan, obs_lower=np.nan, obs_upper=np.nan, obs_se=np.nan,
                       estimate_text="–")
            rows.append(row)
            continue
        row.update(obs_kind="exact", obs_est_low=est, obs_est_high=est, obs_lower=est - Z95 * se,
                   obs_upper=est + Z95 * se, obs_se=se,
                   estimate_text=f"{fmt(est, digits)} ± {'≤ ' if bound else ''}{fmt(se, digits)}",
                   obs_text=f"estimate {fmt(est, digits)}, SE {'≤ ' if bound else ''}{fmt(se, digits)}")
        rows.append(row)
    return rows


def observed_rows(result) -> pd.DataFrame:
    """One row per included study (the model's study order): ``study_id, label, obs_kind``
    ("exact", "partial" or "none"), ``obs_text``, ``obs_est_low``, ``obs_est_high``,
    ``obs_lower``, ``obs_upper``, ``obs_se`` (model scale; NaN where not estimable),
    ``corrected`` and the data columns: ``events_cells``/``events_control`` (events/n) for
    evidence with arm counts, ``estimate_text`` (estimate ± SE) otherwise."""
    evidence = result.evidence
    if _has_counts(evidence):
        rows = _count_rows(result)
    elif hasattr(evidence, "terms"):
        rows = _term_rows(result)
    else:  # evidence of a shape this table does not know: the model's estimates only
        rows = [{"study_id": sid, "obs_kind": "none", "obs_text": "", "obs_est_low": np.nan, "obs_est_high": np.nan,
                 "obs_lower": np.nan, "obs_upper": np.nan, "obs_se": np.nan, "corrected": False,
                 "events_cells": "", "events_control": "", "estimate_text": "–"} for sid in evidence.studies]
    labels = evidence.inclusion.set_index("study_id")["label"]
    frame = pd.DataFrame(rows)
    frame.insert(1, "label", [str(labels.get(sid, sid)) for sid in frame["study_id"]])
    return frame


def has_arm_counts(result) -> bool:
    """Whether the forest plot shows events/n per arm (else estimate ± SE)."""
    return _has_counts(result.evidence)


# -- weights ---------------------------------------------------------------------------------


def precision_weights(se: Sequence[float], tau_draws) -> np.ndarray:
    """Each study's share of the pooled estimate's precision, averaged over the posterior of τ.

    Under the normal approximation of the random-effects model, study j with standard error
    s_j contributes precision w_j(τ) = 1 / (s_j² + τ²) to the pooled mean, whose precision is
    Σ_k w_k(τ); its share is w_j(τ) / Σ_k w_k(τ). The weight reported is that share averaged over
    the posterior draws of τ, so it reflects the heterogeneity the model found (at τ = 0 it is
    the fixed-effect inverse-variance weight; as τ grows, weights even out). Studies without a
    standard error (``nan``: no estimable contrast) get ``nan`` and the others share 1.
    """
    se = np.asarray(se, float)
    weights = np.full(se.shape, np.nan)
    known = np.isfinite(se)
    if not known.any():
        return weights
    tau2 = np.square(np.asarray(tau_draws, float).ravel())[:, None]
    precision = 1.0 / (np.square(se[known])[None, :] + tau2)
    weights[known] = (precision / precision.sum(axis=1, keepdims=True)).mean(axis=0)
    return weights


# -- years -----------------------------------------------------------------------------------

YEAR_COVARIATE = "publication_year"


def study_years(result, data: Any = None) -> pd.Series:
    """Each included study's year (float, NaN when unknown), indexed by study id.

    From, in order: a ``year`` column of the evidence's inclusion table; a ``year`` column of
    a one-table data file (``data.rows`` with ``study`` and ``year``); the register's
    ``publication_year`` covariate (``bayes_msc.evidence.covariates``). ``data`` is what the
    fit was run on (default: the embedded register), checked against the fit's content hash.
    """
    studies = list(result.evidence.studies)
    inclusion = result.evidence.inclusion
    if "year" in inclusion:
        years = pd.to_numeric(inclusion.set_index("study_id")["year"], errors="coerce")
        return years.reindex(studies).astype(float)
    source = data_for(result, data)
    rows = getattr(source, "rows", None)
    if isinstance(rows, pd.DataFrame) and {"study", "year"} <= set(rows.columns):
        return pd.to_numeric(rows.set_index("study")["year"], errors="coerce").reindex(studies).astype(float)
    if hasattr(source, "studies") and hasattr(source, "root"):  # an evidence register
        try:
            from ..evidence.covariates import study_covariates
        except ImportError:  # a register format without covariates
            return pd.Series(np.nan, index=studies, dtype=float)
        table = study_covariates(source, [YEAR_COVARIATE])
        if YEAR_COVARIATE in table:
            return pd.to_numeric(table[YEAR_COVARIATE], errors="coerce").reindex(studies).astype(float)
    return pd.Series(np.nan, index=studies, dtype=float)


def data_for(result, data: Any = None):
    """The data ``result`` was fitted on, loaded by its outcome (a register, an estimates
    table), refused unless its content hash is the fit's."""
    source = data
    if data is None or isinstance(data, (str, bytes)) or hasattr(data, "__fspath__"):
        source = result.outcome.load_data(data)
    found = getattr(source, "content_hash", None)
    if found != result.evidence.register_hash:
        what = (f"the register at {source.root}" if hasattr(source, "root") else
                f"the data file {source.path}" if hasattr(source, "path") else "the data given")
        raise InputError(
            f"{what} is not the one this result was fitted on (content hash "
            f"{str(found)[:12]} vs {result.evidence.register_hash[:12]}); pass the fit's register or data file"
        )
    return source


# -- the table -------------------------------------------------------------------------------


def forest_table(result, *, sort: str | None = None, data: Any = None) -> pd.DataFrame:
    """Observed estimate, model estimate, weight (and year) per included study, in ``sort`` order.

    Columns: those of :func:`observed_rows`, then ``post_median``, ``post_lower``,
    ``post_upper`` (model scale, 95% equal-tailed) and ``weight`` (:func:`precision_weights`),
    and ``year`` when sorted by year. ``sort``: ``None`` (the model's study order), ``"year"``
    (oldest first; refused, naming the studies, when a year is missing), ``"weight"``
    (heaviest first), ``"effect"`` (the model's study estimate, lowest first) or ``"label"``.
    """
    if sort is not None and sort not in SORTS:
        raise InputError(f"unknown sort {sort!r}; choose one of: {', '.join(SORTS)}", Location("--sort"))
    frame = observed_rows(result)
    draws = study_effect_draws(result)
    q = np.stack([np.quantile(np.asarray(draws.sel(study=sid), float).ravel(), [0.025, 0.5, 0.975])
                  for sid in frame["study_id"]])
    frame["post_lower"], frame["post_median"], frame["post_upper"] = q[:, 0], q[:, 1], q[:, 2]
    frame["weight"] = precision_weights(frame["obs_se"], result.posterior[result.outcome.roles.heterogeneity])
    if sort == "year":
        years = study_years(result, data)
        frame["year"] = years.reindex(frame["study_id"]).to_numpy()
        missing = frame.loc[frame["year"].isna(), "label"].tolist()
        if missing:
            raise InputError(
                f"cannot sort by year: no year for {', '.join(missing)} (a year column in the data file, or the "
                f"register's {YEAR_COVARIATE} covariate)", Location("--sort"))
    order = {
        None: None,
        "year": lambda f: f.sort_values(["year", "label"], kind="stable"),
        "weight": lambda f: f.sort_values("weight", ascending=False, na_position="last", kind="stable"),
        "effect": lambda f: f.sort_values("post_median", kind="stable"),
        "label": lambda f: f.iloc[sorted(range(len(f)), key=lambda i: f["label"].iloc[i].casefold())],
    }[sort]
    return (order(frame) if order else frame).reset_index(drop=True)


def pooled_and_predictive(result) -> tuple[np.ndarray, np.ndarray]:
    """(median, lower, upper) of the pooled and the new-trial effect, model scale, 95% equal-tailed."""
    roles, post = result.outcome.roles, result.posterior

    def q(name):
        return np.quantile(np.asarray(post[name], float).ravel(), [0.5, 0.025, 0.975])

    return q(roles.pooled), q(roles.predictive)


# -- the forest plot for a manuscript --------------------------------------------------------


def stated_text(value: float, measure, digits: str | None = None) -> str:
    """A model-scale number as the measure states it (``exp`` for ratios)."""
    if not np.isfinite(value):
        return "–"
    return fmt(math.exp(value) if measure.log_scale else value, digits or measure.digits)


def interval_cell(median: float, lower: float, upper: float, measure) -> str:
    if not np.isfinite(median):
        return "–"
    return f"{stated_text(median, measure)} [{stated_text(lower, measure)}, {stated_text(upper, measure)}]"


def observed_cell(row, measure) -> str:
    if row.obs_kind == "none":
        return "–"
    if row.obs_kind == "partial":
        return (f"{stated_text(row.obs_est_low, measure)} to {stated_text(row.obs_est_high, measure)} "
                f"[{stated_text(row.obs_lower, measure)}, {stated_text(row.obs_upper, measure)}]")
    return interval_cell(row.obs_est_low, row.obs_lower, row.obs_upper, measure)


def _spaced_ticks(ticks: list[float], gap: float) -> list[float]:
    """Ratio ticks at least ``gap`` apart on the log axis, kept outward from 1 (labels must not overlap)."""
    kept = [1.0] if 1.0 in ticks else []
    for side in (sorted(t for t in ticks if t > 1), sorted((t for t in ticks if t < 1), reverse=True)):
        last = 0.0
        for t in side:
            if abs(math.log(t) - last) >= gap:
                kept.append(t)
                last = math.log(t)
    return sorted(kept)


def forest_figure(result, *, sort: str | None = None, data: Any = None) -> "Figure":
    """The forest plot for a manuscript: one row per study with its numbers beside it.

    Columns: the study; events/n per arm (evidence with arm counts) or estimate ± SE; the plot
    (observed estimate with its 95% Wald interval, square sized by weight; the model's estimate
    of the study's effect with its 95% equal-tailed interval, shrunk toward the pooled effect;
    the pooled effect as a diamond and the 95% prediction interval for a new trial); the
    observed and model estimates as numbers; the weight (:func:`precision_weights`). ``sort``
    and ``data``: see :func:`forest_table`.
    """
    import matplotlib
    from matplotlib.lines import Line2D

    table = forest_table(result, sort=sort, data=data)
    measure = result.outcome.measure
    pooled, predictive = pooled_and_predictive(result)
    counts = has_arm_counts(result)
    n = len(table)

    finite = np.concatenate([table[["obs_lower", "obs_upper", "post_lower", "post_upper"]].to_numpy(float).ravel(),
                             predictive])
    finite = finite[np.isfinite(finite)]
    if measure.log_scale:
        lo = max(math.log(0.01), min(-1.0, float(finite.min()) - 0.2))
        hi = min(math.log(100), max(1.0, float(finite.max()) + 0.2))
    else:
        span = float(finite.max() - finite.min()) or 1.0
        lo, hi = min(0.0, float(finite.min())) - 0.05 * span, max(0.0, float(finite.max())) + 0.05 * span
    null = 0.0  # the model scale's null: log(1) for ratios, 0 for differences

    data_columns = (["Cells\nevents/n", "Control\nevents/n"] if counts
                    else [f"Estimate ± SE\n({measure.model_scale})"])
    unit = f" ({measure.unit})" if measure.unit else ""
    number_columns = [f"Observed {measure.short}{unit}\n[95% CI]", f"Model {measure.short}{unit}\n[95% ETI]",
                      "Weight"]
    widths = [2.2] + [1.05] * len(data_columns) + [4.0, 1.8, 1.8, 0.7]
    top = n + 1.0
    pooled_y, predictive_y = -0.4, -1.3
    with matplotlib.rc_context(_RC):
        fig = _figure(sum(widths) + 0.6, 1.6 + 0.32 * (n + 4))
        axes = fig.subplots(1, len(widths), sharey=True, gridspec_kw={"width_ratios": widths, "wspace": 0.0})
        plot_index = 1 + len(data_columns)
        text_axes = [a for i, a in enumerate(axes) if i != plot_index]
        ax = axes[plot_index]
        for text_ax in text_axes:
            text_ax.set_xlim(0, 1)
            text_ax.axis("off")
        ys = [n - i for i in range(n)]

        def column(text_ax, header, values, align="right", bold_rows=()):
            x = 0.02 if align == "left" else 0.98
            text_ax.text(x, top, mpl_text(header), ha=align, va="bottom", fontsize=8.5, fontweight="bold", color=INK)
            for y, value in zip(ys + [pooled_y, predictive_y], values):
                text_ax.text(x, y, mpl_text(value), ha=align, va="center", fontsize=8.5, color=INK,
                             fontweight="bold" if y in bold_rows else "normal")

        column(axes[0], "Study", list(table["label"]) + ["Pooled effect", "New trial (prediction)"], "left",
               bold_rows=(pooled_y,))
        if counts:
            column(axes[1], data_columns[0], list(table["events_cells"]) + ["", ""])
            column(axes[2], data_columns[1], list(table["events_control"]) + ["", ""])
        else:
            column(axes[1], data_columns[0], list(table["estimate_text"]) + ["", ""])
        observed = [observed_cell(r, measure) for r in table.itertuples()]
        model = [interval_cell(r.post_median, r.post_lower, r.post_upper, measure) for r in table.itertuples()]
        column(axes[plot_index + 1], number_columns[0], observed + ["", ""])
        column(axes[plot_index + 2], number_columns[1],
               model + [interval_cell(*pooled, measure), interval_cell(*predictive, measure)], bold_rows=(pooled_y,))
        weights = [f"{100 * w:.1f}%" if np.isfinite(w) else "–" for w in table["weight"]]
        column(axes[plot_index + 3], number_columns[2], weights + ["100%" if np.isfinite(table["weight"]).any() else "", ""])

        for y, row in zip(ys, table.itertuples()):
            if row.obs_kind != "none":
                style = "-" if row.obs_kind == "exact" else ":"
                _clipped_line(ax, row.obs_lower, row.obs_upper, y + 0.14, lo, hi, OBSERVED, style, 1.2)
                size = 3.5 + 9.0 * math.sqrt(row.weight) if np.isfinite(row.weight) else 5
                if row.obs_kind == "exact":
                    ax.plot([row.obs_est_low], [y + 0.14], "s", color=OBSERVED, ms=size, zorder=3)
                else:
                    ax.plot([row.obs_est_low, row.obs_est_high], [y + 0.14] * 2, "s", color=OBSERVED, mfc="white",
                            ms=5, zorder=3)
            _clipped_line(ax, row.post_lower, row.post_upper, y - 0.14, lo, hi, SHRUNK, "-", 1.6)
            ax.plot([row.post_median], [y - 0.14], "o", color=SHRUNK, ms=4.5, zorder=3)
        m, low, up = pooled
        ax.fill([low, m, up, m], [pooled_y, pooled_y + 0.25, pooled_y, pooled_y - 0.25], color=POOLED, zorder=3)
        pm, pl, pu = predictive
        _clipped_line(ax, pl, pu, predictive_y, lo, hi, PREDICTIVE, "-", 2.2)
        ax.plot([pm], [predictive_y], "|", color=PREDICTIVE, ms=9)
        ax.axvline(null, color=MUTED, lw=0.8, zorder=0)
        ax.axhline((pooled_y + 1) / 2 + 0.05, color=MUTED, lw=0.6)
        ax.set_ylim(predictive_y - 0.8, top + 0.9)
        ax.set_yticks([])
        for side in ("left", "right", "top"):
            ax.spines[side].set_visible(False)
        if measure.log_scale:
            ticks = _spaced_ticks([t for t in OR_TICKS if lo <= math.log(t) <= hi], (hi - lo) / 9)
            ax.set_xticks([math.log(t) for t in ticks], [f"{t:g}" for t in ticks])
        ax.set_xlim(lo, hi)
        left, right = (("favours cells", "favours control") if result.outcome.benefit_direction(result.spec) == "decrease"
                       else ("favours control", "favours cells"))
        ax.set_xlabel(mpl_text(f"{measure.label()}{' (log scale)' if measure.log_scale else ''}\n← {left} | {right} →"),
                      fontsize=8.5)
        handles = [
            Line2D([], [], color=OBSERVED, marker="s", label="observed, 95% CI (size: weight)"),
            Line2D([], [], color=SHRUNK, marker="o", label="model estimate for the study, 95% ETI"),
            Line2D([], [], color=PREDICTIVE, lw=2.2, label="95% prediction interval, new trial"),
        ]
        fig.legend(handles=handles, loc="outside lower center", ncols=3, frameon=False, fontsize=8)
        return fig

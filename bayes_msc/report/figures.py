"""Figures drawn with matplotlib: embedded in the report as inline SVG, or saved for a manuscript.

Each builder takes plain numbers (data frames, arrays) and returns a
:class:`matplotlib.figure.Figure`, built on ``Figure`` directly (no pyplot state, nothing to
close). The report turns it into one inline ``<svg>`` element with :func:`to_svg` (no file, no
network reference); ``python -m bayes_msc figure`` and :func:`bayes_msc.figure` save it with
:func:`save_figure`, in the format the file's suffix names. The rank plots are the exception:
arviz-plots draws them on pyplot, so :func:`rank_plot` converts and closes its figure itself.
"""

from __future__ import annotations

import io
import math
import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

from typing import TYPE_CHECKING

from ..io.errors import InputError, Location
from .html import Markup

if TYPE_CHECKING:
    from pathlib import Path

    from matplotlib.figure import Figure

INK = "#1d2430"
MUTED = "#8a93a2"
OBSERVED = "#7a4b00"
SHRUNK = "#1f5fa8"
POOLED = "#111111"
PREDICTIVE = "#b3261e"
PRIOR = "#8a93a2"

_RC = {
    "svg.fonttype": "none",  # text stays text: searchable, small, escaped by matplotlib
    "font.family": "sans-serif",
    "font.size": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.edgecolor": "#5b6472",
    "axes.labelcolor": INK,
    "xtick.color": INK,
    "ytick.color": INK,
}


def mpl_text(text: object) -> str:
    """Text for a matplotlib label: ``$`` would start mathtext, so it is escaped."""
    return str(text).replace("$", r"\$")


def to_svg(fig, name: str) -> Markup:
    """Serialise a matplotlib figure as an inline ``<svg>`` element (prolog and metadata removed)."""
    import matplotlib

    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": f"bayes_msc-{name}"}):
        fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    text = buffer.getvalue()
    text = text[text.index("<svg"):]
    text = re.sub(r"<metadata>.*?</metadata>", "", text, flags=re.S)
    # matplotlib numbers its ids per figure (figure_1, axes_1, ...): prefix them so several
    # inline figures in one page keep ids unique, and rewrite the in-figure references.
    prefix = re.sub(r"[^A-Za-z0-9_-]", "-", name)
    text = re.sub(r'\bid="([^"]+)"', rf'id="{prefix}-\1"', text)
    text = re.sub(r'(\bhref="#|url\(#)([^")]+)', rf"\g<1>{prefix}-\2", text)
    return Markup(text)


# The formats a figure is saved in, by the file's suffix: vector for journals (SVG, PDF) and a
# 300 dpi raster (PNG), the resolution most journals ask of line art at print size.
FIGURE_FORMATS = ("svg", "png", "pdf")
PNG_DPI = 300


def figure_format(path) -> str:
    """The format ``path``'s suffix names (``svg``, ``png`` or ``pdf``); any other suffix is an
    :class:`~bayes_msc.io.errors.InputError`, raised before anything is fitted or drawn."""
    from pathlib import Path

    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix not in FIGURE_FORMATS:
        shown = f".{suffix}" if suffix else "no suffix"
        raise InputError(f"a figure is written as {', '.join('.' + f for f in FIGURE_FORMATS)}; {path} has {shown}",
                         Location("--output"))
    return suffix


def save_figure(fig: "Figure", path) -> "Path":
    """Save ``fig`` atomically in the format of ``path``'s suffix (:func:`figure_format`).

    SVG keeps text as text (searchable, editable in a journal's tools); SVG and PDF carry no
    creation date, so the same figure gives the same file; PNG is drawn at :data:`PNG_DPI`.
    """
    import matplotlib

    from ..io.fileio import write_atomic

    kind = figure_format(path)
    options = {"format": kind, "bbox_inches": "tight"}
    if kind == "png":
        options.update(dpi=PNG_DPI, metadata={"Software": None})
    elif kind == "svg":
        options["metadata"] = {"Date": None}
    else:
        options["metadata"] = {"CreationDate": None}
    salt = {"svg.hashsalt": "bayes_msc-figure", "svg.fonttype": "none", "pdf.fonttype": 42}
    with matplotlib.rc_context(salt):
        return write_atomic(path, lambda temp: fig.savefig(temp, **options))


def _figure(width: float, height: float):
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


# -- forest plot -------------------------------------------------------------------------

OR_TICKS = (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100)


def forest_plot(rows: pd.DataFrame, pooled: Sequence[float], predictive: Sequence[float]) -> "Figure":
    """Forest plot on the log odds-ratio axis, labelled as odds ratios.

    ``rows``: one per study with ``label``, ``obs_kind`` ("exact", "partial" or "none"),
    ``obs_est_low``, ``obs_est_high`` (equal for an exact report), ``obs_lower``,
    ``obs_upper``, ``post_median``, ``post_lower``, ``post_upper`` (all log OR).
    ``pooled`` and ``predictive``: (median, lower, upper) of the pooled and new-trial log OR.
    """
    import matplotlib

    finite = np.concatenate([
        rows[["obs_lower", "obs_upper", "post_lower", "post_upper"]].to_numpy(float).ravel(),
        np.asarray(predictive, float),
    ])
    finite = finite[np.isfinite(finite)]
    lo = max(math.log(0.01), min(-1.0, float(finite.min()) - 0.2)) if finite.size else -3
    hi = min(math.log(100), max(1.0, float(finite.max()) + 0.2)) if finite.size else 3

    n = len(rows)
    height = 1.4 + 0.45 * (n + 2)
    with matplotlib.rc_context(_RC):
        fig = _figure(9.5, height)
        ax = fig.add_subplot()
        for i, row in enumerate(rows.itertuples()):
            y = n + 1 - i
            if row.obs_kind != "none":
                style = "-" if row.obs_kind == "exact" else ":"
                _clipped_line(ax, row.obs_lower, row.obs_upper, y + 0.14, lo, hi, OBSERVED, style, 1.2)
                if row.obs_kind == "exact":
                    ax.plot([row.obs_est_low], [y + 0.14], "s", color=OBSERVED, ms=5, zorder=3)
                else:
                    ax.plot([row.obs_est_low, row.obs_est_high], [y + 0.14] * 2, "s", color=OBSERVED,
                            mfc="white", ms=5, zorder=3)
            _clipped_line(ax, row.post_lower, row.post_upper, y - 0.14, lo, hi, SHRUNK, "-", 1.6)
            ax.plot([row.post_median], [y - 0.14], "o", color=SHRUNK, ms=5, zorder=3)
        # pooled effect as a diamond, the prediction interval as a line below it
        m, l, u = pooled
        ax.fill([l, m, u, m], [1, 1.22, 1, 0.78], color=POOLED, zorder=3)
        pm, pl, pu = predictive
        _clipped_line(ax, pl, pu, 0.3, lo, hi, PREDICTIVE, "-", 2.2)
        ax.plot([pm], [0.3], "|", color=PREDICTIVE, ms=9)
        ax.axvline(0, color=MUTED, lw=0.8, zorder=0)
        labels = [mpl_text(label) for label in rows["label"]] + ["Pooled effect", "New trial (prediction)"]
        ax.set_yticks(list(range(n + 1, 1, -1)) + [1, 0.3], labels)
        ax.set_ylim(-0.3, n + 1.7)
        ticks = [t for t in OR_TICKS if lo <= math.log(t) <= hi]
        ax.set_xticks([math.log(t) for t in ticks], [f"{t:g}" for t in ticks])
        ax.set_xlim(lo, hi)
        ax.set_xlabel("odds ratio of death (log scale)  ← favours cells | favours control →")
        handles = [
            matplotlib.lines.Line2D([], [], color=OBSERVED, marker="s", label="observed (empirical, 0.5 correction)"),
            matplotlib.lines.Line2D([], [], color=OBSERVED, marker="s", mfc="white", ls=":", label="observed, partial report"),
            matplotlib.lines.Line2D([], [], color=SHRUNK, marker="o", label="model estimate for the trial (shrunken)"),
            matplotlib.lines.Line2D([], [], color=PREDICTIVE, lw=2.2, label="95% prediction interval, new trial"),
        ]
        fig.legend(handles=handles, loc="outside lower center", ncols=2, frameon=False, fontsize=9)
        return fig


def _clipped_line(ax, lower, upper, y, lo, hi, color, style, width):
    if not (np.isfinite(lower) and np.isfinite(upper)):
        return
    a, b = max(lower, lo), min(upper, hi)
    ax.plot([a, b], [y, y], style, color=color, lw=width, solid_capstyle="butt")
    if lower < lo:
        ax.plot([lo], [y], "<", color=color, ms=5)
    if upper > hi:
        ax.plot([hi], [y], ">", color=color, ms=5)


# -- prior vs posterior ------------------------------------------------------------------


def prior_posterior_plot(panels: Sequence[dict]) -> "Figure":
    """One panel per parameter: ``{"title", "xlabel", "grid", "prior_pdf", "post_pdf"}``."""
    import matplotlib

    with matplotlib.rc_context(_RC):
        fig = _figure(4.7 * len(panels), 3.2)
        axes = fig.subplots(1, len(panels), squeeze=False)[0]
        for ax, panel in zip(axes, panels):
            ax.fill_between(panel["grid"], panel["prior_pdf"], color=PRIOR, alpha=0.35, lw=0, label="prior")
            ax.plot(panel["grid"], panel["prior_pdf"], color=PRIOR, lw=1.2, ls="--")
            ax.plot(panel["grid"], panel["post_pdf"], color=SHRUNK, lw=1.8, label="posterior")
            ax.set_title(mpl_text(panel["title"]), fontsize=9)
            ax.set_xlabel(mpl_text(panel["xlabel"]))
            ax.set_yticks([])
            ax.spines["left"].set_visible(False)
        axes[0].legend(frameon=False, fontsize=9)
        return fig


# -- posterior predictive check ----------------------------------------------------------


def ppc_plot(rows: pd.DataFrame) -> "Figure":
    """Observed proportion of deaths per arm against the posterior predictive interval.

    ``rows``: ``label``, ``n``, ``obs_low``, ``obs_high`` (deaths; equal when exact),
    ``pred_q025``, ``pred_q25``, ``pred_q75``, ``pred_q975`` (deaths).
    """
    import matplotlib

    n = len(rows)
    with matplotlib.rc_context(_RC):
        fig = _figure(9.5, 1.2 + 0.3 * n)
        ax = fig.add_subplot()
        for i, row in enumerate(rows.itertuples()):
            y = n - i
            ax.plot([row.pred_q025 / row.n, row.pred_q975 / row.n], [y, y], color=SHRUNK, lw=1.2, alpha=0.6)
            ax.plot([row.pred_q25 / row.n, row.pred_q75 / row.n], [y, y], color=SHRUNK, lw=4, alpha=0.8,
                    solid_capstyle="butt")
            if row.obs_low == row.obs_high:
                ax.plot([row.obs_low / row.n], [y], "D", color=OBSERVED, ms=4.5, zorder=3)
            else:
                ax.plot([row.obs_low / row.n, row.obs_high / row.n], [y, y], "D:", color=OBSERVED,
                        mfc="white", ms=4.5, zorder=3)
        ax.set_yticks(range(n, 0, -1), [mpl_text(label) for label in rows["label"]], fontsize=9)
        ax.set_ylim(0.3, n + 0.7)
        ax.set_xlim(-0.02, 1.02)
        ax.set_xlabel("proportion of the arm who died")
        handles = [
            matplotlib.lines.Line2D([], [], color=OBSERVED, marker="D", ls="", label="observed"),
            matplotlib.lines.Line2D([], [], color=SHRUNK, lw=4, label="predictive 50% interval"),
            matplotlib.lines.Line2D([], [], color=SHRUNK, lw=1.2, alpha=0.6, label="predictive 95% interval"),
        ]
        ax.legend(handles=handles, loc="lower right", frameon=True, fontsize=9)
        return fig


# -- dose-response -----------------------------------------------------------------------


def dose_curve_plot(bands: pd.DataFrame, *, xlabel: str, ylabel: str, reference: float | None = 0.0,
                    studied: tuple[float, float] | None = None) -> "Figure":
    """Median with 50% and 95% bands of an effect against dose (log axis).

    ``bands`` has dose, median, lower_50/upper_50, lower_95/upper_95; doses outside
    ``studied`` are shaded as extrapolation.
    """
    import matplotlib

    with matplotlib.rc_context(_RC):
        fig = _figure(8.5, 3.6)
        ax = fig.add_subplot()
        ax.fill_between(bands["dose"], bands["lower_95"], bands["upper_95"], color=SHRUNK, alpha=0.18, lw=0,
                        label="95% equal-tailed band")
        ax.fill_between(bands["dose"], bands["lower_50"], bands["upper_50"], color=SHRUNK, alpha=0.35, lw=0,
                        label="50% band")
        ax.plot(bands["dose"], bands["median"], color=SHRUNK, lw=1.8, label="posterior median")
        ax.set_xscale("log")
        from matplotlib.ticker import FixedLocator, FuncFormatter, NullLocator

        ticks = [t for t in (0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50) if bands["dose"].min() <= t <= bands["dose"].max()]
        ax.xaxis.set_major_locator(FixedLocator(ticks))
        ax.xaxis.set_minor_locator(NullLocator())
        ax.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:g}"))
        if studied is not None:
            lo, hi = float(bands["dose"].min()), float(bands["dose"].max())
            for a, b in ((lo, studied[0]), (studied[1], hi)):
                if b > a:
                    ax.axvspan(a, b, color=MUTED, alpha=0.12, lw=0)
        if reference is not None:
            ax.axhline(reference, color=MUTED, lw=0.8)
        ax.set_xlabel(mpl_text(xlabel))
        ax.set_ylabel(mpl_text(ylabel))
        ax.legend(frameon=False, fontsize=9)
        return fig


def sbc_ecdf_plot(ecdfs: dict) -> "Figure":
    """One panel per parameter: ECDF minus uniform with its simultaneous band."""
    import matplotlib

    with matplotlib.rc_context(_RC):
        fig = _figure(2.8 * max(len(ecdfs), 1), 2.6)
        for i, (param, frame) in enumerate(ecdfs.items()):
            ax = fig.add_subplot(1, len(ecdfs), i + 1)
            x = frame["x"].to_numpy()
            ax.fill_between(x, frame["lower"] - x, frame["upper"] - x, color=SHRUNK, alpha=0.2, lw=0, step="post")
            ax.step(x, frame["ecdf"] - x, where="post", color=SHRUNK, lw=1.2)
            ax.axhline(0, color=MUTED, lw=0.6)
            ax.set_title(mpl_text(param), fontsize=9)
            ax.set_xlabel("fractional rank")
        return fig


# -- sampler diagnostics -----------------------------------------------------------------


def rank_plot(tree, var_names: Sequence[str], coords: dict | None = None, *, panels: int | None = None,
              name: str = "rank") -> Markup:
    """arviz-plots' rank ECDF plot (fractional ranks per chain with a simultaneous envelope)."""
    import arviz_plots as azp
    import matplotlib
    import matplotlib.pyplot as plt

    panels = panels or len(var_names)
    with matplotlib.rc_context(_RC):
        pc = azp.plot_rank(tree, var_names=list(var_names), coords=coords or None, backend="matplotlib",
                           figure_kwargs={"figsize": (3.2 * panels, 2.8)})
        fig = pc.get_viz("figure")
        try:
            return to_svg(fig, name)
        finally:
            plt.close(fig)

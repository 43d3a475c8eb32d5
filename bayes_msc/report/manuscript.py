"""Figures for manuscripts: a registry of figure kinds, and :func:`figure` to draw and save one.

::

    import bayes_msc
    result = bayes_msc.fit("mortality")
    bayes_msc.figure(result, "forest", "forest.pdf", sort="weight")   # saved; the Figure returned
    fig = bayes_msc.figure(result, "prior")                            # a Figure, not saved

A figure kind is a name and a builder ``builder(result, *, sort=None) -> matplotlib.figure.Figure``
(``sort``: how a kind that lists studies orders them; a kind that lists none refuses it).
Adding a kind is one line::

    from bayes_msc.report.manuscript import register_figure
    register_figure("funnel", funnel_figure)

A builder that also takes ``data=`` receives the data the fit was run on (what a result does
not carry, e.g. the register's publication years); ``check=`` (``check(spec, sort)``) refuses
a request before anything is fitted. Files are written in the format their suffix names
(``.svg``, ``.png``, ``.pdf``; :func:`bayes_msc.report.figures.save_figure`).
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..io.errors import InputError, Location
from . import figures
from .forest import SORTS, forest_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure


@dataclass(frozen=True)
class FigureKind:
    """A registered figure kind: its builder and an optional check run before fitting."""

    builder: Callable[..., "Figure"]
    check: Callable[[Any, str | None], None] | None = None

    @property
    def takes_data(self) -> bool:
        return "data" in inspect.signature(self.builder).parameters


FIGURES: dict[str, FigureKind] = {}


def register_figure(name: str, builder: Callable[..., "Figure"], *,
                    check: Callable[[Any, str | None], None] | None = None) -> FigureKind:
    """Make ``builder(result, *, sort=None) -> Figure`` available as figure kind ``name``
    (replacing any); ``check(spec, sort)`` raises :class:`~bayes_msc.io.errors.InputError`
    for a request the kind cannot draw, before anything is fitted."""
    kind = FigureKind(builder, check)
    FIGURES[name] = kind
    return kind


def figure_kinds() -> tuple[str, ...]:
    """The registered figure kinds, by name."""
    return tuple(FIGURES)


def _kind(name: str) -> FigureKind:
    try:
        return FIGURES[name]
    except KeyError:
        raise InputError(f"unknown figure {name!r}; known: {', '.join(FIGURES)}", Location("figure")) from None


def check_figure_request(name: str, spec, sort: str | None = None, path: str | os.PathLike | None = None) -> None:
    """Everything that can be refused before fitting: the kind, the file's suffix, the sort,
    and the kind's own check against the spec (e.g. a dose-response curve needs a form)."""
    kind = _kind(name)
    if path is not None:
        figures.figure_format(path)
    if sort is not None and sort not in SORTS:
        raise InputError(f"unknown sort {sort!r}; choose one of: {', '.join(SORTS)}", Location("--sort"))
    if kind.check is not None:
        kind.check(spec, sort)


def figure(result, kind: str, path: str | os.PathLike | None = None, *, sort: str | None = None,
           data: Any = None) -> "Figure":
    """Draw figure ``kind`` of a fitted ``result``; save it to ``path`` when given.

    Parameters
    ----------
    kind
        A registered kind (:func:`figure_kinds`): ``"forest"`` (per-study numbers beside the
        rows: events/n per arm or estimate ± SE, observed and model estimates with 95%
        intervals, weights), ``"dose"`` (the dose-response curve; the fit needs a dose-response
        form), ``"prior"`` (prior against posterior of the pooled effect and τ), ``"funnel"``
        (contour-enhanced funnel plot of the studies in the frequentist rows) or
        ``"cumulative"`` (the pooled effect as the trials accrued, by publication year).
    path
        ``.svg``, ``.png`` (300 dpi) or ``.pdf``; any other suffix is refused before drawing.
        Written atomically.
    sort
        Study order for kinds that list studies: ``"year"``, ``"weight"``, ``"effect"`` or
        ``"label"`` (:func:`bayes_msc.report.forest.forest_table`).
    data
        The register or data file the fit used, for what the result does not carry (years);
        default: the embedded register.

    Returns
    -------
    matplotlib.figure.Figure
        Built on ``Figure`` directly: nothing is added to pyplot's state.
    """
    check_figure_request(kind, result.spec, sort, path)
    entry = _kind(kind)
    extra = {"data": data} if entry.takes_data else {}
    fig = entry.builder(result, sort=sort, **extra)
    if path is not None:
        figures.save_figure(fig, path)
    return fig


# -- the kinds -------------------------------------------------------------------------------


def _no_sort(name: str):
    def check(spec, sort):
        if sort is not None:
            raise InputError(f"the {name} figure has no study order to choose; --sort applies to the forest plot",
                             Location("--sort"))
    return check


def _dose_check(spec, sort):
    _no_sort("dose")(spec, sort)
    if spec.model.dose_response == "none":
        raise InputError("the dose figure needs a dose-response fit: add --dose-response loglinear or emax",
                         Location("--dose-response"))


def dose_figure(result, *, sort: str | None = None) -> "Figure":
    """The dose-response curve on the stated scale: posterior median with 50% and 95% bands,
    doses outside those studied shaded as extrapolation."""
    _dose_check(result.spec, sort)
    dose = result.dose_response
    measure = result.outcome.measure
    low, high = dose.studied_range
    return figures.dose_curve_plot(dose.bands(), xlabel=f"dose (×10⁶ cells/kg, {dose.metric.replace('_', ' ')})",
                                   ylabel=measure.label(), reference=measure.null, studied=(low, high))


def prior_figure(result, *, sort: str | None = None) -> "Figure":
    """Prior against posterior densities of the pooled effect and the between-study SD τ
    (under a dose-response form, of its parameters)."""
    from .generic import key_parameters
    from .sections import prior_posterior_panels

    _no_sort("prior")(result.spec, sort)
    panels, _ = prior_posterior_panels(result, key_parameters(result.spec, result.outcome))
    return figures.prior_posterior_plot(panels)


def funnel_figure(result, *, sort: str | None = None) -> "Figure":
    """Contour-enhanced funnel plot (:func:`bayes_msc.report.frequentist.funnel_figure`)."""
    from .frequentist import funnel_figure as draw

    return draw(result, sort=sort)


def cumulative_figure(result, *, sort: str | None = None, data: Any = None) -> "Figure":
    """The pooled effect as the trials accrued (:func:`bayes_msc.analyses.cumulative.cumulative_analysis`,
    masked refits of the fit's compiled model), drawn by
    :func:`bayes_msc.report.figures_cumulative.cumulative_figure`."""
    from ..analyses.cumulative import cumulative_analysis
    from .figures_cumulative import cumulative_figure as draw

    return draw(cumulative_analysis(result.spec, data))


register_figure("forest", forest_figure)
register_figure("funnel", funnel_figure, check=_no_sort("funnel"))
register_figure("cumulative", cumulative_figure, check=_no_sort("cumulative"))
register_figure("dose", dose_figure, check=_dose_check)
register_figure("prior", prior_figure, check=_no_sort("prior"))


__all__ = ["FIGURES", "FigureKind", "check_figure_request", "figure", "figure_kinds", "register_figure"]

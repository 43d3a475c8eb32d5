"""How each outcome is presented: its report layout, registered by outcome name beside the layouts.

An outcome (:mod:`bayes_msc.outcomes`) says what is measured and how it is modelled; how a report
shows it lives here, so the outcome modules import nothing of the report. A layout is a function
returning the report's sections (:class:`~bayes_msc.report.sections.Section`). An outcome with no
presentation registered gets the generic layout (:func:`bayes_msc.report.generic.generic_layout`:
the answer, forest plot, studies, priors, sensitivity, diagnostics, influence and methods), so
every outcome has a report; register one to add what is the outcome's own::

    from bayes_msc.report.presentations import Presentation, register_presentation
    register_presentation("ventilator_free_days", Presentation(layout=my_layout))
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..io.errors import InputError
from .generic import generic_layout
from .mortality import mortality_layout
from .oxygenation import oxygenation_layout
from .sections import Section


@dataclass(frozen=True)
class Presentation:
    """How a report shows one outcome: ``layout()`` returns the report's sections, in order.
    ``measures``: the names of the effect measures its words state (None: whichever the outcome
    has); a fit stated on another (a risk ratio, where the layout says "odds ratio") is refused."""

    layout: Callable[[], Sequence[Section]]
    measures: tuple[str, ...] | None = None


PRESENTATIONS: dict[str, Presentation] = {}


def register_presentation(outcome: str, presentation: Presentation) -> Presentation:
    """Show reports of the outcome named ``outcome`` with ``presentation`` (replacing any)."""
    PRESENTATIONS[outcome] = presentation
    return presentation


def mortality_with_who_benefits() -> list[Section]:
    """The mortality layout with "Who benefits" after the study flow (its module draws on the
    mortality layout's forest rows, so it is placed here rather than imported there)."""
    from .who_benefits import who_benefits

    sections = list(mortality_layout())
    at = next((i + 1 for i, s in enumerate(sections) if s.anchor == "flow"), len(sections))
    return sections[:at] + [who_benefits()] + sections[at:]


register_presentation("mortality", Presentation(layout=mortality_with_who_benefits, measures=("odds ratio",)))
register_presentation("oxygenation", Presentation(layout=oxygenation_layout))
# The generic layout, with the mortality family's limit: its study rows are odds ratios
register_presentation("binary", Presentation(layout=generic_layout, measures=("odds ratio",)))


def layout_for(outcome) -> Sequence[Section]:
    """The sections of a report of ``outcome`` (an :class:`~bayes_msc.outcomes.Outcome`, or its
    name), from the presentation registered for its name, else the generic layout."""
    name = getattr(outcome, "name", outcome)
    presentation = PRESENTATIONS.get(name)
    if presentation is None:
        return generic_layout()
    measure = getattr(getattr(outcome, "measure", None), "name", None)
    if presentation.measures is not None and measure is not None and measure not in presentation.measures:
        raise InputError(f"the {name} report states the effect as {' or '.join(presentation.measures)}, and this "
                         f"analysis states it as {measure}: report it with --effect-measure or (the text summary "
                         f"of `fit` states the {measure})")
    return presentation.layout()

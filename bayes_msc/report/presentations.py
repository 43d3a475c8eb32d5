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

from .generic import generic_layout
from .mortality import mortality_layout
from .oxygenation import oxygenation_layout
from .sections import Section


@dataclass(frozen=True)
class Presentation:
    """How a report shows one outcome: ``layout()`` returns the report's sections, in order."""

    layout: Callable[[], Sequence[Section]]


PRESENTATIONS: dict[str, Presentation] = {}


def register_presentation(outcome: str, presentation: Presentation) -> Presentation:
    """Show reports of the outcome named ``outcome`` with ``presentation`` (replacing any)."""
    PRESENTATIONS[outcome] = presentation
    return presentation


register_presentation("mortality", Presentation(layout=mortality_layout))
register_presentation("oxygenation", Presentation(layout=oxygenation_layout))


def layout_for(outcome) -> Sequence[Section]:
    """The sections of a report of ``outcome`` (an :class:`~bayes_msc.outcomes.Outcome`, or its
    name), from the presentation registered for its name, else the generic layout."""
    name = getattr(outcome, "name", outcome)
    presentation = PRESENTATIONS.get(name)
    return generic_layout() if presentation is None else presentation.layout()

"""How each outcome is presented: its report layout, registered by outcome name beside the layouts.

An outcome (:mod:`bayes_msc.outcomes`) says what is measured and how it is modelled; how a report
shows it lives here, so the outcome modules import nothing of the report. A layout is a function
returning the report's sections (:class:`~bayes_msc.report.sections.Section`); an outcome with no
presentation registered has no HTML report (``fit`` still prints its text summary)::

    from bayes_msc.report.presentations import Presentation, register_presentation
    register_presentation("ventilator_free_days", Presentation(layout=my_layout))
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..io.errors import InputError
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
    name), from the presentation registered for its name."""
    name = getattr(outcome, "name", outcome)
    presentation = PRESENTATIONS.get(name)
    if presentation is None:
        known = ", ".join(sorted(PRESENTATIONS)) or "none"
        raise InputError(
            f"no HTML report layout for outcome {name!r} yet (reports exist for: {known}); "
            "use `fit` for the text summary"
        )
    return presentation.layout()

"""The outcome registry: one :class:`~bayes_msc.outcomes.base.Outcome` per outcome name.

Specs name their outcome (``outcome = "mortality"``); everything downstream asks
``get_outcome(spec.outcome)``. Adding an outcome is writing one module with an ``Outcome``
subclass and calling :func:`register_outcome` (docs/developers/adding-an-outcome.md).
"""

from __future__ import annotations

from .base import DOSE_VARS, EffectMeasure, Measured, Outcome, ParameterRoles
from .binary import BINARY
from .continuous import NORMAL_NORMAL, OXYGENATION
from .continuous_trials import CONTINUOUS_TRIALS
from .mortality import MORTALITY

OUTCOMES: dict[str, Outcome] = {}


def register_outcome(outcome: Outcome) -> Outcome:
    """Make ``outcome`` available to specs by its ``name`` (replacing one of the same name)."""
    OUTCOMES[outcome.name] = outcome
    return outcome


# a user's own one-table trials (binary, continuous) after the shipped analyses: their settings
# tables come after those the shipped analyses' settings are read from
for _outcome in (MORTALITY, OXYGENATION, NORMAL_NORMAL, BINARY, CONTINUOUS_TRIALS):
    register_outcome(_outcome)


ENTRY_POINT_GROUP = "bayes_msc.outcomes"
_entry_points_loaded = False


def known_outcomes() -> dict[str, Outcome]:
    """Every registered outcome, including those other packages declare as entry points in
    the ``bayes_msc.outcomes`` group (an Outcome instance or class), loaded on first use."""
    global _entry_points_loaded
    if not _entry_points_loaded:
        from importlib.metadata import entry_points

        _entry_points_loaded = True
        for point in entry_points(group=ENTRY_POINT_GROUP):
            declared = point.load()
            register_outcome(declared() if isinstance(declared, type) else declared)
    return OUTCOMES


def get_outcome(name: str) -> Outcome:
    from ..io.errors import InputError

    outcomes = OUTCOMES if name in OUTCOMES else known_outcomes()
    try:
        return outcomes[name]
    except KeyError:
        raise InputError(f"unknown outcome {name!r}; known: {', '.join(outcomes)}") from None


__all__ = ["DOSE_VARS", "EffectMeasure", "Measured", "OUTCOMES", "Outcome", "ParameterRoles", "get_outcome", "known_outcomes",
           "register_outcome"]

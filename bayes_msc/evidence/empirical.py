"""Empirical (observed) effects of one 2x2 table: what a study's arm counts say on their own.

The model uses the counts themselves, with no correction; these estimates are what the forest
plot's observed column, the frequentist rows and a new trial's own estimate show. One home, so
that every place shows the same number for the same table.
"""

from __future__ import annotations

import math

import numpy as np

# Added to every cell of a 2x2 table with a zero cell, and to no other table (Cochrane's
# default); a table with no events, or only events, in both arms is left out of ratio measures.
CORRECTION = 0.5
Z95 = 1.959963984540054


def empirical_log_or(deaths_t: float, n_t: float, deaths_c: float, n_c: float) -> tuple[float, float, bool]:
    """Empirical log odds ratio and its Wald SE; ``CORRECTION`` is added to every cell when any
    cell is zero (the model itself uses no correction). Returns (estimate, se, corrected)."""
    cells = np.array([deaths_t, n_t - deaths_t, deaths_c, n_c - deaths_c], float)
    corrected = bool((cells == 0).any())
    if corrected:
        cells = cells + CORRECTION
    a, b, c, d = cells
    return math.log(a * d / (b * c)), math.sqrt(1 / a + 1 / b + 1 / c + 1 / d), corrected


def empirical_log_rr(events_t: float, n_t: float, events_c: float, n_c: float) -> tuple[float, float, bool]:
    """Empirical log risk ratio and its Wald SE (0.5 added to every cell of a table with a zero cell)."""
    cells = np.array([events_t, n_t - events_t, events_c, n_c - events_c], float)
    corrected = bool((cells == 0).any())
    if corrected:
        cells = cells + CORRECTION
    a, b, c, d = cells
    return math.log((a / (a + b)) / (c / (c + d))), math.sqrt(1 / a - 1 / (a + b) + 1 / c - 1 / (c + d)), corrected


def empirical_risk_difference(events_t: float, n_t: float, events_c: float, n_c: float) -> tuple[float, float, bool]:
    """Risk difference (treated minus control) and its Wald SE; no correction is needed."""
    p, q = events_t / n_t, events_c / n_c
    return p - q, math.sqrt(p * (1 - p) / n_t + q * (1 - q) / n_c), False


# The empirical estimate of each measure that arm counts can give, by the measure's name
# (bayes_msc.outcomes.EffectMeasure.name); its model scale is the log for ratios.
EMPIRICAL_FROM_COUNTS = {
    "odds ratio": empirical_log_or,
    "risk ratio": empirical_log_rr,
    "risk difference": empirical_risk_difference,
}

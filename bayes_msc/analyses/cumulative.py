"""Cumulative meta-analysis: the pooled effect as the trials accrued, by publication year.

Row *k* of :func:`cumulative_analysis` is the posterior given every included study published
in or before year *k* (studies of one year enter together), or, ``by="study"``, given the
first *k* studies in (year, label) order. Every row is a masked refit of one compiled model:
the evidence is built once with all included studies, and a row masks the studies not yet
published (their counts become n = deaths = 0, as in leave-one-study-out,
:meth:`bayes_msc.evidence.mortality.MortalityEvidence.masked`), so array shapes, and the
compiled model, stay the same and nothing recompiles after the first fit. A masked study
carries no information: its own parameters follow their priors, and the pooled effect's
posterior is that of a fit on the unmasked studies alone (within Monte Carlo error; the
sampler explores the masked studies' parameters too, so the draws differ from those of a fit
compiled for fewer studies). The last row masks nothing and is the full fit, draw for draw.

Each row carries its own sampler diagnostics; a row whose fit fails them is flagged in the
table, the text and the figure, never dropped: an early row with one or two trials has a
between-trial SD the data cannot inform, and that is part of the history.

The publication year of a study is the register covariate ``publication_year``
(:func:`publication_years`); a study without one is refused, never guessed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ..io.errors import InputError, Location

YEAR_COVARIATE = "publication_year"
ORDERS = ("year", "study")  # one row per publication year, or one per study


# -- publication years -----------------------------------------------------------------------


def publication_years(register_or_evidence: Any) -> pd.Series:
    """Each study's publication year (study id -> float year; NaN where not recorded).

    Reads the register covariate ``publication_year`` through
    ``bayes_msc.evidence.covariates.study_covariates`` where that module exists; otherwise
    the register's long-format ``covariates`` table (``study_id, covariate, value, source,
    quality, notes``: a loaded table, or ``covariates.csv`` beside the register's tables).
    A per-study table (a ``DataFrame``, or an object with ``rows``, e.g. a one-table file)
    gives its ``year`` column, its studies named by ``study_id`` or ``study``.

    Only this function knows where years come from, so the cumulative analysis reads them
    the same way whatever the source.
    """
    from ..evidence.register import Register

    if isinstance(register_or_evidence, Register):
        from ..evidence.covariates import study_covariates

        column = study_covariates(register_or_evidence, [YEAR_COVARIATE])[YEAR_COVARIATE]
        return pd.to_numeric(column, errors="coerce").astype(float).rename(YEAR_COVARIATE)
    rows = getattr(register_or_evidence, "rows", register_or_evidence)
    if isinstance(rows, pd.DataFrame):
        key = "study_id" if "study_id" in rows else "study" if "study" in rows else None
        if key is None or "year" not in rows:
            where = Location(str(getattr(register_or_evidence, "path", "per-study table")), field="year")
            raise InputError("no year column: a cumulative analysis needs each study's publication year", where)
        years = pd.to_numeric(rows["year"], errors="coerce").astype(float)
        return pd.Series(years.to_numpy(), index=rows[key].astype(str).to_numpy(), name=YEAR_COVARIATE)
    raise InputError(f"publication years: expected a register or a per-study table, got "
                     f"{type(register_or_evidence).__name__}")


# -- the analysis ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Cumulative:
    """The headline numbers as the trials accrued: one row per year (or study).

    ``table`` columns: ``step`` (the year, or the study's label), ``year``, ``studies`` (how
    many are unmasked), ``added`` (labels entering at this row), ``study_ids``, the pooled
    effect ``effect_median/lower/upper`` (stated scale, equal-tailed; ``effect_median_mcse``),
    ``prob_benefit`` and ``prob_meaningful`` with MCSEs, ``tau_median/lower/upper`` (model
    scale), the new-trial effect ``predictive_median/lower/upper``, and the row's diagnostics (``divergences``,
    ``rhat_max``, ``ess_bulk_min``, ``ess_tail_min``, ``diagnostics_passed``,
    ``diagnostics_failed``) and ``seconds``. ``table.attrs`` holds ``words``, so a table alone
    can be drawn (:func:`bayes_msc.report.figures_cumulative.cumulative_figure`).
    """

    outcome: str
    by: str  # "year" or "study"
    table: pd.DataFrame
    words: dict  # effect, benefit, meaningful, digits, log_scale, null, meaningful_threshold, measure
    benefit: str  # "P(OR < 1); benefit = decrease"
    statement: str
    compiles: int  # models compiled for the whole table (0 when the structure was compiled already)
    years: dict  # study id -> publication year of every included study

    def to_dict(self) -> dict:
        return {"outcome": self.outcome, "by": self.by, "benefit": self.benefit, "words": self.words,
                "statement": self.statement, "compiles": self.compiles, "years": self.years,
                "table": self.table.to_dict(orient="records")}


def words(spec) -> dict:
    """Column words in the outcome's vocabulary, with what a figure needs to draw the scale."""
    from .provenance import _words

    outcome = spec.outcome_type
    m = outcome.measure
    return {**_words(spec), "measure": m.label(), "short": m.short, "log_scale": bool(m.log_scale),
            "null": m.null, "meaningful_threshold": float(outcome.meaningful_threshold(spec)),
            "tau": f"τ ({m.model_scale})" if m.model_scale else "τ"}


def accrual_steps(studies: list[str], labels: dict[str, str], years: dict[str, float],
                  by: str) -> list[tuple[Any, float, list[str]]]:
    """(step, year, studies entering) in publication order: one step per year (ties by
    year enter together) or, ``by="study"``, one per study in (year, label) order."""
    order = sorted(studies, key=lambda s: (years[s], labels.get(s, s), s))
    if by == "study":
        return [(labels.get(s, s), years[s], [s]) for s in order]
    steps: list[tuple[Any, float, list[str]]] = []
    for s in order:
        if steps and steps[-1][1] == years[s]:
            steps[-1][2].append(s)
        else:
            steps.append((int(years[s]), years[s], [s]))
    return steps


def check_years(evidence, years: pd.Series) -> dict[str, float]:
    """The publication year of every included study, or an :class:`InputError` naming the
    studies without one (a cumulative analysis never guesses a year)."""
    labels = evidence.inclusion.set_index("study_id")["label"].to_dict()
    missing = [s for s in evidence.studies if s not in years.index or not np.isfinite(years.get(s, np.nan))]
    if missing:
        named = ", ".join(f"{s} ({labels.get(s, s)})" for s in missing)
        raise InputError(f"no publication year for {len(missing)} included stud{'ies' if len(missing) > 1 else 'y'}: "
                         f"{named}. Record each as the register covariate {YEAR_COVARIATE} (covariates.csv), or a "
                         "year column in a one-table file; the cumulative analysis does not guess years")
    return {s: float(years[s]) for s in evidence.studies}


def _row_numbers(result) -> dict:
    from .sensitivity import failed_checks

    d = result.decisions
    checks = {c.name: c for c in result.diagnostics.checks}
    return {**d.headline(), "effect_median_mcse": d.pooled_effect.mcse_median,
            "tau_lower": d.tau.lower, "tau_upper": d.tau.upper,
            "predictive_median": d.predictive_effect.median, "predictive_lower": d.predictive_effect.lower,
            "predictive_upper": d.predictive_effect.upper,
            "divergences": int(checks["divergences"].value), "rhat_max": float(checks["R-hat"].value),
            "ess_bulk_min": float(checks["bulk ESS"].value), "ess_tail_min": float(checks["tail ESS"].value),
            "diagnostics_passed": bool(result.diagnostics.passed),
            "diagnostics_failed": failed_checks(result.diagnostics)}


def cumulative_analysis(spec, data: Any = None, *, by: str = "year", progress: Callable | None = None) -> Cumulative:
    """The posterior of the pooled effect as the included studies accrued.

    Parameters
    ----------
    spec
        A resolved :class:`~bayes_msc.spec.AnalysisSpec` (its evidence set decides which
        studies are included; accrual only orders them).
    data
        A register (directory or loaded; default the embedded one) with each included study's
        ``publication_year``, or what :func:`publication_years` reads.
    by
        ``"year"``: one row per publication year, studies of a year entering together;
        ``"study"``: one row per study in (year, label) order.
    progress
        ``progress(done, total, failed, eta)`` as rows finish.
    """
    from ..api import fit_spec, load_data
    from ..engine import sampling

    if by not in ORDERS:
        raise InputError(f"by must be one of {', '.join(ORDERS)}, got {by!r}", Location("--by"))
    source = load_data(spec, data)
    evidence = spec.outcome_type.build_evidence(source, spec)
    if not evidence.studies:
        raise InputError(f"no study in the register enters the {spec.name} analysis; see `bayes_msc data show`")
    years = check_years(evidence, publication_years(source))
    labels = evidence.inclusion.set_index("study_id")["label"].to_dict()
    steps = accrual_steps(list(evidence.studies), labels, years, by)
    before = sampling.COMPILE_COUNT["nutpie"]
    rows, kept, started = [], set(), time.perf_counter()
    for number, (step, year, entering) in enumerate(steps, 1):
        kept |= set(entering)
        masked = set(evidence.studies) - kept
        start = time.perf_counter()
        result = fit_spec(spec, evidence=evidence.masked(masked) if masked else evidence, compare_designs=False)
        rows.append({"step": step, "year": int(year), "studies": len(kept),
                     "added": "; ".join(labels.get(s, s) for s in entering),
                     "study_ids": ", ".join(s for s in evidence.studies if s in kept),
                     **_row_numbers(result), "seconds": time.perf_counter() - start})
        if progress is not None:
            elapsed = time.perf_counter() - started
            progress(number, len(steps), 0, elapsed / number * (len(steps) - number))
    table = pd.DataFrame(rows)
    w = words(spec)
    table.attrs["words"] = w
    from .sensitivity import benefit_event

    return Cumulative(spec.outcome, by, table, w, benefit_event(spec), _statement(table, w),
                      sampling.COMPILE_COUNT["nutpie"] - before, years)


def _statement(table: pd.DataFrame, w: dict) -> str:
    d = w["digits"]
    first, last = table.iloc[0], table.iloc[-1]
    flagged = table.loc[~table["diagnostics_passed"].astype(bool), "step"].astype(str).tolist()
    crossing = table[table["prob_benefit"] >= 0.9]
    when = (f"{w['benefit']} first reached 0.90 at {crossing.iloc[0]['step']} ({int(crossing.iloc[0]['studies'])} "
            "studies)" if len(crossing) else f"{w['benefit']} never reached 0.90")
    text = (f"From {first['step']} ({int(first['studies'])} stud{'ies' if first['studies'] != 1 else 'y'}) to "
            f"{last['step']} ({int(last['studies'])} studies) the {w['effect']} moved from {first['effect_median']:{d}} "
            f"({first['effect_lower']:{d}} to {first['effect_upper']:{d}}) to {last['effect_median']:{d}} "
            f"({last['effect_lower']:{d}} to {last['effect_upper']:{d}}) and {w['benefit']} from "
            f"{first['prob_benefit']:.3f} to {last['prob_benefit']:.3f}; {when}. The last row is the full fit.")
    if flagged:
        text += (f" Rows whose fit failed its diagnostics (flagged, not hidden): {', '.join(flagged)}; "
                 "read their numbers as unreliable.")
    return text


def render_cumulative(cumulative: Cumulative) -> str:
    """The cumulative table for the terminal."""
    from .sensitivity import diagnostics_word

    w = cumulative.words
    d = w["digits"]
    head = "year" if cumulative.by == "year" else "study (year)"
    steps = [str(r.step) if cumulative.by == "year" else f"{r.step} ({r.year})" for r in cumulative.table.itertuples()]
    width = max(len(head), *(len(s) for s in steps))
    effect, benefit = w["effect"] + " (95% ETI)", w["benefit"] + " (MCSE)"
    lines = [f"Cumulative meta-analysis by {'publication year' if cumulative.by == 'year' else 'study'} "
             "(masked refits of one compiled model; medians, 95% equal-tailed intervals)",
             f"  {head:<{width}} {'k':>3}  {effect:<26} {benefit:<22} {w['meaningful']:<16} {'tau':>6}  {'div':>4} "
             f"{'R-hat':>6} {'ESS':>6}  diagnostics"]
    for step, row in zip(steps, cumulative.table.itertuples()):
        band = f"{row.effect_median:{d}} ({row.effect_lower:{d}} to {row.effect_upper:{d}})"
        ess = min(row.ess_bulk_min, row.ess_tail_min)
        lines.append(
            f"  {step:<{width}} {int(row.studies):>3}  {band:<26} "
            f"{f'{row.prob_benefit:.3f} ({row.prob_benefit_mcse:.3f})':<22} {row.prob_meaningful:<16.3f} "
            f"{row.tau_median:>6.2f}  {int(row.divergences):>4} {_number(row.rhat_max, '.3f'):>6} "
            f"{_number(ess, '.0f'):>6}  {diagnostics_word(row)}")
        if cumulative.by == "year":
            lines.append(f"  {'':<{width}}     + {row.added}")
    return "\n".join(lines + ["", cumulative.statement, f"P(benefit) = {cumulative.benefit}."])


def _number(value: float, spec: str) -> str:
    return "n/a" if value is None or not math.isfinite(value) else format(value, spec)

"""Plain-text rendering of results and inclusion reports for the terminal."""

from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd

from .terminal import one_line



def _iv(interval, fmt: str = ".2f", *, ends: bool = False) -> str:
    pct = round(interval.ci_prob * 100)
    # the median's Monte Carlo error, as --json gives it (one more digit: it is small)
    digits = int(fmt[1:-1]) + 1

    def mc(value):
        return "n/a" if value != value else f"{value:.{digits}f}"

    # ends=True: the interval ends' own MCSEs too (quantile MCSE), where the tails mix slowly (tau)
    end_text = f", ends {mc(getattr(interval, 'mcse_lower', float('nan')))} / {mc(getattr(interval, 'mcse_upper', float('nan')))}" if ends else ""
    return (f"{interval.median:{fmt}} ({pct}% {interval.ci_kind.upper()} {interval.lower:{fmt}} to {interval.upper:{fmt}}; "
            f"MCSE {mc(interval.mcse_median)}{end_text})")


def render_inclusion(inclusion: pd.DataFrame, title: str, bias_adjusted: bool = True) -> str:
    from ..evidence.selection import design_sentence

    sentence = design_sentence(inclusion, bias_adjusted)
    lines = [title] + ([_wrap(sentence)] if sentence else [])
    for row in inclusion.itertuples():
        mark = "+" if row.status == "included" else "-"
        design = f" ({row.allocation})" if isinstance(getattr(row, "allocation", None), str) else ""
        lines.append(f"  {mark} {one_line(row.label)}{one_line(design)}: {row.status}")
        if row.status == "included":
            quality = f"; quality {row.quality}" if isinstance(row.quality, str) and row.quality else ""
            lines.append(_wrap(f"contributes {row.contribution}: {row.detail}{quality}"))
            if row.reason:
                lines.append(_wrap(f"note: {row.reason}"))
        else:
            lines.append(_wrap(f"reason: {row.reason}"))
    return "\n".join(lines)


def _wrap(text: str) -> str:
    return textwrap.fill(text, width=100, initial_indent="      ", subsequent_indent="      ")


def _header(result) -> list[str]:
    spec = result.spec
    included = int((result.evidence.inclusion["status"] == "included").sum())
    listed = len(result.evidence.inclusion)
    evidence = spec.evidence.evidence_set if "evidence_set" in result.outcome.evidence_keys else "estimates"
    return [
        f"{spec.title}",
        f"analysis {spec.name} | evidence {evidence}: "
        f"{included} of {listed} studies enter | spec {spec.content_hash()[:12]} | data {result.evidence.register_hash[:12]}",
        "priors: " + "; ".join(f"{role} {text}" for role, text in spec.priors.describe().items()),
        *_design_lines(result),
        *([f"likelihood: {spec.model.likelihood} ("
           + ("no baselines" if spec.model.likelihood == "conditional" else f"{spec.model.baselines} baselines") + ")"]
          if "likelihood" in result.outcome.model_keys else []),
        "",
    ]


def _design_lines(result) -> list[str]:
    """Which designs the pooled estimate rests on (e.g. "11 randomised trials; 7 non-randomised
    studies not pooled: design"), and how far the non-randomised studies moved it."""
    from ..evidence.selection import design_sentence

    if "allocation" not in result.evidence.inclusion:
        return []
    sentence = design_sentence(result.evidence.inclusion, result.outcome.adjusts_design_bias)
    lines = [f"designs: {sentence}"] if sentence else []
    shift = getattr(result, "design_shift", None)
    if shift is not None:
        lines.append(shift.sentence())
    return lines


def render_dose_response(dose, spec) -> list[str]:
    """The dose table and the best-dose summary of a dose-response fit."""
    if dose is None:
        return []
    outcome = spec.outcome_type
    m = outcome.measure
    metric = "cumulative" if dose.metric == "cumulative" else "per infusion"
    what = m.label()
    threshold = f"{m.short} {_better(outcome.benefit_direction(spec))} {outcome.meaningful_threshold(spec):g}"
    with_risk = "treated_risk_median" in dose.table
    low, high = dose.studied_range
    lines = [
        "",
        f"Dose-response ({dose.form}; dose = million cells/kg {metric}; doses studied {low:.2g} to {high:.2g})",
        f"  {'dose':>6}  {what + ' median (50%; 95% ETI)':<44} {'P(benefit)':<20} {'P(' + threshold + ')':<20}"
        + ("  risk at baseline" if with_risk else ""),
    ]
    fmt = m.digits
    for row in dose.table.itertuples():
        band = f"{row.median:{fmt}} ({row.lower_50:{fmt}} to {row.upper_50:{fmt}}; {row.lower_95:{fmt}} to {row.upper_95:{fmt}})"
        flag = "  extrapolated" if row.extrapolated else ""
        risk = f"  {row.treated_risk_median:.1%}" if with_risk else ""
        lines.append(
            f"  {row.dose:>6g}  {band:<44} {row.prob_benefit:.3f} ({row.prob_benefit_mcse:.3f})     "
            f"{row.prob_meaningful:.3f} ({row.prob_meaningful_mcse:.3f})     {risk}{flag}"
        )
    best = dose.best_dose
    lines += [
        f"  best dose within the studied range: median {best['median']:.2g} (95% ETI {best['lower_95']:.2g} to {best['upper_95']:.2g})"
        + ("" if best["prob_benefit_range"] < 0.01 else
           f"; highest P(benefit) {best['max_prob_benefit']:.3f} at {best['dose_max_prob_benefit']:.2g}"),
        _wrap(best["note"]),
    ]
    return lines


def _footer(result, studies: bool) -> list[str]:
    t = result.timings
    evidence = (["", render_diagnostics(result.diagnostics), "",
                 render_inclusion(result.evidence.inclusion, "Evidence",
                                  bias_adjusted=result.outcome.adjusts_design_bias)] if studies
                else ["", *render_entered(result), "", *_diagnostics_lines(result.diagnostics)])
    return render_dose_response(result.dose_response, result.spec) + evidence + [
        f"time: import {t.get('import', 0):.1f} s, compile {t.get('compile', 0):.1f} s, "
        f"sample {t.get('sample', 0):.1f} s, post-process {t.get('postprocess', 0):.1f} s",
        _next_steps(result.spec, studies),
    ]


def _diagnostics_lines(diagnostics) -> list[str]:
    """The diagnostics verdict in one line, and the checks that failed in a second."""
    lines = [f"Diagnostics: {diagnostics.verdict()}"]
    failed = [c for c in diagnostics.checks if not c.passed]
    if failed:
        lines.append("  failed: " + "; ".join(
            f"{c.name} {'n/a' if c.value != c.value else f'{c.value:.3g}'} (threshold {c.threshold})" for c in failed))
    return lines


def _next_steps(spec, studies: bool) -> str:
    name = spec.name
    more = [f"report {name}"] + ([] if studies else [f"fit {name} --studies"])
    if "likelihood" in spec.outcome_type.model_keys:  # a binary outcome has a next-trial design
        more.append(f"design {name}")
    return "next: " + ", ".join(f"python -m bayes_msc {m}" for m in more)


def render_entered(result) -> list[str]:
    """One line per study that entered: the numbers the model reads and their time point."""
    evidence = result.evidence
    inclusion = evidence.inclusion
    included = inclusion[inclusion["status"] == "included"]
    excluded = len(inclusion) - len(included)
    tail = (f"; {excluded} more listed, not entered: --studies says why" if excluded else "")
    if hasattr(evidence, "exact"):
        rows = _entered_counts(evidence, included)
        treated, control, events = getattr(evidence, "count_words", ("cells", "control", "deaths"))
        head = f"  {'trial':<30} {f'{treated} {events}/n':<22} {f'{control} {events}/n':<22} time point"
    elif hasattr(evidence, "terms") and (evidence.terms["kind"] == "contrast").all():
        fmt = result.outcome.measure.digits
        rows = [f"  {str(t.label)[:30]:<30} {f'{t.estimate:+{fmt}} ({t.se:{fmt}})':<22} {_text(t.timepoint)}"
                for t in evidence.terms.merge(included[["study_id", "label"]], on="study_id").itertuples()]
        head = f"  {'study':<30} {'estimate (SE)':<22} time point"
    elif hasattr(evidence, "terms"):
        rows = _entered_changes(evidence, included)
        head = f"  {'study':<30} {'cells change (SE)':<22} {'control change (SE)':<22} {'difference (SE)':<18} time point"
    else:
        rows = [f"  {str(r.label)[:30]:<30} {r.detail}" for r in included.itertuples()]
        head = f"  {'study':<30} what entered"
    return [f"What entered ({len(included)} studies{tail})", head, *rows]


def _entered_counts(evidence, included) -> list[str]:
    arms = evidence.arms
    exact = evidence.exact.set_index("arm_id").groupby("study_id") if len(evidence.exact) else None
    partial = {}
    for report in evidence.partial:
        partial.setdefault(report.study_id, []).append(report)
    lines = []
    for row in included.itertuples():
        own = arms[arms["study_id"] == row.study_id]
        counts = exact.get_group(row.study_id) if exact is not None and row.study_id in exact.groups else None
        cells = {1: [], 0: []}
        for arm in own.itertuples():
            if counts is not None and arm.arm_id in counts.index:
                c = counts.loc[arm.arm_id]
                cells[arm.treated].append(f"{int(c['deaths'])}/{int(c['n'])}")
        for report in partial.get(row.study_id, []):
            roles = set(own[own["arm_id"].isin(report.arms)]["treated"])
            text = report.description.split(" ", 1)[1] if report.kind == "bounded" else report.description
            cells[1 if roles == {1} else 0 if roles == {0} else 1].append(text)
        lines.append(f"  {str(row.label)[:30]:<30} {' + '.join(cells[1]) or '-':<22} {' + '.join(cells[0]) or '-':<22} "
                     f"{_timepoint(row)}")
    return lines


def _entered_changes(evidence, included) -> list[str]:
    terms = evidence.terms
    lines = []
    for row in included.itertuples():
        own = terms[terms["study_id"] == row.study_id]
        cols = {"cells": [], "control": [], "contrast": []}
        for t in own.itertuples():
            key = "contrast" if t.kind == "contrast" else "cells" if t.treated else "control"
            cols[key].append(f"{t.estimate:+.1f} ({t.se:.1f})")
        when = ", ".join(dict.fromkeys(str(t) for t in own["timepoint"] if isinstance(t, str) and t))
        lines.append(f"  {str(row.label)[:30]:<30} {' + '.join(cols['cells']) or '-':<22} "
                     f"{' + '.join(cols['control']) or '-':<22} {' + '.join(cols['contrast']) or '-':<18} {when}")
    return lines


def _timepoint(row) -> str:
    return _text(getattr(row, "timepoint", None))


def _text(value) -> str:
    return value if isinstance(value, str) else ""


def _better(direction: str) -> str:
    return "<" if direction == "decrease" else ">"


def render_result(result, studies: bool = False) -> str:
    """The terminal summary of any analysis, in the vocabulary of its outcome: the answer, what
    entered, the diagnostics verdict and what to run next on one screen; ``studies`` adds every
    listed study with what it contributes or why it does not enter, and each diagnostic."""
    d = result.decisions
    spec = result.spec
    m = result.outcome.measure
    fmt = m.digits
    better = _better(d.benefit_direction)
    unit = f" {d.unit}" if d.unit else ""
    at_dose = (f"; at the reference dose {spec.model.reference_dose:g}x10^6/kg"
               if spec.model.dose_response != "none" else "")
    pct = round(d.pooled_effect.ci_prob * 100)
    benefit = f"P({m.short} {better} {d.benefit_threshold:g})"
    lines = _header(result) + [
        f"Results ({m.label()}; benefit = {d.benefit_direction}: {m.short} {better} {d.benefit_threshold:g} favours {result.outcome.treatment_words}; "
        f"medians with {pct}% "
        f"equal-tailed intervals{at_dose})",
        f"  {'pooled ' + m.name:<44} {_iv(d.pooled_effect, fmt)}",
        f"  {m.name + ' in a new trial':<44} {_iv(d.predictive_effect, fmt)}",
        f"  {'between-trial SD tau (' + m.model_scale + ')':<44} {_iv(d.tau, fmt, ends=True)}",
        f"  {benefit:<32} pooled     {d.prob_benefit}",
    ]
    if d.meaningful_threshold != d.benefit_threshold:
        meaningful = f"P({m.short} {better} {d.meaningful_threshold:g}{unit})"
        lines.append(f"  {meaningful:<32} pooled     {d.prob_meaningful}  clinically meaningful (--clinically-meaningful)")
    lines.append(f"  {benefit:<32} new trial  {d.predictive_prob_benefit}")
    for item in d.extra:
        if hasattr(item.value, "ci_prob"):
            lines.append(f"  {item.label + ':':<44} {_iv(item.value, item.digits)}")
        elif isinstance(item.value, dict) and "text" in item.value:
            lines.append(f"  {item.value['text']}")
    if spec.decision.baseline_risk_source and "baseline_risk_source" in result.outcome.decision_keys:
        lines.append(_wrap(f"(baseline risk: {spec.decision.baseline_risk_source})"))
    if getattr(result, "covariates", None):  # a meta-regression's terms
        from ..models.regression import covariate_table_text

        lines.append(covariate_table_text(result.covariates))
    return "\n".join(lines + _footer(result, studies))


def render_diagnostics(diagnostics) -> str:
    lines = ["Diagnostics"]
    for c in diagnostics.checks:
        value = ("n/a" if c.value != c.value else
                 f"{c.value:.3f}" if isinstance(c.value, float) and not float(c.value).is_integer() else f"{c.value:g}")
        lines.append(f"  {'ok  ' if c.passed else 'FAIL'} {c.name:<17} {value:>10}  (threshold {c.threshold}; {c.detail})")
    lines.append(f"  {diagnostics.verdict()}")
    return "\n".join(lines)


def render_derived(derived: pd.DataFrame, references: pd.Series | None = None) -> str:
    """Every derived number next to the numbers it came from (``data show``); a source that
    points at project notes is shown as the study's publication (``references``: by study id)."""
    from ..evidence.citation import public_source

    references = references if references is not None else pd.Series(dtype=object)
    lines = ["Derived numbers (PaO2/FiO2 change, mmHg unless stated; * = enters the analysis)"]
    for row in derived.itertuples():
        arm = row.arm + (f" - {row.comparator}" if isinstance(row.comparator, str) and row.comparator else "")
        head = f"{'*' if row.used else ' '} {one_line(row.study_id)} {one_line(arm)}, {row.measure} {row.quantity}, {row.timepoint}: reported {row.reported}"
        lines.append(head + f" [{row.quality}; {public_source(row.source, references.get(row.study_id))}]")
        if row.derivation:
            lines.append(_wrap(f"-> {row.derivation}"))
    return "\n".join(lines)


def render_comparison(comparison) -> str:
    """Dose-response forms side by side: LOO table, Pareto k per study, best dose per form."""
    table = comparison.table
    lines = ["Dose-response forms compared by PSIS-LOO, leaving out one study at a time",
             f"  studies: {', '.join(comparison.common_studies)}"]
    for study, why in comparison.left_out.items():
        lines.append(f"  not in the comparison: {study} ({why})")
    lines.append(f"  {'form':<10} {'elpd':>8} {'se':>6} {'elpd_diff':>10} {'dse':>6} {'weight':>7}  diagnostics")
    for form, row in table.iterrows():
        diagnostics = comparison.results[form].diagnostics
        verdict = "pass" if diagnostics.passed else "FAIL: " + ", ".join(
            c.name for c in diagnostics.checks if not c.passed) + " outside thresholds"
        lines.append(f"  {form:<10} {row['elpd']:>8.1f} {row['se']:>6.1f} {row['elpd_diff']:>10.1f} {row['dse']:>6.1f} {row['weight']:>7.2f}  {verdict}")
    lines.append("  Pareto k per study (> 0.7: that study's LOO estimate is unreliable)")
    for study, ks in comparison.pareto_k.iterrows():
        lines.append(f"    {study:<16} " + "  ".join(f"{form} {k:.2f}" for form, k in ks.items()))
    lines.append(_wrap(comparison.statement))
    for form, result in comparison.results.items():
        if result.dose_response is not None:
            lines += render_dose_response(result.dose_response, result.spec)
    return "\n".join(lines)


def _diagnostics_word(row) -> str:
    from ..analyses.sensitivity import diagnostics_word

    return diagnostics_word(row)


def render_sensitivity(sens) -> str:
    """Prior-sensitivity table, psense diagnosis, verdict and refit timing."""
    table = sens.table
    measure = sens.measure
    fmt = measure.digits
    what = f"pooled {measure.short}"
    # the prior columns this grid varies (baseline and design bias only where the model has them)
    extra = [(c, w) for c, w in (("baseline_prior", "baseline prior"), ("design_bias_prior", "design bias prior"))
             if c in table]
    lines = ["Prior sensitivity: every combination of the named effect and heterogeneity presets"
             + (" (x design-bias presets)" if "design_bias_prior" in table else "")
             + (", then each other baseline preset" if "baseline_prior" in table else ""),
             f"  {'effect prior':<14} {'tau prior':<22} " + "".join(f"{w:<22} " for _, w in extra)
             + f"{what + ' (95% ETI)':<28} {'P(benefit)':<18} {'P(meaningful)':<14} tau    diagnostics"]
    for r in table.itertuples():
        band = f"{r.effect_median:{fmt}} ({r.effect_lower:{fmt}} to {r.effect_upper:{fmt}})"
        extra_cells = "".join(f"{getattr(r, c):<22} " for c, _ in extra)
        lines.append(f"  {r.effect_prior:<14} {r.heterogeneity_prior:<22} {extra_cells}{band:<28} {r.prob_benefit:.3f} ({r.prob_benefit_mcse:.3f})   "
                     f"{r.prob_meaningful:<14.3f} {r.tau_median:<6.2f} {_diagnostics_word(r)}")
    if sens.benefit:
        lines.append(f"  P(benefit) = {sens.benefit}")
    lines += ["", _wrap(sens.verdict), "", "Power-scaling sensitivity of the spec's own priors (psense; > 0.05 = sensitive)"]
    for name, row in sens.psense.iterrows():
        lines.append(f"  {name:<10} prior {row['prior']:.3f}  likelihood {row['likelihood']:.3f}  {row['diagnosis']}")
    from ..analyses.sensitivity import psense_explanation

    if psense_explanation(sens.psense):
        lines.append(_wrap(psense_explanation(sens.psense)))
    refit = f"{np.median(sens.refit_seconds):.2f} s" if sens.refit_seconds else "n/a"
    lines.append(f"time: first fit {sens.first_fit_seconds:.1f} s (compile included); median refit {refit} "
                 f"({len(sens.refit_seconds)} refits reused the compiled model; {sens.compiles} compiles in all)")
    return "\n".join(lines)


def render_influence(influence) -> str:
    """Leave-one-study-out table, Pareto k, and the most influential trial."""
    full = influence.full
    table = influence.table
    fmt = influence.measure.digits
    lines = ["Leave one study out (masked refits; nothing recompiles) and PSIS-LOO Pareto k",
             f"  {'all studies':<30} {full['effect_median']:{fmt}} ({full['effect_lower']:{fmt}} to {full['effect_upper']:{fmt}})   "
             f"P(benefit) {full['prob_benefit']:.3f} (MCSE {full['prob_benefit_mcse']:.3f})",
             f"  {'without':<30} {'pooled (95% ETI)':<24} {'P(benefit)':<11} {'change':<8} Pareto k"]
    for r in table.itertuples():
        band = f"{r.effect_median:{fmt}} ({r.effect_lower:{fmt}} to {r.effect_upper:{fmt}})"
        lines.append(f"  {one_line(r.label)[:30]:<30} {band:<24} {r.prob_benefit:<11.3f} {r.change_prob_benefit:+.3f}   {r.pareto_k:.2f}")
    if influence.benefit:
        lines.append(f"  P(benefit) = {influence.benefit}")
    from ..analyses.sensitivity import MONTE_CARLO_VARIANTS

    lines += ["", _wrap(influence.statement), _wrap(MONTE_CARLO_VARIANTS),
              f"time: first fit {influence.first_fit_seconds:.1f} s; median refit {np.median(influence.refit_seconds):.2f} s; "
              f"compiles after the first fit: {influence.compiles_after_first}"]
    return "\n".join(lines)

"""Section builders shared by every outcome, and the per-outcome layout registry.

A report is an ordered list of :class:`Section` objects. Which sections an analysis gets,
and how its outcome-specific parts (the answer, the forest plot, the predictive check) are
drawn, is decided by the layout registered for the outcome (:mod:`bayes_msc.report.presentations`);
the parts every outcome shares — the register table, prior vs posterior, sampler checks,
the dose-response hook, prior sensitivity, provenance — live here.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from ..io.errors import InputError
from ..evidence.citation import public_note
from ..evidence.selection import worst_quality
from . import figures
from .html import Markup, badge, el, figure, fmt, join, para, table

# -- context and layout ------------------------------------------------------------------


@dataclass(frozen=True)
class ReportContext:
    """Everything a section may draw on."""

    result: Any  # FitResult
    register: Any  # Register the fit used
    sensitivity: Any = None  # bayes_msc.analyses.sensitivity.PriorSensitivity, or a DataFrame
    influence: Any = None  # bayes_msc.analyses.sensitivity.Influence
    sbc: dict | None = None  # a saved SBC result (SBCResult.to_dict())
    design: Any = None  # bayes_msc.design.DesignResult: "The next trial"
    provenance: Any = None  # bayes_msc.analyses.provenance.ProvenanceTable (mortality), shown in the study-flow section
    oc: Any = None  # DataFrame: saved operating characteristics of the decision rules (simstudy.oc_report_table)
    simstudy: Any = None  # DataFrame: the saved likelihood simulation study (simstudy.simstudy_report_table)
    cumulative: Any = None  # bayes_msc.analyses.cumulative.Cumulative: the answer as the trials accrued
    generated: datetime = field(default_factory=datetime.now)

    @property
    def spec(self):
        return self.result.spec

    @property
    def posterior(self):
        return self.result.posterior


@dataclass(frozen=True)
class Section:
    anchor: str
    title: str
    build: Callable[[ReportContext], Markup | None]  # None: the section is left out


def collapsed(build: Callable[[ReportContext], Markup | None], summary: str) -> Callable[[ReportContext], Markup | None]:
    """``build``'s content folded under a ``<details>`` line: long reference tables stay one
    click away instead of pushing the figures a reader came for down the page."""

    def folded(ctx: ReportContext) -> Markup | None:
        content = build(ctx)
        return None if content is None else el("details", el("summary", summary), content)

    return folded


# -- small helpers -----------------------------------------------------------------------

DESIGN_NAMES = {
    "rct": "RCT",
    "rct_double_blind": "RCT, double-blind",
    "rct_open_label": "RCT, open-label",
    "rct_single_blind": "RCT, single-blind",
    "nonrandomised_controlled": "non-randomised, controlled",
    "dose_escalation_single_arm": "single-arm dose escalation",
    "withdrawn_registration": "registration (withdrawn)",
}


def nice(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return ""
    return DESIGN_NAMES.get(str(value), str(value).replace("_", " "))


def interval_text(iv, spec: str = ".2f", scale: float = 1.0, unit: str = "", *, ends_mcse: bool = False) -> str:
    """``median (95% equal-tailed interval lower to upper)`` of a decisions ``Interval``;
    ``ends_mcse``: with the Monte Carlo standard errors of the interval's ends."""
    mc = ""
    lo, hi = getattr(iv, "mcse_lower", float("nan")), getattr(iv, "mcse_upper", float("nan"))
    if ends_mcse and lo == lo and hi == hi:
        digits = f".{int(spec[1:-1]) + 1}f" if spec[1:-1].isdigit() else ".3f"
        mc = f"; MCSE of the ends {fmt(lo * scale, digits)} and {fmt(hi * scale, digits)}"
    return (
        f"{fmt(iv.median * scale, spec)}{unit} ({round(iv.ci_prob * 100)}% equal-tailed interval "
        f"{fmt(iv.lower * scale, spec)}{unit} to {fmt(iv.upper * scale, spec)}{unit}{mc})"
    )


def quantiles(draws, probs=(0.025, 0.5, 0.975)) -> np.ndarray:
    return np.quantile(np.asarray(draws, float).ravel(), probs)


def keynum(label: Any, value: Any, sub: Any) -> Markup:
    """One key-number card of the answer: a label, the number, a line under it."""
    return el("div", el("div", label, class_="label"), el("div", value, class_="value"),
              el("div", sub, class_="sub"), class_="keynum")


def keynums(*cards: Markup) -> Markup:
    return el("div", *cards, class_="keynums")


def eti_text(iv, spec: str = ".2f", scale: float = 1.0) -> str:
    """``95% equal-tailed lower to upper`` of a decisions ``Interval`` (the line under a card)."""
    return (f"{round(iv.ci_prob * 100)}% equal-tailed {fmt(iv.lower * scale, spec)} to "
            f"{fmt(iv.upper * scale, spec)}")


class Citations:
    """Numbered references in order of first citation: ``cite(text)`` returns ``[n]``."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def __call__(self, text: str) -> str:
        if text not in self.items:
            self.items.append(text)
        return f"[{self.items.index(text) + 1}]"

    def html(self) -> Markup:
        return el("ol", *(el("li", r) for r in self.items), class_="refs")


# -- the evidence register ---------------------------------------------------------------


def _dose_text(register, study_id: str, arm_id: str) -> str:
    doses = register.doses
    hit = doses[(doses["study_id"] == study_id) & (doses["arm_id"] == arm_id)]
    if hit.empty:
        return ""
    row = hit.iloc[0]
    if not pd.isna(row["dose_per_kg"]):
        text = f"{float(row['dose_per_kg']):g}×10⁶ cells/kg"
    elif not pd.isna(row["fixed_dose"]):
        text = f"{float(row['fixed_dose']):g}×10⁶ cells"
    else:
        return ""
    if not pd.isna(row["infusions"]):
        k = int(row["infusions"])
        text += f" × {k} infusion{'s' if k != 1 else ''}"
    if str(row["quality"]) not in ("primary", "secondary"):
        text += f" [{row['quality']}]"
    return text


def register_table(ctx: ReportContext, outcome_rows: pd.DataFrame) -> Markup:
    """Every study in the register: in or out (and why), design, n, dose, product, quality.

    ``outcome_rows`` is the register table holding the outcome's numbers (e.g. mortality),
    used for the per-study quality of those numbers.
    """
    register = ctx.register
    inclusion = ctx.result.evidence.inclusion.set_index("study_id")
    rows = []
    for _, study in register.studies.iterrows():
        sid = study["study_id"]
        arms = register.arms[register.arms["study_id"] == sid]
        if sid in inclusion.index:
            entry = inclusion.loc[sid]
            included = entry["status"] == "included"
            status = badge(included, "included", "excluded")
            what = f"enters as {entry['contribution']}: {entry['detail']}" if included else ""
            why = entry["reason"]
        else:
            included = False
            status = badge(False, "included", "excluded")
            what = ""
            why = f"not in the {ctx.spec.evidence.evidence_set!r} evidence set of this analysis"
        label = [el("strong", study["label"])]
        label += [el("br"), nice(study["design"]), el("br"),
                  el("span", join([study["population"], study["reference"]], " · "), class_="note")]
        arm_lines = []
        for _, arm in arms.iterrows():
            size = fmt(arm["n"], ".0f") if not pd.isna(arm["n"]) else (
                f"{arm['n_allowed']} (allowed sizes)" if not pd.isna(arm["n_allowed"]) else "?")
            product = f" ({nice(arm['product_class'])})" if arm["role"] == "cells" else ""
            dose = _dose_text(register, sid, arm["arm_id"])
            arm_lines.append(el("li", f"{arm['label']}{product}: n {size}" + (f"; {dose}" if dose else "")))
        total = f"total n {fmt(study['n_total'], '.0f')}" if not pd.isna(study["n_total"]) else "total n not reported"
        outcome_quality = worst_quality(outcome_rows.loc[outcome_rows["study_id"] == sid, "quality"])
        dose_quality = worst_quality(register.doses.loc[register.doses["study_id"] == sid, "quality"])
        flags = [f"study: {study['quality']}", f"arms: {worst_quality(arms['quality'])}"]
        if dose_quality:
            flags.append(f"dose: {dose_quality}")
        if outcome_quality:
            flags.append(f"outcome: {outcome_quality}")
        quality = [join(flags, " · ")]
        notes = public_note(study["notes"])  # the study, not the curators' search for its numbers
        if notes and notes not in str(why):
            quality += [el("br"), el("span", notes, class_="note")]
        rows.append(
            el(
                "tr",
                el("td", *label),
                el("td", status, el("br"), what, el("br") if what and why else "",
                   el("span", why, class_="note") if why else ""),
                el("td", total, el("ul", *arm_lines, class_="arms")),
                el("td", *quality),
                class_=None if included else "excluded",
            )
        )
    columns = ("Study", "In this analysis", "Arms: n, product, dose", "Quality of the numbers")
    head = el("thead", el("tr", *(el("th", c, scope="col") for c in columns)))
    n_in = int((ctx.result.evidence.inclusion["status"] == "included").sum())
    caption = (f"All {len(register.studies)} studies in the register; {n_in} enter this analysis. "
               "Quality: primary (from the trial report), secondary (from a review table), inferred "
               "(derived from reported numbers), assumption (taken from elsewhere); the worst per table is shown.")
    return el("div", el("table", el("caption", caption), head, el("tbody", *rows), class_="register"),
              class_="table-wrap")


# -- priors and posteriors ---------------------------------------------------------------


@dataclass(frozen=True)
class KeyParameter:
    var: str  # posterior variable
    role: str  # prior role
    label: str
    positive: bool = False


DOSE_ROLE_WORDS = {"dose_slope": "log-linear dose slope β (per e-fold of dose)",
                   "ed50": "ED50 (×10⁶ cells/kg)"}


def dose_methods_text(spec) -> str:
    """The methods sentence for the spec's dose-response form ("" for the pooled model)."""
    m = spec.model
    if m.dose_response == "none":
        return ""
    curve = ("f(d) = Emax · d / (ED50 + d), so f(0) = 0" if m.dose_response == "emax"
             else f"f(d) = θ_ref + β log(d / {m.reference_dose:g})")
    weight = (f"fixed doses were converted to per kg through each trial's unreported mean body weight, "
              f"log-normal with median {m.body_weight_kg:g} kg and log-SD {m.body_weight_log_sd:g} (an assumption)"
              if m.body_weight == "prior" else f"fixed doses were converted at a plug-in body weight of {m.body_weight_kg:g} kg")
    return (f" Dose-response ({m.dose_response}): a cell arm's effect was the trial's deviation τ z_j plus {curve}, "
            f"with d the arm's dose in 10⁶ cells/kg {'cumulated over infusions' if m.dose_metric == 'cumulative' else 'per infusion'}; "
            f"arms of one trial share its deviation, so within-trial dose contrasts inform the curve; {weight}; "
            + ("assumed dose levels were used, flagged." if m.use_assumed_doses else "arms with assumed dose levels were left out.")
            + f" The headline effect is f({m.reference_dose:g}).")


def effect_parameters(spec, effect: KeyParameter, heterogeneity: KeyParameter, unit: str) -> tuple[KeyParameter, ...]:
    """The key effect parameters of the spec's dose-response form, for prior/posterior plots.

    Under "emax" the effect prior is on Emax (the headline effect at the reference dose is
    derived and has no prior of its own); under "loglinear" it is on the effect at the
    reference dose, with a slope per e-fold of dose.
    """
    form = spec.model.dose_response
    if form == "emax":
        return (KeyParameter("emax", "effect", f"maximal effect Emax ({unit})"),
                KeyParameter("ed50", "ed50", "ED50 (×10⁶ cells/kg)", positive=True), heterogeneity)
    if form == "loglinear":
        ref = f"{spec.model.reference_dose:g}"
        return (KeyParameter(effect.var, "effect", f"{effect.label} at {ref}×10⁶/kg"),
                KeyParameter("dose_slope", "dose_slope", f"slope per e-fold of dose ({unit})"), heterogeneity)
    return (effect, heterogeneity)


def _posterior_density(draws: np.ndarray, grid: np.ndarray, positive: bool) -> np.ndarray:
    from scipy.stats import gaussian_kde

    kde = gaussian_kde(draws)
    density = kde(grid)
    if positive:  # reflect at zero so the density does not leak below the boundary
        density = density + kde(-grid)
    return density


def prior_posterior_section(ctx: ReportContext, parameters: Sequence[KeyParameter], *, note: Any = "",
                            fig_id: str = "fig-prior-posterior", name: str = "prior-posterior") -> Markup:
    """Prior and posterior densities of ``parameters`` with a table of both. Call it more than once
    (with distinct ``fig_id`` and ``name``) to keep each figure at two or three panels."""
    panels, rows = prior_posterior_panels(ctx.result, parameters)
    data = table(
        ("Parameter", "Prior", "Prior median (95% ETI)", "Posterior median (95% ETI)",
         "Posterior 95% width as % of prior's"),
        rows, numeric=(2, 3, 4),
        caption="Prior and posterior medians with 95% equal-tailed intervals (ETI). A width near 100% "
                "means the data add little to the prior.",
    )
    svg = figures.to_svg(figures.prior_posterior_plot(panels), name)
    alt = "Prior (grey, dashed) and posterior (blue) densities of " + ", ".join(p.label for p in parameters)
    return Markup(join([
        figure(svg, caption=join(["Prior and posterior densities side by side. ", note]), alt=alt, data=data,
               fig_id=fig_id),
    ]))


def prior_posterior_panels(result, parameters: Sequence[KeyParameter]) -> tuple[list[dict], list[tuple]]:
    """The panels :func:`~bayes_msc.report.figures.prior_posterior_plot` draws (prior and kernel
    density of the posterior on a grid spanning both) and one table row per parameter."""
    priors = result.spec.priors
    posterior = result.posterior
    panels, rows = [], []
    for p in parameters:
        prior = getattr(priors, p.role)
        dist = prior.scipy()
        draws = np.asarray(posterior[p.var], float).ravel()
        prior_q = dist.ppf([0.025, 0.5, 0.975])
        post_q = quantiles(draws)
        lo = 0.0 if p.positive else min(dist.ppf(0.005), np.quantile(draws, 0.001))
        hi = max(dist.ppf(0.99 if p.positive else 0.995), np.quantile(draws, 0.999))
        grid = np.linspace(lo, hi, 400)
        panels.append({
            "title": p.label, "xlabel": p.var, "grid": grid,
            "prior_pdf": dist.pdf(grid), "post_pdf": _posterior_density(draws, grid, p.positive),
        })
        width_ratio = (post_q[2] - post_q[0]) / (prior_q[2] - prior_q[0])
        rows.append((
            p.label, f"{prior.describe()} [{priors.names.get(p.role, 'custom')}]",
            f"{fmt(prior_q[1])} ({fmt(prior_q[0])} to {fmt(prior_q[2])})",
            f"{fmt(post_q[1])} ({fmt(post_q[0])} to {fmt(post_q[2])})",
            f"{fmt(100 * width_ratio, '.0f')}%",
        ))
    return panels, rows


def _baseline_target(spec) -> str:
    from ..models.sparse import baseline_prior_target

    return baseline_prior_target(spec.model.likelihood, spec.model.baselines)


def sensitivity_table(ctx: ReportContext) -> Markup:
    """Prior sensitivity: one row per prior combination, the verdict, and psense."""
    from ..analyses.sensitivity import diagnostics_word, psense_explanation

    sens = ctx.sensitivity
    if sens is None:
        return para("No prior-sensitivity analysis was run for this report "
                    f"(python -m bayes_msc report {ctx.spec.name} --sensitivity adds it).", class_="note")
    if hasattr(sens, "table"):
        frame = sens.table
        unit, digits = ctx.result.outcome.measure.short, ctx.result.outcome.measure.digits
        # the prior columns this grid varies (baseline and design bias only where the model has them)
        extra = [(c, w) for c, w in (("baseline_prior", "Baseline prior"), ("design_bias_prior", "Design-bias prior"))
                 if c in frame]
        rows = [(r.effect_prior, r.heterogeneity_prior, *(getattr(r, c) for c, _ in extra),
                 f"{fmt(r.effect_median, digits)} ({fmt(r.effect_lower, digits)} to {fmt(r.effect_upper, digits)})",
                 f"{fmt(r.prob_benefit, '.3f')} ± {fmt(r.prob_benefit_mcse, '.3f')}", fmt(r.prob_meaningful, ".3f"),
                 fmt(r.tau_median, ".2f"), diagnostics_word(r))
                for r in frame.itertuples()]
        first = 2 + len(extra)
        body = table(("Effect prior", "τ prior", *(w for _, w in extra), f"Pooled {unit} (95% ETI)", "P(benefit) ± MCSE",
                      "P(meaningful)", "τ median", "Diagnostics"), rows, numeric=tuple(range(first, first + 4)),
                     caption="Prior sensitivity: every combination of the named effect and heterogeneity presets"
                             + (" and design-bias presets" if "design_bias_prior" in frame else "")
                             + (f", then each other baseline prior (on {_baseline_target(ctx.spec)}) with the "
                                "spec's own effect and heterogeneity priors" if "baseline_prior" in frame else "") + ".")
        psense_rows = [(name, fmt(r["prior"], ".3f"), fmt(r["likelihood"], ".3f"), r["diagnosis"])
                       for name, r in sens.psense.iterrows()]
        refit = f"{np.median(sens.refit_seconds):.2f} s" if sens.refit_seconds else "n/a"
        return Markup(body + para(sens.verdict) + table(
            ("Parameter", "Prior sensitivity", "Likelihood sensitivity", "Diagnosis"), psense_rows, numeric=(1, 2),
            caption="Power-scaling sensitivity (psense; Kallioinen et al., Stat Comput 2023) of the spec's own "
                    "priors: values above 0.05 mean the posterior moves when that component is power-scaled.")
            + (para(psense_explanation(sens.psense)) if psense_explanation(sens.psense) else Markup(""))
            + para(f"First fit {sens.first_fit_seconds:.1f} s including compilation; each refit with the same prior "
                   f"families reused the compiled model (median {refit}).", class_="note"))
    if not isinstance(sens, pd.DataFrame):
        raise InputError("a prior-sensitivity table must be a pandas DataFrame or a PriorSensitivity")
    shown = sens.reset_index() if not isinstance(sens.index, pd.RangeIndex) else sens
    numeric = [i for i, c in enumerate(shown.columns) if pd.api.types.is_numeric_dtype(shown[c])]

    def cell(value):
        if isinstance(value, (float, np.floating)):
            return fmt(value, ".3g")
        return value

    rows = [[cell(v) for v in record] for record in shown.itertuples(index=False)]
    return table([str(c) for c in shown.columns], rows, numeric=numeric,
                 caption="Prior sensitivity: the key results under each alternative prior.")


def sbc_spec_mismatch(sbc: dict, spec, register_hash: str | None = None) -> str:
    """What to say when a saved SBC result was computed for another spec or register ("" if
    for this one).

    Calibration is a property of the model, priors, data shape and sampler settings, so a
    result for other settings is shown but not passed off as this fit's.
    """
    saved_register = sbc.get("register_hash")
    other_register = bool(register_hash and saved_register and saved_register != register_hash)
    register_note = (f"This SBC result was simulated from another register, {saved_register[:12]}, not this "
                     f"report's {register_hash[:12]}. " if other_register else "")
    if sbc.get("spec_hash") == spec.content_hash():
        return register_note.strip()
    differing = spec.differences(sbc["spec"]) if sbc.get("spec") else []
    what = f" (it differs in: {', '.join(differing)})" if differing else ""
    return (f"{register_note}This SBC result was computed for another spec, {str(sbc.get('spec_hash'))[:12]}, not this report's "
            f"{spec.content_hash()[:12]}{what}. Run python -m bayes_msc sbc {spec.name} for this spec.")


def sbc_standing(sbc: dict, mismatch: str) -> tuple[str | None, str]:
    """(neutral label or None, words) for a saved SBC result in this report.

    A result for another spec or register says nothing about this analysis, and one on fewer
    replicates than a verdict needs shows only gross miscalibration: neither earns the
    CALIBRATED badge, whatever the file's ``passed`` says (files written before the minimum
    existed say ``passed`` for any N)."""
    from ..analyses.sbc import MIN_VERDICT_N

    if mismatch:
        return "NOT APPLICABLE", (f"this calibration does not apply to this analysis. {mismatch} "
                                  f"Its own verdict, for those settings: {sbc['verdict']}")
    failed = sbc.get("failed", not sbc["passed"])
    if int(sbc["n"]) < MIN_VERDICT_N and not failed:
        return "NO VERDICT", (f"{sbc['n']} replicates are too few for a calibration verdict (at least "
                              f"{MIN_VERDICT_N} are needed); at this N only a gross miscalibration would show. "
                              f"{sbc['verdict']}")
    return None, sbc["verdict"]


def robustness_section(ctx: ReportContext) -> Markup:
    """Does one trial decide it (leave-one-study-out), and is the inference calibrated (SBC)?"""
    parts = [el("h3", "Does one trial decide it?")]
    influence = ctx.influence
    if influence is None:
        parts.append(para("Leave-one-study-out was not run for this report "
                          f"(python -m bayes_msc report {ctx.spec.name} --sensitivity adds it).", class_="note"))
    else:
        digits = ctx.result.outcome.measure.digits
        full = influence.full
        rows = [("All studies", f"{fmt(full['effect_median'], digits)} ({fmt(full['effect_lower'], digits)} to "
                 f"{fmt(full['effect_upper'], digits)})", fmt(full["prob_benefit"], ".3f"), "–", "–")]
        rows += [(f"without {r.label}", f"{fmt(r.effect_median, digits)} ({fmt(r.effect_lower, digits)} to "
                  f"{fmt(r.effect_upper, digits)})", fmt(r.prob_benefit, ".3f"), f"{r.change_prob_benefit:+.3f}",
                  fmt(r.pareto_k, ".2f")) for r in influence.table.itertuples()]
        parts += [table(("Data", "Pooled effect (95% ETI)", "P(benefit)", "Change", "Pareto k"), rows,
                        numeric=(1, 2, 3, 4),
                        caption="Each study left out in turn (its data masked; the compiled model is reused), and "
                                "its PSIS-LOO Pareto k from the full fit (> 0.7: LOO unreliable for that study)."),
                  para(influence.statement)]
    parts += decision_rule_parts(ctx)
    parts.append(el("h3", "Is the inference calibrated?"))
    sbc = ctx.sbc
    if sbc is None:
        parts.append(para(f"No simulation-based calibration result was supplied (python -m bayes_msc sbc {ctx.spec.name} "
                          "writes one; report --sbc FILE shows it).", class_="note"))
    else:
        mismatch = sbc_spec_mismatch(sbc, ctx.spec, ctx.result.evidence.register_hash)
        label, words = sbc_standing(sbc, mismatch)
        if label is None:
            shown = badge(sbc["passed"] and not sbc.get("failed", False), "CALIBRATED", "CALIBRATION FAILURE")
        else:  # neither green nor red: the result does not speak for this analysis
            shown = el("span", label, class_="badge exc")
        parts.append(para(shown, f" SBC, N = {sbc['n']}, {sbc['date']}: {words}"))
        svg = figures.to_svg(figures.sbc_ecdf_plot({p: pd.DataFrame(u["ecdf"]) for p, u in sbc["uniformity"].items()}), "sbc")
        parts.append(figure(svg, caption="SBC: PIT-ECDF of the fractional ranks minus the uniform CDF, with "
                            "simultaneous bands (Säilynoja et al. 2022; 95% family-wise over the parameters, Bonferroni); a calibrated sampler stays inside.",
                            alt="ECDF-difference plots of SBC ranks for " + ", ".join(sbc["parameters"]), fig_id="fig-sbc"))
    return Markup(join(parts))


def decision_rule_parts(ctx: ReportContext) -> list:
    """How often the headline's own wording ("P(OR < 1) > 0.95") is declared on registers
    shaped like this one when the truth is no effect (``oc``), and the simulation study that
    chose the likelihood (``simstudy``), when they were saved; a warning when no included
    study has both a death and a survivor."""
    parts = []
    if "likelihood" in ctx.result.outcome.model_keys:
        from ..models.sparse import sparse_data_warning

        warning = sparse_data_warning(ctx.result.evidence)
        if warning:
            parts.append(el("p", warning, class_="alert", role="alert"))
    oc = ctx.oc
    if oc is not None and len(oc):
        parts.append(el("h3", "How often would this wording claim benefit when there is none?"))
        null = oc[(oc["true_or"] == 1.0) & (oc["rule"] == "P(OR < 1) > gamma")]
        if len(null) and "gamma 0.95" in null:
            parts.append(para(f"On registers simulated with the register's own design and no effect (OR 1, τ from its "
                              f"prior; {oc.attrs.get('control_risk', 'control risks not recorded')}), "
                              f"\u201cP(OR < 1) > 0.95\u201d is declared in {null['gamma 0.95'].iloc[0]} of "
                              f"{int(null['registers'].iloc[0]) if 'registers' in null else 'the'} registers "
                              "(rate ± Monte Carlo SE): the false-positive rate of the headline's own wording."))
        parts.append(table([str(c) for c in oc.columns], [[str(v) for v in r] for r in oc.itertuples(index=False)],
                           caption="Operating characteristics of the decision rules (python -m bayes_msc oc): how often "
                                   "each rule is declared, by true odds ratio and threshold gamma."))
    study = ctx.simstudy
    if study is not None and len(study):
        parts.append(el("h3", "Which likelihood? The simulation study"))
        shown = study.reset_index(drop=True)
        numeric = tuple(i for i, c in enumerate(shown.columns) if pd.api.types.is_numeric_dtype(shown[c]))
        parts.append(table([str(c) for c in shown.columns],
                           [[fmt(v, ".3f") if isinstance(v, float) else str(v) for v in r]
                            for r in shown.itertuples(index=False)], numeric=numeric,
                           caption="Bias, 95% interval coverage and false claims of benefit of each likelihood on "
                                   "registers simulated from known truths with the register's design "
                                   "(python -m bayes_msc simstudy; docs: Methods, Calibration and simulation studies). The default is the one that "
                                   "behaves best here."))
    return parts


# -- dose-response hook ------------------------------------------------------------------


def dose_response_section(ctx: ReportContext, *, ylabel: str, reference: float | None = 0.0,
                          dose_unit: str = "×10⁶ cells/kg") -> Markup | None:
    """The dose-response curve, dose table and best dose, when the analysis fitted a form.

    Reads the fit's :class:`~bayes_msc.analyses.dosing.DoseResponse` (``result.dose_response``): the
    curve's median with 50% and 95% bands on the reported scale (odds ratio or mmHg), the
    grid table with P(benefit) and P(clinically meaningful benefit), and the best dose within
    the studied range. Returns ``None`` for the pooled (no dose-response) model.
    """
    spec = ctx.spec
    dose = ctx.result.dose_response
    if spec.model.dose_response == "none" or dose is None:
        return None
    outcome = ctx.result.outcome
    with_risk = "treated_risk_median" in dose.table
    metric = "cumulative (per-infusion dose × infusions)" if dose.metric == "cumulative" else "per infusion"
    bands = dose.bands()
    low, high = dose.studied_range
    svg = figures.to_svg(figures.dose_curve_plot(bands, xlabel=f"dose ({dose_unit}, {dose.metric.replace('_', ' ')})",
                                                 ylabel=ylabel, reference=reference, studied=(low, high)), "dose-response")
    model = spec.model
    weight = (
        f"Fixed doses (cells per infusion) are divided by each trial's mean body weight, which no trial reports: "
        f"an assumption, log-normal with median {fmt(model.body_weight_kg, 'g')} kg and log-SD "
        f"{fmt(model.body_weight_log_sd, 'g')}, so their per-kg dose is uncertain in the posterior."
        if model.body_weight == "prior"
        else f"Fixed doses are divided by a plug-in body weight of {fmt(model.body_weight_kg, 'g')} kg (an assumption)."
    )
    assumed = ("Assumed dose levels (BC-U001's, from the BX-U001 registration) are used, flagged."
               if model.use_assumed_doses else "Arms whose dose levels are an assumption are left out.")
    measure = outcome.measure
    better = "<" if outcome.benefit_direction(spec) == "decrease" else ">"
    threshold = f"{measure.short} {better} {fmt(outcome.meaningful_threshold(spec), 'g')}" + (
        f" {measure.unit}" if measure.unit else "")
    digits = measure.digits
    rows = []
    for r in dose.table.itertuples():
        row = [fmt(r.dose, "g") + (" (extrapolated)" if r.extrapolated else ""), fmt(r.median, digits),
               f"{fmt(r.lower_50, digits)} to {fmt(r.upper_50, digits)}", f"{fmt(r.lower_95, digits)} to {fmt(r.upper_95, digits)}",
               f"{fmt(r.prob_benefit, '.3f')} ± {fmt(r.prob_benefit_mcse, '.3f')}",
               f"{fmt(r.prob_meaningful, '.3f')} ± {fmt(r.prob_meaningful_mcse, '.3f')}"]
        if with_risk:
            row.append(f"{r.treated_risk_median:.1%}")
        rows.append(row)
    columns = ["Dose", "Median", "50% ETI", "95% ETI", "P(benefit) ± MCSE", f"P({threshold}) ± MCSE"]
    if with_risk:
        columns.append(f"Risk of death at {spec.decision.baseline_risk:.1%} control risk")
    data = table(tuple(columns), rows, numeric=tuple(range(1, len(columns))),
                 caption=f"Effect at each dose of the spec's grid ({dose_unit}, {metric}).")
    best = dose.best_dose
    text = join([
        para(f"Form: {dose.form}; dose metric: {metric}; doses in the data: {fmt(low, '.2g')} to {fmt(high, '.2g')} "
             f"{dose_unit}. The headline effect is stated at the reference dose {fmt(model.reference_dose, 'g')} {dose_unit}. "
             + weight + " " + assumed),
        para(f"Best dose within the studied range (the dose of greatest benefit, per posterior draw): median "
             f"{fmt(best['median'], '.2g')} (95% ETI {fmt(best['lower_95'], '.2g')} to {fmt(best['upper_95'], '.2g')}) "
             f"{dose_unit}. "
             + ("" if best["prob_benefit_range"] < 0.01 else
                f"Highest P(benefit): {fmt(best['max_prob_benefit'], '.3f')} at {fmt(best['dose_max_prob_benefit'], '.2g')}. ")
             + best["note"] + "."),
    ])
    return Markup(text + figure(svg, caption=f"{ylabel} against dose: posterior median with 50% and 95% equal-tailed "
                                f"bands; the shaded region outside the studied doses is extrapolation by the model form.",
                                alt=f"Dose-response curve of {ylabel} from {fmt(low, '.2g')} to {fmt(high, '.2g')} {dose_unit}",
                                data=data, fig_id="fig-dose"))


# -- diagnostics -------------------------------------------------------------------------


def checks_table(diagnostics) -> Markup:
    rows = []
    for c in diagnostics.checks:
        value = float(c.value)
        shown = fmt(value, ".0f") if value.is_integer() else fmt(value, ".3f")
        rows.append((c.name, shown, c.threshold, badge(c.passed), c.detail))
    return table(("Check", "Value", "Threshold", "Result", "Detail"), rows, numeric=(1,),
                 caption="Sampler diagnostics (R-hat and ESS over every model parameter).")


def worst_variables_table(diagnostics, n: int = 8) -> Markup:
    per = diagnostics.per_variable.sort_values("r_hat", ascending=False).head(n)
    rows = [(name, fmt(r.r_hat, ".3f"), fmt(r.ess_bulk, ".0f"), fmt(r.ess_tail, ".0f")) for name, r in per.iterrows()]
    return table(("Parameter", "R-hat", "bulk ESS", "tail ESS"), rows, numeric=(1, 2, 3),
                 caption=f"The {len(rows)} parameters with the highest R-hat.")


def _balanced_chunks(items: Sequence[str], size: int) -> list[list[str]]:
    """``items`` in ceil(n / size) consecutive groups of (nearly) equal length."""
    rows = max(1, math.ceil(len(items) / size))
    step = math.ceil(len(items) / rows)
    return [list(items[i:i + step]) for i in range(0, len(items), step)]


RANK_PANELS_PER_ROW = 4  # arviz-plots wraps after 4 panels; figures.rank_plot draws one row


def rank_plots(ctx: ReportContext, var_names: Sequence[str]) -> Markup:
    """Rank ECDF plots of the key parameters and of the worst-mixing element, if another.

    More than four panels are drawn as several one-row figures of near-equal length (one
    figure element, one caption), since a single figure would wrap into overlapping rows.
    """
    per = ctx.result.diagnostics.per_variable
    worst = str(per["r_hat"].idxmax())
    names, coords = list(var_names), None
    var, _, coord = worst.partition("[")
    if coord and var in ctx.posterior:
        dims = [d for d in ctx.posterior[var].dims if d not in ("chain", "draw")]
        if len(dims) == 1:
            names.append(var)
            coords = {dims[0]: [coord.rstrip("]")]}
    if len(names) <= RANK_PANELS_PER_ROW:
        svg = figures.rank_plot(ctx.result.tree, names, coords, name="rank")
    else:
        parts = []
        for i, chunk in enumerate(_balanced_chunks(names, RANK_PANELS_PER_ROW)):
            dims = {d for n in chunk for d in ctx.posterior[n].dims}
            chunk_coords = {k: v for k, v in (coords or {}).items() if k in dims} or None
            parts.append(figures.rank_plot(ctx.result.tree, chunk, chunk_coords, panels=RANK_PANELS_PER_ROW,
                                           name="rank" if i == 0 else f"rank-{i + 1}"))
        svg = join(parts)
    shown = list(var_names) + ([worst] if coords else [])
    caption = ("Rank plots: for each chain, the ECDF of its fractional ranks minus the uniform; chains that "
               "stay inside the simultaneous 95% envelope explore the same distribution (highlighted points "
               "fall outside it; the p above each panel tests uniformity at α = 0.01). Shown: " + ", ".join(shown)
               + (f"; {worst} is the parameter with the highest R-hat." if coords else "."))
    return figure(svg, caption=caption, alt="Rank ECDF difference plots per chain for " + ", ".join(shown),
                  data=worst_variables_table(ctx.result.diagnostics), fig_id="fig-rank")


# -- provenance --------------------------------------------------------------------------


def _where(path: Any, default_dir: Any, embedded: str) -> str:
    from pathlib import Path

    if not path:
        return ""
    path = Path(path).resolve()
    try:
        return f"{embedded}: {path.relative_to(Path(default_dir).resolve().parent)}"
    except ValueError:
        return str(path)


def package_version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def sampling_methods_text(ctx: ReportContext, cite: Citations) -> str:
    """The methods sentences on the sampler and its convergence checks (any outcome)."""
    versions = json.loads(ctx.result.tree.attrs.get("package_versions", "{}"))
    s = ctx.spec.sampler
    diag = ctx.result.diagnostics
    return (
        f"The posterior was sampled with the No-U-Turn sampler of nutpie "
        f"{versions.get('nutpie', '')} {cite('Hoffman & Gelman, J Mach Learn Res 2014;15:1593 (NUTS)')} on a PyMC "
        f"{versions.get('pymc', '')} model: {s.chains} chains of {s.draws} draws after {s.tune} tuning steps, "
        f"target acceptance {s.target_accept:g}, maximum tree depth {s.maxdepth}, seed {s.seed}. Convergence "
        f"was checked with rank-normalised R-hat ≤ 1.01 and bulk and tail effective sample sizes ≥ 400 "
        f"{cite('Vehtari, Gelman, Simpson, Carpenter & Bürkner, Bayesian Anal 2021;16:667')}, no divergent "
        f"transitions, no saturated tree depth and E-BFMI ≥ 0.3 "
        f"{cite('Betancourt, arXiv:1604.00695 (2016)')}; "
        + ("all checks passed. " if diag.passed else
           f"checks failed: {', '.join(c.name for c in diag.checks if not c.passed)}. ")
    )


def versions_text(ctx: ReportContext) -> str:
    """The closing methods sentence: spec and register hashes, package versions, fit date."""
    versions = json.loads(ctx.result.tree.attrs.get("package_versions", "{}"))
    return (
        f"Analysis spec SHA-256 {ctx.spec.content_hash()[:16]}…, evidence register SHA-256 "
        f"{ctx.result.evidence.register_hash[:16]}…; analysed with "
        + ("bayes_msc " + versions["bayes_msc"] + ", " if versions.get("bayes_msc", "not installed") != "not installed"
           else "bayes_msc, ")
        + f"ArviZ {versions.get('arviz', '')} on {ctx.result.tree.attrs.get('created', '')[:10]}."
    )


def provenance_table(ctx: ReportContext) -> Markup:
    from ..evidence.register import default_data_dir
    from ..io.paths import default_models_dir

    tree = ctx.result.tree
    attrs = tree.attrs
    versions = json.loads(attrs.get("package_versions", "{}"))
    sampler = json.loads(attrs.get("sampler_settings", "{}"))
    rows = [
        ("Analysis spec", f"{ctx.spec.name} — " + (_where(ctx.spec.path, default_models_dir(), "embedded")
                                                     or "spec object")),
        ("Spec hash (SHA-256)", el("code", ctx.spec.content_hash())),
        ("Evidence register", _where(getattr(ctx.register, "root", ""), default_data_dir(), "embedded")),
        ("Register hash (SHA-256)", el("code", ctx.result.evidence.register_hash)),
        ("Sampler", ", ".join(f"{k} {v}" for k, v in sampler.items())),
        ("Seed", attrs.get("seed", "")),
        ("Fitted", attrs.get("created", "")),
        ("Report generated", ctx.generated.isoformat(timespec="seconds")),
        ("Packages", ", ".join(f"{k} {v}" for k, v in versions.items())),
        ("Report drawn with", f"matplotlib {package_version('matplotlib')}, "
                              f"arviz-plots {package_version('arviz-plots')}"),
    ]
    return table(("Item", "Value"), rows, caption="Provenance: what is needed to reproduce these numbers.")

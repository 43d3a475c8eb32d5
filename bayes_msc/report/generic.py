"""The report every analysis gets: the sections that need nothing but the fit's own vocabulary.

Every outcome states its effect (:class:`~bayes_msc.outcomes.EffectMeasure`), names its
posterior variables by role (:class:`~bayes_msc.outcomes.ParameterRoles`) and decides in one
vocabulary (:class:`~bayes_msc.decisions.Decisions`); every evidence object lists its studies
and why each is in or out (``inclusion``). From those alone this module builds the answer, the
forest plot (:mod:`bayes_msc.report.forest`), the studies, the dose-response curve, prior
against posterior, prior sensitivity, diagnostics, leave-one-study-out and calibration, and the
methods. An outcome with no presentation of its own is reported with :func:`generic_layout`;
the mortality and oxygenation layouts take these sections and add what is theirs.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from . import figures
from .forest import forest_table, has_arm_counts, interval_cell, observed_cell, pooled_and_predictive
from .html import Markup, badge, el, figure, fmt, join, para, pct, table
from .sections import (
    Citations,
    DOSE_ROLE_WORDS,
    KeyParameter,
    ReportContext,
    Section,
    checks_table,
    dose_methods_text,
    dose_response_section,
    effect_parameters,
    eti_text,
    interval_text,
    keynum,
    keynums,
    prior_posterior_section,
    provenance_table,
    rank_plots,
    robustness_section,
    sampling_methods_text,
    sensitivity_table,
    versions_text,
)

# -- the outcome's words -------------------------------------------------------------------


def key_parameters(spec, outcome) -> tuple[KeyParameter, ...]:
    """The pooled effect and τ (or the dose-response form's parameters), as prior and posterior show them."""
    m, r = outcome.measure, outcome.roles
    return effect_parameters(
        spec,
        KeyParameter(r.pooled, "effect", f"pooled effect μ ({m.model_scale})"),
        KeyParameter(r.heterogeneity, "heterogeneity", f"between-study SD τ ({m.model_scale})", positive=True),
        m.model_scale,
    )


def _benefit_sign(d) -> str:
    return "<" if d.benefit_direction == "decrease" else ">"


def _event(d, measure, threshold: float) -> str:
    """``P(OR < 1)``, ``P(difference > 5 mmHg)``."""
    unit = f" {measure.unit}" if measure.unit else ""
    return f"P({measure.short} {_benefit_sign(d)} {threshold:g}{unit})"


def _stated(value: float, measure) -> str:
    return fmt(value, measure.digits)


# -- sections ------------------------------------------------------------------------------


def answer(ctx: ReportContext) -> Markup:
    """P(benefit), P(clinically meaningful), the pooled and new-trial effects, τ, and any
    quantities the outcome adds (e.g. the natural course), in cards and in words."""
    d = ctx.result.decisions
    m = ctx.result.outcome.measure
    diag = ctx.result.diagnostics
    n_in = int((ctx.result.evidence.inclusion["status"] == "included").sum())
    alert = "" if diag.passed else el("p", diag.verdict(), class_="alert", role="alert")
    unit = f" {m.unit}" if m.unit else ""

    def mcse(p):
        return fmt(100 * p.mcse, ".1f")

    cards = [
        keynum(f"P(benefit): {_event(d, m, d.benefit_threshold)}", pct(d.prob_benefit.prob),
               f"MCSE {mcse(d.prob_benefit)} points"),
        keynum(f"P(clinically meaningful): {_event(d, m, d.meaningful_threshold)}", pct(d.prob_meaningful.prob),
               f"MCSE {mcse(d.prob_meaningful)} points"),
        keynum(f"Pooled {m.label()}", _stated(d.pooled_effect.median, m), eti_text(d.pooled_effect, m.digits)),
        keynum(f"{m.label()[0].upper()}{m.label()[1:]} in a new trial", _stated(d.predictive_effect.median, m),
               eti_text(d.predictive_effect, m.digits)),
        keynum(f"Between-study SD τ ({m.model_scale})", fmt(d.tau.median), eti_text(d.tau)),
    ]
    for extra in d.extra:
        if hasattr(extra.value, "median") and hasattr(extra.value, "lower"):
            cards.append(keynum(extra.label, fmt(extra.value.median, extra.digits), eti_text(extra.value, extra.digits)))
    words = [
        para(
            f"Pooling {n_in} {'study' if n_in == 1 else 'studies'} with the priors stated below, the posterior "
            f"probability of benefit — {ctx.result.outcome.benefit_words(ctx.spec)}, {_event(d, m, d.benefit_threshold)} "
            f"— is {pct(d.prob_benefit.prob)} (Monte Carlo standard error {mcse(d.prob_benefit)} percentage points), "
            f"and the probability of a clinically meaningful benefit, {_event(d, m, d.meaningful_threshold)}, is "
            f"{pct(d.prob_meaningful.prob)} (MCSE {mcse(d.prob_meaningful)}). The threshold is a judgement set in the "
            "analysis spec."
        ),
        para(
            f"The pooled {m.label()} is {interval_text(d.pooled_effect, m.digits, unit=unit)}. Studies differ "
            f"(between-study SD τ {interval_text(d.tau, ends_mcse=True)} on the {m.model_scale} scale), so the "
            f"{m.name} to expect in a new trial is wider: {interval_text(d.predictive_effect, m.digits, unit=unit)}, "
            f"with probability {pct(d.predictive_prob_benefit.prob)} (MCSE {mcse(d.predictive_prob_benefit)}) that it "
            "favours cells."
        ),
    ]
    return Markup(alert + population_answer(ctx) + el("div", *words, class_="answer") + keynums(*cards))


def population_answer(ctx: ReportContext) -> Markup:
    """With a target population (``--population``), its own answer first: the headline numbers
    below it are the mean over populations, which is not the target's effect."""
    from ..models.populations import population_summary

    block = population_summary(ctx.result)
    if block is None:
        return Markup("")
    pooled, new = block["pooled_effect"], block["predictive_effect"]
    sd = block["between_population_sd"]
    trials = "trial" if block["n_studies"] == 1 else "trials"
    text = (f"Target population {block['selector']} ({block['n_studies']} {trials}, {block['n_patients']} "
            f"patients): pooled odds ratio {fmt(pooled['median'])} (95% ETI {fmt(pooled['lower'])} to "
            f"{fmt(pooled['upper'])}), P(OR < 1) {pct(block['prob_benefit']['prob'])}, P(clinically meaningful) "
            f"{pct(block['prob_meaningful']['prob'])}; in a new trial of this population {fmt(new['median'])} "
            f"({fmt(new['lower'])} to {fmt(new['upper'])}). It borrows from the other populations as much as the "
            f"between-population SD allows (median {fmt(sd['median'])}; {sd['words']}). The numbers below are the "
            "mean over populations.")
    return Markup(el("div", para(text), class_="answer"))


def forest_section(ctx: ReportContext) -> Markup:
    """The manuscript forest plot (:func:`bayes_msc.report.forest.forest_figure`) with its numbers."""
    from .forest import forest_figure

    result = ctx.result
    m = result.outcome.measure
    rows = forest_table(result)
    pooled, predictive = pooled_and_predictive(result)
    svg = figures.to_svg(forest_figure(result), "forest")
    counts = has_arm_counts(result)
    data_rows = []
    for r in rows.itertuples():
        data = (r.obs_text + (" · 0.5 added to each cell" if r.corrected else "")) if counts else r.estimate_text
        data_rows.append((r.label, data, observed_cell(r, m),
                          interval_cell(r.post_median, r.post_lower, r.post_upper, m),
                          f"{100 * r.weight:.1f}%" if np.isfinite(r.weight) else "–"))
    data_rows.append(("Pooled effect", "all studies above", "–", interval_cell(*pooled, m), "100%"))
    data_rows.append(("New trial (prediction)", "pooled effect + heterogeneity", "–", interval_cell(*predictive, m), "–"))
    data = table(("Study", "Data" if counts else f"Estimate ± SE ({m.model_scale})", f"Observed {m.short} (95% CI)",
                  f"Model {m.short}: median (95% ETI)", "Weight"), data_rows, numeric=(2, 3, 4),
                 caption=f"{m.label()[0].upper()}{m.label()[1:]}, cells vs control, per study.")
    caption = (
        "Forest plot. Brown squares: each study's observed estimate with a 95% Wald interval"
        + (", computed for display only, with 0.5 added to every cell of a table with a zero cell (the model uses "
           "the counts as they are); hollow squares on a dotted line are partial reports" if counts else
           " (estimate ± 1.96 SE)")
        + "; square size grows with the weight. Blue circles: the model's estimate of each study's effect (shrunk "
        "toward the pooled effect), median and 95% equal-tailed interval. Black diamond: pooled effect; red line: 95% "
        "prediction interval for the effect in a new trial. Weight: the study's share of the pooled estimate's "
        "precision, 1/(SE² + τ²) over the sum across studies, averaged over the posterior of τ. Arrows mark "
        "intervals cut at the plot edge."
    )
    alt = (f"Forest plot of {len(rows)} studies; pooled {m.short} {interval_cell(*pooled, m)}; new-trial "
           f"prediction {interval_cell(*predictive, m)}.")
    return figure(svg, caption=caption, alt=alt, data=data, fig_id="fig-forest")


def studies_section(ctx: ReportContext) -> Markup:
    """Every study the data hold: in or out of this analysis, how it enters, or why not."""
    inclusion = ctx.result.evidence.inclusion
    rows = []
    for r in inclusion.itertuples():
        included = r.status == "included"
        enters = getattr(r, "contribution", "") or ""
        detail = getattr(r, "detail", "") or ""
        rows.append((r.label, badge(included, "included", "excluded"),
                     f"{enters}: {detail}" if included and detail else enters,
                     "" if included else (getattr(r, "reason", "") or "")))
    n_in = int((inclusion["status"] == "included").sum())
    return table(("Study", "In this analysis", "Enters as", "Why not"), rows,
                 caption=f"{len(inclusion)} studies in the data; {n_in} enter this analysis.")


def dose_section(ctx: ReportContext) -> Markup | None:
    """The dose-response curve on the stated scale, when the fit has one."""
    m = ctx.result.outcome.measure
    return dose_response_section(ctx, ylabel=m.label(), reference=m.null)


def priors_section(ctx: ReportContext) -> Markup:
    n = ctx.result.evidence.n_studies
    note = (f"With {n} {'study' if n == 1 else 'studies'} the between-study SD τ is weakly identified unless the "
            "studies are large and many: where its posterior stays close to its prior, the prediction interval for "
            "a new trial depends on the heterogeneity prior.")
    return Markup(prior_posterior_section(ctx, key_parameters(ctx.spec, ctx.result.outcome), note=note))


def sensitivity_section(ctx: ReportContext) -> Markup:
    """Prior sensitivity (refits under the named presets) and power-scaling sensitivity."""
    return sensitivity_table(ctx)


def diagnostics_section(ctx: ReportContext, var_names=None) -> Markup:
    """The sampler's verdict, its checks, and rank plots of ``var_names`` (default: the key
    parameters); a layout appends its outcome's posterior predictive check."""
    diag = ctx.result.diagnostics
    verdict = el("p", diag.verdict(), class_="alert" if not diag.passed else None,
                 role="alert" if not diag.passed else None)
    names = var_names or [k.var for k in key_parameters(ctx.spec, ctx.result.outcome) if k.var in ctx.posterior]
    return Markup(verdict + checks_table(diag) + rank_plots(ctx, names))


def methods_section(ctx: ReportContext) -> Markup:
    spec, result = ctx.spec, ctx.result
    m, roles = result.outcome.measure, result.outcome.roles
    cite = Citations()
    role_words = {"effect": f"pooled effect μ ({m.model_scale})", "heterogeneity": "between-study SD τ"}
    bits = []
    for role, prior in spec.priors.by_role().items():
        if role not in role_words and role not in DOSE_ROLE_WORDS:
            continue  # nuisance priors of models this layout does not describe
        bits.append(prior_words(spec, role, prior, role_words.get(role) or DOSE_ROLE_WORDS[role], cite))
    n_in = int((result.evidence.inclusion["status"] == "included").sum())
    decision = spec.decision
    d = result.decisions
    text = (
        f"A Bayesian random-effects meta-analysis of the {m.name} (cells vs control; model scale: {m.model_scale}) "
        f"pooled {n_in} {'study' if n_in == 1 else 'studies'} of the {len(result.evidence.inclusion)} in the data "
        f"(outcome “{result.outcome.name}”). Study j's effect θ_j = μ + τ z_j, z_j ~ Normal(0, 1) (posterior "
        f"{roles.study}); the effect in a new trial was μ + τ ε, ε ~ Normal(0, 1) ({roles.predictive})."
        + dose_methods_text(spec)
        + f" Priors: {'; '.join(bits)}. "
        + sampling_methods_text(ctx, cite)
        + f"Results are posterior medians with {round(decision.ci_prob * 100)}% equal-tailed intervals; "
        f"{_event(d, m, d.benefit_threshold)} and {_event(d, m, d.meaningful_threshold)} are given with Monte Carlo "
        "standard errors. Forest-plot weights are each study's share of the pooled estimate's precision under the "
        "normal approximation, 1/(SE_j² + τ²) / Σ_k 1/(SE_k² + τ²), averaged over the posterior draws of τ. "
        + versions_text(ctx)
    )
    return Markup(
        el("div", para(text), class_="methods")
        + el("h3", "References")
        + cite.html()
        + el("h3", "Provenance")
        + provenance_table(ctx)
    )


# -- the layout ----------------------------------------------------------------------------

# The sections every analysis shares, by anchor; a layout picks them and adds its own.
SHARED: dict[str, Callable[[], Section]] = {
    "answer": lambda: Section("answer", "The answer", answer),
    "forest": lambda: Section("forest", "Study by study: forest plot", forest_section),
    "studies": lambda: Section("studies", "Which studies, and why", studies_section),
    "dose-response": lambda: Section("dose-response", "Dose-response", dose_section),
    "priors": lambda: Section("priors", "Priors and posteriors", priors_section),
    "sensitivity": lambda: Section("sensitivity", "Prior sensitivity", sensitivity_section),
    "diagnostics": lambda: Section("diagnostics", "Can the numbers be trusted? Diagnostics", diagnostics_section),
    "robustness": lambda: Section("robustness", "Does one study decide it? Is the inference calibrated?",
                                  robustness_section),
    "methods": lambda: Section("methods", "Methods", methods_section),
    "frequentist": lambda: _frequentist_section(),
    "covariates": lambda: Section("covariates", "Meta-regression: what the covariates explain", covariate_terms),
    "cumulative": lambda: _cumulative_section(),
}


def covariate_terms(ctx: ReportContext) -> Markup | None:
    """The meta-regression terms of the fit (:func:`bayes_msc.models.regression.covariate_summary`),
    each with its prior and posterior SD and, when the data removed less than half of the prior
    variance, the words that it is mostly prior; None: the fit has no covariates."""
    summary = getattr(ctx.result, "covariates", None)
    if not summary:
        return None
    rows = []
    for term, s in summary["terms"].items():
        rows.append((term, fmt(s["median"]), f"{fmt(s['lower'])} to {fmt(s['upper'])}", f"{s['prob_below_zero']:.3f}",
                     f"{s['prior_sd']:.2f}", f"{s['posterior_sd']:.2f}", f"{s['contraction']:.2f}",
                     "mostly prior" if s["mostly_prior"] else ""))
    pct = round(100 * next(iter(summary["terms"].values()))["ci_prob"]) if summary["terms"] else 95
    parts = [table(("Term", "Median", f"{pct}% ETI", "P(< 0)", "Prior SD", "Posterior SD", "Contraction", "Note"), rows,
                   numeric=(1, 2, 3, 4, 5, 6),
                   caption=f"Meta-regression terms on the model scale ({ctx.result.outcome.measure.model_scale}); "
                           f"prior {summary['prior']}.")]
    parts.extend(para(f"{name}: {coding['coding']}") for name, coding in summary["coding"].items())
    parts.append(para(summary["pooled_effect_means"][:1].upper() + summary["pooled_effect_means"][1:] + "."))
    explained = summary.get("heterogeneity_explained")
    if explained:
        parts.append(para(f"Between-trial variance explained by the covariates: {explained['share']:.2f} "
                          f"(MCSE {explained['mcse']:.2f}); {explained['definition']}."))
    if summary.get("excluded_studies"):
        parts.append(para("Left out for a missing covariate value: " + ", ".join(summary["excluded_studies"]) + "."))
    if any(s["mostly_prior"] for s in summary["terms"].values()):
        parts.append(para(f"A term marked mostly prior: the data removed less than "
                          f"{summary['mostly_prior_threshold']:.0%} of its prior variance, so its posterior restates "
                          "the prior more than it measures anything; it is not a finding."))
    return join(parts)


def _frequentist_section() -> Section:
    from .frequentist import FREQUENTIST_SECTION

    return FREQUENTIST_SECTION


def _cumulative_section() -> Section:
    from .figures_cumulative import CUMULATIVE_SECTION

    return CUMULATIVE_SECTION


def shared_section(anchor: str, title: str | None = None) -> Section:
    """One of the shared sections (:data:`SHARED`), for a layout to place among its own
    (``title``: the layout's own words for it)."""
    section = SHARED[anchor]()
    return section if title is None else Section(section.anchor, title, section.build)


def prior_words(spec, role: str, prior, target: str, cite) -> str:
    """One prior in the methods text: what it is on (``target``), the distribution, and the
    preset it came from with its reference (``cite``: the methods' citation list)."""
    from ..priors import find_preset

    name = spec.priors.names.get(role, "custom")
    words = f"{target} ~ {prior.describe()}"
    if name == "custom":
        return words + " (set in the analysis spec)"
    preset = find_preset(spec.scale, name)
    return words + f" (preset “{name}”" + (f"; {cite(preset.reference)}" if preset.reference else "") + ")"


def generic_layout() -> list[Section]:
    """The report of any outcome: every shared section, in reading order."""
    return [shared_section(a) for a in ("answer", "forest", "studies", "covariates", "frequentist", "cumulative",
                                        "dose-response", "priors", "sensitivity", "diagnostics", "robustness",
                                        "methods")]


__all__ = ["SHARED", "answer", "diagnostics_section", "forest_section", "generic_layout", "key_parameters",
           "shared_section"]

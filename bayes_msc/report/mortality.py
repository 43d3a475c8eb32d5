"""The mortality report: what the answer, forest plot and predictive check look like for
an arm-based binomial meta-analysis of deaths. Registered as the ``mortality`` layout."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from . import figures, generic
from ..evidence.empirical import CORRECTION, Z95, empirical_log_or  # noqa: F401  (the mortality names)
from .forest import ArmDeaths, forest_table  # noqa: F401
from .forest import study_effect_draws as study_effects  # noqa: F401
from ..evidence.citation import public_note, public_source
from .html import Markup, el, figure, fmt, join, para, pct, table
from .sections import (
    collapsed,
    KeyParameter,
    ReportContext,
    Section,
    DOSE_ROLE_WORDS,
    Citations,
    dose_methods_text,
    dose_response_section,
    effect_parameters,
    interval_text,
    nice,
    prior_posterior_section,
    provenance_table,
    quantiles,
    register_table,
    sampling_methods_text,
    sensitivity_table,
    versions_text,
)


# -- numbers -------------------------------------------------------------------------------


def forest_rows(result) -> pd.DataFrame:
    """Per included study: the empirical log OR as reported and the model's shrunken estimate
    (:func:`bayes_msc.report.forest.forest_table`, in the model's study order)."""
    return forest_table(result)


# -- sections ------------------------------------------------------------------------------


def answer(ctx: ReportContext) -> Markup:
    d = ctx.result.decisions
    spec = ctx.spec
    inclusion = ctx.result.evidence.inclusion
    n_in = int((inclusion["status"] == "included").sum())
    n_patients = int(pd.to_numeric(ctx.result.evidence.arms["n"], errors="coerce").fillna(0).sum())
    thr = d.meaningful_threshold
    diag = ctx.result.diagnostics
    alert = "" if diag.passed else el("p", diag.verdict(), class_="alert", role="alert")

    def card(label, value, sub):
        return el("div", el("div", label, class_="label"), el("div", value, class_="value"),
                  el("div", sub, class_="sub"), class_="keynum")

    def eti(iv, scale=1.0, spec=".2f"):
        return (f"{round(iv.ci_prob * 100)}% equal-tailed {fmt(iv.lower * scale, spec)} to "
                f"{fmt(iv.upper * scale, spec)}")

    cards = el(
        "div",
        card("P(benefit): P(OR < 1)", pct(d.prob_benefit.prob), f"MCSE {fmt(100 * d.prob_benefit.mcse, '.1f')} points"),
        card(f"P(clinically meaningful benefit): P(OR < {thr:g})", pct(d.prob_meaningful.prob),
             f"MCSE {fmt(100 * d.prob_meaningful.mcse, '.1f')} points"),
        card("Pooled odds ratio", fmt(d.pooled_effect.median), eti(d.pooled_effect)),
        card("Odds ratio in a new trial", fmt(d.predictive_effect.median), eti(d.predictive_effect)),
        card(f"Absolute risk reduction at {pct(d.get("baseline_risk"))} risk", f"{fmt(100 * d.get("absolute_risk_reduction").median, '.1f')} points",
             eti(d.get("absolute_risk_reduction"), 100, ".1f")),
        card("Number needed to treat", fmt(d.get("nnt")["median"], ".1f") if d.get("nnt")["median"] and d.get("nnt")["median"] > 0 else "–",
             d.get("nnt")["text"]),
        class_="keynums",
    )
    direction = "lower" if d.pooled_effect.median < 1 else "higher"
    words = [
        para(
            f"Pooling {n_in} trials ({n_patients} patients in the arms that enter) with the priors stated below, "
            f"the posterior probability that mesenchymal stromal cells reduce the odds of death is "
            f"{pct(d.prob_benefit.prob)} (Monte Carlo standard error {fmt(100 * d.prob_benefit.mcse, '.1f')} "
            f"percentage points), and the probability of a clinically meaningful benefit — an odds ratio below "
            f"{thr:g} — is {pct(d.prob_meaningful.prob)} (MCSE {fmt(100 * d.prob_meaningful.mcse, '.1f')})."
        ),
        para(
            f"The pooled odds ratio of death with cells versus control is {interval_text(d.pooled_effect)}: "
            f"the odds of death are estimated {fmt(abs(1 - d.pooled_effect.median) * 100, '.0f')}% {direction} with cells. "
            f"Trials differ (between-trial SD τ {interval_text(d.tau, ends_mcse=True)} on the log-odds scale), so the odds ratio "
            f"to expect in a new trial is wider: {interval_text(d.predictive_effect)}, with probability "
            f"{pct(d.predictive_prob_benefit.prob)} (MCSE {fmt(100 * d.predictive_prob_benefit.mcse, '.1f')}) "
            "that it favours cells."
        ),
        para(
            f"At a control-arm risk of death of {pct(d.get("baseline_risk"))}"
            + (f" ({spec.decision.baseline_risk_source})" if spec.decision.baseline_risk_source else "")
            + f", the absolute risk reduction with cells is {interval_text(d.get("absolute_risk_reduction"), '.1f', 100, ' percentage points')}"
            f" — about {fmt(abs(100 * d.get("absolute_risk_reduction").median), '.0f')} {'fewer' if d.get("absolute_risk_reduction").median >= 0 else 'more'} deaths "
            f"per 100 patients treated; {d.get("nnt")['text']}."
        ),
    ]
    return Markup(alert + generic.population_answer(ctx) + el("div", *words, class_="answer") + cards)


def evidence_section(ctx: ReportContext) -> Markup:
    from ..evidence.mortality import choose_timepoint

    register = ctx.register
    evidence = ctx.result.evidence
    window = tuple(ctx.spec.evidence.timepoint_window_days)
    used_arms = set(zip(evidence.arms["study_id"], evidence.arms["arm_id"]))
    labels = register.studies.set_index("study_id")["label"]
    references = register.studies.set_index("study_id")["reference"]
    arm_labels = register.arms.set_index(["study_id", "arm_id"])["label"]
    rows = []
    for sid, group in register.mortality.groupby("study_id", sort=False):
        chosen = choose_timepoint(group, window)[0].index if sid in evidence.studies else []
        for i, r in group.iterrows():
            arms = str(r["arms"]).split("+")
            used = i in chosen and all((sid, a) in used_arms for a in arms)
            count = (fmt(r["deaths"], ".0f") if not pd.isna(r["deaths"])
                     else f"{fmt(r['deaths_min'], '.0f')}–{fmt(r['deaths_max'], '.0f')} (bound)")
            rows.append(Markup(el(
                "tr",
                el("td", labels.get(sid, sid)),
                el("td", " + ".join(str(arm_labels.get((sid, a), a)) for a in arms)),
                el("td", r["timepoint"]),
                el("td", count, class_="num"),
                el("td", "yes" if used else "no"),
                el("td", r["quality"]),
                el("td", public_note(r["notes"])),
                el("td", public_source(r["source"], references.get(sid))),
                class_=None if used else "excluded",
            )))
    columns = ("Study", "Arm(s)", "Timepoint", "Deaths", "Used", "Quality", "How the number was obtained", "Source")
    numbers = el("div", el("table",
                           el("caption", "Every mortality number in the register, with its source. “Used” marks the rows "
                                         "that enter this analysis (one timepoint per trial: the first reported day "
                                         f"within {window[0]}–{window[1]} days, otherwise the trial's own endpoint)."),
                           el("thead", el("tr", *(el("th", c, scope="col") for c in columns))),
                           el("tbody", *rows)), class_="table-wrap")
    return Markup(
        register_table(ctx, register.mortality)
        + el("h3", "Derived numbers and their sources")
        + numbers
    )


def forest_section(ctx: ReportContext) -> Markup:
    rows = forest_rows(ctx.result)
    post = ctx.posterior
    pooled = quantiles(post["log_or"])[[1, 0, 2]]
    predictive = quantiles(post["log_or_new"])[[1, 0, 2]]
    svg = figures.to_svg(figures.forest_plot(rows, pooled, predictive), "forest")

    def orv(x):
        return fmt(math.exp(x)) if np.isfinite(x) else "–"

    data_rows = []
    for r in rows.itertuples():
        if r.obs_kind == "none":
            obs = "–"
        elif r.obs_kind == "exact":
            obs = f"{orv(r.obs_est_low)} ({orv(r.obs_lower)} to {orv(r.obs_upper)})"
        else:
            obs = f"{orv(r.obs_est_low)} to {orv(r.obs_est_high)} ({orv(r.obs_lower)} to {orv(r.obs_upper)})"
        data_rows.append((r.label, r.obs_text + (" · 0.5 added to each cell" if r.corrected else ""), obs,
                          f"{orv(r.post_median)} ({orv(r.post_lower)} to {orv(r.post_upper)})"))
    data_rows.append(("Pooled effect", "all trials above", "–",
                      f"{orv(pooled[0])} ({orv(pooled[1])} to {orv(pooled[2])})"))
    data_rows.append(("New trial (prediction)", "pooled effect + heterogeneity", "–",
                      f"{orv(predictive[0])} ({orv(predictive[1])} to {orv(predictive[2])})"))
    data = table(("Study", "Data", "Observed OR (95% Wald CI)", "Model OR: median (95% ETI)"), data_rows,
                 numeric=(2, 3), caption="Odds ratios of death, cells vs control.")
    caption = (
        "Forest plot. Brown squares: each trial's observed odds ratio with a 95% Wald interval, computed for "
        "display only with 0.5 added to every cell of a trial that has a zero cell (the model uses the counts "
        "as they are, without correction); hollow squares joined by a dotted line are partial reports (e.g. "
        "only a bound on deaths): the range of estimates the report allows. Blue circles: the model's "
        "estimate of each trial's effect (posterior study_log_or, shrunk toward the pooled effect), median and "
        "95% equal-tailed interval. Black diamond: pooled effect; red line: 95% prediction interval for the "
        "effect in a new trial (log_or_new). Arrows mark intervals cut at the plot edge."
    )
    alt = (f"Forest plot of {len(rows)} trials; pooled odds ratio {orv(pooled[0])} ({orv(pooled[1])} to "
           f"{orv(pooled[2])}); new-trial prediction {orv(predictive[0])} ({orv(predictive[1])} to {orv(predictive[2])}).")
    return figure(svg, caption=caption, alt=alt, data=data, fig_id="fig-forest")


def key_parameters(spec) -> tuple[KeyParameter, ...]:
    return effect_parameters(
        spec,
        KeyParameter("log_or", "effect", "pooled log odds ratio μ"),
        KeyParameter("tau", "heterogeneity", "between-trial SD τ", positive=True),
        "log OR",
    )


def priors_section(ctx: ReportContext) -> Markup:
    n = ctx.result.evidence.n_studies
    note = (f"With only {n} trials the between-trial SD τ is weakly identified: its posterior stays close to "
            "its prior, so the prediction interval for a new trial depends on the heterogeneity prior.")
    return Markup(
        prior_posterior_section(ctx, key_parameters(ctx.spec), note=note)
        + el("h3", "Prior sensitivity")
        + sensitivity_table(ctx)
    )


def diagnostics_section(ctx: ReportContext) -> Markup:
    """The shared diagnostics, then the predictive check of deaths per arm."""
    ppc = ctx.result.outcome.posterior_predictive(ctx.result)
    ppc_svg = figures.to_svg(figures.ppc_plot(ppc), "ppc")
    outside = ppc[~ppc["inside95"]]
    ppc_rows = [
        (r.label + ("" if r.kind == "exact" else f" ({r.kind} report)"), f"{r.n}",
         f"{r.obs_low}" if r.obs_low == r.obs_high else f"{r.obs_low}–{r.obs_high}",
         f"{fmt(r.pred_median, '.0f')} ({fmt(r.pred_q025, '.0f')} to {fmt(r.pred_q975, '.0f')})",
         fmt(r.ppp, ".2f"), "yes" if r.inside95 else "NO")
        for r in ppc.itertuples()
    ]
    ppc_data = table(("Arm", "n", "Observed deaths", "Predicted deaths: median (95%)", "Predictive p",
                      "Inside 95%"), ppc_rows, numeric=(1, 2, 3, 4),
                     caption="Observed and posterior predictive deaths per arm; predictive p is two-sided.")
    summary = (f"{len(ppc) - len(outside)} of {len(ppc)} observed counts lie inside their 95% posterior "
               "predictive interval" + (": " + ", ".join(outside["label"]) + " do not." if len(outside) else "."))
    ppc_caption = ("Posterior predictive check: for every posterior draw, deaths were simulated as "
                   "Binomial(n, p) in each arm at the model's arm log-odds (baseline and the trial's log odds "
                   "ratio, in the spec's likelihood coding); "
                   "observed proportions (brown diamonds; a bound is a hollow pair) against the predictive 50% "
                   "and 95% intervals (blue). " + summary)
    return Markup(
        generic.diagnostics_section(ctx, [k.var for k in key_parameters(ctx.spec)])
        + el("h3", "Posterior predictive check")
        + figure(ppc_svg, caption=ppc_caption, alt="Observed against predicted deaths per arm. " + summary,
                 data=ppc_data, fig_id="fig-ppc")
    )


def methods_section(ctx: ReportContext) -> Markup:
    from ..models.sparse import baseline_prior_target, likelihood_methods_text

    spec = ctx.spec
    result = ctx.result
    ev = result.evidence
    inclusion = ev.inclusion
    n_in = int((inclusion["status"] == "included").sum())
    kinds = {r.kind for r in ev.partial}
    cite = Citations()

    role_words = {"effect": "pooled log odds ratio μ", "heterogeneity": "between-trial standard deviation τ",
                  "baseline": baseline_prior_target(spec.model.likelihood, spec.model.baselines)}
    if spec.model.dose_response == "emax":
        role_words["effect"] = "maximal effect Emax (log odds ratio)"
    prior_bits = []
    for role, prior in spec.priors.by_role().items():
        prior_bits.append(generic.prior_words(spec, role, prior, role_words.get(role) or DOSE_ROLE_WORDS.get(role, role),
                                              cite))
    partial_text = ""
    if "bounded" in kinds and spec.model.likelihood == "conditional":
        from ..models.mortality import bound_weighting_check

        check = bound_weighting_check(result)
        if check is not None:
            partial_text += (
                f" Weighting the bounded configurations ({', '.join(check['studies'])}) by the probability of their "
                "total is an assumption about the trial's baseline; counting each configuration once instead, a sum "
                "that is not a probability, would give P(OR < 1) = "
                f"{fmt(check['prob_benefit_unweighted'], '.3f')} (MCSE {fmt(check['prob_benefit_unweighted_mcse'], '.3f')}; "
                f"importance reweighting of these draws) against {fmt(check['prob_benefit'], '.3f')}: it pulls "
                f"{check['direction']}.")
    elif "bounded" in kinds:
        partial_text += " A bound on an arm's deaths entered as an interval-censored binomial likelihood."
    if "total" in kinds:
        partial_text += (" A death count reported only as a total across arms of unknown size entered as the "
                         "distribution of the sum of the arm binomials, averaged with equal weights over the "
                         "allocations the design allows.")
    window = spec.evidence.timepoint_window_days
    text = (
        likelihood_methods_text(spec.model.likelihood, spec.model.baselines) + partial_text
        + f"{dose_methods_text(spec)} "
        f"Of {len(ctx.register.studies)} studies in the evidence register, {n_in} "
        f"({sum(int(n) for n in pd.to_numeric(ev.arms['n'], errors='coerce').fillna(0))} patients in the arms "
        f"used) entered the analysis (evidence set “{spec.evidence.evidence_set}”; cell products: "
        f"{', '.join(nice(c) for c in spec.evidence.product_classes) or 'all'}); the others are listed with the "
        f"reason. Mortality was taken at the first reported day within {window[0]}–{window[1]} days, otherwise "
        f"at the trial's own endpoint. Priors: {'; '.join(prior_bits)}. The effect in a new trial was "
        f"μ + τ ε, ε ~ Normal(0, 1). "
        + sampling_methods_text(ctx, cite)
        + f"Results are posterior medians with {round(spec.decision.ci_prob * 100)}% equal-tailed intervals; "
        f"P(benefit) = P(OR < 1) and P(OR < {spec.decision.clinically_meaningful_or:g}) are given with Monte Carlo "
        f"standard errors, and absolute risk reduction and number needed to treat at a baseline risk of "
        f"{pct(spec.decision.baseline_risk)}"
        + (f" ({spec.decision.baseline_risk_source})" if spec.decision.baseline_risk_source else "")
        + f" {cite('Altman, BMJ 1998;317:1309 (NNT with confidence intervals)')}. "
        + versions_text(ctx)
    )
    derived = _derived_references(ctx)
    return Markup(
        el("div", para(text), class_="methods")
        + el("h3", "References")
        + cite.html()
        + el("h3", "Sources of derived and assumed numbers")
        + (el("ol", *(el("li", d) for d in derived), class_="refs") if derived
           else para("Every number used was reported directly.", class_="note"))
        + el("h3", "Provenance")
        + provenance_table(ctx)
    )


def _derived_references(ctx: ReportContext) -> list[Markup]:
    """The register rows behind the analysis that were inferred or assumed, with their source."""
    from ..evidence.mortality import choose_timepoint

    register = ctx.register
    evidence = ctx.result.evidence
    window = tuple(ctx.spec.evidence.timepoint_window_days)
    labels = register.studies.set_index("study_id")["label"]
    references = register.studies.set_index("study_id")["reference"]
    arm_labels = register.arms.set_index(["study_id", "arm_id"])["label"]
    used_arms = set(zip(evidence.arms["study_id"], evidence.arms["arm_id"]))
    out = []

    def when(r):
        return f"at {r['timepoint']}" if not pd.isna(r["day"]) else f"(timepoint {r['timepoint']})"

    def arms_text(sid, arms):
        return " + ".join(str(arm_labels.get((sid, a), a)) for a in str(arms).split("+"))

    for sid in evidence.studies:
        rows = choose_timepoint(register.mortality[register.mortality["study_id"] == sid], window)[0]
        for _, r in rows.iterrows():
            if r["quality"] in ("inferred", "assumption") and all((sid, a) in used_arms for a in str(r["arms"]).split("+")):
                out.append(join([f"{labels.get(sid, sid)}, deaths in {arms_text(sid, r['arms'])} {when(r)}: ",
                                 public_note(r["notes"]), f" — {public_source(r['source'], references.get(sid))} ({r['quality']})."]))
        doses = register.doses[register.doses["study_id"] == sid]
        for _, r in doses.iterrows():
            if r["quality"] in ("inferred", "assumption") and (sid, r["arm_id"]) in used_arms:
                out.append(join([f"{labels.get(sid, sid)}, dose of {arms_text(sid, r['arm_id'])}: ",
                                 public_note(r["notes"]), f" — {public_source(r['source'], references.get(sid))} ({r['quality']})."]))
    return out


def mortality_layout() -> list[Section]:
    from .next_trial import next_trial_section
    from .flow import flow_section

    return [
        Section("answer", "The answer", answer),
        Section("forest", "Trial by trial: forest plot", forest_section),
        Section("flow", "Which studies, and why: study flow", flow_section),
        generic.shared_section("frequentist"),
        generic.shared_section("cumulative"),
        Section("dose-response", "Dose-response", lambda ctx: dose_response_section(
            ctx, ylabel="odds ratio of death", reference=1.0)),
        Section("priors", "Priors and posteriors", priors_section),
        Section("diagnostics", "Can the numbers be trusted? Diagnostics", diagnostics_section),
        generic.shared_section("robustness", "Does one trial decide it? Is the inference calibrated?"),
        Section("next-trial", "The next trial", next_trial_section),
        Section("methods", "Methods", methods_section),
        # the register row by row, for a reviewer checking a number: an appendix, folded
        Section("evidence", "Appendix: the evidence, row by row",
                collapsed(evidence_section, "Every study and every number it reported, with its source (click to open)")),
    ]


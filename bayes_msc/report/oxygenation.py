"""The oxygenation report: change in PaO2/FiO2 (mmHg) from baseline, cells vs control, pooled
from normal likelihood terms that were mostly *derived* from what trials reported (a median
and IQR, a confidence interval, a P value). Registered as the ``oxygenation`` layout.

What differs from mortality: the answer is a mean difference with a natural course beside it;
the evidence section puts every derived number next to the numbers it came from and the
formula; the forest plot shows each likelihood term (an arm's change or a reported contrast)
with the model's natural course and effect per study; the predictive check replicates each
term as ``Normal(model mean, SE)``.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from . import figures, generic
from ..evidence.citation import public_source
from .html import Markup, el, figure, fmt, join, para, pct, table
from .sections import (
    collapsed,
    Citations,
    KeyParameter,
    ReportContext,
    Section,
    DOSE_ROLE_WORDS,
    dose_methods_text,
    dose_response_section,
    effect_parameters,
    eti_text,
    interval_text,
    keynum,
    keynums,
    nice,
    prior_posterior_section,
    provenance_table,
    quantiles,
    register_table,
    sampling_methods_text,
    sensitivity_table,
    versions_text,
)

Z95 = 1.959963984540054
UNIT = "mmHg"

MEASURE_NAMES = {
    "pf_ratio": "PaO2/FiO2",
    "sf_ratio": "SpO2/FiO2",
    "pao2": "PaO2",
    "oxygenation_index": "oxygenation index",
}
QUANTITY_NAMES = {
    "change_from_baseline": "change from baseline",
    "baseline": "baseline value",
    "at_day": "value at a day",
}
NUMBER_WORDS = ("no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten")

# The published methods behind the derivations (bayes_msc.evidence.derivations), keyed by a
# fragment of the short citation each derivation step records.
METHOD_REFERENCES = (
    ("Wan X", "Wan X, Wang W, Liu J, Tong T. Estimating the sample mean and standard deviation from the sample "
              "size, median, range and/or interquartile range. BMC Med Res Methodol 2014;14:135"),
    ("Luo D", "Luo D, Wan X, Liu J, Tong T. Optimally estimating the sample mean from the sample size, median, "
              "mid-range, and/or mid-quartile range. Stat Methods Med Res 2018;27:1785–1805"),
    ("Cochrane", "Higgins JPT, Thomas J, Chandler J, et al. (eds). Cochrane Handbook for Systematic Reviews of "
                 "Interventions, version 6.4 (2023), §6.5.2 (SE from an SD, a confidence interval or a P value)"),
    ("Rice TW", "Rice TW, Wheeler AP, Bernard GR, et al. Comparison of the SpO2/FIO2 ratio and the PaO2/FIO2 "
                "ratio in patients with acute lung injury or ARDS. Chest 2007;132:410–417"),
)
METHOD_USES = {
    "Wan X": "median and IQR → mean (scenario C3: (q1 + median + q3) / 3) and SD (IQR / η(n))",
    "Luo D": "median and IQR → mean, weighted by n (spec evidence.median_iqr_method = \"luo2018\")",
    "Cochrane": "SE = SD / √n; SE from a 95% CI, (upper − lower) / (2 × 1.96); SE from a P value, |estimate| / z",
    "Rice TW": "change in SpO2/FiO2 → change in PaO2/FiO2 (S/F = 64 + 0.84 × P/F)",
}


def mm(value: float) -> str:
    return fmt(value, ".1f")


def _count(n: int) -> str:
    return NUMBER_WORDS[n] if 0 <= n < len(NUMBER_WORDS) else str(n)


def _labels(ctx: ReportContext) -> tuple[pd.Series, pd.Series]:
    register = ctx.register
    return (register.studies.set_index("study_id")["label"],
            register.arms.set_index(["study_id", "arm_id"])["label"])


def _has(value) -> bool:
    return isinstance(value, str) and bool(value.strip())


def term_label(ctx: ReportContext, sid: str, arm: str, comparator) -> str:
    """``UC-MSC arm: change`` or ``UC-MSC − placebo: difference``."""
    _, arm_labels = _labels(ctx)
    name = str(arm_labels.get((sid, arm), arm))
    if _has(comparator):
        return f"{name} − {arm_labels.get((sid, comparator), comparator)}: difference"
    return f"{name} arm: change"


def _reported_row(ctx: ReportContext, term) -> pd.Series | None:
    """The ``derived`` row a likelihood term came from."""
    derived = ctx.result.evidence.derived
    comparator = term.comparator if _has(term.comparator) else None
    hit = derived[(derived["study_id"] == term.study_id) & (derived["arm"] == term.arm)
                  & (derived["timepoint"] == term.timepoint) & derived["used"].astype(bool)]
    hit = hit[hit["comparator"].isna()] if comparator is None else hit[hit["comparator"] == comparator]
    return None if hit.empty else hit.iloc[0]


# -- the studies that enter ----------------------------------------------------------------


def study_facts(ctx: ReportContext) -> list[dict]:
    """Per included study: its terms, whether it has a control, bounded SEs, the patients."""
    evidence = ctx.result.evidence
    register = ctx.register
    labels, _ = _labels(ctx)
    designs = register.studies.set_index("study_id")["design"]
    arms = register.arms.set_index(["study_id", "arm_id"])
    out = []
    for sid in evidence.studies:
        terms = evidence.terms[evidence.terms["study_id"] == sid]
        single_arm = bool((terms["kind"] == "arm").all() and (terms["treated"] == 1).all())
        bounded = [(t, _reported_row(ctx, t)) for t in terms.itertuples() if bool(t.se_is_bound)]
        arm_ids = list(dict.fromkeys([a for t in terms.itertuples()
                                      for a in (t.arm, t.comparator) if _has(a)]))
        low = high = 0
        unsure = []
        for a in arm_ids:
            n = arms["n"].get((sid, a), np.nan)
            if not pd.isna(n):
                low, high = low + int(n), high + int(n)
                continue
            allowed = arms["n_allowed"].get((sid, a), np.nan)
            sizes = sorted({int(x) for x in str(allowed).split("|") if x.strip().isdigit()}) if not pd.isna(allowed) else []
            low, high = (low + min(sizes), high + max(sizes)) if sizes else (low, math.inf)
            name = arms["label"].get((sid, a), a)
            unsure.append(f"the size of the {name} arm is not reported"
                          + (f", its design allows {' or '.join(map(str, sizes))}" if sizes else ""))
        out.append({
            "study_id": sid, "label": str(labels.get(sid, sid)), "design": nice(designs.get(sid, "")),
            "terms": terms, "single_arm": single_arm, "bounded": bounded,
            "undated": bool(terms["day"].isna().any()), "n_low": low, "n_high": high, "unsure": unsure,
        })
    return out


def _patients_text(facts: list[dict]) -> str:
    low = sum(f["n_low"] for f in facts)
    high = sum(f["n_high"] for f in facts)
    unsure = [u for f in facts for u in f["unsure"]]
    if low == high:
        return f"{low} patients in the arms that enter"
    count = f"at least {low}" if math.isinf(high) else f"{low} to {high}"
    return f"{count} patients: {'; '.join(unsure)}"


def caveat_text(ctx: ReportContext, facts: list[dict]) -> str:
    """The honest sentence: how little enters, and what is weak about it."""
    n_in, n_all = len(facts), len(ctx.register.studies)
    parts = [f"This answer rests on little evidence: only {_count(n_in)} of the {n_all} studies in the register "
             f"enter ({_patients_text(facts)})."]
    for f in facts:
        if f["single_arm"]:
            design = "" if "single" in f["design"] else f" ({f['design']})"
            bit = (f"{f['label']} is a single-arm study{design} with no control arm: its change is read as "
                   "natural course plus treatment effect, with the natural course borrowed from other studies' "
                   "control arms, so it informs the effect only as far as natural courses are assumed alike")
        else:
            kinds = sorted(set(f["terms"]["kind"]))
            bit = (f"{f['label']} ({f['design']}) enters by its "
                   + ("arm changes" if kinds == ["arm"] else "reported difference" if kinds == ["contrast"]
                      else "arm changes and a reported difference"))
        for term, row in f["bounded"]:
            reported = f", derived from a report of “{row['reported']}”" if row is not None else ""
            bit += (f"; its standard error, {mm(term.se)} {UNIT}, is only an upper bound{reported}, so its weight "
                    "is if anything understated")
        if f["undated"]:
            bit += "; the day of its measurement is not stated"
        parts.append(bit + ".")
    parts.append("With so few studies, the between-study SD τ and the spread of natural courses are informed "
                 "mostly by their priors (see Priors and posteriors), and the intervals are wide.")
    return " ".join(parts)


# -- sections ------------------------------------------------------------------------------


def answer(ctx: ReportContext) -> Markup:
    d = ctx.result.decisions
    diag = ctx.result.diagnostics
    facts = study_facts(ctx)
    better = ">" if d.benefit_direction == "increase" else "<"
    above = "above" if d.benefit_direction == "increase" else "below"
    more = "increase" if d.benefit_direction == "increase" else "decrease"
    thr = d.meaningful_threshold
    alert = "" if diag.passed else el("p", diag.verdict(), class_="alert", role="alert")

    def mcse(p):
        return fmt(100 * p.mcse, ".1f")

    cards = [
        keynum(f"P(benefit): P(pooled difference {better} 0)", pct(d.prob_benefit.prob),
               f"MCSE {mcse(d.prob_benefit)} points"),
        keynum(f"P(clinically meaningful): P(pooled difference {better} {thr:g} {UNIT})",
               pct(d.prob_meaningful.prob), f"MCSE {mcse(d.prob_meaningful)} points"),
        keynum(f"Pooled mean difference ({UNIT})", mm(d.pooled_effect.median), eti_text(d.pooled_effect, ".1f")),
        keynum(f"Difference in a new trial ({UNIT})", mm(d.predictive_effect.median), eti_text(d.predictive_effect, ".1f")),
        keynum(f"Between-study SD τ ({UNIT})", mm(d.tau.median), eti_text(d.tau, ".1f")),
    ]
    natural_course = _natural_course(d)
    if natural_course is not None:
        cards.append(keynum(f"Natural course: change without cells ({UNIT})", mm(natural_course.median),
                            eti_text(natural_course, ".1f")))
    unit = f" {UNIT}"
    words = [
        para(
            f"Pooling {_count(len(facts))} studies with the priors stated below, the posterior probability that "
            f"mesenchymal stromal cells {more} PaO2/FiO2 more than control — a pooled mean difference in the "
            f"change from baseline {above} 0 — is {pct(d.prob_benefit.prob)} (Monte Carlo standard error "
            f"{mcse(d.prob_benefit)} percentage points), and the probability of a clinically meaningful difference, "
            f"{above} {thr:g} {UNIT}, is {pct(d.prob_meaningful.prob)} (MCSE {mcse(d.prob_meaningful)}). "
            f"The {abs(thr):g} {UNIT} threshold is a judgement set in the analysis spec "
            "(decision.clinically_meaningful_difference); no minimal clinically important difference for "
            "PaO2/FiO2 has been established."
        ),
        para(
            f"The pooled mean difference in the change of PaO2/FiO2, cells minus control, is "
            f"{interval_text(d.pooled_effect, '.1f', unit=unit)}. Studies may differ — the between-study SD τ is "
            f"{interval_text(d.tau, '.1f', unit=unit, ends_mcse=True)} — so the difference to expect in a new trial is wider: "
            f"{interval_text(d.predictive_effect, '.1f', unit=unit)}, with probability "
            f"{pct(d.predictive_prob_benefit.prob)} (MCSE {mcse(d.predictive_prob_benefit)}) that it favours cells."
            + ("" if natural_course is None else
               f" Without cells, PaO2/FiO2 is estimated to change by "
               f"{interval_text(natural_course, '.1f', unit=unit)} over the same period (the natural course).")
        ),
        para(caveat_text(ctx, facts), class_="caveat"),
    ]
    return Markup(alert + el("div", *words, class_="answer") + keynums(*cards))


def _why_not_used(ctx: ReportContext, row: pd.Series, used_terms: pd.DataFrame, inclusion: pd.Series) -> str:
    """Why a derived number does not enter the analysis, in a reader's words."""
    from ..evidence.oxygenation import MEASURE_REASONS, USABLE_MEASURES

    sid = row["study_id"]
    if sid not in set(ctx.result.evidence.studies):
        reason = inclusion.get(sid, "")
        return f"study excluded: {reason}" if _has(reason) else "study not in this analysis"
    if row["measure"] not in USABLE_MEASURES:
        return MEASURE_REASONS.get(row["measure"], f"{row['measure']} is not PaO2/FiO2")
    if row["quantity"] != "change_from_baseline":
        return f"a {QUANTITY_NAMES.get(row['quantity'], row['quantity'])}, not a change from baseline"
    if str(row["derivation"]).startswith("not derivable"):
        return str(row["derivation"])
    mine = used_terms[used_terms["study_id"] == sid]
    if row["timepoint"] not in set(mine["timepoint"]):
        window = ctx.spec.evidence.oxygenation_day_window
        return (f"another timepoint is used ({', '.join(dict.fromkeys(mine['timepoint']))}: the day closest to "
                f"day {ctx.spec.evidence.oxygenation_day} within days {window[0]}–{window[1]})")
    is_contrast = _has(row["comparator"])
    if is_contrast and (mine["kind"] == "arm").any():
        return ("the trial enters by its arm changes (evidence.prefer = arms); using its contrast as well would "
                "count its patients twice")
    if not is_contrast and (mine["kind"] == "contrast").any():
        return "the trial enters by its reported contrast; using its arms as well would count its patients twice"
    return "not used"


def _reference(ctx: ReportContext, sid: str) -> str:
    studies = ctx.register.studies
    found = studies.loc[studies["study_id"] == sid, "reference"]
    return found.iloc[0] if len(found) else ""


def arm_text(ctx: ReportContext, sid: str, arm: str, comparator) -> str:
    """``UC-MSC`` or ``UC-MSC − placebo`` (a contrast)."""
    _, arm_labels = _labels(ctx)
    name = str(arm_labels.get((sid, arm), arm))
    return f"{name} − {arm_labels.get((sid, comparator), comparator)}" if _has(comparator) else name


def derived_table(ctx: ReportContext) -> Markup:
    """Every number derived from the register's oxygenation rows, next to what was reported:
    one row with the numbers, a second (full-width) row with the formula and its method."""
    evidence = ctx.result.evidence
    labels, _ = _labels(ctx)
    inclusion = evidence.inclusion.set_index("study_id")["reason"]
    columns = ("Study", "Arm or contrast", "Measure, timepoint", "Reported", f"Derived estimate ({UNIT})",
               f"Derived SE ({UNIT})", "Enters")
    rows = []
    for _, r in evidence.derived.iterrows():
        used = bool(r["used"])
        bound = r.get("se_is_bound", False)
        bound = False if pd.isna(bound) else bool(bound)
        css = None if used else "excluded"
        status = "yes" if used else join(["no: ", _why_not_used(ctx, r, evidence.terms, inclusion)])
        how = ([el("strong", "How: "), r["derivation"]] if _has(r["derivation"])
               else [el("strong", "How: "), "no numbers to derive (direction only)"])
        if _has(r.get("references")):
            how += [" — ", el("span", r["references"], class_="note")]
        rows.append(el(
            "tr",
            el("td", labels.get(r["study_id"], r["study_id"]), el("br"),
               el("span", f"{r['quality']}; {public_source(r['source'], _reference(ctx, r['study_id']))}",
                  class_="note"), rowspan=2),
            el("td", arm_text(ctx, r["study_id"], r["arm"], r["comparator"])),
            el("td", f"{MEASURE_NAMES.get(r['measure'], r['measure'])}, "
                     f"{QUANTITY_NAMES.get(r['quantity'], r['quantity'])}, {r['timepoint']}"),
            el("td", r["reported"]),
            el("td", fmt(r["estimate"], ".2f"), class_="num"),
            el("td", ("≤ " if bound else "") + fmt(r["se"], ".2f"), class_="num"),
            el("td", status),
            class_=css,
        ))
        rows.append(el("tr", el("td", *how, colspan=len(columns) - 1, class_="formula"), class_=css))
    caption = ("Every oxygenation number in the register as the trial reported it, next to the estimate and "
               "standard error derived from it; the line under each gives the arithmetic with the reported "
               "numbers substituted and the method followed. “Enters” marks the numbers this analysis uses and "
               "says why the others do not. An SE marked “≤” is only an upper bound (a P value reported as "
               "“P < p”); it is used as the SE, which understates that study's precision. Under each study: "
               "the quality of the number and its source.")
    return el("div", el("table", el("caption", caption),
                        el("thead", el("tr", *(el("th", c, scope="col") for c in columns))),
                        el("tbody", *rows), class_="derived"), class_="table-wrap")


def method_references(ctx: ReportContext) -> Markup:
    """The four published methods the derivations follow, and which of them this analysis used."""
    derived = ctx.result.evidence.derived
    references = derived["references"] if "references" in derived else pd.Series("", index=derived.index)
    cited = " ".join(str(x) for x in references.dropna())
    used = " ".join(str(x) for x in references[derived["used"].astype(bool)].dropna())
    items = []
    for key, reference in METHOD_REFERENCES:
        if key in used:
            status = "used by numbers that enter this analysis"
        elif key in cited:
            status = "used only by numbers that do not enter"
        else:
            status = "not needed by any number in the register now"
        items.append(el("li", reference, ". ", el("span", f"{METHOD_USES[key]} — {status}.", class_="note")))
    return el("ol", *items, class_="refs")


def evidence_section(ctx: ReportContext) -> Markup:
    return Markup(
        register_table(ctx, ctx.register.oxygenation)
        + el("h3", "Derived numbers and their sources")
        + para("Trials report PaO2/FiO2 in many forms; the model needs an estimate and a standard error in "
               f"{UNIT}. Each is derived by a published method (below) and shown with its arithmetic, so every "
               "number can be checked against the trial report.", class_="note")
        + derived_table(ctx)
        + el("h3", "Methods behind the derived numbers")
        + method_references(ctx)
    )


# -- forest plot ---------------------------------------------------------------------------

NATURAL = "#2e7d4f"


def forest_rows(ctx: ReportContext) -> pd.DataFrame:
    """Per included study: a header, its terms (estimate ± 1.96 SE), the model's natural course
    and treatment effect for it (posterior median and 95% equal-tailed interval)."""
    result = ctx.result
    post = ctx.posterior
    labels, _ = _labels(ctx)
    rows = []
    for sid in result.evidence.studies:
        rows.append({"study_id": sid, "kind": "header", "label": str(labels.get(sid, sid)),
                     "est": np.nan, "lower": np.nan, "upper": np.nan, "bound": False, "se": np.nan})
        for t in result.evidence.terms[result.evidence.terms["study_id"] == sid].itertuples():
            rows.append({"study_id": sid, "kind": "term", "label": term_label(ctx, sid, t.arm, t.comparator),
                         "est": t.estimate, "lower": t.estimate - Z95 * t.se, "upper": t.estimate + Z95 * t.se,
                         "bound": bool(t.se_is_bound), "se": t.se, "timepoint": t.timepoint})
        for var, kind, label in (("natural_course", "natural", "natural course (model)"),
                                 ("study_effect", "effect", "effect, cells − control (model)")):
            if var in post and "study" in post[var].dims:
                q = quantiles(post[var].sel(study=sid))
                rows.append({"study_id": sid, "kind": kind, "label": label, "est": q[1], "lower": q[0],
                             "upper": q[2], "bound": False, "se": np.nan})
    return pd.DataFrame(rows)


def forest_plot(rows: pd.DataFrame, pooled, predictive, *, threshold: float):
    """Forest plot on the mmHg scale: terms (brown squares; hollow and dotted when the SE is only
    an upper bound), natural course (green), study effect (blue), pooled diamond, prediction line."""
    import matplotlib
    from matplotlib.lines import Line2D

    values = np.concatenate([rows[["lower", "upper"]].to_numpy(float).ravel(), np.asarray(predictive, float),
                             [0.0, threshold]])
    values = values[np.isfinite(values)]
    span = float(values.max() - values.min()) or 1.0
    lo, hi = float(values.min()) - 0.04 * span, float(values.max()) + 0.04 * span
    n = len(rows)
    colours = {"term": figures.OBSERVED, "natural": NATURAL, "effect": figures.SHRUNK}
    markers = {"term": "s", "natural": "^", "effect": "o"}
    with matplotlib.rc_context(figures._RC):
        fig = figures._figure(9.5, 1.6 + 0.32 * (n + 2))
        ax = fig.add_subplot()
        ticks, tick_labels, bold = [], [], []
        for i, row in enumerate(rows.itertuples()):
            y = n + 1 - i
            ticks.append(y)
            tick_labels.append(figures.mpl_text(row.label))
            bold.append(row.kind == "header")
            if row.kind == "header":
                continue
            colour = colours[row.kind]
            style = ":" if row.bound else "-"
            figures._clipped_line(ax, row.lower, row.upper, y, lo, hi, colour, style, 1.6)
            ax.plot([row.est], [y], markers[row.kind], color=colour, mfc="white" if row.bound else colour,
                    ms=5.5, zorder=3)
        m, low, up = pooled
        ax.fill([low, m, up, m], [1, 1.25, 1, 0.75], color=figures.POOLED, zorder=3)
        pm_, pl, pu = predictive
        figures._clipped_line(ax, pl, pu, 0.3, lo, hi, figures.PREDICTIVE, "-", 2.2)
        ax.plot([pm_], [0.3], "|", color=figures.PREDICTIVE, ms=9)
        ax.axvline(0, color=figures.MUTED, lw=0.8, zorder=0)
        if threshold:
            ax.axvline(threshold, color=figures.MUTED, lw=0.8, ls="--", zorder=0)
            ax.text(threshold, n + 1.6, f" {threshold:g} {UNIT}", color=figures.MUTED, fontsize=8, va="bottom")
        ax.set_yticks(ticks + [1, 0.3], tick_labels + ["Pooled effect μ", "New trial (prediction)"])
        for label, is_bold in zip(ax.get_yticklabels(), bold + [True, True]):
            if is_bold:
                label.set_fontweight("bold")
        ax.set_ylim(-0.3, n + 1.6)
        ax.set_xlim(lo, hi)
        ax.set_xlabel(f"PaO2/FiO2, {UNIT}: change from baseline (arm rows, natural course) or difference, "
                      "cells − control (effects)")
        handles = [
            Line2D([], [], color=figures.OBSERVED, marker="s", label="reported, derived estimate ± 1.96 SE"),
            Line2D([], [], color=figures.OBSERVED, marker="s", mfc="white", ls=":",
                   label="same, SE only an upper bound"),
            Line2D([], [], color=NATURAL, marker="^", label="natural course (model)"),
            Line2D([], [], color=figures.SHRUNK, marker="o", label="study's treatment effect (model)"),
            Line2D([], [], color=figures.PREDICTIVE, lw=2.2, label="95% prediction interval, new trial"),
        ]
        fig.legend(handles=handles, loc="outside lower center", ncols=3, frameon=False, fontsize=8.5)
        return fig


def forest_section(ctx: ReportContext) -> Markup:
    rows = forest_rows(ctx)
    post = ctx.posterior
    d = ctx.result.decisions
    pooled = quantiles(post["mu"])[[1, 0, 2]]
    predictive = quantiles(post["mu_new"])[[1, 0, 2]]
    svg = figures.to_svg(forest_plot(rows, pooled, predictive, threshold=d.meaningful_threshold), "forest")

    def iv(est, lower, upper):
        return f"{mm(est)} ({mm(lower)} to {mm(upper)})"

    what = {"term": "reported (derived): estimate ± 1.96 SE", "natural": "model: natural_course, median (95% ETI)",
            "effect": "model: study_effect, median (95% ETI)"}
    data_rows = []
    for r in rows.itertuples():
        if r.kind == "header":
            continue
        label = f"{rows.loc[(rows['study_id'] == r.study_id) & (rows['kind'] == 'header'), 'label'].iloc[0]}: {r.label}"
        note = what[r.kind] + (f", {r.timepoint}" if r.kind == "term" else "")
        if r.bound:
            note += f"; SE {mm(r.se)} is only an upper bound"
        data_rows.append((label, note, iv(r.est, r.lower, r.upper)))
    data_rows.append(("Pooled effect μ", "model: mu, median (95% ETI)", iv(*pooled)))
    data_rows.append(("New trial (prediction)", "model: mu_new = μ + τ ε, median (95% ETI)", iv(*predictive)))
    data = table(("Row", "What", f"{UNIT}: estimate (interval)"), data_rows, numeric=(2,),
                 caption=f"The plotted numbers, PaO2/FiO2 in {UNIT}.")
    caption = (
        "Forest plot, PaO2/FiO2 in mmHg. Per study: brown squares are the likelihood terms — an arm's mean change "
        "from baseline, or a reported difference — at the estimate derived from the report, with ± 1.96 SE; a "
        "hollow square on a dotted line marks an SE that is only an upper bound (the true interval is narrower). "
        "An arm's change is natural course plus, for a cell arm, the treatment effect: green triangles are the "
        "model's natural course for the study (posterior natural_course) and blue circles its treatment effect, "
        "cells minus control (posterior study_effect, shrunk toward the pooled effect); both median and 95% "
        "equal-tailed interval. Black diamond: pooled effect μ; red line: 95% prediction interval for the effect "
        f"in a new trial (mu_new). Solid vertical line: 0; dashed: the {abs(d.meaningful_threshold):g} {UNIT} "
        "threshold. Arrows mark intervals cut at the plot edge."
    )
    effects = rows[rows["kind"] == "effect"]
    headers = rows[rows["kind"] == "header"].set_index("study_id")["label"]
    alt = (f"Forest plot of {len(headers)} studies. "
           + " ".join(f"{headers[r.study_id]}: effect {iv(r.est, r.lower, r.upper)} {UNIT}." for r in effects.itertuples())
           + f" Pooled difference {iv(*pooled)} {UNIT}; new-trial prediction {iv(*predictive)} {UNIT}.")
    return figure(svg, caption=caption, alt=alt, data=data, fig_id="fig-forest")


# -- priors --------------------------------------------------------------------------------

def effect_key_parameters(spec) -> tuple[KeyParameter, ...]:
    return effect_parameters(
        spec,
        KeyParameter("mu", "effect", "pooled mean difference μ (mmHg)"),
        KeyParameter("tau", "heterogeneity", "between-study SD of the effect τ (mmHg)", positive=True),
        "mmHg",
    )
NATURAL_PARAMETERS = (
    KeyParameter("nc_mean", "baseline", "mean natural-course change (mmHg)"),
    KeyParameter("nc_sd", "baseline_heterogeneity", "between-study SD of the natural course (mmHg)", positive=True),
)


def priors_section(ctx: ReportContext) -> Markup:
    n = ctx.result.evidence.n_studies
    parts = [
        el("h3", "Treatment effect"),
        prior_posterior_section(
            ctx, effect_key_parameters(ctx.spec),
            note=f"With only {_count(n)} studies the between-study SD τ is barely identified: its posterior stays "
                 "close to its prior, so the prediction interval for a new trial is set largely by the "
                 "heterogeneity prior."),
    ]
    if "nc_mean" in ctx.posterior:
        parts += [
            el("h3", "Natural course"),
            prior_posterior_section(
                ctx, NATURAL_PARAMETERS, fig_id="fig-prior-posterior-natural", name="prior-posterior-natural",
                note="The natural course is the change without cells. Its between-study SD decides how much a "
                     "single-arm study's change, read against other studies' control arms, can say about the "
                     "treatment effect; it too is mostly prior."),
        ]
    parts += [el("h3", "Prior sensitivity"), sensitivity_table(ctx)]
    return Markup(join(parts))


# -- diagnostics and the predictive check --------------------------------------------------


def _natural_course(decisions):
    """The natural course's summary, when the fit has one (arm-level terms entered)."""
    return next((x.value for x in decisions.extra if x.key == "natural_course_mean"), None)


def term_predictive(ctx: ReportContext, seed: int | None = None) -> pd.DataFrame:
    """The outcome's posterior predictive check of every term, labelled for the page."""
    ppc = ctx.result.outcome.posterior_predictive(ctx.result, seed)
    labels, _ = _labels(ctx)
    ppc.insert(0, "label", [f"{labels.get(r.study_id, r.study_id)}: {term_label(ctx, r.study_id, r.arm, r.comparator)}"
                            for r in ppc.itertuples()])
    return ppc


def ppc_plot(rows: pd.DataFrame):
    """Observed (derived) estimate of each term against its posterior predictive intervals."""
    import matplotlib
    from matplotlib.lines import Line2D

    n = len(rows)
    with matplotlib.rc_context(figures._RC):
        fig = figures._figure(9.5, 1.3 + 0.38 * n)
        ax = fig.add_subplot()
        for i, row in enumerate(rows.itertuples()):
            y = n - i
            ax.plot([row.pred_q025, row.pred_q975], [y, y], color=figures.SHRUNK, lw=1.2, alpha=0.6)
            ax.plot([row.pred_q25, row.pred_q75], [y, y], color=figures.SHRUNK, lw=4, alpha=0.8,
                    solid_capstyle="butt")
            ax.plot([row.observed], [y], "D", color=figures.OBSERVED, mfc="white" if row.bound else figures.OBSERVED,
                    ms=5, zorder=3)
        ax.axvline(0, color=figures.MUTED, lw=0.8, zorder=0)
        ax.set_yticks(range(n, 0, -1), [figures.mpl_text(label) for label in rows["label"]], fontsize=9)
        ax.set_ylim(0.4, n + 0.6)
        ax.set_xlabel(f"PaO2/FiO2 change or difference ({UNIT})")
        handles = [
            Line2D([], [], color=figures.OBSERVED, marker="D", ls="", label="observed (derived estimate)"),
            Line2D([], [], color=figures.OBSERVED, marker="D", mfc="white", ls="", label="observed, SE an upper bound"),
            Line2D([], [], color=figures.SHRUNK, lw=4, label="predictive 50% interval"),
            Line2D([], [], color=figures.SHRUNK, lw=1.2, alpha=0.6, label="predictive 95% interval"),
        ]
        fig.legend(handles=handles, loc="outside lower center", ncols=4, frameon=False, fontsize=8.5)
        return fig


def diagnostics_section(ctx: ReportContext) -> Markup:
    """The shared diagnostics, then the predictive check of every likelihood term."""
    key = [k.var for k in effect_key_parameters(ctx.spec) + NATURAL_PARAMETERS if k.var in ctx.posterior]
    ppc = term_predictive(ctx)
    outside = ppc[~ppc["inside95"]]
    summary = (f"{len(ppc) - len(outside)} of {len(ppc)} observed estimates lie inside their 95% posterior "
               "predictive interval" + (": " + ", ".join(outside["label"]) + " do not." if len(outside) else "."))
    n_params = ctx.result.evidence.n_studies * (2 if "natural_course" in ctx.posterior else 1)
    ppc_rows = [
        (r.label, mm(r.observed), ("≤ " if r.bound else "") + mm(r.se), mm(r.model_mean),
         f"{mm(r.pred_median)} ({mm(r.pred_q025)} to {mm(r.pred_q975)})", fmt(r.ppp, ".2f"),
         "yes" if r.inside95 else "NO")
        for r in ppc.itertuples()
    ]
    ppc_data = table(("Term", f"Observed ({UNIT})", "SE", "Model mean (median)", "Replicated: median (95%)",
                      "Predictive p", "Inside 95%"), ppc_rows, numeric=(1, 2, 3, 4, 5),
                     caption="Observed (derived) and replicated estimates per likelihood term; predictive p is "
                             "two-sided.")
    caption = ("Posterior predictive check: for every posterior draw each term was replicated as "
               "Normal(model mean, SE), the model mean being the study's natural course plus, for a cell arm or a "
               "contrast, its treatment effect, and SE the standard error the term entered with (an upper bound "
               "where marked, which widens the replicates). Observed estimates (brown diamonds) against the "
               f"predictive 50% and 95% intervals (blue). {summary} With {len(ppc)} terms and {n_params} "
               "study-level parameters the model can fit every term closely, so this check can reveal only a "
               "gross conflict, not confirm the model.")
    return Markup(
        generic.diagnostics_section(ctx, key)
        + el("h3", "Posterior predictive check")
        + figure(figures.to_svg(ppc_plot(ppc), "ppc"), caption=caption, alt="Observed against replicated PaO2/FiO2 estimates per term. "
                 + summary, data=ppc_data, fig_id="fig-ppc")
    )


# -- methods -------------------------------------------------------------------------------


def methods_section(ctx: ReportContext) -> Markup:
    from ..priors import find_preset

    spec = ctx.spec
    result = ctx.result
    ev = result.evidence
    sel = spec.evidence
    facts = study_facts(ctx)
    cite = Citations()
    refs = dict(METHOD_REFERENCES)
    natural = "nc_mean" in ctx.posterior

    role_words = {"effect": "pooled mean difference μ", "heterogeneity": "between-study SD τ",
                  "baseline": "mean natural course ν̄", "baseline_heterogeneity": "between-study SD of the natural course σ_ν"}
    if spec.model.dose_response == "emax":
        role_words["effect"] = "maximal effect Emax"

    def prior_bits() -> list[str]:  # called where the priors are cited, so references number in reading order
        bits = []
        for role, prior in spec.priors.by_role().items():
            if not natural and role.startswith("baseline"):
                continue
            name = spec.priors.names.get(role, "custom")
            unit = "" if role == "ed50" else f" {UNIT}"
            bit = f"{role_words.get(role) or DOSE_ROLE_WORDS.get(role, role)} ~ {prior.describe()}{unit}"
            if name != "custom":
                preset = find_preset(spec.scale, name)
                bit += f" (preset “{name}”" + (f"; {cite(preset.reference)}" if preset.reference else "") + ")"
            else:
                bit += " (set in the analysis spec)"
            bits.append(bit)
        return bits

    model = (
        "Change in PaO2/FiO2 from baseline (mmHg) was synthesised in a Bayesian random-effects model with a "
        "normal likelihood. Each trial's report was turned into one or more likelihood terms — an arm's mean "
        "change from baseline, or a reported difference between a cell arm and its comparator — each with an "
        "estimate y_t and a standard error s_t treated as known. A reported difference y_t ~ Normal(θ_j, s_t); "
        "an arm's change y_t ~ Normal(ν_j + x_t θ_j, s_t), with x_t = 1 for a cell arm and 0 for a control arm. "
        "θ_j = μ + τ z_j, z_j ~ Normal(0, 1), is study j's treatment effect (mean difference, cells minus "
        f"control; {'>' if spec.decision.benefit_direction == 'increase' else '<'} 0 favours cells)"
        + (", and ν_j = ν̄ + σ_ν u_j, u_j ~ Normal(0, 1), its natural course — the change without cells. "
           "Because the natural course is hierarchical, control arms of randomised trials inform the natural "
           "course of a single-arm study, whose change then informs the treatment effect only as far as the "
           "between-study spread of natural courses allows." if natural else ".")
        + f" A trial reporting both arm changes and a contrast entered once, by its {sel.prefer} "
          "(evidence.prefer), so that no patient counts twice."
        + dose_methods_text(spec)
    )
    median_method = (
        f"the unweighted (q1 + median + q3) / 3 of Wan et al. {cite(refs['Wan X'])} (the sample-size-weighted "
        f"estimator of Luo et al. {cite(refs['Luo D'])} is the alternative, evidence.median_iqr_method = "
        "\"luo2018\")" if sel.median_iqr_method == "wan2014" else
        f"the sample-size-weighted estimator of Luo et al. {cite(refs['Luo D'])} (the unweighted mean of "
        f"Wan et al. {cite(refs['Wan X'])} is the alternative)"
    )
    evidence = (
        f"Of {len(ctx.register.studies)} studies in the evidence register, {len(facts)} ({_patients_text(facts)}) "
        f"entered the analysis (evidence set “{sel.evidence_set}”; cell products: "
        f"{', '.join(nice(c) for c in sel.product_classes) or 'all'}); the others are listed with the reason. "
        f"The timepoint was the reported day closest to day {sel.oxygenation_day} within days "
        f"{sel.oxygenation_day_window[0]}–{sel.oxygenation_day_window[1]}; a change whose day is not stated was "
        f"used as reported, and flagged. Medians and interquartile ranges were converted to means by "
        f"{median_method}, and to SDs as IQR / η(n) with η(n) = 2 Φ⁻¹((0.75 n − 0.125) / (n + 0.25)) "
        f"{cite(refs['Wan X'])}; standard errors were obtained from SDs, confidence intervals and P values as in "
        f"the Cochrane Handbook {cite(refs['Cochrane'])}. A P value reported only as “P < p” gives an upper bound "
        "on the SE, which was used as the SE (conservative). A change in SpO2/FiO2 would be converted to "
        f"PaO2/FiO2 with the regression of Rice et al. {cite(refs['Rice TW'])}"
        + ("." if "Rice" in " ".join(map(str, ev.terms["derivation"])) else "; no number in this analysis needed it.")
    )
    decision = spec.decision
    better = ">" if decision.benefit_direction == "increase" else "<"
    inference = (
        f"Priors: {'; '.join(prior_bits())}. The effect in a new trial was μ + τ ε, ε ~ Normal(0, 1). "
        + sampling_methods_text(ctx, cite)
        + f"Results are posterior medians with {round(decision.ci_prob * 100)}% equal-tailed intervals; "
        f"P(μ {better} 0) and P(μ {better} {decision.clinically_meaningful_difference:g} {UNIT}) — the clinically "
        "meaningful threshold, a judgement set in the spec — are given with Monte Carlo standard errors. "
        + versions_text(ctx)
    )
    return Markup(
        el("div", para(model), para(evidence), para(inference), class_="methods")
        + el("h3", "References")
        + cite.html()
        + el("h3", "Provenance")
        + provenance_table(ctx)
    )


def oxygenation_layout() -> list[Section]:
    from .flow import flow_section
    from .next_trial import next_trial_section

    return [
        Section("answer", "The answer", answer),
        Section("forest", "Study by study: forest plot", forest_section),
        Section("flow", "Which studies, and why: study flow", flow_section),
        generic.shared_section("covariates"),
        generic.shared_section("frequentist"),
        generic.shared_section("cumulative"),
        Section("dose-response", "Dose-response", lambda ctx: dose_response_section(
            ctx, ylabel=f"mean difference in PaO2/FiO2 ({UNIT})", reference=0.0)),
        Section("priors", "Priors and posteriors", priors_section),
        Section("diagnostics", "Can the numbers be trusted? Diagnostics", diagnostics_section),
        generic.shared_section("robustness", "Does one trial decide it? Is the inference calibrated?"),
        Section("next-trial", "The next trial", next_trial_section),
        Section("methods", "Methods", methods_section),
        # the register row by row, for a reviewer checking a number: an appendix, folded
        Section("evidence", "Appendix: the evidence, row by row",
                collapsed(evidence_section, "Every study and every number it reported, with its source (click to open)")),
    ]


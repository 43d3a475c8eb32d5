"""PRISMA-style study flow: from the register to the studies an analysis pools.

One section for every outcome's report: an inline SVG flow diagram and the same numbers as a
table — studies in the register by allocation class (randomised, non-randomised concurrent,
historical or matched, single arm), studies the evidence set lists, studies excluded grouped
by reason, and studies included by design. For mortality it adds, when computed, how far the
non-randomised studies move P(OR < 1) and the decision-by-provenance table.
"""

from __future__ import annotations

from collections import Counter

import pandas as pd

from ..evidence.selection import ALLOCATION_WORDS, design_sentence
from ..analyses.sensitivity import diagnostics_word
from .html import Markup, el, figure, fmt, join, para, table

# Exclusion reasons grouped for the flow, by how each reason starts (evidence/selection.py,
# evidence/mortality.py, evidence/oxygenation.py word them); first match wins.
REASON_GROUPS = (
    ("withdrawn", "withdrawn registration (no participants, no results)"),
    ("excluded by the analysis spec", "excluded by the analysis spec"),
    ("design:", "design: not randomised (pooled only with --evidence all)"),
    ("deaths not reported", "outcome not reported"),
    ("oxygenation not reported", "outcome not reported"),
    ("cell arms are of a product class", "product class left out (MAPC, extracellular vesicles)"),
    ("no control arm", "no control arm for this model"),
    ("dose", "dose unknown for a dose-response model"),
)


def reason_group(reason: str) -> str:
    text = str(reason)
    for start, group in REASON_GROUPS:
        if text.startswith(start) or (start == "dose" and "dose" in text):
            return group
    return "outcome reported in a form this analysis cannot use"


def flow_counts(register, inclusion: pd.DataFrame) -> dict:
    """The flow's numbers: register by allocation, listed, excluded by reason, included by design."""
    by_allocation = Counter(register.studies["allocation"]) if "allocation" in register.studies else Counter()
    included = inclusion[inclusion["status"] == "included"]
    excluded = inclusion[inclusion["status"] != "included"]
    return {
        "register": len(register.studies),
        "register_by_allocation": dict(by_allocation),
        "listed": len(inclusion),
        "excluded": len(excluded),
        "excluded_by_reason": dict(Counter(reason_group(r) for r in excluded["reason"])),
        "included": len(included),
        "included_by_allocation": dict(Counter(included.get("allocation", pd.Series(dtype=str)))),
    }


def _box(x: float, y: float, w: float, h: float, lines: list[str], strong: bool = False) -> str:
    rect = (f'<rect x="{x}" y="{y}" width="{w}" height="{h}" rx="4" fill="{"#eef4fb" if strong else "#ffffff"}" '
            f'stroke="#335" stroke-width="1"/>')
    texts = [
        el("text", line, x=f"{x + 8}", y=f"{y + 18 + 16 * i}", font_size="12",
           font_weight="bold" if i == 0 else None, fill="#111")
        for i, line in enumerate(lines)
    ]
    return rect + "".join(texts)


def _arrow(x1: float, y1: float, x2: float, y2: float) -> str:
    return (f'<line x1="{x1}" y1="{y1}" x2="{x2}" y2="{y2}" stroke="#335" stroke-width="1.2" '
            'marker-end="url(#flow-arrow)"/>')


def flow_svg(counts: dict, evidence_set: str) -> Markup:
    """The flow diagram (inline SVG; every label escaped)."""
    register_lines = [f"Studies in the register: {counts['register']}"] + [
        f"{ALLOCATION_WORDS.get(k, k)}: {v}" for k, v in sorted(counts["register_by_allocation"].items())
    ]
    listed_lines = [f"Listed by the evidence set “{evidence_set}”: {counts['listed']}"]
    excluded_lines = [f"Excluded: {counts['excluded']}"] + [
        f"{v} – {k}" for k, v in sorted(counts["excluded_by_reason"].items(), key=lambda kv: -kv[1])
    ]
    included_lines = [f"Included in this analysis: {counts['included']}"] + [
        f"{ALLOCATION_WORDS.get(k, k)}: {v}" for k, v in sorted(counts["included_by_allocation"].items())
    ]
    left, width, side_x, side_w = 10, 370, 420, 440
    h_reg = 24 + 16 * len(register_lines)
    y_listed = h_reg + 40
    h_listed = 40
    y_incl = y_listed + h_listed + 60
    h_excl = 24 + 16 * len(excluded_lines)
    h_incl = 24 + 16 * len(included_lines)
    height = max(y_incl + h_incl, y_listed + h_excl) + 10
    parts = [
        '<defs><marker id="flow-arrow" markerWidth="8" markerHeight="8" refX="7" refY="4" orient="auto">'
        '<path d="M0,0 L8,4 L0,8 z" fill="#335"/></marker></defs>',
        _box(left, 10, width, h_reg, register_lines),
        _arrow(left + width / 2, 10 + h_reg, left + width / 2, y_listed),
        _box(left, y_listed, width, h_listed, listed_lines),
        _arrow(left + width / 2, y_listed + h_listed, left + width / 2, y_incl),
        _arrow(left + width, y_listed + h_listed / 2, side_x, y_listed + h_listed / 2),
        _box(side_x, y_listed, side_w, h_excl, excluded_lines),
        _box(left, y_incl, width, h_incl, included_lines, strong=True),
    ]
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {side_x + side_w + 10} {height}" '
           f'width="100%" style="max-width:{side_x + side_w + 10}px">' + "".join(parts) + "</svg>")
    return Markup(svg)


def flow_table(counts: dict) -> Markup:
    rows = [("Studies in the register", counts["register"])]
    rows += [(f"  {ALLOCATION_WORDS.get(k, k)}", v) for k, v in sorted(counts["register_by_allocation"].items())]
    rows += [("Listed by the evidence set", counts["listed"]), ("Excluded", counts["excluded"])]
    rows += [(f"  {k}", v) for k, v in sorted(counts["excluded_by_reason"].items(), key=lambda kv: -kv[1])]
    rows += [("Included in this analysis", counts["included"])]
    rows += [(f"  {ALLOCATION_WORDS.get(k, k)}", v) for k, v in sorted(counts["included_by_allocation"].items())]
    return table(("Step", "Studies"), rows, caption="The flow's numbers (the same as the diagram).", numeric=(1,))


def provenance_markup(provenance) -> Markup:
    """The decision-by-provenance table (bayes_msc.analyses.provenance.ProvenanceTable)."""
    rows = []
    for r in provenance.table.itertuples():
        if not r.studies:
            rows.append((r.evidence, 0, "—", "—", "—", "—"))
            continue
        d = provenance.words["digits"]
        rows.append((r.evidence, int(r.studies), f"{fmt(r.effect_median, d)} ({fmt(r.effect_lower, d)} to {fmt(r.effect_upper, d)})",
                     f"{fmt(r.prob_benefit, '.3f')} (MCSE {fmt(r.prob_benefit_mcse, '.3f')})",
                     f"{fmt(r.prob_meaningful, '.3f')} (MCSE {fmt(r.prob_meaningful_mcse, '.3f')})",
                     diagnostics_word(r)))
    return join([
        el("h3", "Decision by provenance: which class of evidence carries the conclusion"),
        table(("Evidence", "Studies", provenance.words["effect"] + " (95% ETI)", provenance.words["benefit"],
               provenance.words["meaningful"], "Diagnostics"), rows,
              caption="Each row adds a class of numbers: read in the trial's own report (primary), in another paper's "
                      "table (secondary), computed from percentages (inferred), taken from elsewhere (assumption), "
                      "then the studies that are not randomised. A study counts at its worst flag over its outcome "
                      "numbers and arm sizes. Masked refits of one compiled model.", numeric=(1,)),
        para(provenance.statement),
    ])


def flow_section(ctx) -> Markup:
    """The report section: diagram, table, and (mortality) the design and provenance findings."""
    inclusion = ctx.result.evidence.inclusion
    counts = flow_counts(ctx.register, inclusion)
    evidence_set = ctx.spec.evidence.evidence_set
    svg = flow_svg(counts, evidence_set)
    alt = (f"Study flow: {counts['register']} studies in the register, {counts['listed']} listed, "
           f"{counts['excluded']} excluded, {counts['included']} included")
    parts = [
        para(design_sentence(inclusion, ctx.result.outcome.adjusts_design_bias) + "."),
        figure(svg, caption="Study flow (PRISMA-style): from the register to the studies this analysis pools.",
               alt=alt, data=flow_table(counts), fig_id="flow-diagram"),
    ]
    shift = getattr(ctx.result, "design_shift", None)
    if shift is not None:
        parts.append(para(shift.sentence()))
    provenance = getattr(ctx, "provenance", None)
    if provenance is not None:
        parts.append(provenance_markup(provenance))
    return join(parts)

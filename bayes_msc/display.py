"""Plain-text rendering of results and inclusion reports for the terminal."""

from __future__ import annotations

import textwrap

import pandas as pd


def _iv(interval, fmt: str = ".2f") -> str:
    pct = round(interval.ci_prob * 100)
    return f"{interval.median:{fmt}} ({pct}% {interval.ci_kind.upper()} {interval.lower:{fmt}} to {interval.upper:{fmt}})"


def render_inclusion(inclusion: pd.DataFrame, title: str) -> str:
    lines = [title]
    for row in inclusion.itertuples():
        mark = "+" if row.status == "included" else "-"
        seed = " [seed]" if row.seed else ""
        lines.append(f"  {mark} {row.label}{seed}: {row.status}")
        if row.status == "included":
            lines.append(_wrap(f"contributes {row.contribution}: {row.detail}; quality {row.quality}"))
            if row.reason:
                lines.append(_wrap(f"note: {row.reason}"))
        else:
            lines.append(_wrap(f"reason: {row.reason}"))
    return "\n".join(lines)


def _wrap(text: str) -> str:
    return textwrap.fill(text, width=100, initial_indent="      ", subsequent_indent="      ")


def render_mortality(result) -> str:
    d = result.decisions
    spec = result.spec
    included = int((result.evidence.inclusion["status"] == "included").sum())
    listed = len(result.evidence.inclusion)
    threshold = d.threshold_or
    lines = [
        f"{spec.title}",
        f"analysis {spec.name} | evidence {spec.evidence.evidence_set}: {included} of {listed} studies enter | "
        f"spec {spec.content_hash()[:12]} | register {result.evidence.register_hash[:12]}",
        "priors: " + "; ".join(f"{role} {text}" for role, text in spec.priors.describe().items()),
        "",
        "Results (odds ratio < 1 favours cells; medians with 95% equal-tailed intervals)",
        f"  pooled odds ratio              {_iv(d.pooled_or)}",
        f"  odds ratio in a new trial      {_iv(d.predictive_or)}",
        f"  between-trial SD tau (log OR)  {_iv(d.tau)}",
        f"  P(OR < 1)          pooled      {d.prob_or_below_1}",
        f"  P(OR < {threshold:g})        pooled      {d.prob_or_below_threshold}",
        f"  P(OR < 1)          new trial   {d.predictive_prob_or_below_1}",
        f"  absolute risk reduction at baseline risk {d.baseline_risk:.1%}: {_iv(d.arr, '.3f')}",
        f"  {d.nnt['text']}",
    ]
    if spec.decision.baseline_risk_source:
        lines.append(_wrap(f"(baseline risk: {spec.decision.baseline_risk_source})"))
    lines += ["", render_diagnostics(result.diagnostics), "", render_inclusion(result.evidence.inclusion, "Evidence")]
    t = result.timings
    lines += ["", f"time: import {t.get('import', 0):.1f} s, compile {t.get('compile', 0):.1f} s, sample {t.get('sample', 0):.1f} s, post-process {t.get('postprocess', 0):.1f} s"]
    return "\n".join(lines)


def render_diagnostics(diagnostics) -> str:
    lines = ["Diagnostics"]
    for c in diagnostics.checks:
        value = f"{c.value:.3f}" if isinstance(c.value, float) and not float(c.value).is_integer() else f"{c.value:g}"
        lines.append(f"  {'ok  ' if c.passed else 'FAIL'} {c.name:<17} {value:>10}  (threshold {c.threshold}; {c.detail})")
    lines.append(f"  {diagnostics.verdict()}")
    return "\n".join(lines)

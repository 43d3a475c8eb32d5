"""One self-contained HTML report per analysis.

::

    result = bayes_msc.fit("mortality")
    from bayes_msc.report import write_report
    write_report(result, "reports/mortality.html")

The page loads nothing from anywhere: CSS is inline, figures are inline SVG drawn with
matplotlib / arviz-plots, there is no script. Every string from the register or the spec is
HTML-escaped (:mod:`bayes_msc.report.html`). Sections are laid out per outcome
registered for the outcome's name (:mod:`bayes_msc.report.presentations`); an outcome without one
gets the generic layout (:mod:`bayes_msc.report.generic`).

Modules: ``html`` (escaping, elements, page), ``figures`` (matplotlib figures, and their SVG
and file output), ``forest`` (per-study numbers and the manuscript forest plot), ``sections``
(shared building blocks), ``generic`` (the sections every analysis shares, and the generic
layout), ``presentations`` (each outcome's layout, by name), ``mortality`` and ``oxygenation``
(their layouts), ``manuscript`` (figure kinds for manuscripts: :func:`figure`).
"""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ..io.fileio import safe_file_name, write_atomic

REPORTS_DIR = "reports"


def default_report_path(spec) -> Path:
    """``reports/<analysis>.html`` (relative to the working directory; ``bayes_msc_out/`` when
    that would be the package checkout's own ``reports/``, see
    :func:`bayes_msc.io.paths.default_output_dir`); the name is made safe first, so a spec named
    ``../../x`` still writes inside that folder."""
    from ..io.paths import default_output_dir

    return default_output_dir() / f"{safe_file_name(spec.name)}.html"


def _register_for(result, register):
    """The data the fit used (a register, an estimates table), checked against its content hash."""
    from .forest import data_for

    return data_for(result, register)


def render_report(
    result,
    *,
    register: Any = None,
    sensitivity=None,
    influence=None,
    sbc=None,
    design=None,
    provenance=None,
    oc=None,
    simstudy=None,
    cumulative=None,
    generated: datetime | None = None,
) -> str:
    """The report of a :class:`~bayes_msc.results.FitResult` as one HTML string.

    Parameters
    ----------
    register
        The data the fit used: a register (or its directory), or for estimates-based analyses
        their file; default: the embedded register. Its hash must match the result's.
    sensitivity
        Optional :class:`~bayes_msc.analyses.sensitivity.PriorSensitivity` (or a DataFrame, one row per
        prior set).
    influence
        Optional :class:`~bayes_msc.analyses.sensitivity.Influence` (leave one study out).
    sbc
        Optional saved SBC result (the dict ``python -m bayes_msc sbc`` writes).
    design
        Optional :class:`~bayes_msc.design.DesignResult`: the "The next trial" section.
    provenance
        Optional :class:`~bayes_msc.analyses.provenance.ProvenanceTable` (mortality), shown in the
        study-flow section.
    cumulative
        Optional :class:`~bayes_msc.analyses.cumulative.Cumulative`: the pooled effect as the
        trials accrued, by publication year.
    The dose-response section shows ``result.dose_response`` when the fit has one.
    """
    from .html import el, page, section
    from .presentations import layout_for
    from .sections import ReportContext

    layout = layout_for(result.outcome)
    ctx = ReportContext(
        result=result,
        register=_register_for(result, register),
        sensitivity=sensitivity,
        influence=influence,
        sbc=sbc,
        design=design,
        provenance=provenance,
        oc=oc,
        simstudy=simstudy,
        cumulative=cumulative,
        generated=generated or datetime.now(timezone.utc),
    )
    built = []
    for part in layout:
        content = part.build(ctx)
        if content is not None:
            built.append((part, content))
    spec = result.spec
    evidence_set = (f"evidence set {spec.evidence.evidence_set} · "
                    if "evidence_set" in result.outcome.evidence_keys else "")  # estimates files have none
    subtitle = el(
        "p",
        f"Analysis “{spec.name}” · outcome {spec.outcome} · {evidence_set}"
        f"spec {spec.content_hash()[:12]} · register {result.evidence.register_hash[:12]} · "
        f"report generated {ctx.generated.isoformat(timespec='seconds')}",
        class_="meta",
    )
    body = [section(part.anchor, part.title, content) for part, content in built]
    return page(spec.title, body, subtitle=subtitle, nav=[(p.anchor, p.title) for p, _ in built])


def write_report(result, path: str | os.PathLike | None = None, **options: Any) -> Path:
    """Render and write the report atomically (:func:`bayes_msc.io.fileio.write_atomic`)."""
    target = Path(path) if path is not None else default_report_path(result.spec)
    text = render_report(result, **options)
    write_atomic(target, text)
    return target


__all__ = ["default_report_path", "render_report", "write_report"]

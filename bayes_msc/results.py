"""A fitted analysis: the posterior DataTree, its diagnostics and decisions, and their files.

Saved results carry, in the DataTree's attributes, the spec (JSON) and its hash, the
register's content hash, package versions and the seed, so :func:`load_result` can refuse a
reload against a different spec or register instead of silently mixing them.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from .decisions import Probability, probability
from .engine.diagnostics import Diagnostics
from .io.errors import InputError, Location
from .io.fileio import write_atomic  # noqa: F401  (re-exported: the one atomic writer)
from .spec import AnalysisSpec

POSTERIOR_FILE = "posterior.nc"
SUMMARY_FILE = "summary.json"
PACKAGES = ("bayes_msc", "pymc", "pytensor", "nutpie", "arviz", "arviz-base", "arviz-stats", "xarray", "numpy", "pandas")


def package_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            versions[name] = "not installed"
    return versions


@dataclass(frozen=True)
class FitResult:
    """What :func:`bayes_msc.fit` returns.

    Attributes
    ----------
    spec
        The spec actually used, overrides applied.
    evidence
        The analysis data, including the per-study ``inclusion`` table.
    tree
        ``xarray.DataTree`` with posterior (incl. derived ``log_or_new``), sample_stats,
        observed_data, log_likelihood and log_prior groups.
    diagnostics, decisions
        See :mod:`bayes_msc.engine.diagnostics` and :mod:`bayes_msc.decisions`.
    timings
        Seconds spent compiling, sampling and post-processing.
    """

    spec: AnalysisSpec
    evidence: Any
    tree: Any
    diagnostics: Diagnostics
    decisions: Any
    summary_vars: tuple[str, ...]
    timings: dict[str, float] = field(default_factory=dict)
    dose_response: Any = None  # bayes_msc.analyses.dosing.DoseResponse when the spec fits a dose-response form
    design_shift: Any = None  # bayes_msc.analyses.nonrandomised_bias.DesignShift when non-randomised studies entered
    covariates: Any = None  # a meta-regression's summary (bayes_msc.models.regression.covariate_summary)

    @property
    def posterior(self):
        return self.tree["posterior"].to_dataset()

    def __repr__(self) -> str:
        d, m = self.decisions, self.outcome.measure
        fmt = m.digits
        included = int((self.evidence.inclusion["status"] == "included").sum())
        return (f"<FitResult {self.spec.name}: pooled {m.short} {d.pooled_effect.median:{fmt}} "
                f"({round(100 * d.pooled_effect.ci_prob)}% ETI {d.pooled_effect.lower:{fmt}} to "
                f"{d.pooled_effect.upper:{fmt}}); {_event_short(d, m)} {d.prob_benefit.prob:.3f} "
                f"(MCSE {d.prob_benefit.mcse:.3f}); {included} studies; "
                f"diagnostics {'pass' if self.diagnostics.passed else 'FAIL'}>")

    def _repr_html_(self) -> str:
        """The answer as a small table in a notebook."""
        from html import escape

        d, m = self.decisions, self.outcome.measure
        fmt = m.digits
        included = int((self.evidence.inclusion["status"] == "included").sum())
        pct = round(100 * d.pooled_effect.ci_prob)

        def band(iv) -> str:
            return f"{iv.median:{fmt}} ({pct}% ETI {iv.lower:{fmt}} to {iv.upper:{fmt}})"

        rows = [(f"pooled {m.label()}", band(d.pooled_effect)), (f"{m.label()} in a new trial", band(d.predictive_effect)),
                (f"between-trial SD tau ({m.model_scale})", band(d.tau)),
                (f"{_event_short(d, m)} (benefit = {d.benefit_direction})", str(d.prob_benefit)),
                (f"{_event_short(d, m)}, new trial", str(d.predictive_prob_benefit)),
                ("studies", str(included)), ("diagnostics", self.diagnostics.verdict())]
        body = "".join(f"<tr><th style='text-align:left'>{escape(k)}</th><td style='text-align:left'>{escape(v)}</td></tr>"
                       for k, v in rows)
        return (f"<div class='bayes-msc-result'><strong>{escape(self.spec.title)}</strong> "
                f"<code>{escape(self.spec.name)}</code><table>{body}</table></div>")

    def summary(self, var_names: list[str] | None = None, *, raw: bool = False) -> pd.DataFrame:
        """ArviZ summary (95% equal-tailed intervals) of the key parameters, on the scale the
        results are stated on (an odds ratio, not a log odds ratio; τ on the model's scale,
        where it is defined) and rounded to what the Monte Carlo error supports.

        ``raw=True``: the model's own variables on the model's scale, unrounded (numbers for
        further arithmetic)."""
        import arviz as az
        import xarray as xr

        names = list(var_names or self.summary_vars)
        options = {"ci_prob": self.spec.decision.ci_prob, "ci_kind": "eti"}
        if raw:
            return az.summary(self.tree, var_names=names, round_to="none", **options)
        m, r = self.outcome.measure, self.outcome.roles
        posterior = self.posterior
        stated = {r.pooled: "pooled", r.predictive: "new trial", r.study: "study"}
        shown = {}
        for name in names:
            if name in stated:
                shown[f"{m.short} ({stated[name]})"] = m.stated(posterior[name])
            elif name == r.heterogeneity:
                shown[f"tau ({m.model_scale})"] = posterior[name]
            else:
                shown[name] = posterior[name]
        table = az.summary(xr.Dataset(shown), round_to="none", **options)
        return _rounded(table, int(m.digits[1:-1]) + 1)


    @property
    def outcome(self):
        """The :class:`~bayes_msc.outcomes.Outcome` of this fit (what its numbers mean)."""
        return self.spec.outcome_type

    def prob_benefit(self, threshold: float | None = None, *, predictive: bool = False) -> Probability:
        """Posterior probability of benefit beyond ``threshold`` (stated scale), with its MCSE.

        Mortality: P(OR < ``threshold``) (default 1). Oxygenation and normal-normal analyses:
        P(difference > ``threshold``) (default 0), or ``<`` when the spec's benefit direction
        is "decrease". ``predictive``: for the effect in a new trial instead of the pooled one.
        """
        outcome = self.outcome
        from .io.arguments import check_arguments

        check_arguments("prob_benefit", threshold=threshold)
        if not isinstance(predictive, bool):
            raise InputError(f"prob_benefit(predictive=...): expected True or False, got {type(predictive).__name__}")
        if threshold is not None and not math.isfinite(threshold):
            raise InputError(f"prob_benefit(threshold=...): expected a finite number, got {threshold}")
        if threshold is not None and outcome.measure.log_scale and threshold <= 0:
            raise InputError(f"an {outcome.measure.name} threshold must be > 0, got {threshold}")
        draws = self.posterior[outcome.roles.predictive if predictive else outcome.roles.pooled]
        return probability(outcome.benefit_event(draws, threshold, self.spec))

    def summary_dict(self) -> dict:
        """Everything the CLI prints, as JSON-ready data (``summary.json``); with a target
        population (``model.population``) also its ``population`` block."""
        from .models.populations import population_summary

        population = population_summary(self)
        return {
            "analysis": self.spec.name,
            "title": self.spec.title,
            "outcome": self.spec.outcome,
            "parameters": self.outcome.parameter_roles(),
            "spec_hash": self.spec.content_hash(),
            "register_hash": self.evidence.register_hash,
            "evidence_set": self.spec.evidence.evidence_set,
            "designs": _design_summary(self),
            "design_shift": None if self.design_shift is None else self.design_shift.to_dict(),
            "priors": self.spec.priors.to_dict(),
            "sampler": self.tree.attrs.get("sampler_settings") and json.loads(self.tree.attrs["sampler_settings"]),
            "decisions": self.decisions.to_dict(),
            "diagnostics": self.diagnostics.to_dict(),
            "dose_response": None if self.dose_response is None else self.dose_response.to_dict(),
            # per term under "covariates" ({TERM: {median, mean, ETI, prob_below_zero, MCSEs, prior and
            # posterior SD, contraction}}); how the terms are coded, and what they explain, beside them
            **({"covariates": self.covariates["terms"],
                "covariate_model": {k: v for k, v in self.covariates.items() if k != "terms"}}
               if self.covariates is not None else {}),
            "inclusion": self.evidence.inclusion.to_dict(orient="records"),
            "timings_seconds": self.timings,
            "package_versions": json.loads(self.tree.attrs["package_versions"]),
        } | ({"population": population} if population is not None else {})

    def save(self, out_dir: str | Path) -> dict[str, Path]:
        """Write ``posterior.nc`` and ``summary.json`` into ``out_dir``, atomically per file.

        Both files are written to temporary names in ``out_dir`` first and renamed only when
        both are complete (:func:`bayes_msc.io.fileio.atomic_paths`), so a failure leaves no
        half-written result behind.
        """
        from .io.fileio import atomic_paths

        out = Path(out_dir)
        targets = {POSTERIOR_FILE: out / POSTERIOR_FILE, SUMMARY_FILE: out / SUMMARY_FILE}
        with atomic_paths(list(targets.values())) as (posterior, summary):
            _netcdf_ready(self.tree).to_netcdf(posterior, engine="h5netcdf")
            summary.write_text(to_json(self.summary_dict()), encoding="utf-8")
        return targets


def _rounded(table: pd.DataFrame, decimals: int) -> pd.DataFrame:
    """A summary rounded as it is read: estimates and intervals to one digit more than the
    outcome states them with, Monte Carlo errors to two significant digits, ESS to whole draws,
    R-hat to three decimals."""
    import numpy as np

    out = table.copy()
    for column in out.columns:
        values = out[column].astype(float)
        if column.startswith("ess"):
            out[column] = np.floor(values)
        elif column == "r_hat":
            out[column] = values.round(3)
        elif column.startswith("mcse"):
            out[column] = [float(f"{v:.2g}") if np.isfinite(v) else v for v in values]
        else:
            out[column] = values.round(decimals)
    return out


def _event_short(d, m) -> str:
    """"P(OR < 1)": what P(benefit) is the probability of."""
    return f"P({m.short} {'<' if d.benefit_direction == 'decrease' else '>'} {d.benefit_threshold:g})"


def _design_summary(result) -> dict:
    """Studies pooled by design and set aside for design, with the sentence every output prints."""
    from .evidence.selection import design_counts, design_sentence

    inclusion = result.evidence.inclusion
    if "allocation" not in inclusion:
        return {}
    return {"sentence": design_sentence(inclusion, result.outcome.adjusts_design_bias), **design_counts(inclusion)}


def to_json(payload, indent: int | None = 2) -> str:
    """Standard JSON: numpy scalars as numbers, and NaN or an infinity (which ``json.dumps``
    writes as the non-standard ``NaN``/``Infinity`` many readers refuse) as ``null``."""
    return json.dumps(_finite_only(payload), indent=indent, default=_json_default, allow_nan=False)


def _finite_only(value):
    import math

    import numpy as np

    if isinstance(value, dict):
        return {k: _finite_only(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_only(v) for v in value]
    if isinstance(value, np.ndarray):
        return _finite_only(value.tolist())
    if isinstance(value, (float, np.floating)) and not math.isfinite(float(value)):
        return None
    return value


def _json_default(value):
    import numpy as np

    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if pd.isna(value):
        return None
    return str(value)


def _netcdf_ready(tree):
    """netCDF holds no Python objects: nutpie's per-draw divergence messages become text."""
    tree = tree.copy()
    for node in tree.subtree:
        ds = node.to_dataset()
        objects = [name for name, var in ds.data_vars.items() if var.dtype == object]
        if objects:
            node.dataset = ds.assign({name: ds[name].fillna("").astype(str) for name in objects})
    return tree


def provenance_attrs(spec: AnalysisSpec, register_hash: str) -> dict[str, str]:
    from dataclasses import asdict

    return {
        "bayes_msc_spec": json.dumps(spec.to_dict(), sort_keys=True),
        "bayes_msc_spec_hash": spec.content_hash(),
        "bayes_msc_register_hash": register_hash,
        "bayes_msc_parameter_roles": json.dumps(spec.outcome_type.parameter_roles(), sort_keys=True),
        "package_versions": json.dumps(package_versions(), sort_keys=True),
        "seed": str(spec.sampler.seed),
        "sampler_settings": json.dumps(asdict(spec.sampler)),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def load_result(out_dir: str | Path, *, spec: "AnalysisSpec | str | Path | None" = None,
                register_hash: str | None = None, data: Any = None) -> FitResult:
    """Read a saved fit (``result.save(out_dir)``, ``fit --out``) back as a :class:`FitResult`,
    with the same methods as a fresh fit (``prob_benefit``, ``summary``, ``decisions``; a
    report with :func:`bayes_msc.report.write_report`); nothing is refitted.

    ``spec``: the spec it must have been fitted with (an :class:`AnalysisSpec`, or a name or
    path of one); default: the spec saved with it. ``data``: the register (or estimates file)
    it was fitted on, default the embedded register; its evidence is rebuilt from it. A result
    saved with another spec or register is refused, not silently mixed.
    """
    import os

    import xarray as xr

    if not isinstance(out_dir, (str, os.PathLike)):
        raise InputError(f"load_result(out_dir=...): expected a folder path, got {type(out_dir).__name__}")
    if spec is not None and not isinstance(spec, (AnalysisSpec, str, os.PathLike)):
        raise InputError(f"load_result(spec=...): expected an AnalysisSpec or a spec name or path, "
                         f"got {type(spec).__name__}")
    if register_hash is not None and not isinstance(register_hash, str):
        raise InputError(f"load_result(register_hash=...): expected text, got {type(register_hash).__name__}")
    if isinstance(spec, (str, os.PathLike)):
        from .spec import load_spec

        spec = load_spec(spec)
    path = Path(out_dir) / POSTERIOR_FILE
    if not path.is_file():
        raise InputError("no saved posterior here", Location(str(path)))
    try:
        tree = xr.open_datatree(path, engine="h5netcdf").load()
    except (OSError, ValueError, KeyError) as exc:  # empty, truncated, or not netCDF at all
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"not a readable posterior file ({reason})", Location(str(path))) from None
    if spec is not None and tree.attrs.get("bayes_msc_spec_hash") != spec.content_hash():
        raise InputError(
            "saved with a different analysis spec (spec hash mismatch); refit or pass the matching spec",
            Location(str(path), field="bayes_msc_spec_hash"),
        )
    if register_hash is not None and tree.attrs.get("bayes_msc_register_hash") != register_hash:
        raise InputError(
            "saved from a different evidence register (data hash mismatch)",
            Location(str(path), field="bayes_msc_register_hash"),
        )
    if spec is None:
        spec = _saved_spec(tree, path)
    return _result_from_tree(spec, tree, data, path)


def _saved_spec(tree, path: Path) -> AnalysisSpec:
    """The spec saved in a result's attributes, rebuilt and checked against its saved hash."""
    from dataclasses import replace

    from .spec import spec_from_dict

    where = Location(str(path), field="bayes_msc_spec")
    try:
        raw = json.loads(tree.attrs["bayes_msc_spec"])
        priors = raw["priors"]
        names = {role: entry.get("preset", "custom") for role, entry in priors.items()}
        raw["priors"] = {role: {k: v for k, v in entry.items() if k != "preset"} for role, entry in priors.items()}
    except (KeyError, TypeError, ValueError, AttributeError):
        raise InputError("no readable analysis spec saved with this result; pass spec=", where) from None
    spec = spec_from_dict(raw, f"{path} (saved spec)")
    spec = replace(spec, priors=replace(spec.priors, names={**spec.priors.names, **names}))
    if spec.content_hash() != tree.attrs.get("bayes_msc_spec_hash"):
        raise InputError("the saved spec does not reproduce the saved spec hash; pass spec=", where)
    return spec


def _result_from_tree(spec: AnalysisSpec, tree, data: Any, path: Path) -> FitResult:
    """A :class:`FitResult` from a saved tree: evidence rebuilt from the register it was
    fitted on, diagnostics and decisions recomputed from the saved draws."""
    from .io.arguments import check_data
    from .engine.diagnostics import diagnose

    outcome = spec.outcome_type
    check_data("load_result", spec, data)
    source = outcome.load_data(data)
    saved_register = tree.attrs.get("bayes_msc_register_hash")
    if getattr(source, "content_hash", None) != saved_register:
        raise InputError(
            f"this result was fitted on another register or estimates file (hash {str(saved_register)[:12]}); "
            f"pass it as data=", Location(str(path), field="bayes_msc_register_hash"))
    from .models.populations import resolve_population

    spec = resolve_population(spec, source)  # each trial's population, when the spec names a target one
    evidence = outcome.build_evidence(source, spec)
    posterior = tree["posterior"].to_dataset()
    present = set(posterior.data_vars)
    diagnostics = diagnose(tree, [v for v in outcome.diagnostic_vars() if v in present])
    decisions = outcome.decide(posterior, spec)
    dose = None
    if spec.model.dose_response != "none":
        from .analyses.dosing import dose_response

        dose = dose_response(posterior, outcome.make_inputs(evidence, spec.priors, spec.model), spec)
    summary_vars = tuple(v for v in outcome.summary_vars() if v in present)
    result = FitResult(spec, evidence, tree, diagnostics, decisions, summary_vars, {}, dose)
    if spec.model.covariates:  # the terms again (the variance explained needs the refit the fit did)
        from dataclasses import replace

        from .models.regression import covariate_summary

        result = replace(result, covariates=covariate_summary(result))
    return result

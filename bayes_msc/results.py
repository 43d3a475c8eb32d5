"""A fitted analysis: the posterior DataTree, its diagnostics and decisions, and their files.

Saved results carry, in the DataTree's attributes, the spec (JSON) and its hash, the
register's content hash, package versions and the seed, so :func:`load_result` can refuse a
reload against a different spec or register instead of silently mixing them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from .decisions import Probability, probability
from .diagnostics import Diagnostics
from .errors import InputError, Location
from .fileio import write_atomic  # noqa: F401  (re-exported: the one atomic writer)
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
        See :mod:`bayes_msc.diagnostics` and :mod:`bayes_msc.decisions`.
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
    dose_response: Any = None  # bayes_msc.dosing.DoseResponse when the spec fits a dose-response form
    design_shift: Any = None  # bayes_msc.design_bias.DesignShift when non-randomised studies entered

    @property
    def posterior(self):
        return self.tree["posterior"].to_dataset()

    def summary(self, var_names: list[str] | None = None) -> pd.DataFrame:
        """ArviZ summary (95% equal-tailed intervals, unrounded) of the key parameters."""
        import arviz as az

        return az.summary(
            self.tree,
            var_names=list(var_names or self.summary_vars),
            ci_prob=self.spec.decision.ci_prob,
            ci_kind="eti",
            round_to="none",
        )

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
        if threshold is not None and outcome.measure.log_scale and threshold <= 0:
            raise InputError(f"an {outcome.measure.name} threshold must be > 0, got {threshold}")
        draws = self.posterior[outcome.roles.predictive if predictive else outcome.roles.pooled]
        return probability(outcome.benefit_event(draws, threshold, self.spec))

    def summary_dict(self) -> dict:
        """Everything the CLI prints, as JSON-ready data (``summary.json``)."""
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
            "inclusion": self.evidence.inclusion.to_dict(orient="records"),
            "timings_seconds": self.timings,
            "package_versions": json.loads(self.tree.attrs["package_versions"]),
        }

    def save(self, out_dir: str | Path) -> dict[str, Path]:
        """Write ``posterior.nc`` and ``summary.json`` into ``out_dir``, atomically per file.

        Both files are written to temporary names in ``out_dir`` first and renamed only when
        both are complete (:func:`bayes_msc.fileio.atomic_paths`), so a failure leaves no
        half-written result behind.
        """
        from .fileio import atomic_paths

        out = Path(out_dir)
        targets = {POSTERIOR_FILE: out / POSTERIOR_FILE, SUMMARY_FILE: out / SUMMARY_FILE}
        with atomic_paths(list(targets.values())) as (posterior, summary):
            _netcdf_ready(self.tree).to_netcdf(posterior, engine="h5netcdf")
            summary.write_text(json.dumps(self.summary_dict(), indent=2, default=_json_default), encoding="utf-8")
        return targets


def _design_summary(result) -> dict:
    """Studies pooled by design and set aside for design, with the sentence every output prints."""
    from .evidence.selection import design_counts, design_sentence

    inclusion = result.evidence.inclusion
    if "allocation" not in inclusion:
        return {}
    return {"sentence": design_sentence(inclusion, result.outcome.adjusts_design_bias), **design_counts(inclusion)}


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


def load_result(out_dir: str | Path, *, spec: AnalysisSpec | None = None, register_hash: str | None = None):
    """Read a saved posterior; refuse it if it was made with another spec or register."""
    import xarray as xr

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
    return tree

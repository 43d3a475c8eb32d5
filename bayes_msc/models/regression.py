"""Meta-regression: study-level covariates shift each study's effect.

With ``model.covariates`` (``--covariate NAME``) every model adds one term to study j's effect::

    theta_j = mu + x_j' beta + tau z_j            (mortality: log odds ratio; continuous: mean difference)

``beta`` is ``covariate_effect`` (dimension ``covariate_term``) under the ``covariate`` prior role,
and ``mu`` (``log_or`` / ``mu``) becomes the effect of a study at the covariates' centres and
reference levels. How the rows ``x_j`` are coded (:func:`covariate_design`):

numeric covariates
    centred at the included studies' mean and divided by their SD (``ddof = 1``), so a slope is
    per SD of the covariate among the trials that entered; the output states the centre and the
    SD in the covariate's unit.
categorical covariates
    one indicator per level other than the reference level, which is the first declared level
    (:data:`bayes_msc.evidence.schema.COVARIATES`) present among the included studies; for an
    estimates file's own column, with no declared levels, the most common level among the included
    studies (ties: the one met first in the file).
``control_risk`` (mortality; Sharp & Thompson, Stat Med 2000;19:3251; McIntosh, Stat Med 1996;15:2713)
    the study's baseline *parameter* ``baseline_logit`` in the fitted coding (the control arm's
    log-odds in the arm coding, the midpoint of its arms' log-odds in the symmetric coding), centred
    and scaled by the mean and SD of the same quantity's observed logits ((deaths + 0.5) / (n + 1))
    over the included studies. Regressing on the observed control proportion instead would put the
    control arm's sampling error on both sides of the regression (regression to the mean); the
    parameter carries its uncertainty into the slope. The conditional likelihood has no baselines
    and refuses it.
``small_study`` (small-study effects; Peters et al., JAMA 2006;295:676; Moreno et al., BMC Med Res
Methodol 2009;9:2)
    mortality: ``x_j = (1 / N_j) / mean(1 / N)`` with N_j the trial's randomised patients; the
    normal-normal model: ``x_j = s_j / mean(s)`` with s_j its standard error (PET; Stanley &
    Doucouliagos, Res Synth Methods 2014;5:60). Not centred: ``x = 0`` is an infinitely large
    trial, so ``mu`` is the effect adjusted for small-study effects, and ``beta`` the shift at a
    trial of the included trials' harmonic-mean size (mean SE). For binary outcomes 1/N avoids the
    built-in correlation between a log odds ratio and its own standard error.

A study missing a value of a covariate it needs is excluded with that reason in the inclusion
table (:func:`with_study_covariates`); nothing is imputed. The covariate values travel with the
evidence, in its inclusion table (columns ``covariate:NAME``), so a masked or reloaded evidence
object gives the same design.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd

from ..io.errors import InputError

CONTROL_RISK = "control_risk"
SMALL_STUDY = "small_study"
MODEL_COVARIATES = (CONTROL_RISK, SMALL_STUDY)  # computed from the evidence and the model, not read
COLUMN = "covariate:"  # prefix of the inclusion table's covariate columns
# A term is "mostly prior" when the data removed less than this share of its prior variance.
MOSTLY_PRIOR_CONTRACTION = 0.5
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


# -- which covariates a spec may name --------------------------------------------------------


def covariates_problem(covariates: Iterable[str], outcome: str, model, *, arm_counts: bool,
                       file_columns: bool) -> str:
    """Why ``covariates`` cannot enter the ``outcome`` analysis with model settings ``model``;
    "" when they can. ``arm_counts``: the outcome's model has trial baselines and sizes (mortality);
    ``file_columns``: its data may be an estimates file, whose own columns can be covariates. Names a
    register cannot hold are refused here (before any data are read); an estimates file's own columns
    are checked when it is read."""
    from ..evidence.schema import COVARIATES_BY_NAME
    from ..priors import ALL_ROLES

    names = list(covariates)
    if not names:
        return ""
    for name in names:
        if not _NAME.match(name):
            return f"{name!r} is not a covariate name (letters, digits and _, not starting with a digit)"
        if name in ALL_ROLES:
            return (f"{name!r} is a prior role; a covariate of that name would make --prior {name}=... ambiguous: "
                    "rename the column")
        if name == CONTROL_RISK:
            if not arm_counts:
                return "control_risk is the mortality model's baseline: it needs arm counts (the mortality analysis)"
            if getattr(model, "likelihood", "") == "conditional":
                return ("control_risk regresses on each trial's baseline, and the conditional likelihood has none: "
                        "use model.likelihood = symmetric or arm")
        elif name == SMALL_STUDY:
            if not (arm_counts or file_columns):
                return ("small_study needs one contrast per study (its size or standard error): the mortality or "
                        "normal_normal analysis")
        elif name not in COVARIATES_BY_NAME and not file_columns:
            known = ", ".join([*COVARIATES_BY_NAME, *MODEL_COVARIATES])
            return f"unknown covariate {name!r} (known: {known})"
    return ""


# -- values, into the evidence's inclusion table ------------------------------------------


def with_study_covariates(build: Callable, source, spec):
    """``build(selection)``'s evidence with the values of ``spec.model.covariates`` in its
    inclusion table; studies missing one are excluded (rebuilt with them left out) with the
    reason stated. ``source`` is the register or the estimates file the evidence is built from."""
    evidence = build(spec.evidence)
    names = tuple(spec.model.covariates)
    if not names:
        return evidence
    values = _source_values(source, names, evidence)
    included = list(evidence.studies)
    lacking = {sid: [n for n in names if n not in MODEL_COVARIATES and _missing(values.at[sid, n])]
               for sid in included}
    lacking = {sid: found for sid, found in lacking.items() if found}
    if lacking:
        selection = replace(spec.evidence, exclude_studies=(*spec.evidence.exclude_studies, *lacking))
        evidence = build(selection)
        values = _source_values(source, names, evidence)
    inclusion = evidence.inclusion.copy()
    for sid, found in lacking.items():
        inclusion.loc[inclusion["study_id"] == sid, "reason"] = (
            f"covariate {', '.join(found)} not reported: the meta-regression leaves the study out (no imputation)")
    entered = set(evidence.studies)
    for name in names:
        inclusion[COLUMN + name] = [values.at[sid, name] if sid in entered and sid in values.index else None
                                    for sid in inclusion["study_id"]]
    return replace(evidence, inclusion=inclusion)


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or value == ""


def _source_values(source, names: tuple[str, ...], evidence) -> pd.DataFrame:
    """Covariate values by study (index ``study_id``), read covariates from the register or the
    estimates file, model covariates (control_risk's observed logit, small_study) from the evidence."""
    from ..evidence.estimates import EstimateTable

    read = [n for n in names if n not in MODEL_COVARIATES]
    if isinstance(source, EstimateTable):
        frame = _file_values(source, read)
    elif read:
        from ..evidence.covariates import study_covariates

        frame = study_covariates(source, read)
    else:
        frame = pd.DataFrame(index=pd.Index(list(evidence.inclusion["study_id"]), name="study_id"))
    frame = frame.reindex(pd.Index(list(dict.fromkeys([*evidence.inclusion["study_id"], *evidence.studies]))))
    for name in names:
        if name == CONTROL_RISK:
            frame[name] = pd.Series(_observed_baseline_logits(evidence), dtype=float)
        elif name == SMALL_STUDY:
            frame[name] = pd.Series(_study_sizes_or_ses(evidence), dtype=float)
    return frame.astype(object).where(frame.notna(), None)


def _file_values(table, names: list[str]) -> pd.DataFrame:
    """An estimates file's covariate columns: numbers when every non-empty value is one."""
    columns = getattr(table, "covariates", None)
    out = {}
    for name in names:
        if columns is None or name not in columns:
            raise InputError(f"the estimates file has no column {name!r} to read the covariate from",
                             _file_location(table, name))
        raw = columns[name]
        out[name] = file_column_values(raw)
    index = pd.Index(list(table.rows["study"]), name="study_id")
    return pd.DataFrame({k: list(v) for k, v in out.items()}, index=index, dtype=object)


def file_column_values(raw: Iterable[str]) -> list:
    """A file column's values: floats when every non-empty value parses as a finite number, else
    text (a categorical covariate); empty cells are None (missing)."""
    raw = [("" if v is None else str(v).strip()) for v in raw]
    present = [v for v in raw if v]
    try:
        numbers = [float(v) for v in present]
        numeric = all(math.isfinite(x) for x in numbers)
    except ValueError:
        numeric = False
    if numeric:
        return [float(v) if v else None for v in raw]
    return [v if v else None for v in raw]


def _file_location(table, name: str):
    from ..io.errors import Location

    return Location(str(getattr(table, "path", "estimates file")), field=name)


def _observed_baseline_logits(evidence) -> dict[str, float]:
    """Each study's observed logit of the quantity its baseline parameter stands for (control
    arms' (deaths + 0.5) / (n + 1); exact counts only): for centring control_risk, not as data."""
    exact = evidence.exact
    arms = evidence.arms
    out = {}
    for sid in evidence.studies:
        rows = exact[(exact["study_id"] == sid) & (exact["n"] > 0)]
        treated = arms.set_index(["study_id", "arm_id"])["treated"]
        control = rows[[treated.get((sid, a), 1) == 0 for a in rows["arm_id"]]]
        if len(control):
            d, n = float(control["deaths"].sum()), float(control["n"].sum())
            out[sid] = math.log((d + 0.5) / (n - d + 0.5))
    return out


def _study_sizes_or_ses(evidence) -> dict[str, float]:
    """small_study's raw value: 1 / N (mortality: randomised patients in the included arms) or
    the contrast's standard error (estimates: one contrast per study)."""
    if hasattr(evidence, "arms") and hasattr(evidence, "exact"):
        arms = evidence.arms
        out = {}
        for sid in evidence.studies:
            sizes = arms.loc[arms["study_id"] == sid, "n"]
            total = float(pd.to_numeric(sizes, errors="coerce").fillna(0).sum())
            for report in evidence.partial:  # arms of unknown size: the sizes a report's first allocation gives
                if report.study_id == sid:
                    known = set(arms.index[(arms["study_id"] == sid) & pd.to_numeric(arms["n"], errors="coerce").notna()])
                    total += sum(c.n for c in report.configurations[0].counts if c.arm_index not in known)
            out[sid] = 1.0 / total if total > 0 else math.nan
        return out
    terms = evidence.terms
    if (terms["kind"] != "contrast").any():
        raise InputError("small_study needs one contrast (estimate and SE) per study; this analysis has arm-level "
                         "terms: use the normal_normal analysis")
    return {sid: float(se) for sid, se in zip(terms["study_id"], terms["se"])}


# -- the design matrix -----------------------------------------------------------------------


@dataclass(frozen=True)
class CovariateInfo:
    """How one covariate was coded: its kind, centre and scale (numeric: the included studies'
    mean and SD in its unit), its reference level and the levels present (categorical)."""

    name: str
    kind: str  # "numeric" | "categorical"
    terms: tuple[str, ...]
    centre: float = math.nan
    scale: float = math.nan
    unit: str = ""
    reference: str = ""
    levels: tuple[str, ...] = ()
    reference_rule: str = ""
    n_studies: int = 0

    def to_dict(self) -> dict[str, Any]:
        out = {"kind": self.kind, "terms": list(self.terms), "n_studies": self.n_studies}
        if self.kind == "numeric":
            out.update(centre=self.centre, scale=self.scale, unit=self.unit, coding=coding_sentence(self))
        else:
            out.update(reference=self.reference, levels=list(self.levels), reference_rule=self.reference_rule,
                       coding=coding_sentence(self))
        return out


@dataclass(frozen=True)
class CovariateDesign:
    """The meta-regression's design: its terms, the (study, term) matrix, each covariate's
    coding, and the studies excluded for a missing covariate (study id -> reason)."""

    terms: tuple[str, ...]
    matrix: np.ndarray
    covariates: tuple[CovariateInfo, ...]
    excluded: dict[str, str]
    control_risk_term: int | None = None

    @property
    def centres(self) -> dict[str, float]:
        return {c.name: c.centre for c in self.covariates if c.kind == "numeric"}

    @property
    def scales(self) -> dict[str, float]:
        return {c.name: c.scale for c in self.covariates if c.kind == "numeric"}

    @property
    def reference_levels(self) -> dict[str, str]:
        return {c.name: c.reference for c in self.covariates if c.kind == "categorical"}


def covariate_design(evidence, names: Iterable[str]) -> CovariateDesign:
    """Code ``names`` (values in ``evidence.inclusion``'s ``covariate:NAME`` columns) for the
    included studies; an :class:`InputError` when a covariate cannot be estimated (one value or
    one level among the included studies, or more terms than the studies can inform)."""
    from ..evidence.schema import COVARIATES_BY_NAME

    names = list(names)
    inclusion = evidence.inclusion.set_index("study_id")
    studies = list(evidence.studies)
    columns, infos, terms = [], [], []
    control_term = None
    for name in names:
        column = COLUMN + name
        if column not in inclusion:
            raise InputError(f"covariate {name!r}: the evidence carries no values for it (built without the covariate)")
        values = [inclusion.at[s, column] for s in studies]
        if name == CONTROL_RISK:
            observed = np.array([v for v in values if not _missing(v)], dtype=float)
            centre, scale = _centre_scale(name, observed)
            control_term = len(terms)
            terms.append(name)
            columns.append(np.zeros(len(studies)))
            infos.append(CovariateInfo(name, "numeric", (name,), centre, scale, "log-odds (observed, for centring)",
                                       n_studies=len(studies)))
            continue
        if any(_missing(v) for v in values):  # with_study_covariates excluded these; a hand-built evidence may not
            raise InputError(f"covariate {name!r} is missing for an included study; studies missing it are excluded "
                             "when the evidence is built with the covariate")
        numeric = all(isinstance(v, int | float | np.floating | np.integer) and not isinstance(v, bool) for v in values)
        if name == SMALL_STUDY:
            x = np.asarray(values, dtype=float)
            scale = float(x.mean())
            terms.append(name)
            columns.append(x / scale)
            infos.append(CovariateInfo(name, "numeric", (name,), 0.0, scale, _small_study_unit(evidence),
                                       n_studies=len(studies)))
        elif numeric:
            x = np.asarray(values, dtype=float)
            centre, scale = _centre_scale(name, x)
            declared = COVARIATES_BY_NAME.get(name)
            terms.append(name)
            columns.append((x - centre) / scale)
            infos.append(CovariateInfo(name, "numeric", (name,), centre, scale, declared.unit if declared else "",
                                       n_studies=len(studies)))
        else:
            levels_present = [str(v) for v in values]
            declared = COVARIATES_BY_NAME.get(name)
            if declared is not None and declared.levels:
                order = [lv for lv in declared.levels if lv in levels_present]
                order += sorted(set(levels_present) - set(order))
                rule = "the first declared level present among the included studies"
            else:
                counts = pd.Series(levels_present).value_counts(sort=False)
                file_order = list(dict.fromkeys(_file_order(inclusion, column)))
                order = sorted(counts.index, key=lambda lv: (-counts[lv], file_order.index(lv)
                                                             if lv in file_order else len(file_order)))
                rule = "the most common level among the included studies (ties: the first in the file)"
            if len(order) < 2:
                raise InputError(f"covariate {name!r} takes one level ({order[0] if order else 'none'}) among the "
                                 f"{len(studies)} included studies: a contrast between levels cannot be estimated")
            reference = order[0]
            level_terms = tuple(f"{name}[{lv}]" for lv in order[1:])
            for lv in order[1:]:
                columns.append(np.array([float(v == lv) for v in levels_present]))
            terms.extend(level_terms)
            infos.append(CovariateInfo(name, "categorical", level_terms, reference=reference, levels=tuple(order),
                                       reference_rule=rule, n_studies=len(studies)))
    if len(terms) >= len(studies):
        raise InputError(f"the meta-regression has {len(terms)} covariate terms ({', '.join(terms)}) and "
                         f"{len(studies)} included studies: it needs more studies than terms")
    matrix = np.column_stack(columns) if columns else np.zeros((len(studies), 0))
    excluded = {sid: str(row["reason"]) for sid, row in inclusion.iterrows()
                if str(row.get("reason", "")).startswith("covariate ")}
    return CovariateDesign(tuple(terms), matrix.astype("float64"), tuple(infos), excluded, control_term)


def _file_order(inclusion: pd.DataFrame, column: str) -> list[str]:
    return [str(v) for v in inclusion[column] if not _missing(v)]


def _centre_scale(name: str, x: np.ndarray) -> tuple[float, float]:
    if len(x) < 2 or not np.isfinite(x).all():
        raise InputError(f"covariate {name!r} needs a value for at least two included studies")
    scale = float(np.std(x, ddof=1))
    if not scale > 0:
        raise InputError(f"covariate {name!r} takes one value ({x[0]:g}) in every included study: its slope cannot "
                         "be estimated")
    return float(np.mean(x)), scale


def _small_study_unit(evidence) -> str:
    return ("1/N scaled by its mean (x = 1: a trial of the included trials' harmonic-mean size; x = 0: an "
            "infinitely large trial)" if hasattr(evidence, "exact") else
            "SE scaled by its mean (x = 1: a trial of the mean SE; x = 0: an infinitely precise trial)")


def coding_sentence(info: CovariateInfo) -> str:
    """How a covariate entered, in words (every output states it)."""
    if info.name == CONTROL_RISK:
        return (f"the trial's baseline parameter (fitted coding), centred at {info.centre:.3g} and per SD "
                f"{info.scale:.3g} of the included trials' observed logits")
    if info.name == SMALL_STUDY:
        return f"{info.unit}; scale {info.scale:.4g}"
    if info.kind == "numeric":
        unit = f" {info.unit}" if info.unit else ""
        return f"centred at {info.centre:.4g}{unit} (the included studies' mean), per SD = {info.scale:.4g}{unit}"
    return f"reference level {info.reference} ({info.reference_rule}); levels present: {', '.join(info.levels)}"


# -- model inputs and the model term --------------------------------------------------------


def add_covariate_inputs(values: dict, coords: dict, structure: dict, evidence, model) -> None:
    """Add the design of ``model.covariates`` to model data (in place): the (study, term)
    matrix and, for control_risk, its centre and scale as data; the terms fix the structure."""
    names = tuple(getattr(model, "covariates", ()) or ()) if model is not None else ()
    if not names:
        return
    design = covariate_design(evidence, names)
    values["covariate_matrix"] = design.matrix
    coords["covariate_term"] = design.terms
    structure["covariates"] = list(design.terms)
    if design.control_risk_term is not None:
        info = next(c for c in design.covariates if c.name == CONTROL_RISK)
        values["control_risk_centre"] = np.asarray(info.centre)
        values["control_risk_scale"] = np.asarray(info.scale)
        structure["control_risk_term"] = design.control_risk_term


def shifted(deviation, data, structure: dict, priors, baseline=None):
    """``deviation`` (per study) plus the covariate term ``x_j' beta`` (``covariate_shift``);
    unchanged without covariates. ``baseline``: the studies' baselines, for control_risk."""
    if not structure.get("covariates"):
        return deviation
    import pymc as pm

    from .inputs import prior_data

    beta = priors.covariate.build("covariate_effect", prior_data(data, "covariate", priors.covariate),
                                  dims="covariate_term")
    shift = (data["covariate_matrix"] * beta).sum(axis=1)  # a sum of products: no BLAS dot to compile
    k = structure.get("control_risk_term")
    if k is not None:
        if baseline is None:
            raise InputError("control_risk needs the trials' baselines, and this likelihood has none")
        shift = shift + beta[k] * (baseline - data["control_risk_centre"]) / data["control_risk_scale"]
    return deviation + pm.Deterministic("covariate_shift", shift, dims="study")


def shifted_terms(centre, data, structure: dict, priors):
    """The continuous model's term means ``centre`` plus each treated term's study shift."""
    if not structure.get("covariates"):
        return centre
    return centre + data["term_treated"] * shifted(0.0, data, structure, priors)[data["term_study"]]


def shift_draws(posterior) -> np.ndarray | float:
    """``covariate_shift`` per draw, (chain, draw, study); 0.0 without covariates."""
    if "covariate_shift" not in posterior:
        return 0.0
    return posterior["covariate_shift"].transpose("chain", "draw", "study").values


def covariate_log_prior(posterior, priors) -> dict:
    """Log-prior of the covariate effects (for the log_prior group), when the fit has them."""
    import xarray as xr

    if "covariate_effect" not in posterior or priors.covariate is None:
        return {}
    return {"covariate_effect": xr.apply_ufunc(priors.covariate.scipy().logpdf, posterior["covariate_effect"])}


# -- summaries ----------------------------------------------------------------------------------


def term_summary(draws, prior, ci_prob: float) -> dict[str, Any]:
    """One term's posterior: median, mean, ETI, P(< 0), MCSEs, prior and posterior SD and the
    contraction 1 - posterior variance / prior variance."""
    import arviz_stats as azs
    import xarray as xr

    from ..decisions import probability

    values = np.asarray(draws).ravel()
    lower, upper = np.quantile(values, [(1 - ci_prob) / 2, (1 + ci_prob) / 2])
    below = probability(xr.DataArray(draws) < 0) if isinstance(draws, xr.DataArray) else None
    prior_sd = float(prior.scipy().std())
    posterior_sd = float(values.std(ddof=1))
    contraction = 1.0 - posterior_sd ** 2 / prior_sd ** 2
    out = {
        "median": float(np.median(values)), "mean": float(values.mean()),
        "lower": float(lower), "upper": float(upper), "ci_prob": ci_prob,
        "prob_below_zero": below.prob, "prob_below_zero_mcse": below.mcse,
        "mcse_mean": float(azs.mcse(draws, method="mean")),
        "prior_sd": prior_sd, "posterior_sd": posterior_sd, "contraction": contraction,
        "mostly_prior": bool(contraction < MOSTLY_PRIOR_CONTRACTION),
    }
    if out["mostly_prior"]:
        out["note"] = (f"mostly prior: the data removed {max(contraction, 0):.0%} of the prior variance (less than "
                       f"{MOSTLY_PRIOR_CONTRACTION:.0%}); the posterior restates the prior more than it measures")
    return out


def explained_heterogeneity(tau, tau_without) -> dict[str, float]:
    """Share of between-trial variance explained: ``1 - E[tau^2] / E[tau0^2]``, with tau0 from the
    same spec and studies fitted without covariates, and its MCSE (delta method; the two fits'
    draws are independent). The two posteriors have no joint distribution, so a ratio of draws
    paired by index would be meaningless; the ratio of posterior means is a defined summary."""
    import arviz_stats as azs
    import xarray as xr

    t2, t02 = xr.DataArray(tau) ** 2, xr.DataArray(tau_without) ** 2
    e1, e0 = float(t2.mean()), float(t02.mean())
    m1, m0 = float(azs.mcse(t2, method="mean")), float(azs.mcse(t02, method="mean"))
    share = 1.0 - e1 / e0
    mcse = math.sqrt((m1 / e0) ** 2 + (e1 * m0 / e0 ** 2) ** 2)
    return {"share": share, "mcse": mcse, "tau2_mean": e1, "tau2_mean_without": e0,
            "tau_median": float(np.median(np.asarray(tau))), "tau_median_without": float(np.median(np.asarray(tau_without))),
            "definition": "1 - E[tau^2 | covariates] / E[tau0^2 | same studies, no covariates] (posterior means; "
                          "the two fits' draws are not paired)"}


def covariate_summary(result, result_without=None) -> dict[str, Any]:
    """summary.json's ``covariates``: per term its posterior summary, per covariate its coding, the
    excluded studies, and (given the fit without covariates) the heterogeneity explained."""
    design = covariate_design(result.evidence, result.spec.model.covariates)
    posterior = result.posterior
    ci = result.spec.decision.ci_prob
    terms = {}
    for term in design.terms:
        draws = posterior["covariate_effect"].sel(covariate_term=term)
        terms[term] = term_summary(draws, result.spec.priors.covariate, ci)
    out = {
        "terms": terms,
        "coding": {c.name: c.to_dict() for c in design.covariates},
        "prior": result.spec.priors.covariate.describe(),
        "pooled_effect_means": ("the pooled effect is that of a study at every numeric covariate's centre and every "
                                "categorical covariate's reference level"
                                + ("; small_study at x = 0 (an infinitely large trial)"
                                   if SMALL_STUDY in design.terms else "")),
        "excluded_studies": design.excluded,
        "mostly_prior_threshold": MOSTLY_PRIOR_CONTRACTION,
    }
    if result_without is not None:
        role = result.outcome.roles.heterogeneity
        out["heterogeneity_explained"] = explained_heterogeneity(posterior[role], result_without.posterior[role])
    return out


def covariate_table_text(summary: dict[str, Any], digits: str = ".3f") -> str:
    """The text summary's covariate table."""
    lines = ["Meta-regression (covariate effects on the model scale; prior " + summary["prior"] + "):",
             f"  {'term':<34} {'median':>8} {'95% ETI':>19} {'P(<0)':>7} {'contraction':>11}"]
    for term, s in summary["terms"].items():
        band = f"{s['lower']:{digits}} to {s['upper']:{digits}}"
        lines.append(f"  {term:<34} {s['median']:>8{digits}} {band:>19} {s['prob_below_zero']:>7.3f} "
                     f"{s['contraction']:>11.2f}" + ("  (mostly prior)" if s["mostly_prior"] else ""))
    for name, coding in summary["coding"].items():
        lines.append(f"  {name}: {coding['coding']}")
    lines.append(f"  {summary['pooled_effect_means']}")
    if summary["excluded_studies"]:
        lines.append("  excluded for a missing covariate: " + ", ".join(summary["excluded_studies"]))
    explained = summary.get("heterogeneity_explained")
    if explained:
        lines.append(f"  between-trial variance explained: {explained['share']:.2f} (MCSE {explained['mcse']:.2f}); "
                     f"{explained['definition']}")
    if any(s["mostly_prior"] for s in summary["terms"].values()):
        lines.append(f"  (mostly prior: the data removed less than {MOSTLY_PRIOR_CONTRACTION:.0%} of the prior variance)")
    return "\n".join(lines)

"""Dose-response forms shared by the mortality and oxygenation models.

A cell arm's effect (log OR, or mean difference in mmHg) is the study's deviation plus a
curve in the arm's dose d (million cells/kg, per infusion or cumulative)::

    effect_arm = tau * z_study + f(d_arm)
    loglinear:  f(d) = effect_ref + slope * log(d / d_ref)
    emax:       f(d) = emax * d / (ed50 + d)             (f(0) = 0: no cells, no effect)

All arms of a study share its deviation, so within-study dose contrasts (dose-escalation
arms, multi-arm trials) inform the curve even without a control arm. A fixed dose (cells
per infusion) becomes d = fixed / weight, with the trial's mean weight either a parameter
(log-normal prior) or a plug-in. The headline effect (``log_or`` / ``mu``) is f(d_ref).

The same curve is evaluated in pytensor (model) and numpy (posterior curves) by passing
the array module, so the two cannot drift apart.
"""

from __future__ import annotations

import math

import numpy as np

from ..evidence.doses import dose_columns


def dose_values(doses, treated, study_index, studies, model_settings) -> tuple[dict, dict, dict]:
    """Model data, coords and structure for the doses of each unit (arm or term)."""
    columns = dose_columns(list(doses), list(treated), model_settings.dose_metric)
    fixed_studies = sorted({int(s) for s, f in zip(study_index, columns["dose_is_fixed"]) if f})
    position = {s: i for i, s in enumerate(fixed_studies)}
    values = {
        "dose_per_kg": np.asarray(columns["dose_per_kg"], dtype="float64"),
        "dose_fixed": np.asarray(columns["dose_fixed"], dtype="float64"),
        "dose_is_fixed": np.asarray(columns["dose_is_fixed"], dtype="float64"),
        "dose_factor": np.asarray(columns["dose_factor"], dtype="float64"),
        "dose_weight_index": np.asarray([position.get(int(s), 0) for s in study_index], dtype="int64"),
        "weight_log_median": np.asarray(math.log(model_settings.body_weight_kg)),
        "weight_log_sd": np.asarray(model_settings.body_weight_log_sd),
        "dose_reference": np.asarray(model_settings.reference_dose),
    }
    body_weight = model_settings.body_weight if fixed_studies else "none"
    # Only data the graph reads: the rest would sit unused in the packed model data.
    unused = {"prior": (), "plugin": ("dose_weight_index", "weight_log_sd"),
              "none": ("dose_weight_index", "weight_log_sd", "weight_log_median", "dose_fixed", "dose_is_fixed")}[body_weight]
    values = {k: v for k, v in values.items() if k not in unused}
    coords = {"weight_study": tuple(studies[s] for s in fixed_studies)} if body_weight == "prior" else {}
    structure = {"dose_response": model_settings.dose_response, "body_weight": body_weight}
    return values, coords, structure


def with_doses(inputs, units, studies, model_settings):
    """``inputs`` plus the dose data of ``units`` (arms or terms with ``dose``, ``treated``,
    ``study_index`` columns) when the spec fits a dose-response form; else ``inputs``."""
    from dataclasses import replace

    if model_settings is None or model_settings.dose_response == "none":
        return inputs
    values, coords, structure = dose_values(units["dose"], units["treated"], units["study_index"], studies, model_settings)
    return replace(inputs, values={**inputs.values, **values}, coords={**inputs.coords, **coords},
                   structure={**inputs.structure, **structure})


def curve(form: str, d, params: dict, reference, xp=np):
    """f(d) for ``form`` with parameters ``params``; ``xp`` is numpy or pytensor.tensor."""
    if form == "emax":
        return params["emax"] * d / (params["ed50"] + d)
    if form == "loglinear":
        return params["effect_ref"] + params["dose_slope"] * xp.log(d / reference)
    raise ValueError(f"no curve for form {form!r}")


def unit_dose(data: dict, body_weight: str, weight=None, xp=np):
    """Each unit's dose, million cells/kg on the spec's metric: a per-kg dose as reported, a
    fixed dose divided by its trial's mean body weight — ``weight`` (one per fixed-dose study)
    under ``body_weight`` "prior", the plug-in weight under "plugin". ``xp`` is numpy or
    pytensor.tensor: the model and the simulator (SBC) share these rules."""
    if body_weight == "none":  # every dose is per kg
        return data["dose_per_kg"] * data["dose_factor"]
    if body_weight == "prior":
        fixed_per_kg = data["dose_fixed"] / weight[data["dose_weight_index"]]
    else:
        fixed_per_kg = data["dose_fixed"] / xp.exp(data["weight_log_median"])
    is_fixed = data["dose_is_fixed"]
    return (data["dose_per_kg"] * (1 - is_fixed) + is_fixed * fixed_per_kg) * data["dose_factor"]


def body_weight_prior(values: dict):
    """The trials' mean body weight prior as a frozen scipy LogNormal: the model's
    ``body_weight`` (median ``exp(weight_log_median)``, log-SD ``weight_log_sd``)."""
    from scipy import stats

    return stats.lognorm(s=float(values["weight_log_sd"]), scale=math.exp(float(values["weight_log_median"])))


def build_dose_effect(data: dict, structure: dict, priors, effect_name: str, unit_dim: str):
    """Create the dose-response parameters; return each unit's f(d) (pytensor)."""
    import pymc as pm
    import pytensor.tensor as pt

    from .inputs import prior_data

    form = structure["dose_response"]
    weight = None
    if structure["body_weight"] == "prior":
        weight = pm.LogNormal("body_weight", mu=data["weight_log_median"], sigma=data["weight_log_sd"], dims="weight_study")
    d = unit_dose(data, structure["body_weight"], weight, pt)
    pm.Deterministic("unit_dose", d, dims=unit_dim)
    if form == "emax":
        params = {
            "emax": priors.effect.build("emax", prior_data(data, "effect", priors.effect)),
            "ed50": priors.ed50.build("ed50", prior_data(data, "ed50", priors.ed50)),
        }
        pm.Deterministic(effect_name, curve(form, data["dose_reference"], params, data["dose_reference"], pt))
    else:
        params = {
            "effect_ref": priors.effect.build(effect_name, prior_data(data, "effect", priors.effect)),
            "dose_slope": priors.dose_slope.build("dose_slope", prior_data(data, "dose_slope", priors.dose_slope)),
        }
    return curve(form, d, params, data["dose_reference"], pt)


def curve_parameters(posterior, form: str, effect_name: str) -> dict:
    if form == "emax":
        return {"emax": posterior["emax"], "ed50": posterior["ed50"]}
    return {"effect_ref": posterior[effect_name], "dose_slope": posterior["dose_slope"]}


def posterior_curve(posterior, form: str, effect_name: str, grid, reference: float):
    """f over a dose grid for every draw: DataArray (chain, draw, dose)."""
    import xarray as xr

    dose = xr.DataArray(np.asarray(grid, dtype="float64"), dims="dose", coords={"dose": np.asarray(grid, dtype="float64")})
    return curve(form, dose, curve_parameters(posterior, form, effect_name), reference).transpose("chain", "draw", "dose")


def effect_log_prior(posterior, inputs, priors, effect_name: str) -> dict:
    """Log-prior of the effect and dose-response parameters (scipy), by variable name."""
    import xarray as xr

    form = inputs.structure["dose_response"]
    roles = {"none": {effect_name: priors.effect}, "loglinear": {effect_name: priors.effect, "dose_slope": priors.dose_slope},
             "emax": {"emax": priors.effect, "ed50": priors.ed50}}[form]
    out = {name: xr.apply_ufunc(prior.scipy().logpdf, posterior[name]) for name, prior in roles.items()}
    if inputs.structure.get("body_weight") == "prior":
        out["body_weight"] = xr.apply_ufunc(body_weight_prior(inputs.values).logpdf, posterior["body_weight"])
    return out


def draw_dose_truth(values: dict, structure: dict, coords: dict, priors, effect_name: str, rng) -> dict:
    """A prior draw of the dose-response parameters and what they imply, for simulation (SBC).

    ``values``, ``structure``, ``coords``: :func:`dose_values` of the units, i.e. exactly what
    the model is given. The curve's parameters come from the priors the model gives them
    (``priors.effect`` for the effect at the reference dose, or for Emax), each fixed-dose
    trial's mean body weight from :func:`body_weight_prior`. Returns the parameters under the
    model's names (``effect_name`` for the effect at the reference dose; also for Emax, where
    the model derives it), ``body_weight`` when sampled, and ``unit_dose`` and ``unit_curve``:
    each unit's dose and f(dose), by the model's own :func:`unit_dose` and :func:`curve`.
    """
    form = structure["dose_response"]
    if form == "emax":
        params = {"emax": float(priors.effect.scipy().rvs(random_state=rng)),
                  "ed50": float(priors.ed50.scipy().rvs(random_state=rng))}
    else:
        params = {"effect_ref": float(priors.effect.scipy().rvs(random_state=rng)),
                  "dose_slope": float(priors.dose_slope.scipy().rvs(random_state=rng))}
    truth = {}
    weight = None
    if structure["body_weight"] == "prior":
        weight = body_weight_prior(values).rvs(size=len(coords["weight_study"]), random_state=rng)
        truth["body_weight"] = weight
    reference = float(values["dose_reference"])
    dose = unit_dose(values, structure["body_weight"], weight)
    truth.update({effect_name if k == "effect_ref" else k: v for k, v in params.items()})
    truth[effect_name] = float(curve(form, reference, params, reference))
    truth.update(unit_dose=dose, unit_curve=curve(form, dose, params, reference))
    return truth

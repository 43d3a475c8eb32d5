"""The choices the model settings offer, each list in one place.

The spec checks a setting against its list here, the model code branches on the same names,
and the command line offers them (``--likelihood``, ``--dose-response``, ``--measure``). This
module imports nothing, so ``--help`` stays instant.
"""

# Mortality: how each study's arms inform the odds ratio (:mod:`bayes_msc.models.sparse`), and
# the prior of the control arms' baselines.
LIKELIHOODS = ("arm", "symmetric", "conditional")
BASELINES = ("independent", "exchangeable")
DEFAULT_LIKELIHOOD = "symmetric"
DEFAULT_BASELINES = "independent"
# Binary outcomes (the mortality family): the scale the effect is stated and decided on. The
# model's effect is the log odds ratio whichever is chosen; "rr" and "rd" are the risk ratio and
# risk difference at the spec's decision.baseline_risk (bayes_msc.decisions.risk_ratio).
EFFECT_MEASURES = ("or", "rr", "rd")
DEFAULT_EFFECT_MEASURE = "or"

# Dose-response (:mod:`bayes_msc.models.dose_response`): the form of the curve ("none": one
# pooled effect), how doses are put on one axis, and how fixed doses become per kg.
DOSE_RESPONSE_FORMS = ("none", "loglinear", "emax")
DOSE_METRICS = ("per_infusion", "cumulative")
BODY_WEIGHT_MODES = ("prior", "plugin")

# How non-randomised studies enter the mortality model under an evidence set that admits them:
# a design-specific bias with its own prior (three-level model), or a power prior that
# down-weights their likelihood by model.power_prior_weight.
NONRANDOMISED_METHODS = ("bias", "power_prior")

# normal_normal: what the estimates are (log ratios, standardised mean differences, or mean
# differences in a unit the spec states); the measure decides which priors fit.
MEASURES = ("log_ratio", "smd", "mean_difference")

"""Priors as small serialisable objects, and the named presets an analysis can pick.

A prior has a *family* (which decides the model's structure, so changing it means a new
compile) and *hyperparameters* (numbers that enter the PyMC model as ``pm.Data``, so a
sensitivity sweep changes them without recompiling). Every fit records the priors it used
via :meth:`Prior.to_dict`, and :func:`prior_from_dict` restores them.

Presets are grouped by the scale of the quantity they describe (``log_odds_ratio`` for
mortality, ``mmhg`` for oxygenation) and by role (``effect``: the pooled treatment effect;
``heterogeneity``: the between-trial SD τ; ``baseline``: each study's baseline log-odds — the
control arm's in the arm coding, the midpoint of control and cell arms in the symmetric
coding — or natural course). Each preset carries the reason it exists, which the report quotes.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, fields, replace
from typing import Any, ClassVar

from .io.errors import InputError


@dataclass(frozen=True)
class Prior:
    """Base class: a family name plus numeric hyperparameters."""

    family: ClassVar[str] = ""

    def hyperparameters(self) -> dict[str, float]:
        return {f.name: float(getattr(self, f.name)) for f in fields(self)}

    def to_dict(self) -> dict[str, Any]:
        return {"family": self.family, **self.hyperparameters()}

    def with_hyperparameters(self, **values: float) -> "Prior":
        unknown = set(values) - set(self.hyperparameters())
        if unknown:
            raise InputError(
                f"prior {self.family} has no parameter {sorted(unknown)[0]!r}; "
                f"it has {', '.join(self.hyperparameters())}"
            )
        updated = replace(self, **{k: float(v) for k, v in values.items()})
        updated.validate()
        return updated

    def validate(self) -> None:
        for name, value in self.hyperparameters().items():
            if not math.isfinite(value):
                raise InputError(f"prior {self.family}: {name} must be a finite number, got {value}")
        for name in self.positive_parameters:
            if self.hyperparameters()[name] <= 0:
                raise InputError(f"prior {self.family}: {name} must be > 0, got {getattr(self, name)}")

    positive_parameters: ClassVar[tuple[str, ...]] = ()

    def describe(self) -> str:
        args = ", ".join(f"{k}={_fmt(v)}" for k, v in self.hyperparameters().items())
        return f"{self.display_name}({args})"

    display_name: ClassVar[str] = ""

    # -- PyMC construction ------------------------------------------------------------
    def build(self, name: str, hyper: dict[str, Any], **kwargs: Any):
        """Create the PyMC random variable ``name`` with hyperparameters ``hyper``.

        ``hyper`` maps each hyperparameter to a ``pm.Data`` (or a number); it is passed
        in rather than created here so the model builder owns the data names.
        """
        raise NotImplementedError

    def scipy(self):
        """The same distribution as a frozen scipy object (for tests and prior plots)."""
        raise NotImplementedError


def _fmt(value: float) -> str:
    return f"{value:.4g}"


@dataclass(frozen=True)
class Normal(Prior):
    mu: float = 0.0
    sigma: float = 1.0
    family: ClassVar[str] = "normal"
    display_name: ClassVar[str] = "Normal"
    positive_parameters: ClassVar[tuple[str, ...]] = ("sigma",)

    def build(self, name, hyper, **kwargs):
        import pymc as pm

        return pm.Normal(name, mu=hyper["mu"], sigma=hyper["sigma"], **kwargs)

    def scipy(self):
        from scipy import stats

        return stats.norm(self.mu, self.sigma)


@dataclass(frozen=True)
class HalfNormal(Prior):
    sigma: float = 1.0
    family: ClassVar[str] = "halfnormal"
    display_name: ClassVar[str] = "HalfNormal"
    positive_parameters: ClassVar[tuple[str, ...]] = ("sigma",)

    def build(self, name, hyper, **kwargs):
        import pymc as pm

        return pm.HalfNormal(name, sigma=hyper["sigma"], **kwargs)

    def scipy(self):
        from scipy import stats

        return stats.halfnorm(scale=self.sigma)


@dataclass(frozen=True)
class HalfCauchy(Prior):
    beta: float = 1.0
    family: ClassVar[str] = "halfcauchy"
    display_name: ClassVar[str] = "HalfCauchy"
    positive_parameters: ClassVar[tuple[str, ...]] = ("beta",)

    def build(self, name, hyper, **kwargs):
        import pymc as pm

        return pm.HalfCauchy(name, beta=hyper["beta"], **kwargs)

    def scipy(self):
        from scipy import stats

        return stats.halfcauchy(scale=self.beta)


@dataclass(frozen=True)
class LogNormalTau2(Prior):
    """Turner et al.'s form: log τ² ~ Normal(mu, sigma), i.e. τ² is log-normal.

    Equivalently τ is log-normal with log-mean ``mu/2`` and log-SD ``sigma/2``, which is
    how it is built so that τ stays the model's parameter.
    """

    mu: float = -3.95
    sigma: float = 1.34
    family: ClassVar[str] = "lognormal_tau2"
    display_name: ClassVar[str] = "LogNormal on tau^2"
    positive_parameters: ClassVar[tuple[str, ...]] = ("sigma",)

    def build(self, name, hyper, **kwargs):
        import pymc as pm

        return pm.LogNormal(name, mu=hyper["mu"] / 2.0, sigma=hyper["sigma"] / 2.0, **kwargs)

    def scipy(self):
        from scipy import stats

        return stats.lognorm(s=self.sigma / 2.0, scale=math.exp(self.mu / 2.0))


@dataclass(frozen=True)
class LogNormal(Prior):
    """log X ~ Normal(mu, sigma): for positive quantities on a ratio scale (ED50)."""

    mu: float = 0.0
    sigma: float = 1.0
    family: ClassVar[str] = "lognormal"
    display_name: ClassVar[str] = "LogNormal"
    positive_parameters: ClassVar[tuple[str, ...]] = ("sigma",)

    def build(self, name, hyper, **kwargs):
        import pymc as pm

        return pm.LogNormal(name, mu=hyper["mu"], sigma=hyper["sigma"], **kwargs)

    def scipy(self):
        from scipy import stats

        return stats.lognorm(s=self.sigma, scale=math.exp(self.mu))


@dataclass(frozen=True)
class LogTTau2(Prior):
    """Rhodes et al.'s form for standardised mean differences: log τ² ~ Student-t(nu, mu, sigma).

    τ stays the model's parameter: τ = exp(L / 2) with L the Student-t variable, so its
    density is ``t(2 log τ) · 2 / τ`` (PyMC derives it from the transformation).
    """

    mu: float = -3.44
    sigma: float = 2.59
    nu: float = 5.0
    family: ClassVar[str] = "logt_tau2"
    display_name: ClassVar[str] = "log-t on tau^2"
    positive_parameters: ClassVar[tuple[str, ...]] = ("sigma", "nu")

    def build(self, name, hyper, **kwargs):
        import pymc as pm
        import pytensor.tensor as pt

        def tau_from_log_tau2(mu, sigma, nu, size):
            return pt.exp(0.5 * pm.StudentT.dist(nu=nu, mu=mu, sigma=sigma, size=size))

        return pm.CustomDist(name, hyper["mu"], hyper["sigma"], hyper["nu"], dist=tau_from_log_tau2,
                             transform=pm.distributions.transforms.log, **kwargs)

    def scipy(self):
        return _log_t_tau2(self.mu, self.sigma, self.nu)


def _log_t_tau2(mu: float, sigma: float, nu: float):
    """τ with log τ² ~ t(nu, mu, sigma), as a frozen scipy distribution."""
    import numpy as np
    from scipy import stats

    class LogTTau2Distribution(stats.rv_continuous):
        def _argcheck(self, mu, sigma, nu):
            return (sigma > 0) & (nu > 0) & np.isfinite(mu)

        def _logpdf(self, x, mu, sigma, nu):
            return stats.t.logpdf(2 * np.log(x), nu, loc=mu, scale=sigma) + np.log(2.0) - np.log(x)

        def _pdf(self, x, mu, sigma, nu):
            return np.exp(self._logpdf(x, mu, sigma, nu))

        def _cdf(self, x, mu, sigma, nu):
            return stats.t.cdf(2 * np.log(x), nu, loc=mu, scale=sigma)

        def _ppf(self, q, mu, sigma, nu):
            return np.exp(0.5 * stats.t.ppf(q, nu, loc=mu, scale=sigma))

    return LogTTau2Distribution(a=0.0, name="logt_tau2")(mu, sigma, nu)


PRIOR_FAMILIES: dict[str, type[Prior]] = {
    cls.family: cls for cls in (Normal, HalfNormal, HalfCauchy, LogNormalTau2, LogNormal, LogTTau2)
}


def prior_from_dict(spec: dict[str, Any], where: str = "prior") -> Prior:
    """Build a prior from ``{"family": ..., <hyperparameters>}`` (a spec table or saved attrs)."""
    spec = dict(spec)
    family = spec.pop("family", None)
    if not isinstance(family, str) or family not in PRIOR_FAMILIES:
        raise InputError(
            f"{where}: unknown prior family {family!r}; known: {', '.join(sorted(PRIOR_FAMILIES))}"
        )
    cls = PRIOR_FAMILIES[family]
    names = {f.name for f in fields(cls)}
    unknown = set(spec) - names
    if unknown:
        raise InputError(f"{where}: {family} has no parameter {sorted(unknown)[0]!r}")
    for key, value in spec.items():
        # TOML's true and "1.5" are not numbers: float() would read them as 1.0 and 1.5
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InputError(f"{where}: {key} must be a number, got {value!r}")
    try:
        prior = cls(**{k: float(v) for k, v in spec.items()})
    except (TypeError, ValueError, OverflowError) as exc:
        raise InputError(f"{where}: {exc}") from None
    try:
        prior.validate()
    except InputError as exc:  # say where the bad hyperparameter was written
        raise InputError(f"{where}: {exc}") from None
    return prior


@dataclass(frozen=True)
class Preset:
    """A named prior for one role, with the reason a reader should believe it is sensible."""

    name: str
    role: str
    prior: Prior
    rationale: str
    reference: str = ""


# Spiegelhalter-style sceptical/enthusiastic priors (Spiegelhalter, Freedman & Parmar, JRSS A
# 1994), anchored on the published pooled OR 0.66 (Wang 2023, Crit Care 27:31; EVIDENCE.md §5):
# the sceptic gives that effect 5% probability, the enthusiast gives harm 5% probability.
_OR_ANCHOR = 0.66
_ANCHOR_SD = abs(math.log(_OR_ANCHOR)) / 1.6448536269514722

LOG_ODDS_RATIO_PRESETS: tuple[Preset, ...] = (
    Preset(
        "default",
        "effect",
        Normal(0.0, 1.5),
        "Weakly informative: 95% of prior mass on OR 0.05-19; rules out nothing plausible while "
        "keeping zero-event arms from pushing the log OR to infinity.",
        "Gelman et al., Ann Appl Stat 2008 (weakly informative logistic priors)",
    ),
    Preset(
        "sceptical",
        "effect",
        Normal(0.0, _ANCHOR_SD),
        "Centred on no effect; gives only 5% probability to an OR below 0.66, the pooled OR of the "
        "largest published meta-analysis.",
        "Spiegelhalter, Freedman & Parmar, JRSS A 1994; anchor OR 0.66 from Wang 2023 Crit Care 27:31",
    ),
    Preset(
        "enthusiastic",
        "effect",
        Normal(math.log(_OR_ANCHOR), _ANCHOR_SD),
        "Centred on the published pooled OR 0.66, giving 5% probability to harm (OR > 1).",
        "Spiegelhalter, Freedman & Parmar, JRSS A 1994; anchor OR 0.66 from Wang 2023 Crit Care 27:31",
    ),
    Preset(
        "halfnormal_0.5",
        "heterogeneity",
        HalfNormal(0.5),
        "Half-normal(0.5) on tau: 'moderate' heterogeneity for log odds ratios with few studies.",
        "Friede et al., Biom J 2017; Röver et al., Res Synth Methods 2021",
    ),
    Preset(
        "halfnormal_1.0",
        "heterogeneity",
        HalfNormal(1.0),
        "Half-normal(1.0) on tau: allows substantial heterogeneity; the conservative alternative.",
        "Friede et al., Biom J 2017; Röver et al., Res Synth Methods 2021",
    ),
    Preset(
        "turner2015_mortality",
        "heterogeneity",
        LogNormalTau2(-3.95, 1.34),
        "Empirical: tau^2 ~ LogNormal(-3.95, 1.34^2) for all-cause mortality, pharmacological vs "
        "placebo/control (median tau ~0.14, 95% ~0.04-0.52).",
        "Turner et al., Stat Med 2015;34:984, Table IV",
    ),
    Preset(
        "default_slope",
        "dose_slope",
        Normal(0.0, 0.5),
        "Log-linear dose-response: change in log OR per e-fold change in dose. Normal(0, 0.5) "
        "lets a tenfold dose change move the OR by up to a factor ~9.5 either way (95%).",
        "",
    ),
    _ED50_PRESET := Preset(
        "default_ed50",
        "ed50",
        LogNormal(0.0, 1.5),
        "Emax model: dose giving half the maximal effect, million cells/kg. LogNormal(log 1, 1.5): "
        "median 1, 95% 0.05-19, covering the 0.5-10 range the trials used and beyond; proper, "
        "because with few doses an improper ED50 prior leaves the curve unidentified.",
        "",
    ),
    # Non-randomised studies (evidence sets other than "randomised"): the log-OR bias of a
    # design (non-randomised minus randomised effect) and the extra between-study SD of that
    # design's studies (three-level model: Prevost, Abrams & Jones, Stat Med 2000;19:3359;
    # Welton et al., JRSS A 2009;172:119). A negative bias means the design exaggerates benefit.
    Preset(
        "bias_neutral_0.5",
        "design_bias",
        Normal(0.0, 0.5),
        "No assumed direction: a design's bias on the log OR is Normal(0, 0.5), up to a factor ~2.7 "
        "on the odds ratio either way (95%). Non-randomised comparisons can be biased in either "
        "direction and by amounts that cannot be predicted from the design alone.",
        "Deeks et al., Health Technol Assess 2003;7(27) (evaluating non-randomised intervention studies)",
    ),
    Preset(
        "bias_brando_mortality",
        "design_bias",
        Normal(math.log(0.86), (math.log(1.06) - math.log(0.69)) / 3.92),
        "Empirical, and a floor on concern: trials with inadequate or unclear sequence generation "
        "exaggerate mortality benefit by a ratio of odds ratios 0.86 (95% CI 0.69-1.06); "
        "non-randomised studies lack randomisation altogether, so their bias is at least this uncertain.",
        "BRANDO, Savović et al. 2012, as tabulated in Page et al., PLoS One 2016;11:e0159267 Table 3 (mortality)",
    ),
    Preset(
        "bias_vague",
        "design_bias",
        Normal(0.0, 5.0),
        "Vague: the non-randomised studies' own bias is free, so they say (almost) nothing about the "
        "randomised effect; the analysis then equals the randomised-only one (a bound for sensitivity).",
        "",
    ),
    Preset(
        "design_heterogeneity_0.5",
        "design_heterogeneity",
        HalfNormal(0.5),
        "Half-normal(0.5) on the extra between-study SD of non-randomised studies (on top of tau): "
        "their biases may differ from study to study as much as the effect itself.",
        "Welton et al., JRSS A 2009;172:119 (bias varies between studies)",
    ),
    Preset(
        "design_heterogeneity_brando",
        "design_heterogeneity",
        HalfNormal(0.2),
        "Half-normal(0.2): 95% below ~0.4, covering the between-trial variation in bias estimated for "
        "mortality in trials without adequate sequence generation (tau 0.08, 95% CI 0.01-0.31).",
        "BRANDO, Savović et al. 2012, as tabulated in Page et al., PLoS One 2016;11:e0159267 Table 3",
    ),
    # Target populations (``model.population``): the between-population SD of the populations'
    # mean log ORs (bayes_msc.models.populations). Same scale as tau's default: the populations'
    # mean effects are judged no more different from one another than trials are.
    Preset(
        "population_sd_0.5",
        "population_heterogeneity",
        HalfNormal(0.5),
        "Half-normal(0.5) on the SD between populations' mean log ORs (e.g. COVID-19 vs classic ARDS): "
        "95% below ~1.0, so two populations' mean ORs differ by a factor below ~2.7 (and typically ~1.5) "
        "before the data speak; as for tau with few studies. With one or two trials in a population the "
        "posterior of this SD is mostly this prior: state it and vary it.",
        "Friede et al., Biom J 2017; Röver et al., Res Synth Methods 2021 (few-study log-OR scales)",
    ),
    Preset(
        "population_sd_0.25",
        "population_heterogeneity",
        HalfNormal(0.25),
        "Half-normal(0.25): populations' mean effects nearly alike (95% below ~0.5 on the log OR); "
        "more borrowing across populations; for sensitivity analysis.",
        "",
    ),
    Preset(
        "population_sd_1.0",
        "population_heterogeneity",
        HalfNormal(1.0),
        "Half-normal(1.0): populations may differ by as much as the effect itself; little borrowing "
        "across populations; for sensitivity analysis.",
        "",
    ),
    Preset(
        "default_baseline",
        "baseline",
        Normal(0.0, 2.0),
        "Each study's baseline log-odds of death α_j: in the symmetric coding (the default) the midpoint of its "
        "control-arm and cell-arm log-odds, in the arm coding its control arm's (with exchangeable baselines: "
        "their mean; the conditional likelihood has no baselines). Normal(0, 2) spans risks from about 2% to 98% "
        "(95%), so every trial's own arms decide its baseline.",
        "",
    ),
    Preset(
        "baseline_sd_1.0",
        "baseline_heterogeneity",
        HalfNormal(1.0),
        "Exchangeable baselines only (model.baselines = \"exchangeable\"): between-trial SD of the baseline "
        "log-odds (the arms' midpoints in the symmetric coding, the control arms' in the arm coding), "
        "Half-normal(1.0). Control risks of 15-60% differ by about 2 on the logit scale; this lets "
        "trials borrow baseline information from each other's control arms.",
        "",
    ),
    Preset(
        "baseline_sd5",
        "baseline",
        Normal(0.0, 5.0),
        "Each study's baseline log-odds (the arms' midpoint in the symmetric coding, the control arm's in the arm "
        "coding): Normal(0, 5), nearly flat on the risk scale; for sensitivity analysis (with zero-event arms the "
        "baseline prior can move the odds ratio).",
        "",
    ),
    Preset(
        "baseline_sd10",
        "baseline",
        Normal(0.0, 10.0),
        "Each study's baseline log-odds (the arms' midpoint in the symmetric coding, the control arm's in the arm "
        "coding): Normal(0, 10), piling prior mass on risks near 0 and 1; for "
        "sensitivity analysis (the setting the issue that added it found to move P(OR < 1)).",
        "",
    ),
    Preset(
        "covariate_default",
        "covariate",
        Normal(0.0, 0.5),
        "Meta-regression (model.covariates): each covariate term's effect on the log odds ratio, per SD of a "
        "numeric covariate among the included trials, per contrast with the reference level of a categorical one. "
        "Normal(0, 0.5) gives 95% probability to a ratio of odds ratios between 0.38 and 2.7 per SD: a modifier "
        "that halves or doubles the odds ratio is already large for a trial-level characteristic, and with about "
        "ten trials a wider prior lets the slopes chase noise (Higgins & Thompson, Stat Med 2004;23:1663).",
        "",
    ),
)

# Oxygenation (change in PaO2/FiO2, mmHg). No empirical heterogeneity prior exists on this
# scale (EVIDENCE.md §4), so the scales below are stated judgements with alternatives for a
# sensitivity analysis. Sceptical/enthusiastic anchor on the pooled mean difference of the
# only published pooled oxygenation estimate, +105.6 mmHg (Kirkham 2022, SCTM 11:675).
_MD_ANCHOR = 105.6
_MD_ANCHOR_SD = _MD_ANCHOR / 1.6448536269514722

MMHG_PRESETS: tuple[Preset, ...] = (
    Preset(
        "default",
        "effect",
        Normal(0.0, 100.0),
        "Weakly informative: 95% of prior mass within +/-196 mmHg. Baseline PaO2/FiO2 in these "
        "trials is about 100-170 mmHg, so a mean difference beyond that is implausible; inside it "
        "the data decide.",
        "",
    ),
    Preset(
        "sceptical",
        "effect",
        Normal(0.0, _MD_ANCHOR_SD),
        "Centred on no effect; gives 5% probability to an improvement above +105.6 mmHg, the "
        "published pooled mean difference.",
        "Spiegelhalter, Freedman & Parmar, JRSS A 1994; anchor from Kirkham 2022 SCTM 11:675",
    ),
    Preset(
        "enthusiastic",
        "effect",
        Normal(_MD_ANCHOR, _MD_ANCHOR_SD),
        "Centred on the published pooled +105.6 mmHg, giving 5% probability to harm (< 0).",
        "Spiegelhalter, Freedman & Parmar, JRSS A 1994; anchor from Kirkham 2022 SCTM 11:675",
    ),
    Preset(
        "covariate_default",
        "covariate",
        Normal(0.0, 50.0),
        "Meta-regression (model.covariates): each covariate term's effect on the mean difference, per SD of a "
        "numeric covariate among the included trials, per contrast with the reference level of a categorical one: "
        "Normal(0, 50 mmHg), half the effect prior's scale (a stated judgement).",
        "",
    ),
    Preset(
        "halfnormal_50",
        "heterogeneity",
        HalfNormal(50.0),
        "Half-normal(50 mmHg) on tau: between-trial SDs of the effect up to ~100 mmHg (95%); the "
        "scale EVIDENCE.md §4 suggests. A stated judgement: no empirical prior exists in mmHg.",
        "EVIDENCE.md §4",
    ),
    Preset(
        "halfnormal_25",
        "heterogeneity",
        HalfNormal(25.0),
        "Half-normal(25 mmHg) on tau: trials mostly agree; for sensitivity analysis.",
        "",
    ),
    Preset(
        "halfnormal_100",
        "heterogeneity",
        HalfNormal(100.0),
        "Half-normal(100 mmHg) on tau: allows trials to disagree by as much as the effect itself; "
        "for sensitivity analysis.",
        "",
    ),
    Preset(
        "default_slope",
        "dose_slope",
        Normal(0.0, 50.0),
        "Log-linear dose-response: change in the mean difference (mmHg) per e-fold change in dose; "
        "Normal(0, 50) allows about +/-230 mmHg over a tenfold dose range (95%).",
        "",
    ),
    _ED50_PRESET,
    Preset(
        "default_natural_course",
        "baseline",
        Normal(0.0, 100.0),
        "Mean change in PaO2/FiO2 without cells across studies: Normal(0, 100 mmHg), wide enough "
        "that control arms decide it.",
        "",
    ),
    Preset(
        "halfnormal_50_natural_course",
        "baseline_heterogeneity",
        HalfNormal(50.0),
        "Between-study SD of the natural course: Half-normal(50 mmHg). Single-arm studies borrow "
        "their natural course from control arms through this SD, so it sets how much a single-arm "
        "change can say about the effect.",
        "",
    ),
)

# The generic normal-normal analysis pools any per-study estimate with its standard error;
# its defaults are for log ratios (Röver, J Stat Softw 2020); state priors on the scale of
# other estimates.
GENERIC_PRESETS: tuple[Preset, ...] = (
    Preset(
        "log_ratio_default",
        "effect",
        Normal(0.0, 4.0),
        "Vague on a log ratio scale (log odds / risk / hazard ratio): Normal(0, 4). Wrong for "
        "estimates in other units; state a prior on their scale.",
        "Röver, J Stat Softw 2020 (bayesmeta)",
    ),
    *(p for p in LOG_ODDS_RATIO_PRESETS if p.role in ("heterogeneity", "covariate")),
)

# Standardised mean differences (the normal-normal analysis with model.measure = "smd").
SMD_PRESETS: tuple[Preset, ...] = (
    Preset(
        "smd_default",
        "effect",
        Normal(0.0, 1.0),
        "Weakly informative on the SMD scale: 95% of prior mass within ±2 outcome SDs; effects "
        "that large are already extreme in clinical trials (a stated judgement).",
        "",
    ),
    Preset(
        "rhodes2015_general",
        "heterogeneity",
        LogTTau2(-3.44, 2.59, 5.0),
        "Empirical: log tau^2 ~ t_5(-3.44, 2.59) for SMDs in a general health-care setting, any "
        "outcome and comparison (median tau ~0.18).",
        "Rhodes, Turner & Higgins, J Clin Epidemiol 2015;68:52",
    ),
    Preset(
        "halfnormal_0.5_smd",
        "heterogeneity",
        HalfNormal(0.5),
        "Half-normal(0.5) on tau in SD units: between-trial SDs of half an outcome SD are already "
        "large; the weakly informative alternative for a sensitivity analysis (a stated judgement).",
        "",
    ),    Preset(
        "covariate_default",
        "covariate",
        Normal(0.0, 0.5),
        "Meta-regression (model.covariates): each covariate term's effect on the SMD, per SD of a numeric "
        "covariate among the included trials, per contrast with a categorical one's reference level: Normal(0, "
        "0.5), half the effect prior's scale (a stated judgement).",
        "",
    ),
)

PRESETS: dict[str, tuple[Preset, ...]] = {
    "log_odds_ratio": LOG_ODDS_RATIO_PRESETS,
    "mmhg": MMHG_PRESETS,
    "generic": GENERIC_PRESETS,
    "smd": SMD_PRESETS,
    # Mean differences in a unit the spec states: no preset can know the scale, so both
    # priors are stated in the spec or with --prior (see bayes_msc.outcomes.continuous).
    "mean_difference": (),
}


def register_presets(scale: str, presets: tuple[Preset, ...], roles: tuple[str, ...] = ("effect", "heterogeneity")) -> None:
    """Add a scale of named presets (and the roles its models use), e.g. for a new outcome."""
    PRESETS[scale] = tuple(presets)
    ROLES_BY_SCALE[scale] = tuple(roles)


def presets_for(scale: str) -> tuple[Preset, ...]:
    try:
        return PRESETS[scale]
    except KeyError:
        raise InputError(f"no prior presets for scale {scale!r}") from None


def find_preset(scale: str, name: str) -> Preset:
    """Look a preset up by name; names are unique within a scale across roles."""
    for preset in presets_for(scale):
        if preset.name == name:
            return preset
    known = ", ".join(p.name for p in presets_for(scale))
    if not known:
        raise InputError(f"prior {name!r}: there are no named presets on the {scale} scale (the outcome's own "
                         "units); state the prior, e.g. effect = { family = \"normal\", mu = 0, sigma = 50 } in the "
                         "spec or --prior 'effect=normal(mu=0,sigma=50)'")
    raise InputError(f"unknown prior preset {name!r} for {scale} outcomes; known presets: {known}")


# The name a role's prior carries while it is a placeholder the fit refuses until it is stated
# (bayes_msc.spec.AnalysisSpec.check_priors_stated).
UNSTATED_PRIOR = "not stated for this scale"

# The roles each outcome scale's models use, in a fixed order.
ROLES_BY_SCALE: dict[str, tuple[str, ...]] = {
    "log_odds_ratio": ("effect", "heterogeneity", "baseline"),
    "mmhg": ("effect", "heterogeneity", "baseline", "baseline_heterogeneity"),
    "generic": ("effect", "heterogeneity"),
    "smd": ("effect", "heterogeneity"),
    "mean_difference": ("effect", "heterogeneity"),
}
ALL_ROLES = (
    "effect", "heterogeneity", "baseline", "baseline_heterogeneity", "dose_slope", "ed50",
    "design_bias", "design_heterogeneity", "covariate", "population_heterogeneity",
)
# The between-population SD: present only when the spec names a target population
# (model.population; see with_population_defaults and bayes_msc.models.populations).
POPULATION_ROLE = "population_heterogeneity"
DEFAULT_POPULATION_PRESET = "population_sd_0.5"
# Design-bias roles: present when the evidence set can admit non-randomised studies (every set
# but "randomised") on the log-OR scale (see with_bias_defaults).
BIAS_ROLES = ("design_bias", "design_heterogeneity")
# Dose-response roles: present only when the spec's form needs them (see with_dose_defaults).
# Under "emax" the effect prior is on Emax, the maximal effect; under "loglinear" it is on
# the effect at the reference dose.
DOSE_ROLES = {"none": (), "loglinear": ("dose_slope",), "emax": ("ed50",)}


@dataclass(frozen=True)
class PriorSet:
    """The priors of one analysis, by role; what every output records.

    Roles: ``effect`` (pooled treatment effect), ``heterogeneity`` (between-trial SD τ),
    ``baseline`` (each study's baseline log-odds: the control arm's in the arm coding, the
    midpoint of control and cell arms in the symmetric coding; or the mean natural course in
    mmHg) and
    ``baseline_heterogeneity`` (between-study SD of the natural course). A model uses the
    roles of its scale (:data:`ROLES_BY_SCALE`); the others stay ``None``.
    """

    effect: Prior
    heterogeneity: Prior
    baseline: Prior | None = None
    baseline_heterogeneity: Prior | None = None
    dose_slope: Prior | None = None
    ed50: Prior | None = None
    design_bias: Prior | None = None
    design_heterogeneity: Prior | None = None
    covariate: Prior | None = None  # a meta-regression's covariate effects (present only with covariates)
    population_heterogeneity: Prior | None = None
    names: dict[str, str] = field(default_factory=dict)  # role -> preset name or "custom"

    @property
    def roles(self) -> tuple[str, ...]:
        return tuple(role for role in ALL_ROLES if getattr(self, role) is not None)

    def by_role(self) -> dict[str, Prior]:
        return {role: getattr(self, role) for role in self.roles}

    def structure_key(self) -> tuple[str, ...]:
        """Families only: what forces a recompile when it changes."""
        return tuple(f"{role}:{getattr(self, role).family}" for role in self.roles)

    def to_dict(self) -> dict[str, Any]:
        return {
            role: {"preset": self.names.get(role, "custom"), **getattr(self, role).to_dict()}
            for role in self.roles
        }

    def with_preset(self, scale: str, name: str) -> "PriorSet":
        preset = find_preset(scale, name)
        return replace(self, **{preset.role: preset.prior}, names={**self.names, preset.role: name})

    def with_parameter(self, role: str, parameter: str, value: float) -> "PriorSet":
        if role not in self.roles:
            raise InputError(f"unknown prior role {role!r}; roles: {', '.join(self.roles)}")
        updated = getattr(self, role).with_hyperparameters(**{parameter: value})
        return replace(self, **{role: updated}, names={**self.names, role: "custom"})

    def with_prior(self, role: str, prior: Prior) -> "PriorSet":
        if role not in self.roles:
            raise InputError(f"unknown prior role {role!r}; roles: {', '.join(self.roles)}")
        return replace(self, **{role: prior}, names={**self.names, role: "custom"})

    def with_dose_defaults(self, scale: str, form: str) -> "PriorSet":
        """Add the default prior of each role the dose-response ``form`` needs; drop the others."""
        needed = DOSE_ROLES[form]
        changes: dict[str, Any] = {}
        names = dict(self.names)
        for role in ("dose_slope", "ed50"):
            if role in needed and getattr(self, role) is None:
                preset = next(p for p in presets_for(scale) if p.role == role and p.name.startswith("default"))
                changes[role], names[role] = preset.prior, preset.name
            elif role not in needed:
                changes[role] = None
                names.pop(role, None)
        return replace(self, **changes, names=names)

    def with_bias_defaults(self, scale: str, evidence_set: str) -> "PriorSet":
        """Add the default design-bias priors when the evidence set can admit non-randomised
        studies (log-OR scale: the mortality model adjusts for design); drop them otherwise."""
        needed = scale == "log_odds_ratio" and evidence_set != "randomised"
        changes: dict[str, Any] = {}
        names = dict(self.names)
        for role in BIAS_ROLES:
            if needed and getattr(self, role) is None:
                preset = next(p for p in presets_for(scale) if p.role == role)
                changes[role], names[role] = preset.prior, preset.name
            elif not needed:
                changes[role] = None
                names.pop(role, None)
        return replace(self, **changes, names=names)

    def with_population_defaults(self, scale: str, population) -> "PriorSet":
        """Mortality with a target population (``model.population``): add the default
        between-population SD prior if absent; without one, drop it."""
        if scale == "log_odds_ratio" and population is not None:
            if self.population_heterogeneity is None:
                preset = find_preset(scale, DEFAULT_POPULATION_PRESET)
                return replace(self, population_heterogeneity=preset.prior,
                               names={**self.names, POPULATION_ROLE: preset.name})
            return self
        if self.population_heterogeneity is not None:
            names = {k: v for k, v in self.names.items() if k != POPULATION_ROLE}
            return replace(self, population_heterogeneity=None, names=names)
        return self

    def with_baseline_defaults(self, scale: str, baselines: str) -> "PriorSet":
        """Mortality: exchangeable baselines need a between-trial SD prior (added if absent);
        independent baselines have none (dropped). Other scales are unchanged."""
        if scale != "log_odds_ratio":
            return self
        if baselines == "exchangeable" and self.baseline_heterogeneity is None:
            preset = find_preset(scale, "baseline_sd_1.0")
            return replace(self, baseline_heterogeneity=preset.prior, names={**self.names, preset.role: preset.name})
        if baselines != "exchangeable" and self.baseline_heterogeneity is not None:
            names = {k: v for k, v in self.names.items() if k != "baseline_heterogeneity"}
            return replace(self, baseline_heterogeneity=None, names=names)
        return self

    def with_covariate_defaults(self, scale: str, covariates) -> "PriorSet":
        """A meta-regression (``covariates`` not empty) needs a prior on its covariate effects:
        the scale's ``covariate_default`` preset is added if absent (marked unstated where the
        scale has none: a mean difference in the user's unit); without covariates it is dropped,
        so specs without covariates keep their priors and hash."""
        if not covariates:
            if self.covariate is None:
                return self
            return replace(self, covariate=None, names={k: v for k, v in self.names.items() if k != "covariate"})
        if self.covariate is not None:
            return self
        preset = next((p for p in presets_for(scale) if p.role == "covariate"), None)
        if preset is None:  # no scale known: the fit refuses it until it is stated
            return replace(self, covariate=Normal(0.0, 1.0), names={**self.names, "covariate": UNSTATED_PRIOR})
        return replace(self, covariate=preset.prior, names={**self.names, "covariate": preset.name})

    def describe(self) -> dict[str, str]:
        return {
            role: f"{getattr(self, role).describe()} [{self.names.get(role, 'custom')}]"
            for role in self.roles
        }


_ASSIGNMENT = re.compile(r"^\s*(\w+)\s*=\s*(\w+)\s*\((.*)\)\s*$")


def parse_prior_assignment(text: str) -> tuple[str, Prior]:
    """Read ``role=family(param=value, ...)``, e.g. ``heterogeneity=halfcauchy(beta=25)``.

    The command line's way to change a prior's family, which a hyperparameter override
    (``role.param=value``) cannot.
    """
    match = _ASSIGNMENT.match(text)
    if not match:
        raise InputError(
            f"prior {text!r}: expected a preset name or role=family(param=value, ...), "
            "e.g. heterogeneity=halfcauchy(beta=25)"
        )
    role, family, args = match.groups()
    params: dict[str, Any] = {"family": family.lower()}
    for part in filter(None, (p.strip() for p in args.split(","))):
        key, sep, value = part.partition("=")
        if not sep:
            raise InputError(f"prior {text!r}: {part!r} is not param=value")
        try:
            params[key.strip()] = float(value)
        except ValueError:
            raise InputError(f"prior {text!r}: {value.strip()!r} is not a number") from None
    return role, prior_from_dict(params, f"prior {text!r}")


def priors_from_table(scale: str, table: dict[str, Any], where: str) -> PriorSet:
    """Read a spec's ``[priors]`` table: each role is a preset name or an inline prior table."""
    roles = ROLES_BY_SCALE[scale]
    if not isinstance(table, dict):
        raise InputError(f"{where}: priors must be a table, got {table!r}")
    chosen: dict[str, Prior] = {}
    names: dict[str, str] = {}
    # optional roles: dose-response forms, design bias, exchangeable baselines' SD (log-OR scale)
    optional = ("dose_slope", "ed50", *BIAS_ROLES, "covariate") + (("baseline_heterogeneity", POPULATION_ROLE)
                                                                   if scale == "log_odds_ratio" else ())
    for role in (*roles, *optional):
        entry = table.get(role, None)
        if entry is None:
            if role in roles:
                raise InputError(f"{where}: [priors] needs '{role}' (a preset name or a prior table)")
            continue
        if isinstance(entry, str):
            try:
                preset = find_preset(scale, entry)
            except InputError as exc:
                raise InputError(f"{where}: priors.{role}: {exc}") from None
            if preset.role != role:
                raise InputError(f"{where}: priors.{role}: preset {entry!r} is a {preset.role} prior, not {role}")
            chosen[role], names[role] = preset.prior, entry
        elif isinstance(entry, dict):
            chosen[role], names[role] = prior_from_dict(entry, f"{where}: priors.{role}"), "custom"
        else:
            raise InputError(f"{where}: priors.{role} must be a preset name or a table, got {entry!r}")
    extra = set(table) - set(roles) - set(optional)
    if extra:
        raise InputError(f"{where}: unknown key priors.{sorted(extra)[0]}")
    return PriorSet(**chosen, names=names)

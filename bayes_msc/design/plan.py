""":func:`design`: the next trial from a fit — MAP prior, assurance, sample size, dose, fragility."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from ..engine.streams import CONTROL_RISK, NEXT_TRIAL_EFFECT_AT_DOSE, stream
from ..io.errors import InputError
from ..spec import MAX_DOSE  # million cells/kg, the bound of the spec's dose settings
from . import assurance as asr
from .fragility import Conclusion, death_fragility, null_trial_fragility
from .map_prior import (
    MixtureFit,
    NormalMixture,
    binary_unit_information,
    constant_information_ess,
    elir_ess,
    fit_mixture,
    normal_unit_information,
    population_borrowing,
    population_effect_draws,
    robustify,
    to_rbest_json,
)
from .outcome import DesignOutcome, design_outcome

CONTROL_RISK_SOURCES = ("hierarchical", "baseline")
ROBUST_WEIGHT = 0.2  # Schmidli et al. 2014 and RBesT's vignettes use 0.1-0.2
TARGET_ASSURANCE = 0.8
# Largest n per arm: deaths are enumerated over (n + 1)^2 outcomes (5000: 25 million cells,
# about 200 MB an array); a continuous outcome is closed-form, bounded only far beyond any trial.
MAX_N_PER_ARM_DEATHS = 5000
MAX_N_PER_ARM = 20000
MAX_OUTCOME_SD = 1e6


@dataclass(frozen=True)
class DesignSettings:
    """The choices of a design run (every one is printed with the result).

    ``rule``: criteria (threshold as users read it — an OR, or a difference — and the
    posterior probability to exceed), all of which must hold; default: P(no effect is
    beaten) > 0.975, the Bayesian twin of a one-sided 2.5% test.

    ``control_risk`` (deaths): None or "hierarchical" — predicted for a new trial by a
    hierarchical model of the register's control arms (:mod:`.control_risk`); "baseline" —
    the spec's stated baseline risk (``decision.baseline_risk``, the one ARR and NNT use);
    or a number in (0, 1).
    """

    n_grid: tuple[int, ...] = asr.DEFAULT_N_GRID
    control_risk: float | str | None = None
    sd: float | None = None
    alpha: float = 0.05
    rule: tuple[tuple[float, float], ...] | None = None
    robust_weight: float = ROBUST_WEIGHT
    target: float = TARGET_ASSURANCE
    dose: float | None = None
    test: str = "log_or"  # deaths: Wald test of the log OR, or "risk_difference" (two-proportion z-test)
    seed: int = 20261122
    refit: bool = True

    def validate(self, binary: bool | None = None, outcome: DesignOutcome | None = None) -> None:
        """Refuse impossible settings (before any fit). ``binary``: the trial counts deaths,
        whose exact enumeration bounds n more tightly (None: not known yet); ``outcome``: the
        scale a rule's threshold is read on (an OR, or a risk ratio or difference at a baseline
        risk), which refuses a value that scale cannot take."""
        if outcome is not None:
            binary = outcome.binary
        def number(value) -> bool:
            return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool) \
                and math.isfinite(value)

        if isinstance(self.n_grid, (str, bytes)) or not hasattr(self.n_grid, "__iter__"):
            raise InputError(f"n_grid (--n-per-arm): expected sample sizes per arm, got {type(self.n_grid).__name__}")
        most = MAX_N_PER_ARM_DEATHS if binary else MAX_N_PER_ARM
        if not self.n_grid or any(isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 2 <= n <= most
                                  for n in self.n_grid):
            raise InputError(f"n_grid (--n-per-arm): every n must be a whole number in [2, {most}]"
                             + (" (a trial counting deaths is enumerated exactly)" if binary else ""))
        if isinstance(self.control_risk, str):
            if self.control_risk not in CONTROL_RISK_SOURCES:
                raise InputError(f"control_risk (--control-risk) must be a risk in (0, 1), "
                                 f"{' or '.join(CONTROL_RISK_SOURCES)}; got {self.control_risk!r}")
        elif self.control_risk is not None and not (number(self.control_risk) and 0 < self.control_risk < 1):
            raise InputError(f"control_risk (--control-risk) must be in (0, 1), got {self.control_risk!r}")
        if self.sd is not None and not (number(self.sd) and 0 < self.sd <= MAX_OUTCOME_SD):
            raise InputError(f"sd (--outcome-sd): the outcome SD must be a finite number in (0, {MAX_OUTCOME_SD:g}], "
                             f"got {self.sd!r}")
        if not (number(self.alpha) and 0 < self.alpha < 1):
            raise InputError(f"alpha (--alpha) must be in (0, 1), got {self.alpha!r}")
        if self.test not in ("log_or", "risk_difference"):
            raise InputError(f"test (--test) must be log_or or risk_difference, got {self.test!r}")
        if not (number(self.target) and 0 < self.target < 1):
            raise InputError(f"target (--target) must be in (0, 1), got {self.target!r}")
        if not (number(self.robust_weight) and 0 <= self.robust_weight < 1):
            raise InputError(f"robust_weight (--robust-weight) must be in [0, 1), got {self.robust_weight!r}")
        if self.dose is not None and not (number(self.dose) and 0 < self.dose <= MAX_DOSE):
            raise InputError(f"dose (--dose) must be a dose in (0, {MAX_DOSE:g}] million cells/kg, got {self.dose!r}")
        for pair in self.rule or ():
            if not (isinstance(pair, tuple) and len(pair) == 2 and all(number(v) for v in pair)):
                raise InputError(f"rule (--rule): expected (THRESHOLD, PROB) pairs of finite numbers, got {pair!r}")
            threshold, prob = pair
            if not 0 < prob < 1:
                raise InputError(f"rule (--rule): a probability must be in (0, 1), got {prob}")
            if outcome is not None and outcome.on_risk_scale:
                try:
                    outcome.to_scale(threshold)
                except InputError as exc:
                    raise InputError(f"rule (--rule): the threshold is a {outcome.stated_as.name} "
                                     f"({outcome.effect_label}): {exc.problem}") from None
            elif binary and not threshold > 0:
                raise InputError(f"rule (--rule): the threshold is an odds ratio and must be > 0, got {threshold:g}")


@dataclass(frozen=True)
class DesignResult:
    outcome: DesignOutcome
    settings: DesignSettings
    map_fit: MixtureFit
    robust_prior: NormalMixture
    reference_sigma: float  # unit-information SD: one patient per arm, at the null
    ess: dict  # ELIR ESS (patients per arm): constant information (RBesT), and theta-dependent beside it
    nuisance: dict  # control risk or outcome SD: how it was set, median, 95% interval
    rule_text: str
    table: pd.DataFrame  # one row per n: assurance and OC under each scenario
    scenarios: list[dict]
    sample_size: dict
    dose: pd.DataFrame | None
    fragility: list[dict]
    null_trial: list[dict]
    approximation: list[dict] = field(default_factory=list)  # deaths: normal approximation vs exact binomial
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)

    @property
    def test_text(self) -> str:
        if not self.outcome.binary:
            return f"two-sided z-test of the mean difference at alpha = {self.settings.alpha:g}"
        if self.settings.test == "risk_difference":
            return f"two-sided two-proportion z-test of the risk difference at alpha = {self.settings.alpha:g}"
        return f"two-sided Wald test of the log OR (0.5 added to each cell) at alpha = {self.settings.alpha:g}"

    def rbest_json(self, robust: bool = True) -> str:
        mix = self.robust_prior if robust else self.map_fit.mixture
        names = [f"comp{i + 1}" for i in range(self.map_fit.mixture.n_components)]
        return to_rbest_json(mix, sigma=self.reference_sigma, names=names + (["robust"] if robust and mix is not self.map_fit.mixture else []))

    def to_dict(self) -> dict:
        import json

        o = self.outcome
        return {
            "outcome": o.name,
            "effect_scale": "log odds ratio" if o.binary else f"difference ({o.unit})",
            # what the rule, the scenarios and the conclusions are read as (an OR unless stated)
            "stated_as": ({"measure": o.stated_as.name, "short": o.effect_label,
                           "baseline_risk": o.stated_as.baseline_risk} if o.on_risk_scale
                          else {"measure": "odds ratio", "short": "OR", "baseline_risk": None} if o.binary
                          else {"measure": "difference", "short": o.effect_label, "baseline_risk": None}),
            "map_prior": self.map_fit.to_dict(),
            "robust_prior": {**self.robust_prior.to_dict(), "robust_weight": self.settings.robust_weight},
            "rbest_json": json.loads(self.rbest_json()),
            "reference_sigma": self.reference_sigma,
            "ess_elir": self.ess,
            "nuisance": self.nuisance,
            "alpha": self.settings.alpha,
            "test": self.test_text,
            "rule": self.rule_text,
            "assurance": self.table.to_dict(orient="records"),
            "scenarios": self.scenarios,
            "sample_size": self.sample_size,
            "dose": None if self.dose is None else self.dose.to_dict(orient="records"),
            "fragility": self.fragility,
            "null_trial": self.null_trial,
            "normal_approximation_check": self.approximation,
            "seconds": self.seconds,
            "notes": self.notes,
        }


# -- draws the design needs ----------------------------------------------------------------


def _flat(da) -> np.ndarray:
    return np.asarray(da.transpose("chain", "draw", ...).values).reshape(-1)


def effect_draws(result, outcome: DesignOutcome, dose: float | None, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(pooled effect, new-trial effect) draws, at ``dose`` when given (needs a dose-response
    fit); a dose-response fit without ``dose`` uses the spec's reference dose."""
    post = result.posterior
    spec = result.spec
    form = spec.model.dose_response
    population = population_effect_draws(result, seed)  # a target population's own effect (models/populations.py)
    if population is not None:
        return population
    if dose is None and form == "none":
        return _flat(post[outcome.effect_var]), _flat(post[outcome.new_effect_var])
    if form == "none":
        raise InputError("--dose needs a dose-response fit: add --dose-response loglinear or emax")
    from ..models.dose_response import posterior_curve

    at = spec.model.reference_dose if dose is None else dose
    pooled = _flat(posterior_curve(post, form, outcome.effect_var, [at], spec.model.reference_dose).isel(dose=0))
    tau = _flat(post[outcome.heterogeneity_var])
    eps = stream(seed, NEXT_TRIAL_EFFECT_AT_DOSE).standard_normal(len(tau))
    return pooled, pooled + tau * eps


def _control_risk(result, settings: DesignSettings, size: int) -> dict:
    """The new trial's control risk: how it was set, its draws and summary (deaths only)."""
    choice = settings.control_risk
    if choice is None or choice == "hierarchical":
        from .control_risk import fit_control_risk, logit_normal_note, summarise

        model = fit_control_risk(result.evidence, result.spec.priors)
        summary = summarise(model)
        draws = model.draws(size, stream(settings.seed, CONTROL_RISK))
        return {"name": "control risk", "source": "hierarchical", "how": f"{model.describe()}; {logit_normal_note(model)}",
                "median": summary["median"], "lower_95": summary["lower_95"], "upper_95": summary["upper_95"],
                "share_below_5_percent": summary["share_below"]["prob"], "draws": draws}
    if choice == "baseline":
        risk = float(result.spec.decision.baseline_risk)
        source = result.spec.decision.baseline_risk_source
        how = f"the fit's stated baseline risk {risk:g} (the one ARR and NNT use{': ' + source if source else ''})"
        kind = "baseline"
    else:
        risk, how, kind = float(choice), f"given: {float(choice):g}", "given"
    return {"name": "control risk", "source": kind, "how": how, "median": risk, "lower_95": risk, "upper_95": risk,
            "share_below_5_percent": float(risk < 0.05), "draws": np.full(size, risk)}


def pooled_outcome_sd(register, spec) -> tuple[float, int, list[str]]:
    """Pooled SD of the PaO2/FiO2 change from the register's arm-level reports at the spec's
    day (SDs derived as the oxygenation analysis derives them); its degrees of freedom."""
    from ..evidence.oxygenation import derive_row

    rows = register.oxygenation
    rows = rows[(rows["measure"] == "pf_ratio") & (rows["quantity"] == "change_from_baseline")
                & rows["comparator"].isna() & rows["n"].notna() & rows["statistic"].isin(["mean_sd", "median_iqr"])]
    day = spec.evidence.oxygenation_day
    if (rows["day"] == day).any():
        rows = rows[rows["day"] == day]
    sums, dfs, used = 0.0, 0, []
    for _, row in rows.iterrows():
        n = int(row["n"])
        sd = derive_row(row, n, spec.evidence.median_iqr_method)["se"] * math.sqrt(n)
        sums += (n - 1) * sd**2
        dfs += n - 1
        used.append(f"{row['study_id']}/{row['arm']} SD {sd:.1f} (n {n})")
    if not dfs:
        raise InputError("no arm-level SD of the PaO2/FiO2 change in the register: give the outcome SD")
    return math.sqrt(sums / dfs), dfs, used


# -- the run ---------------------------------------------------------------------------------


def design(result, settings: DesignSettings | None = None, *, register=None) -> DesignResult:
    """The next trial from a fitted analysis (see :mod:`bayes_msc.design`)."""
    start = time.perf_counter()
    settings = settings or DesignSettings()
    outcome = design_outcome(result.spec)
    settings.validate(outcome=outcome)
    rng = np.random.default_rng(settings.seed)
    pooled, new = effect_draws(result, outcome, settings.dose, settings.seed)
    notes = []
    if result.spec.model.dose_response != "none":
        at = settings.dose if settings.dose is not None else result.spec.model.reference_dose
        notes.append(f"{result.spec.model.dose_response} dose-response: the trial is designed at {at:g} million "
                     f"cells/kg{'' if settings.dose is not None else ' (the reference dose; --dose chooses another)'}")
    if settings.dose is not None and result.dose_response is not None:
        low, high = result.dose_response.studied_range
        if not low <= settings.dose <= high:
            notes.append(f"--dose {settings.dose:g} is outside the studied range ({low:.2g} to {high:.2g} million "
                         "cells/kg): the design at that dose extrapolates the fitted curve")

    # the nuisance parameter: control risk (deaths) or outcome SD (continuous)
    if outcome.binary:
        nuisance = _control_risk(result, settings, len(new))
        nuis_draws = nuisance.pop("draws")
        point = nuisance["median"]
        unit_info = binary_unit_information(point)
        design_prior = asr.DesignPrior(new, control_risk=nuis_draws)
    else:
        if settings.sd is not None:
            nuis_draws = np.full(len(new), settings.sd)
            how, point = f"given: {settings.sd:g}", settings.sd
        else:
            from ..evidence.register import Register, load_register

            reg = register if isinstance(register, Register) else load_register(register)
            s, df, used = pooled_outcome_sd(reg, result.spec)
            # sd^2 | data ~ s^2 df / chi2_df (Jeffreys prior on the variance)
            nuis_draws = s * np.sqrt(df / stats.chi2.rvs(df, size=len(new), random_state=rng))
            how, point = f"pooled from the register's arm SDs ({'; '.join(used)}; {df} df), uncertain", s
        unit_info = normal_unit_information(point)
        design_prior = asr.DesignPrior(new, sd=nuis_draws)
        nuisance = {"name": "outcome SD", "how": how, "median": float(np.median(nuis_draws)),
                    "lower_95": float(np.quantile(nuis_draws, 0.025)), "upper_95": float(np.quantile(nuis_draws, 0.975))}

    # the MAP prior, robustified, with its ESS
    map_fit = fit_mixture(new)
    reference_sigma = float(1 / math.sqrt(unit_info(np.array([outcome.null_effect]))[0]))
    robust = robustify(map_fit.mixture, settings.robust_weight, outcome.null_effect, reference_sigma)
    vague = NormalMixture((1.0,), (outcome.null_effect,), (reference_sigma,))
    ess = {"map": constant_information_ess(map_fit.mixture, reference_sigma),
           "robust": constant_information_ess(robust, reference_sigma),
           "robust_component": constant_information_ess(vague, reference_sigma),
           "definition": "ELIR at constant Fisher information 1/sigma^2, sigma the exported reference scale "
                         "(RBesT's ess(..., method = 'elir') of a normal mixture)",
           "sigma": reference_sigma, "unit": "patients per arm", "at": f"{nuisance['name']} {point:.3g}"}
    if outcome.binary:  # the binomial information of the log OR varies with theta
        ess["theta_dependent"] = {
            "map": elir_ess(map_fit.mixture, unit_info), "robust": elir_ess(robust, unit_info),
            "robust_component": elir_ess(vague, unit_info),
            "definition": f"ELIR with the binomial Fisher information of the log OR at control risk {point:.3g}, "
                          "which falls as |theta| grows (not RBesT's definition for a normal mixture)"}

    borrowing = population_borrowing(result, register, map_fit.mixture, reference_sigma)  # target population
    if borrowing is not None:
        ess["from_outside_population"] = borrowing
        notes.append(f"target population {borrowing['population']}: MAP prior ESS {borrowing['ess_population_model']:.1f} "
                     f"patients per arm, of which {borrowing['ess_from_outside']:.1f} from outside the population "
                     f"(its own trials alone: {borrowing['ess_population_trials_alone']:.1f})")

    # the rule and the trial
    rule_pairs = settings.rule or ((outcome.show(outcome.null_effect), 0.975),)
    rule = tuple(asr.Criterion(outcome.to_scale(t), p) for t, p in rule_pairs)
    trial = asr.Trial(outcome.binary, outcome.direction, settings.alpha, rule, robust, settings.test)
    sign = "<" if outcome.direction < 0 else ">"
    rule_text = " and ".join(f"P({outcome.effect_label} {sign} {t:g}) > {p:g}" for t, p in rule_pairs)
    if outcome.on_risk_scale:  # the rule as read, and the one log-OR rule it is
        p0 = outcome.stated_as.baseline_risk
        rule_text += (f" ({outcome.stated_as.name} at control risk {p0:g}, decision.baseline_risk; the same events as "
                      + " and ".join(f"P(OR {sign} {math.exp(c.threshold):.4g}) > {c.prob:g}" for c in rule) + ")")
        if not (isinstance(settings.control_risk, str) and settings.control_risk == "baseline"):
            notes.append(f"the rule's {outcome.stated_as.name} is read at the analysis' baseline risk {p0:g} "
                         "(decision.baseline_risk), as the fit states it; the trial's outcomes are drawn at the "
                         "control risk above. --control-risk baseline makes them one")

    median_effect = float(np.median(pooled))
    scenario_effects = [("no effect", outcome.null_effect), ("meaningful", outcome.meaningful),
                        ("posterior median", median_effect)]
    scenarios = [asr.Scenario(label, eff, control_risk=point if outcome.binary else None,
                              sd=None if outcome.binary else point) for label, eff in scenario_effects]
    thin = design_prior.thinned(asr.ASSURANCE_DRAWS, rng)
    rows = asr.evaluate(trial, sorted(set(int(n) for n in settings.n_grid)), thin, scenarios)
    table = pd.DataFrame(rows)
    approximation = asr.approximation_check(trial, sorted(set(int(n) for n in settings.n_grid)), thin) if outcome.binary else []
    sample_size = {}
    for analysis in ("frequentist", "bayesian"):
        sample_size[analysis] = asr.smallest_n(trial, thin, rows, settings.target, f"assurance_{analysis}")
        # power at the posterior median, the number a classical calculation would give
        sample_size[f"{analysis}_power_at_median"] = asr.smallest_n(
            trial, thin, rows, settings.target, f"{analysis}|posterior median", scenarios[2:])
    sample_size["target"] = settings.target
    sample_size["ceiling"] = float(outcome.favours(new, outcome.null_effect).mean())
    sample_size["ceiling_text"] = (
        f"assurance cannot exceed P(new-trial effect favours cells) = {sample_size['ceiling']:.3f}, "
        "however many patients")

    dose_table = _dose_table(result, outcome, settings, trial, sample_size, nuis_draws, rng)

    conclusions = [
        Conclusion(outcome.null_effect, 0.95, f"P({outcome.effect_label} {sign} {outcome.show(outcome.null_effect):g}) > 0.95"),
        Conclusion(outcome.meaningful, 0.8, f"P({outcome.effect_label} {sign} {outcome.show(outcome.meaningful):g}) > 0.8"),
    ]
    if outcome.binary and result.spec.model.dose_response == "none" and settings.dose is None:
        fragility = death_fragility(result, outcome, conclusions, refit=settings.refit)
    else:
        fragility = []
        notes.append("fragility in deaths: only for the mortality analysis without a dose-response form")
    null_var = (2 / (point * (1 - point))) if outcome.binary else 2 * point**2
    null_trial = null_trial_fragility(pooled, _flat(result.posterior[outcome.heterogeneity_var]), outcome, conclusions, null_var)

    return DesignResult(
        outcome=outcome, settings=settings, map_fit=map_fit, robust_prior=robust, reference_sigma=reference_sigma,
        ess=ess, nuisance=nuisance, rule_text=rule_text, table=table,
        scenarios=[{"label": s.label, "effect": outcome.show(s.effect)} for s in scenarios],
        sample_size=sample_size, dose=dose_table, fragility=fragility, null_trial=null_trial,
        approximation=approximation, seconds=time.perf_counter() - start, notes=notes,
    )


def _dose_table(result, outcome, settings, trial, sample_size, nuisance_draws, rng) -> pd.DataFrame | None:
    """Per candidate dose (the spec's dose grid inside the studied range, and ``--dose``):
    P(it is the best of the candidates) and assurance at the chosen sample size."""
    dr = result.dose_response
    if dr is None:
        return None
    low, high = dr.studied_range
    doses = sorted({d for d in result.spec.model.dose_grid if low <= d <= high} | ({settings.dose} if settings.dose else set()))
    if not doses:
        return None
    pooled = np.stack([effect_draws(result, outcome, d, settings.seed)[0] for d in doses], axis=1)
    best = np.argmax(outcome.direction * pooled, axis=1)
    n = sample_size.get("bayesian") or sample_size.get("frequentist") or max(settings.n_grid)
    rows = []
    for i, d in enumerate(doses):
        _, new = effect_draws(result, outcome, d, settings.seed)
        prior = asr.DesignPrior(new, control_risk=nuisance_draws if outcome.binary else None,
                                sd=None if outcome.binary else nuisance_draws)
        row = asr.evaluate(trial, [n], prior.thinned(asr.ASSURANCE_DRAWS, rng), [])[0]
        rows.append({"dose": d, "prob_best": float((best == i).mean()), "n_per_arm": n,
                     "assurance_frequentist": row["assurance_frequentist"], "assurance_bayesian": row["assurance_bayesian"],
                     "extrapolated": not (low <= d <= high)})
    return pd.DataFrame(rows)

"""Which likelihood the mortality model uses: how sparse (zero- or all-event) studies enter.

``model.likelihood`` in a spec selects one of three ways to let a study's arms inform the
odds ratio (Jackson, Law, Stijnen, Viechtbauer & White, Stat Med 2018;37:1059 compare these
and other random-effects models for the odds ratio; Günhan, Röver & Friede, Res Synth
Methods 2020;11:74 study them with few studies and rare events):

``arm``
    ``logit p_control = a_j``, ``logit p_treated = a_j + theta_j``, with ``a_j`` under the
    baseline prior. The prior then holds the control arm's log-odds while the treated arm's
    can also move through ``theta_j``: an arm with no deaths (or only deaths) pulls the odds
    ratio one way even in a study with no events in either arm.
``symmetric``
    ``logit p_control = a_j - theta_j / 2``, ``logit p_treated = a_j + theta_j / 2`` (the
    coding of Jackson et al.'s model 4): both arms move with the effect, so a double-zero
    study pulls it neither way. With several treated arms (dose-response), the study's
    centre is the mean of its treated arms' effects, so every arm's log-odds is
    ``a_j + treated * effect_k - centre_j / 2``.
``conditional``
    Each study's deaths given its total deaths ``t``: the treated arms' deaths follow Fisher's
    non-central hypergeometric distribution with odds ratio ``exp(theta_j)`` (Stijnen, Hamza
    & Özdemir, Stat Med 2010;29:3046). No baselines enter, and a study with no deaths (or
    only deaths) has probability one whatever ``theta_j``: it drops out exactly. A partial
    report enters as the sum of this conditional probability over the configurations of
    deaths it allows. A total across a study's arms is then uninformative, as it should be:
    given the total, every split sums to one. Where the configurations differ in their total
    (a bound: Shi 2021's 0 or 1 death in 65), the conditional probabilities given different
    totals cannot simply be added (that sum, each configuration with weight one, is not a
    probability: it counts the configuration with one death in the cell arm, whose
    conditional probability rises with the odds ratio, as often as the one with no death at
    all, and so pulls the study's effect towards harm). Such a study's configurations are
    weighted by the probability of their total under the model instead, the study's baseline
    integrated over the baseline prior (symmetric coding: arms at ``a -/+ theta / 2``,
    ``a`` ~ the spec's baseline prior), which makes the sum the exact probability of the
    report, P(report | theta) = sum_c P(t_c | theta) P(d_c | t_c, theta): a proper mixture.
    That assumption on the baseline is the price of a bound; :func:`bound_weighting_check`
    shows how far the answer moves against the unweighted sum.

``model.baselines = "exchangeable"`` (arm and symmetric codings) replaces the independent
baseline priors by ``a_j = baseline_mean + baseline_sd * w_j``, ``w_j ~ N(0, 1)``: trials
borrow information from each other's control arms, so a trial's baseline is no longer
decided by its own control arm alone, and differences in control risk between trials can
leak into the effect (Jackson et al. 2018 discuss this for their models with random
baselines). ``baseline_mean`` takes the baseline prior; ``baseline_sd`` the
``baseline_heterogeneity`` prior (default Half-normal(1.0)).

For multi-arm studies all treated arms share ``theta_j`` (the pooled model), so the
conditional probability is that of the treated arms' total deaths given the study total:
``P(d | t) = prod_k C(n_k, d_k) psi^D1 / sum_u C(N1, u) C(N0, t - u) psi^u`` (Vandermonde's
identity collapses the within-group splits).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from itertools import product

import numpy as np

from .choices import BASELINES, DEFAULT_BASELINES, DEFAULT_LIKELIHOOD, LIKELIHOODS



def likelihood_of(model) -> tuple[str, str]:
    """(likelihood, baselines) of a spec's model settings (defaults for ``None``)."""
    return (getattr(model, "likelihood", DEFAULT_LIKELIHOOD) if model is not None else DEFAULT_LIKELIHOOD,
            getattr(model, "baselines", DEFAULT_BASELINES) if model is not None else DEFAULT_BASELINES)


def likelihood_problem(likelihood: str, baselines: str, dose_response: str) -> tuple[str, str]:
    """(setting, why) a combination of settings cannot be fitted; ("", "") when it can."""
    if likelihood not in LIKELIHOODS:
        return "likelihood", f"unknown likelihood {likelihood!r}; known: {', '.join(LIKELIHOODS)}"
    if baselines not in BASELINES:
        return "baselines", f"unknown baselines {baselines!r}; known: {', '.join(BASELINES)}"
    if likelihood == "conditional" and baselines != "independent":
        return "baselines", "the conditional likelihood has no baselines; baselines must be independent"
    if likelihood == "conditional" and dose_response != "none":
        return "likelihood", ("the conditional likelihood needs one effect per study (dose_response = none); "
                              "dose-response forms use the arm or symmetric likelihood")
    return "", ""


# -- arm and symmetric codings -------------------------------------------------------------


def arm_centre_weights(study_index, treated, n_studies: int) -> np.ndarray:
    """(study, arm) weights giving each study's mean treated-arm effect (symmetric coding)."""
    study_index = np.asarray(study_index, dtype=int)
    treated = np.asarray(treated, dtype=float)
    weights = np.zeros((n_studies, len(study_index)))
    weights[study_index, np.arange(len(study_index))] = treated
    totals = weights.sum(axis=1, keepdims=True)
    return np.divide(weights, totals, out=np.zeros_like(weights), where=totals > 0)


def coded_arm_logit(baseline_at_arm, treated, arm_effect, centre_at_arm, xp=np):
    """Each arm's log-odds: ``a + treated * effect - centre / 2`` (``centre`` 0: arm coding)."""
    return baseline_at_arm + treated * arm_effect - 0.5 * centre_at_arm


# -- the conditional likelihood ------------------------------------------------------------


@dataclass(frozen=True)
class ConditionalArrays:
    """Padded arrays of conditional-likelihood terms: O observations (studies), C
    configurations, U values of the treated total in the normalising sum.

    ``study`` (O,) is layout; ``const`` (O, C) holds ``log w + sum_k log C(n_k, d_k)``
    (-inf pads a configuration), ``treated_deaths`` (O, C) the treated total D1,
    ``norm_u`` and ``norm_log`` (O, C, U) the values u and ``log C(N1, u) + log C(N0, t - u)``
    of the normalising sum (-inf pads).
    """

    study: np.ndarray
    const: np.ndarray
    treated_deaths: np.ndarray
    norm_u: np.ndarray
    norm_log: np.ndarray


@dataclass(frozen=True)
class StudyConfiguration:
    """One complete assignment of deaths to a study's arms, as the conditional term sees it."""

    log_weight: float
    deaths: tuple[int, ...]
    n: tuple[int, ...]
    treated: tuple[int, ...]


def _log_choose(n, k) -> float:
    return math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)


def study_configurations(evidence) -> dict[int, list[StudyConfiguration]]:
    """Each study's joint configurations: its exact arm counts combined with every choice of
    configuration of each of its partial reports (weights add on the log scale)."""
    treated = evidence.arms["treated"].to_numpy(int)
    pieces: dict[int, list[list[tuple[float, tuple]]]] = {}
    study_of_arm = evidence.arms["study_index"].to_numpy(int)
    for row in evidence.exact.itertuples():
        arm = int(row.arm_index)
        pieces.setdefault(int(study_of_arm[arm]), []).append([(0.0, ((arm, int(row.deaths), int(row.n)),))])
    for report in evidence.partial:
        options = [(c.log_weight, tuple((a.arm_index, a.deaths, a.n) for a in c.counts)) for c in report.configurations]
        arm = report.configurations[0].counts[0].arm_index
        pieces.setdefault(int(study_of_arm[arm]), []).append(options)
    out: dict[int, list[StudyConfiguration]] = {}
    for study, parts in pieces.items():
        configs = []
        for choice in product(*parts):
            counts = [c for _, cs in choice for c in cs]
            configs.append(StudyConfiguration(
                sum(w for w, _ in choice), tuple(d for _, d, _ in counts), tuple(n for _, _, n in counts),
                tuple(int(treated[a]) for a, _, _ in counts)))
        out[study] = configs
    return out


def conditional_log_terms(config: StudyConfiguration) -> tuple[float, int, np.ndarray, np.ndarray]:
    """(log w + sum log C(n_k, d_k), D1, u values, log C(N1, u) + log C(N0, t - u))."""
    d = np.asarray(config.deaths)
    n = np.asarray(config.n)
    tr = np.asarray(config.treated, dtype=bool)
    n1, n0, t = int(n[tr].sum()), int(n[~tr].sum()), int(d.sum())
    const = config.log_weight + sum(_log_choose(int(a), int(b)) for a, b in zip(n, d))
    u = np.arange(max(0, t - n0), min(n1, t) + 1)
    norm = np.array([_log_choose(n1, int(x)) + _log_choose(n0, t - int(x)) for x in u])
    return const, int(d[tr].sum()), u.astype(float), norm


def design_norm_size(evidence, study: int) -> int:
    """Largest normalising sum a study's design allows, whatever its deaths: min(N1, N0) + 1
    over its allocations (fixes array shapes so simulated data never change them)."""
    configs = study_configurations(evidence)[study]
    return max(min(sum(n for n, t in zip(c.n, c.treated) if t), sum(n for n, t in zip(c.n, c.treated) if not t)) + 1
               for c in configs)


def pack_conditional(evidence, studies: list[int], n_conf: int = 1, n_norm: int = 1) -> ConditionalArrays:
    """Conditional terms of ``studies``, padded to at least ``n_conf`` configurations and
    ``n_norm`` normalising values (padding never changes a value)."""
    configs = study_configurations(evidence)
    terms = {s: [conditional_log_terms(c) for c in configs[s]] for s in studies}
    n_conf = max([n_conf, *(len(t) for t in terms.values())])
    n_norm = max([n_norm, *(len(u) for t in terms.values() for _, _, u, _ in t)])
    o = len(studies)
    const = np.full((o, n_conf), -np.inf)
    d1 = np.zeros((o, n_conf))
    u_arr = np.zeros((o, n_conf, n_norm))
    norm = np.full((o, n_conf, n_norm), -np.inf)
    norm[:, :, 0] = 0.0  # a padded configuration keeps a finite normaliser (no -inf - -inf)
    for i, s in enumerate(studies):
        for c, (k, d, u, lg) in enumerate(terms[s]):
            const[i, c], d1[i, c] = k, d
            norm[i, c, :] = -np.inf
            u_arr[i, c, :len(u)], norm[i, c, :len(u)] = u, lg
    return ConditionalArrays(np.asarray(studies, dtype="int64"), const, d1, u_arr, norm)


def conditional_logp(value, theta, const, treated_deaths, norm_u, norm_log):
    """log-likelihood per observation (pytensor; a CustomDist ``logp``). ``theta`` (O,) is
    each observation's study log odds ratio; ``value`` is a placeholder."""

    log_norm = _logsumexp(norm_log + norm_u * theta[:, None, None])
    per_config = const + treated_deaths * theta[:, None] - log_norm
    return _logsumexp(per_config) + 0.0 * value


def _logsumexp(x):
    """logsumexp over the last axis with the shift outside the gradient: the shift cancels
    exactly, and differentiating pytensor's max cost the compiled sampler ~5x per gradient."""
    import pytensor.tensor as pt
    from pytensor.gradient import disconnected_grad

    shift = disconnected_grad(pt.max(x, axis=-1, keepdims=True))
    return pt.log(pt.exp(x - shift).sum(axis=-1)) + shift[..., 0]


def conditional_logp_numpy(arrays: ConditionalArrays, theta: np.ndarray) -> np.ndarray:
    """The same quantity in numpy for draws ``theta`` (..., O)."""
    from scipy.special import logsumexp

    th = np.asarray(theta)[..., :, None]
    log_norm = logsumexp(arrays.norm_log + arrays.norm_u * th[..., None], axis=-1)
    return logsumexp(arrays.const + arrays.treated_deaths * th - log_norm, axis=-1)


BASELINE_NODES = 161  # the bounded study's baseline: a trapezoid grid over +-6 prior SDs


def baseline_nodes(prior) -> tuple[np.ndarray, np.ndarray]:
    """Nodes and log weights (summing to one) integrating over the baseline prior ``prior``
    (N(0, 2) when None): a trapezoid grid over its median +- 6 SDs. P(total | theta, a) is a
    smooth bump in ``a`` (SD about 1 / sqrt(total) on the log-odds scale), and the trapezoid
    rule on a uniform grid is accurate to ~1e-6 relative while the step stays under the
    bump's SD (step 0.15 for the default prior: totals up to ~40 deaths)."""
    from scipy.special import logsumexp

    from scipy import stats

    dist = prior.scipy() if prior is not None else stats.norm(0.0, 2.0)
    centre, spread = float(dist.median()), float(dist.std())
    nodes = np.linspace(centre - 6 * spread, centre + 6 * spread, BASELINE_NODES)
    log_w = dist.logpdf(nodes)
    log_w[[0, -1]] -= math.log(2)
    return nodes, log_w - logsumexp(log_w)


def total_arrays(evidence, studies: list[int], n_conf: int, baseline_prior=None) -> dict:
    """What weighting a study's configurations by the probability of their total needs:
    per configuration the treated and control sizes and the total ``t`` (O, C; zeros pad);
    per study whether its configurations differ in their total (``by_total``: 1.0, else 0.0,
    and the term is left out); the baseline's nodes and log weights (O, K)."""
    configs = study_configurations(evidence)
    o = len(studies)
    n1, n0, total = (np.zeros((o, n_conf)) for _ in range(3))
    by_total = np.zeros(o)
    for i, s in enumerate(studies):
        totals = set()
        for c, config in enumerate(configs[s]):
            tr = np.asarray(config.treated, dtype=bool)
            n = np.asarray(config.n)
            n1[i, c], n0[i, c], total[i, c] = n[tr].sum(), n[~tr].sum(), sum(config.deaths)
            totals.add(int(total[i, c]))
        by_total[i] = float(len(totals) > 1)
    nodes, log_w = baseline_nodes(baseline_prior)
    return {"n1": n1, "n0": n0, "total": total, "by_total": by_total,
            "alpha": np.tile(nodes, (o, 1)), "alpha_log_w": np.tile(log_w, (o, 1))}


def total_log_prob(theta, log_norm, n1, n0, total, alpha, alpha_log_w, xp=np):
    """log P(t_c | theta) per configuration, (O, C): the groups' binomials at ``a -/+ theta / 2``
    summed over the splits of t and integrated over the baseline's nodes. The sum over splits
    is the conditional likelihood's own normaliser: with l = logit p,
    sum_u C(N1, u) C(N0, t - u) p1^u q1^(N1-u) p0^(t-u) q0^(N0-t+u)
    = exp(log_norm(theta) + t l0 - N1 log(1 + e^l1) - N0 log(1 + e^l0)),
    so only the baseline integral is new. ``log_norm`` (O, C) = log sum_u C(N1, u) C(N0, t - u)
    e^(u theta); ``xp``: numpy (theta may carry leading draw axes), or pytensor.tensor."""
    if xp is np:
        from scipy.special import logsumexp

        th = np.asarray(theta)[..., :, None]
        l1, l0 = alpha + th / 2, alpha - th / 2  # (..., O, K)
        sp1, sp0 = np.logaddexp(0.0, l1), np.logaddexp(0.0, l0)
        inner = (alpha_log_w[:, None, :] + total[:, :, None] * l0[..., :, None, :]
                 - n1[:, :, None] * sp1[..., :, None, :] - n0[:, :, None] * sp0[..., :, None, :])
        return log_norm + logsumexp(inner, axis=-1)
    th = theta[:, None]
    l1, l0 = alpha + th / 2, alpha - th / 2
    inner = (alpha_log_w[:, None, :] + total[:, :, None] * l0[:, None, :]
             - n1[:, :, None] * xp.softplus(l1)[:, None, :] - n0[:, :, None] * xp.softplus(l0)[:, None, :])
    return log_norm + _logsumexp(inner)


def conditional_bounded_logp(value, theta, const, treated_deaths, norm_u, norm_log, n1, n0, total, by_total,
                             alpha, alpha_log_w):
    """:func:`conditional_logp` with each configuration weighted by the probability of its
    total where a study's configurations differ in their total (``by_total``; see the
    module docstring). pytensor; a CustomDist ``logp``."""
    import pytensor.tensor as pt

    log_norm = _logsumexp(norm_log + norm_u * theta[:, None, None])
    per_config = const + treated_deaths * theta[:, None] - log_norm
    weight = total_log_prob(theta, log_norm, n1, n0, total, alpha, alpha_log_w, xp=pt)
    return _logsumexp(per_config + by_total[:, None] * weight) + 0.0 * value


def conditional_bounded_logp_numpy(values: dict, prefix: str, theta: np.ndarray, *, weighted: bool = True) -> np.ndarray:
    """Numpy twin of :func:`conditional_bounded_logp` for draws ``theta`` (..., O);
    ``weighted=False``: every configuration with weight one (the unweighted sum)."""
    from scipy.special import logsumexp

    arrays = conditional_arrays(values, prefix)
    th = np.asarray(theta)
    log_norm = logsumexp(arrays.norm_log + arrays.norm_u * th[..., :, None, None], axis=-1)
    per_config = arrays.const + arrays.treated_deaths * th[..., :, None] - log_norm
    if weighted and f"{prefix}_by_total" in values:
        v = {k: values[f"{prefix}_{k}"] for k in ("n1", "n0", "total", "by_total", "alpha", "alpha_log_w")}
        weight = total_log_prob(th, log_norm, v["n1"], v["n0"], v["total"], v["alpha"], v["alpha_log_w"])
        per_config = per_config + v["by_total"][:, None] * weight
    return logsumexp(per_config, axis=-1)


def conditional_values(evidence, n_conf: int = 1, baseline_prior=None) -> tuple[dict, dict]:
    """Model data and coords of the conditional likelihood: studies reported exactly in one
    term (``deaths``), studies with a partial report in another (``deaths_partial``).
    Normalising sums are padded to what each design allows, so data simulated on the same
    design keep every shape."""
    configs = study_configurations(evidence)
    partial_studies = sorted({int(evidence.arms["study_index"].iloc[r.configurations[0].counts[0].arm_index])
                              for r in evidence.partial})
    exact_studies = [s for s in sorted(configs) if s not in partial_studies]
    values, coords = {}, {}
    for prefix, studies, conf in (("cond", exact_studies, 1), ("cond_partial", partial_studies, n_conf)):
        if not studies:
            continue
        size = max(design_norm_size(evidence, s) for s in studies)
        arrays = pack_conditional(evidence, studies, conf, size)
        values.update({f"{prefix}_study": arrays.study, f"{prefix}_const": arrays.const,
                       f"{prefix}_treated_deaths": arrays.treated_deaths, f"{prefix}_u": arrays.norm_u,
                       f"{prefix}_norm": arrays.norm_log})
        if prefix == "cond_partial":  # a bound's configurations differ in their total
            extra = total_arrays(evidence, studies, arrays.const.shape[1], baseline_prior)
            values.update({f"{prefix}_{k}": v for k, v in extra.items()})
        dim = "exact_report" if prefix == "cond" else "partial_report"
        coords[dim] = tuple(f"{evidence.studies[s]}/study total" for s in studies)
    return values, coords


def pad_conditional(inputs, n_conf: int):
    """Pad the partial-report conditional terms of model inputs to ``n_conf`` configurations
    (so every simulated replicate shares one compiled model)."""
    from dataclasses import replace

    v = dict(inputs.values)
    if "cond_partial_const" not in v or v["cond_partial_const"].shape[1] >= n_conf:
        return inputs
    extra = n_conf - v["cond_partial_const"].shape[1]
    v["cond_partial_const"] = np.pad(v["cond_partial_const"], ((0, 0), (0, extra)), constant_values=-np.inf)
    v["cond_partial_treated_deaths"] = np.pad(v["cond_partial_treated_deaths"], ((0, 0), (0, extra)))
    v["cond_partial_u"] = np.pad(v["cond_partial_u"], ((0, 0), (0, extra), (0, 0)))
    norm = np.full((v["cond_partial_norm"].shape[0], extra, v["cond_partial_norm"].shape[2]), -np.inf)
    norm[:, :, 0] = 0.0
    v["cond_partial_norm"] = np.concatenate([v["cond_partial_norm"], norm], axis=1)
    for name in ("cond_partial_n1", "cond_partial_n0", "cond_partial_total"):
        if name in v:
            v[name] = np.pad(v[name], ((0, 0), (0, extra)))
    return replace(inputs, values=v)


def conditional_arrays(values: dict, prefix: str) -> ConditionalArrays:
    return ConditionalArrays(values[f"{prefix}_study"], values[f"{prefix}_const"], values[f"{prefix}_treated_deaths"],
                             values[f"{prefix}_u"], values[f"{prefix}_norm"])


# -- registers in which the data cannot inform the odds ratio ------------------------------


def uninformative_studies(evidence) -> dict[str, str]:
    """Included studies whose reports allow only no deaths, or only deaths, in every arm:
    study id -> "no deaths" / "all patients died". Such a study has no within-study contrast
    (its conditional likelihood is exactly 1)."""
    out = {}
    for study, configs in study_configurations(evidence).items():
        if all(d == 0 for c in configs for d in c.deaths):
            out[evidence.studies[study]] = "no deaths"
        elif all(d == n for c in configs for d, n in zip(c.deaths, c.n)):
            out[evidence.studies[study]] = "all patients died"
    return out


def sparse_data_warning(evidence) -> str:
    """A warning when no included study has a death and a survivor: the data then say
    nothing about the odds ratio and P(benefit) is the prior's ("" otherwise). The CLI
    prints it; a report shows it next to the headline."""
    flat = uninformative_studies(evidence)
    if not evidence.studies or len(flat) < len(evidence.studies):
        return ""
    named = ", ".join(f"{s} ({why})" for s, why in flat.items())
    return ("no included study has both a death and a survivor, so the data carry no information on the "
            f"odds ratio: P(OR < 1) and the pooled OR reflect the priors (and, in the arm coding, the baseline "
            f"prior) alone. Studies: {named}.")


def baseline_prior_target(likelihood: str, baselines: str = "independent") -> str:
    """What the baseline prior is a prior on, in the coding of ``likelihood``: the arm
    coding's baseline is the control arm's log-odds, the symmetric coding's the midpoint of
    the control arm's and the cell arms' log-odds; exchangeable baselines put it on their mean;
    the conditional likelihood has no baselines."""
    if likelihood == "conditional":
        return "no trial baseline (the conditional likelihood has none; this prior is not used)"
    what = ("the midpoint of its control-arm and cell-arm log-odds (symmetric coding; with several cell arms, of the "
            "control arm and the cell arms' mean)" if likelihood == "symmetric" else
            "its control-arm log-odds (arm coding)")
    if baselines == "exchangeable":
        return f"the mean m of the trials' baselines α_j = m + s w_j, each α_j {what}"
    return f"each trial's baseline α_j, {what}"


def likelihood_methods_text(likelihood: str, baselines: str = "independent") -> str:
    """The methods sentence saying how the arms enter (the report quotes it)."""
    effect = ("θ_j = μ + τ z_j, z_j ~ Normal(0, 1), the trial's log odds ratio (all cell arms of a trial share θ_j)")
    if likelihood == "conditional":
        return ("All-cause mortality was synthesised in a Bayesian random-effects meta-analysis with the conditional "
                "likelihood: given trial j's total deaths, the deaths in its cell arms follow Fisher's non-central "
                f"hypergeometric distribution with odds ratio exp(θ_j), {effect} (Stijnen, Hamza & Özdemir, Stat Med "
                "2010;29:3046). No trial baselines enter, so a trial with no deaths, or only deaths, contributes "
                "nothing; a partly reported count entered as the sum of this probability over the configurations "
                "of deaths it allows, each weighted, where the configurations differ in their total (a bound), by the "
                "probability of its total with the trial's baseline integrated over the baseline prior (so the sum is "
                "the probability of the report); no continuity corrections were applied.")
    coding = ("logit p_jk = α_j + (c_jk − ½) θ_j, with c_jk = 1 for cell arms and 0 for control arms (the symmetric "
              "coding: both arms move by half the effect, so a trial without deaths pulls the odds ratio neither way; "
              "Jackson et al., Stat Med 2018;37:1059)" if likelihood == "symmetric" else
              "logit p_jk = α_j + c_jk θ_j, with c_jk = 1 for cell arms and 0 for control arms")
    prior = ("Trial baselines α_j have independent priors, so only within-trial contrasts inform the treatment "
             "effect" if baselines == "independent" else
             "Trial baselines are exchangeable, α_j = m + s w_j, w_j ~ Normal(0, 1): trials borrow information from "
             "each other's control arms, so between-trial differences in control risk can inform the effect")
    return ("All-cause mortality was synthesised in a Bayesian random-effects meta-analysis with an arm-based "
            f"binomial likelihood: deaths in arm k of trial j ~ Binomial(n_jk, p_jk), {coding}, {effect}. {prior}; "
            "no continuity corrections were applied.")

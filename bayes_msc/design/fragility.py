"""How fragile is today's conclusion?

Two questions, for each stated conclusion "P(effect favours cells beyond c) > q":

1. **Deaths.** The smallest change in the death count of ONE report — an arm's exact count,
   the bounds of a bounded report (shifted together: a bound stays a bound), or the total of
   a total-across-arms report — within what that report allows (0..n), that moves the
   probability across q. Which study and arm. This is Walsh et al.'s (2014) fragility index
   carried over to the Bayesian answer and to partly reported counts.
2. **A future null trial.** The smallest two-arm trial (n per arm) observing exactly no
   effect (OR = 1, or a zero difference) that would move the probability across q.

Each candidate change is evaluated by importance reweighting of the fitted posterior draws
(weights = likelihood of the changed data over the original; Gelfand, Dey & Chang 1992),
which needs no refit. The change found is then checked by a real refit through the compiled
model (same shapes: nutpie's ``with_data``, no recompilation) and both numbers are shown, each
with its Monte Carlo standard error; where they differ by more than 2 MCSE of their
difference, the refit is the number reported (reweighting can be optimistic when the changed
data sit in the tail of the fitted posterior).
A null trial enters as one more study with a normal likelihood on its log OR (or mean
difference): integrating its own random effect out, its weight per draw is
N(0 | pooled effect, tau^2 + s^2) with s its standard error.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy import special, stats

from ..decisions import reweighted_mcse
from ..evidence.mortality import ArmCount, Configuration, PartialReport, compositions


@dataclass(frozen=True)
class Candidate:
    """One report whose death count may change: ``current`` within [``low``, ``high``]."""

    key: str  # "exact:<row>" or "partial:<index>"
    study_id: str
    arm: str
    current: int
    low: int
    high: int
    kind: str  # exact | bounded | total


@dataclass(frozen=True)
class Change:
    candidate: Candidate
    new_value: int
    prob: float

    @property
    def size(self) -> int:
        return abs(self.new_value - self.candidate.current)


def search(candidates: Sequence[Candidate], prob: Callable[[Candidate, int], float], base: float,
           threshold: float) -> Change | None:
    """The smallest single-report change that moves ``prob`` across ``threshold``.

    Scans each report outwards (1, 2, ... deaths, both directions) and stops a direction at
    its first crossing; stops scanning sizes larger than the best change found so far. Ties
    go to the change that moves the probability furthest. ``base`` is the probability on the
    data as reported; crossing means ending on the other side of ``threshold``.
    """
    above = base > threshold
    best: Change | None = None
    for cand in candidates:
        for sign in (1, -1):
            k = 1
            while True:
                value = cand.current + sign * k
                if value < cand.low or value > cand.high or (best is not None and k > best.size):
                    break
                p = prob(cand, value)
                if (p > threshold) != above:
                    change = Change(cand, value, p)
                    if best is None or k < best.size or abs(p - base) > abs(best.prob - base):
                        best = change
                    break
                k += 1
    return best


# -- the mortality register as candidates ---------------------------------------------------


def candidates(evidence) -> list[Candidate]:
    out = []
    for i, row in evidence.exact.reset_index(drop=True).iterrows():
        if row["n"] > 0:
            out.append(Candidate(f"exact:{i}", row["study_id"], row["arm_id"], int(row["deaths"]), 0, int(row["n"]), "exact"))
    for j, report in enumerate(evidence.partial):
        counts = [sum(c.deaths for c in config.counts) for config in report.configurations]
        sizes = [sum(c.n for c in config.counts) for config in report.configurations]
        low, high = min(counts), max(counts)
        if report.kind == "bounded":  # shifted together, inside 0..n
            out.append(Candidate(f"partial:{j}", report.study_id, "+".join(report.arms), low, 0,
                                 low + (min(sizes) - high), "bounded"))
        else:
            out.append(Candidate(f"partial:{j}", report.study_id, "+".join(report.arms), low, 0, min(sizes), "total"))
    return out


def changed_report(report: PartialReport, kind: str, current: int, value: int) -> PartialReport:
    """A partial report with its deaths moved from ``current`` to ``value`` (bounds shifted
    together; a total re-split over every allocation the design allows)."""
    if kind == "bounded":
        shift = value - current
        configs = tuple(Configuration(c.log_weight, tuple(ArmCount(a.arm_index, a.deaths + shift, a.n) for a in c.counts))
                        for c in report.configurations)
        return replace(report, configurations=configs)
    allocations = list(dict.fromkeys(tuple((a.arm_index, a.n) for a in c.counts) for c in report.configurations))
    log_w = -math.log(len(allocations))
    configs = tuple(
        Configuration(log_w, tuple(ArmCount(arm, d, n) for (arm, n), d in zip(allocation, deaths)))
        for allocation in allocations
        for deaths in compositions(value, [n for _, n in allocation])
    )
    return replace(report, configurations=configs)


def changed_evidence(evidence, cand: Candidate, value: int):
    """The evidence with one report's deaths changed (a new object; the original is kept)."""
    kind, _, index = cand.key.partition(":")
    index = int(index)
    if kind == "exact":
        exact = evidence.exact.copy().reset_index(drop=True)
        exact.loc[index, "deaths"] = value
        return replace(evidence, exact=exact)
    partial = list(evidence.partial)
    partial[index] = changed_report(partial[index], cand.kind, cand.current, value)
    return replace(evidence, partial=tuple(partial))


class Reweighter:
    """Importance weights of the fitted draws for changed death counts."""

    def __init__(self, result, effect_draws: np.ndarray):
        from ..models.mortality import arm_logit_draws

        parts = result.outcome
        self.evidence = result.evidence
        self.inputs = parts.make_inputs(result.evidence, result.spec.priors, result.spec.model)
        self.logit = arm_logit_draws(result.posterior, self.inputs).reshape(-1, len(self.evidence.arms))
        self.effect = np.asarray(effect_draws).ravel()

    def _partial_loglik(self, report: PartialReport) -> np.ndarray:
        from ..models.likelihood import pack_partial_reports, partial_report_logp_numpy

        return partial_report_logp_numpy(pack_partial_reports((report,)), self.logit)[..., 0]

    def log_weights(self, cand: Candidate, value: int) -> np.ndarray:
        kind, _, index = cand.key.partition(":")
        index = int(index)
        if kind == "exact":
            row = self.evidence.exact.reset_index(drop=True).loc[index]
            p = special.expit(self.logit[:, int(row["arm_index"])])
            return stats.binom.logpmf(value, int(row["n"]), p) - stats.binom.logpmf(int(row["deaths"]), int(row["n"]), p)
        report = self.evidence.partial[index]
        new = changed_report(report, cand.kind, cand.current, value)
        return self._partial_loglik(new) - self._partial_loglik(report)

    def prob(self, cand: Candidate, value: int, event: np.ndarray) -> tuple[float, float]:
        """Reweighted P(event) and the weights' effective sample size (Kish)."""
        lw = self.log_weights(cand, value)
        w = np.exp(lw - lw.max())
        return float((w * event).sum() / w.sum()), float(w.sum() ** 2 / (w**2).sum())

    def mcse(self, cand: Candidate, value: int, event: np.ndarray, relative_efficiency: float = 1.0) -> float:
        """MCSE of the reweighted P(event): see :func:`reweighted_mcse`."""
        return reweighted_mcse(self.log_weights(cand, value), event, relative_efficiency)


def reported_after(prob_reweighted: float, mcse_reweighted: float, prob_refit: float | None,
                   mcse_refit: float | None) -> tuple[float, str]:
    """The probability after the change that is printed, and where it came from: the refit
    where it and the reweighted value differ by more than 2 MCSE of their difference, else
    the reweighted value (the refit is shown beside it either way)."""
    if prob_refit is None:
        return prob_reweighted, "reweighted"
    spread = math.hypot(mcse_reweighted, mcse_refit or 0.0)
    if abs(prob_reweighted - prob_refit) > 2 * spread:
        return prob_refit, "refit"
    return prob_reweighted, "reweighted"


@dataclass(frozen=True)
class Conclusion:
    """P(effect favours cells beyond ``threshold``) compared with ``prob``."""

    threshold: float  # on the effect scale
    prob: float
    label: str


def death_fragility(result, outcome, conclusions: Sequence[Conclusion], *, refit: bool = True) -> list[dict]:
    """For each conclusion: the smallest single-report change in deaths that flips it, by
    importance reweighting, checked by a refit when the change keeps the model's shapes."""
    from ..decisions import probability

    effect_da = result.posterior[outcome.effect_var]
    effect = effect_da.values.ravel()
    weigher = Reweighter(result, effect)
    cands = candidates(result.evidence)
    rows = []
    for conclusion in conclusions:
        event = outcome.favours(effect, conclusion.threshold)
        base_prob = probability(outcome.favours(effect_da, conclusion.threshold))
        base = float(event.mean())
        # the draws' autocorrelation, read off the indicator's own MCSE against its iid value
        iid = math.sqrt(base * (1 - base) / len(event)) if 0 < base < 1 else 0.0
        efficiency = (iid / base_prob.mcse) ** 2 if base_prob.mcse > 0 else 1.0
        cache: dict = {}

        def prob(cand, value):
            key = (cand.key, value)
            if key not in cache:
                cache[key] = weigher.prob(cand, value, event)
            return cache[key][0]

        found = search(cands, prob, base, conclusion.prob)
        row = {"conclusion": conclusion.label, "threshold": conclusion.threshold, "prob_threshold": conclusion.prob,
               "prob_reported": base, "holds": base > conclusion.prob}
        if found is None:
            row.update(change=None, text="no change in one report's deaths within what it allows crosses it")
            rows.append(row)
            continue
        cand = found.candidate
        row.update(
            change=found.new_value - cand.current, study_id=cand.study_id, arm=cand.arm, kind=cand.kind,
            deaths_reported=cand.current, deaths_changed=found.new_value, prob_reweighted=found.prob,
            mcse_reweighted=weigher.mcse(cand, found.new_value, event, efficiency),
            weights_ess=cache[(cand.key, found.new_value)][1],
        )
        refitted = _refit_prob(result, outcome, cand, found.new_value, conclusion) if refit else None
        row["prob_refit"] = None if refitted is None else refitted.prob
        row["mcse_refit"] = None if refitted is None else refitted.mcse
        row["prob_after"], row["prob_after_from"] = reported_after(
            row["prob_reweighted"], row["mcse_reweighted"], row["prob_refit"], row["mcse_refit"])
        row["flips"] = (row["prob_after"] > conclusion.prob) != row["holds"]
        rows.append(row)
    return rows


def _refit_prob(result, outcome, cand: Candidate, value: int, conclusion: Conclusion):
    """P (with its MCSE) after a real refit with the changed report (None when the change
    alters shapes, e.g. a total re-split over a different number of configurations: that
    would compile)."""
    from ..api import fit_spec
    from ..decisions import probability

    changed = changed_evidence(result.evidence, cand, value)
    parts = result.outcome
    old = parts.make_inputs(result.evidence, result.spec.priors, result.spec.model)
    new = parts.make_inputs(changed, result.spec.priors, result.spec.model)
    if old.structure_key() != new.structure_key():
        return None
    refit = fit_spec(result.spec, evidence=changed)
    return probability(outcome.favours(refit.posterior[outcome.effect_var], conclusion.threshold))


# -- a future null trial ------------------------------------------------------------------


def null_trial_fragility(effect: np.ndarray, tau: np.ndarray, outcome, conclusions: Sequence[Conclusion],
                         unit_variance: float, *, max_n: int = 1_000_000) -> list[dict]:
    """Smallest n per arm of a trial observing exactly no effect that flips each conclusion.

    ``unit_variance``: the variance of the trial's estimate times n (deaths: 1/(p0 q0) +
    1/(p0 q0) at OR = 1; continuous: 2 sd^2). P(n) is found by importance reweighting; n is
    located on a doubling grid and then by bisection. If even ``max_n`` does not flip it,
    the limit (a null trial of infinite size) is reported: it cannot pull the pooled effect
    further than the heterogeneity allows.
    """
    effect = np.asarray(effect).ravel()
    tau = np.asarray(tau).ravel()

    def prob(n: float, event) -> float:
        s2 = unit_variance / n
        lw = stats.norm.logpdf(outcome.null_effect, effect, np.sqrt(tau**2 + s2))
        w = np.exp(lw - lw.max())
        return float((w * event).sum() / w.sum())

    rows = []
    for conclusion in conclusions:
        event = outcome.favours(effect, conclusion.threshold)
        base = float(event.mean())
        row = {"conclusion": conclusion.label, "prob_reported": base, "prob_threshold": conclusion.prob, "n_per_arm": None}
        if base <= conclusion.prob:
            row["text"] = "the conclusion does not hold now; a null trial can only lower the probability further"
            rows.append(row)
            continue
        n = 2
        while n <= max_n and prob(n, event) > conclusion.prob:
            n *= 2
        if n > max_n:
            limit = prob(1e12, event)
            row.update(prob_limit=limit, text=f"no null trial of any size flips it (limit P = {limit:.3f})")
            rows.append(row)
            continue
        low, high = n // 2, n
        while high - low > 1:
            mid = (low + high) // 2
            if prob(mid, event) > conclusion.prob:
                low = mid
            else:
                high = mid
        row.update(n_per_arm=high, prob_after=prob(high, event), text=f"a null trial of {high} per arm flips it")
        rows.append(row)
    return rows

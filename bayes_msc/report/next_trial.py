"""The report's "The next trial" section, from a :class:`bayes_msc.design.DesignResult`.

Shown when the report is given a design (``python -m bayes_msc report mortality --design``);
every string goes through the escaping helpers of :mod:`.html`, the plot is inline SVG and
its numbers are printed as a table beside it.
"""

from __future__ import annotations

from . import figures
from .html import Markup, el, figure, fmt, join, para, pct, table
from ..design.text import robust_weighs

LINES = (  # (column, label, colour, dash)
    ("assurance_frequentist", "assurance, test", figures.SHRUNK, "-"),
    ("assurance_bayesian", "assurance, Bayesian rule", figures.PREDICTIVE, "-"),
    ("frequentist|posterior median", "power at posterior median, test", figures.SHRUNK, "--"),
    ("bayesian|posterior median", "power at posterior median, Bayesian", figures.PREDICTIVE, "--"),
    ("frequentist|no effect", "type I error, test", figures.SHRUNK, ":"),
    ("bayesian|no effect", "type I error, Bayesian", figures.PREDICTIVE, ":"),
)


def assurance_plot(d):
    """Assurance, power at the posterior median and type I error against n per arm."""
    import matplotlib

    t = d.table
    with matplotlib.rc_context(figures._RC):
        fig = figures._figure(8.5, 3.8)
        ax = fig.add_subplot()
        for column, label, colour, dash in LINES:
            ax.plot(t["n_per_arm"], t[column], dash, color=colour, lw=1.6, marker="o", ms=3, label=label)
        ax.axhline(d.settings.target, color=figures.MUTED, lw=0.8)
        ax.axhline(d.sample_size["ceiling"], color=figures.MUTED, lw=0.8, ls="-.")
        ax.set_ylim(0, 1)
        ax.set_xlabel("patients per arm")
        ax.set_ylabel("probability of success")
        fig.legend(frameon=False, fontsize=8, ncols=3, loc="outside lower center")
        return fig


def _effect(d, value: float) -> str:
    return fmt(d.outcome.show(value), ".3g")


def next_trial_section(ctx) -> Markup | None:
    d = getattr(ctx, "design", None)
    if d is None:
        return None
    o = d.outcome
    fit = d.map_fit
    parts = [para(
        "What today's evidence implies for the next two-arm trial. The meta-analytic-predictive (MAP) prior is the "
        f"posterior predictive distribution of a new trial's effect ({'log odds ratio' if o.binary else 'difference'}), "
        f"approximated by a mixture of {fit.mixture.n_components} normal(s) fitted by EM to the MCMC draws (number of "
        f"components by {fit.criterion}) and robustified with a vague component of weight {d.settings.robust_weight:g} "
        "centred on no effect (Schmidli et al. 2014). Simulated trials are analysed in closed form: deaths by exact "
        "binomial enumeration of every outcome; the Bayesian analysis by the conjugate update of the mixture with the "
        "trial's normal approximate likelihood, or, for deaths in small trials where that approximation matters, with "
        "the exact binomial likelihood by quadrature.")]
    names = [f"component {i + 1}" for i in range(fit.mixture.n_components)] + ["robust"]
    rows = [(name, fmt(w, ".3f"), fmt(m, ".3f"), fmt(s, ".3f"), _effect(d, m) if o.binary else "")
            for name, w, m, s in zip(names, *d.robust_prior.arrays())]
    parts.append(table(("Component", "Weight", "Mean", "SD", "OR at mean" if o.binary else ""), rows,
                       numeric=(1, 2, 3, 4),
                       caption=f"Robust MAP prior on the {'log-OR' if o.binary else 'difference'} scale. ESS (ELIR, "
                               f"Neuenschwander et al. 2020, at constant information 1/σ², σ = "
                               f"{fmt(d.ess['sigma'], '.3f')} as exported: RBesT's definition; {d.ess['unit']}): MAP "
                               f"{fmt(d.ess['map'], '.1f')}, robust {fmt(d.ess['robust'], '.1f')}"
                               + (f"; θ-dependent ELIR (binomial information at {d.ess['at']}): MAP "
                                  f"{fmt(d.ess['theta_dependent']['map'], '.1f')}, robust "
                                  f"{fmt(d.ess['theta_dependent']['robust'], '.1f')}" if d.ess.get("theta_dependent") else "")
                               + f". The robust component: {robust_weighs(d)}."))
    qrows = [(pct(q["prob"], 1), fmt(q["draws"], ".3f"), fmt(q["mixture"], ".3f")) for q in fit.quantiles]
    parts.append(table(("Quantile", "MCMC draws", "Mixture"), qrows, numeric=(1, 2),
                       caption=f"How well the mixture reproduces the draws: Kolmogorov-Smirnov distance "
                               f"{fmt(fit.ks_distance, '.4f')}."))
    nu = d.nuisance
    spread = (f"; median {fmt(nu['median'], '.3g')} (95% {fmt(nu['lower_95'], '.3g')} to {fmt(nu['upper_95'], '.3g')}"
              + (f"; below 5% in {pct(nu['share_below_5_percent'])} of new trials" if "share_below_5_percent" in nu else "")
              + ")" if nu["lower_95"] != nu["upper_95"] else "")
    parts.append(para(f"{nu['name'][0].upper() + nu['name'][1:]}: {nu['how']}{spread}. Analyses: a "
                      f"{d.test_text} (success: significant and favouring cells), and the Bayesian rule "
                      f"{d.rule_text} with the robust MAP prior. Assurance averages the probability of success over the "
                      "predictive distribution of the new trial's effect and of the "
                      f"{nu['name']}; power and type I error are at fixed truths with the {nu['name']} at its median."))
    labels = {s["label"]: s["effect"] for s in d.scenarios}
    svg = figures.to_svg(assurance_plot(d), "assurance")
    rows = []
    for r in d.table.to_dict(orient="records"):
        rows.append((r["n_per_arm"], pct(r["assurance_frequentist"]), pct(r["assurance_bayesian"]),
                     *(f"{pct(r[f'frequentist|{lab}'])} / {pct(r[f'bayesian|{lab}'])}" for lab in labels)))
    heads = ("n per arm", "Assurance, test", "Assurance, Bayesian",
             *(f"P(success) at {o.effect_label} {fmt(v, '.3g')} ({lab}), test / Bayesian" for lab, v in labels.items()))
    data = table(heads, rows, numeric=tuple(range(len(heads))),
                 caption="At no effect the probability of success is the type I error (one-sided: success needs the "
                         "effect to favour cells).")
    parts.append(figure(svg, caption="Assurance, power at the posterior median and type I error by sample size. "
                                     "Grey lines: the target assurance and the ceiling no sample size can pass.",
                        alt="Assurance and power against patients per arm", data=data, fig_id="fig-assurance"))
    if d.approximation:
        arows = [(r["n_per_arm"], fmt(r["prob_decisions_differ"], ".3f"), pct(r["assurance_normal_approximation"]),
                  pct(r["assurance_exact_binomial"])) for r in d.approximation]
        parts.append(table(("n per arm", "P(decisions differ)", "Assurance, normal approximation",
                            "Assurance, exact binomial"), arows, numeric=(0, 1, 2, 3),
                           caption="Where the normal approximation matters: in trials this small the Bayesian "
                                   "analysis above uses the exact binomial likelihood (quadrature over the control "
                                   "log-odds); above them, the normal approximation of the log OR."))
    ss = d.sample_size
    largest = max(d.table["n_per_arm"])

    def n_text(n):
        return f"{n} per arm" if n else f"not reached by {largest} per arm"

    parts.append(para(
        f"Sample size for {pct(ss['target'], 0)} assurance: test {n_text(ss['frequentist'])}, Bayesian "
        f"{n_text(ss['bayesian'])}. For {pct(ss['target'], 0)} power at the posterior median: test "
        f"{n_text(ss['frequentist_power_at_median'])}, Bayesian {n_text(ss['bayesian_power_at_median'])}. "
        f"Assurance cannot exceed P(the new trial's effect favours cells) = {fmt(ss['ceiling'], '.3f')}."))
    if d.dose is not None:
        drows = [(fmt(r["dose"], "g"), fmt(r["prob_best"], ".3f"), r["n_per_arm"], pct(r["assurance_frequentist"]),
                  pct(r["assurance_bayesian"])) for r in d.dose.to_dict(orient="records")]
        parts.append(table(("Dose (×10⁶ cells/kg)", "P(best of these)", "n per arm", "Assurance, test",
                            "Assurance, Bayesian"), drows, numeric=(1, 2, 3, 4),
                           caption="Candidate doses inside the studied range: the probability that each is the best "
                                   "of them, and the assurance of a trial at that dose."))
    parts.append(el("h3", "How fragile is today's conclusion?"))
    frows = []
    for r in d.fragility:
        if r.get("change") is None:
            frows.append((r["conclusion"], fmt(r["prob_reported"], ".3f"), r.get("text", ""), "–", "–"))
            continue
        change = (f"{abs(r['change'])} death{'s' if abs(r['change']) != 1 else ''} {'more' if r['change'] > 0 else 'fewer'} "
                  f"in {r['study_id']} {r['arm']} ({r['deaths_reported']} → {r['deaths_changed']}, {r['kind']} report)")
        refit = (f"{fmt(r['prob_refit'], '.3f')} ± {fmt(r['mcse_refit'], '.3f')}" if r["prob_refit"] is not None
                 else "not refitted")
        frows.append((r["conclusion"], fmt(r["prob_reported"], ".3f"), change,
                      f"{fmt(r['prob_after'], '.3f')} ({r['prob_after_from']})",
                      f"{fmt(r['prob_reweighted'], '.3f')} ± {fmt(r['mcse_reweighted'], '.3f')}", refit))
    if frows:
        parts.append(table(("Conclusion", "Now", "Smallest change that flips it", "After", "Reweighted ± MCSE",
                            "Refit ± MCSE"),
                           frows, numeric=(1, 3, 4, 5),
                           caption="One report's deaths changed within what the report allows (bounds move together "
                                   "and stay bounds; a total is re-split over the allowed allocations). “After” is "
                                   "the refit where the reweighted value differs from it by more than 2 MCSE, else "
                                   "the reweighted value."))
    nrows = [(r["conclusion"], r["text"]) for r in d.null_trial]
    parts.append(table(("Conclusion", "Smallest future trial observing no effect that flips it"), nrows))
    for note in d.notes:
        parts.append(para(note, class_="note"))
    return Markup(join(parts))


__all__ = ["next_trial_section", "assurance_plot"]

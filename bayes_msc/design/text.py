"""The design result as terminal text (what ``python -m bayes_msc design`` prints)."""

from __future__ import annotations


def _pct(x) -> str:
    return "  -  " if x is None else f"{100 * x:5.1f}%"


def fragility_after(row: dict) -> str:
    """The probability after the change: the refit where it and the reweighted value differ
    by more than 2 MCSE, with the other beside it; and whether the refit flips it."""
    rw = f"{row['prob_reweighted']:.3f} reweighted (MCSE {row['mcse_reweighted']:.3f}, weights' ESS {row['weights_ess']:.0f})"
    if row.get("prob_refit") is None:
        return f"{rw}; not refitted (the change alters the model's shapes)"
    refit = f"{row['prob_refit']:.3f} refitted (MCSE {row['mcse_refit']:.3f})"
    if row.get("prob_after_from") == "refit":
        text = f"{refit}; reweighting gave {rw}, more than 2 MCSE away"
    else:
        text = f"{rw}; {refit}"
    if not row.get("flips", True):
        text += "; the refit does not cross the threshold, so the smallest change may be larger"
    return text


def robust_weighs(d) -> str:
    """What the vague component weighs, in patients per arm, under each ESS definition."""
    text = f"it weighs {d.ess['robust_component']:.1f} patient(s) per arm at constant information (unit information)"
    theta = d.ess.get("theta_dependent")
    if theta:
        text += f", {theta['robust_component']:.1f} by the theta-dependent ELIR"
    return text


def render_design(d) -> str:
    o = d.outcome
    lines = []
    scale = "log odds ratio" if o.binary else f"difference ({o.unit})" if o.unit else "difference"
    fit = d.map_fit
    lines.append(f"The next trial ({o.name}; effect on the {scale} scale)")
    if o.on_risk_scale:
        lines.append(f"  read as the {o.stated_as.label()} (model.effect_measure): the rule, the fixed truths and the "
                     "conclusions below")
    lines.append("")
    lines.append(f"MAP prior of the new trial's effect: mixture of {fit.mixture.n_components} normal(s), "
                 f"chosen by {fit.criterion} among 1-{max(fit.scores)} components")
    lines.append(f"  {'component':<10} {'weight':>7} {'mean':>9} {'sd':>8}")
    names = [f"comp{i + 1}" for i in range(fit.mixture.n_components)] + ["robust"]
    for name, w, m, s in zip(names, *d.robust_prior.arrays()):
        lines.append(f"  {name:<10} {w:7.3f} {m:9.3f} {s:8.3f}")
    lines.append(f"  robust component: weight {d.settings.robust_weight:g}, N({o.null_effect:g}, {d.reference_sigma:.3f}^2) "
                 f"centred on no effect; {robust_weighs(d)}")
    q = "; ".join(f"{100 * r['prob']:g}%: {r['draws']:.3f} vs {r['mixture']:.3f}" for r in fit.quantiles)
    lines.append(f"  approximation error: KS distance {fit.ks_distance:.4f}; quantiles (draws vs mixture) {q}")
    lines.append(f"  ESS (ELIR at constant information 1/sigma^2, sigma {d.ess['sigma']:.3f} as exported; RBesT's "
                 f"definition; {d.ess['unit']}): MAP {d.ess['map']:.1f}, robust MAP {d.ess['robust']:.1f}")
    theta = d.ess.get("theta_dependent")
    if theta:
        lines.append(f"  theta-dependent ELIR (binomial information of the log OR at {d.ess['at']}, not comparable "
                     f"with RBesT's): MAP {theta['map']:.1f}, robust MAP {theta['robust']:.1f}")
    lines.append("")
    nu = d.nuisance
    lines.append(f"{nu['name'][0].upper() + nu['name'][1:]}: {nu['how']}")
    if nu["lower_95"] != nu["upper_95"]:
        below = (f"; below 5% in {100 * nu['share_below_5_percent']:.1f}% of new trials"
                 if "share_below_5_percent" in nu else "")
        lines.append(f"  median {nu['median']:.3g} (95% {nu['lower_95']:.3g} to {nu['upper_95']:.3g}){below}")
    lines.append(f"Analyses: {d.test_text} (success: significant and favouring cells); "
                 f"Bayesian with the robust MAP prior, success if {d.rule_text}")
    lines.append("")
    labels = [s["label"] for s in d.scenarios]
    shown = ", ".join(f"{s['label']} = {s['effect']:.3g}" for s in d.scenarios)
    read = f" at control risk {o.stated_as.baseline_risk:g}" if o.on_risk_scale else ""
    lines.append(f"Assurance and P(success) at fixed truths ({o.effect_label}{read}: {shown}; trials drawn at "
                 f"{nu['name']} {nu['median']:.3g})" if read else
                 f"Assurance and P(success) at fixed truths ({o.effect_label}: {shown}; {nu['name']} {nu['median']:.3g})")
    head = f"  {'n/arm':>6}  {'assur.F':>7} {'assur.B':>7}  " + "  ".join(f"{lab[:10]:>10} F/B" for lab in labels)
    lines.append(head)
    for row in d.table.to_dict(orient="records"):
        cells = "  ".join(f"{_pct(row[f'frequentist|{lab}'])}/{_pct(row[f'bayesian|{lab}'])}" for lab in labels)
        lines.append(f"  {row['n_per_arm']:>6}  {_pct(row['assurance_frequentist'])} {_pct(row['assurance_bayesian'])}  {cells}")
    lines.append("  (F = frequentist test, B = Bayesian rule; at 'no effect' P(success) is the type I error)")
    if d.approximation:
        exact_max = d.approximation[-1]["n_per_arm"]
        check = "; ".join(f"n {r['n_per_arm']}: decisions differ with probability {r['prob_decisions_differ']:.3f}, "
                          f"assurance {_pct(r['assurance_normal_approximation']).strip()} approximate vs "
                          f"{_pct(r['assurance_exact_binomial']).strip()} exact" for r in d.approximation)
        lines.append(f"  Bayesian analysis of deaths: exact binomial (quadrature) up to {exact_max} per arm, normal "
                     f"approximation of the log OR above. Check: {check}")
    ss = d.sample_size
    largest = max(d.table["n_per_arm"])
    for analysis in ("frequentist", "bayesian"):
        n, m = ss[analysis], ss[f"{analysis}_power_at_median"]
        text = f"{n} per arm" if n else f"not reached by n = {largest} per arm"
        power = f"{m} per arm" if m else f"not reached by n = {largest}"
        lines.append(f"Sample size for {100 * ss['target']:g}% assurance ({analysis}): {text}; "
                     f"for {100 * ss['target']:g}% power at the posterior median: {power}")
    lines.append(f"  {ss['ceiling_text']}")
    if d.dose is not None:
        lines.append("")
        lines.append("Dose for the next trial (the candidates inside the studied range, and --dose)")
        for row in d.dose.to_dict(orient="records"):
            lines.append(f"  {row['dose']:>6g} M cells/kg: P(best) {row['prob_best']:.3f}; assurance at {row['n_per_arm']}/arm "
                         f"F {_pct(row['assurance_frequentist'])} B {_pct(row['assurance_bayesian'])}"
                         + ("  OUTSIDE the studied range: an extrapolation" if row.get("extrapolated") else ""))
    lines.append("")
    lines.append("Fragility of today's conclusion")
    for row in d.fragility:
        state = "holds" if row["holds"] else "does not hold"
        if row.get("change") is None:
            lines.append(f"  {row['conclusion']} ({state}: {row['prob_reported']:.3f}): {row['text']}")
            continue
        lines.append(f"  {row['conclusion']} ({state}: {row['prob_reported']:.3f}): {abs(row['change'])} death(s) "
                     f"{'more' if row['change'] > 0 else 'fewer'} in {row['study_id']} {row['arm']} ({row['kind']} report, "
                     f"{row['deaths_reported']} -> {row['deaths_changed']}) gives {fragility_after(row)}")
    for row in d.null_trial:
        lines.append(f"  {row['conclusion']}: {row['text']}")
    for note in d.notes:
        lines.append(f"  note: {note}")
    lines.append("")
    lines.append(f"({d.seconds:.1f} s after the fit)")
    return "\n".join(lines)

"""Command line: ``python -m bayes_msc`` / ``bayes-msc``.

Only the standard library is imported at module level so ``--help`` is instant; each
command imports what it needs. User errors (:class:`bayes_msc.errors.InputError`) print one
line and exit 2 — no traceback.
"""

from __future__ import annotations

import argparse
import json
import sys

from .errors import InputError

EXIT_INPUT_ERROR = 2
EXIT_DIAGNOSTICS_FAILED = 3


def _prior_param(text: str) -> tuple[str, float]:
    key, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected role.parameter=value, got {text!r}")
    try:
        return key.strip(), float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number (in {text!r})") from None


def _add_fit_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("analysis", help="analysis name in models/ (e.g. mortality) or path to a spec .toml")
    p.add_argument("--data", metavar="DIR", help="evidence register directory (default: the embedded register); "
                   "normal_normal also takes a CSV file of study,estimate,se")
    p.add_argument("--evidence", choices=("full", "seed"), help="full register (default) or the four seed trials")
    p.add_argument("--prior", action="append", metavar="NAME",
                   help="prior preset (repeatable), e.g. sceptical, halfnormal_1.0; or a family change "
                        "ROLE=FAMILY(PARAM=VALUE,...), e.g. 'heterogeneity=halfcauchy(beta=25)'")
    p.add_argument("--prior-param", action="append", type=_prior_param, metavar="ROLE.PARAM=VALUE",
                   help="override one hyperparameter, e.g. effect.sigma=1.0 (repeatable)")
    p.add_argument("--seed", type=int)
    p.add_argument("--chains", type=int)
    p.add_argument("--draws", type=int)
    p.add_argument("--tune", type=int)
    p.add_argument("--dose-response", choices=("none", "loglinear", "emax"),
                   help="dose-response form (default: the spec's; mortality.toml says none)")
    p.add_argument("--likelihood", choices=("arm", "symmetric", "conditional"),
                   help="mortality: how each study's arms inform the odds ratio (default: the spec's; "
                        "mortality.toml says symmetric)")
    p.add_argument("--clinically-meaningful", type=float, metavar="VALUE",
                   help="decision threshold: an odds ratio for mortality (default 0.8), a difference in "
                        "the outcome's units otherwise (oxygenation: mmHg, default 20)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bayes_msc",
        description="Bayesian evidence synthesis for mesenchymal stromal cell therapy in ARDS.",
    )
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="log what the sampling engine does: each compilation and why, each reuse")
    sub = parser.add_subparsers(dest="command", required=True)

    fit = sub.add_parser("fit", help="fit an analysis and print its summary")
    _add_fit_options(fit)
    fit.add_argument("--out", metavar="DIR", help="write posterior.nc and summary.json here")
    fit.add_argument("--json", action="store_true", help="print the summary as JSON instead of text")
    fit.add_argument("--strict", action="store_true", help=f"exit {EXIT_DIAGNOSTICS_FAILED} if any diagnostic fails")
    fit.add_argument("--progress", action="store_true", help="show nutpie's progress bar")
    fit.add_argument("--report", action="store_true", help="also write the HTML report to reports/<analysis>.html")

    report = sub.add_parser("report", help="fit an analysis and write its self-contained HTML report")
    _add_fit_options(report)
    report.add_argument("--output", "-o", metavar="FILE", help="HTML file to write (default reports/<analysis>.html)")
    report.add_argument("--sensitivity", action="store_true",
                        help="also run prior sensitivity and leave-one-study-out and show them")
    report.add_argument("--sbc", metavar="FILE", help="show a saved SBC result (default reports/<analysis>.sbc.json if present)")
    report.add_argument("--strict", action="store_true", help=f"exit {EXIT_DIAGNOSTICS_FAILED} if any diagnostic fails")
    report.add_argument("--progress", action="store_true", help="show nutpie's progress bar")

    compare = sub.add_parser("compare", help="compare dose-response forms (none, loglinear, emax) by leave-one-study-out PSIS-LOO")
    _add_fit_options(compare)
    compare.add_argument("--json", action="store_true", help="print the comparison as JSON")

    sensitivity = sub.add_parser("sensitivity", help="refit under every named prior combination; power-scaling sensitivity")
    _add_fit_options(sensitivity)
    sensitivity.add_argument("--json", action="store_true")
    sensitivity.add_argument("--workers", type=int, metavar="N", help="refit on a local Dask cluster of N workers")
    sensitivity.add_argument("--scheduler", metavar="ADDRESS", help="refit on an existing Dask cluster")
    influence = sub.add_parser("influence", help="leave one study out (masked refits) and PSIS-LOO Pareto k per study")
    _add_fit_options(influence)
    influence.add_argument("--json", action="store_true")

    sbc = sub.add_parser("sbc", help="simulation-based calibration on data shaped like the register")
    _add_fit_options(sbc)
    sbc.add_argument("--n", type=int, default=200, help="replicates (default 200)")
    sbc.add_argument("--thin", type=int, help="keep every THIN-th draw of the spec's sampler settings for the ranks "
                     "(default: rank among --ranked draws thinned by each replicate's ESS, from SBC's own cheaper "
                     "sampler settings: 2 chains x 500 draws, doubled while the ESS falls short)")
    sbc.add_argument("--ranked", type=int, default=100, help="draws each rank is taken among (default 100)")
    sbc.add_argument("--out", metavar="FILE", help="where to save the result (default reports/<analysis>.sbc.json)")
    sbc.add_argument("--workers", type=int, metavar="N", help="run on a local Dask cluster of N worker processes")
    sbc.add_argument("--scheduler", metavar="ADDRESS", help="run on an existing Dask cluster (e.g. tcp://host:8786)")
    sbc.add_argument("--chunk-size", type=int, default=10, help="replicates per task (default 10)")

    simstudy = sub.add_parser("simstudy", help="mortality likelihoods on registers simulated from known truths "
                              "(bias, coverage, false claims of benefit) -> reports/<analysis>.simstudy.json")
    simstudy.add_argument("--likelihoods", default="arm,symmetric,conditional",
                          help="comma-separated likelihoods to compare; LIKELIHOOD/exchangeable for exchangeable "
                               "baselines (default arm,symmetric,conditional)")
    oc = sub.add_parser("oc", help="operating characteristics of the decision rules on simulated registers "
                        "-> reports/<analysis>.oc.json")
    for p_, reps in ((simstudy, 30), (oc, 400)):
        _add_fit_options(p_)
        p_.add_argument("--reps", type=int, default=reps, help=f"simulated registers per truth (default {reps})")
        p_.add_argument("--out", metavar="FILE", help="where to save the result")
        p_.add_argument("--workers", type=int, metavar="N", help="run on a local Dask cluster of N worker processes")
        p_.add_argument("--scheduler", metavar="ADDRESS", help="run on an existing Dask cluster")
        p_.add_argument("--json", action="store_true")

    data = sub.add_parser("data", help="check or show an evidence register")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    check = data_sub.add_parser("check", help="validate a register")
    check.add_argument("directory", nargs="?", help="register directory (default: the embedded register)")
    show = data_sub.add_parser("show", help="per study: what enters each analysis, and why not")
    show.add_argument("directory", nargs="?", help="register directory (default: the embedded register)")
    show.add_argument("--analysis", default="mortality", help="analysis name or spec path (default mortality)")
    show.add_argument("--evidence", choices=("full", "seed"))

    bench = sub.add_parser("bench", help="measure cold/warm fit time, sampler speed, sweeps and memory")
    bench.add_argument("--quick", action="store_true", help="one repeat, short sweeps (a few minutes)")
    bench.add_argument("--repeats", type=int, default=3, help="repeats of each whole-process run (default 3)")

    priors = sub.add_parser("priors", help="list the named prior presets of an analysis")
    priors.add_argument("analysis", nargs="?", default="mortality")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _configure_logging(args.verbose)
    try:
        return COMMANDS[args.command](args)
    except InputError as exc:
        print(f"bayes_msc: error: {exc}", file=sys.stderr)
        return EXIT_INPUT_ERROR
    except KeyboardInterrupt:
        print("bayes_msc: interrupted", file=sys.stderr)
        return 130


def _configure_logging(verbose: bool) -> None:
    import logging

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("bayes_msc: %(message)s"))
    package_log = logging.getLogger("bayes_msc")
    package_log.handlers[:] = [handler]
    package_log.setLevel(logging.DEBUG if verbose else logging.WARNING)
    package_log.propagate = False


def _fit_from_args(args):
    from .api import fit

    return fit(
        args.analysis,
        data=args.data,
        evidence=args.evidence,
        priors=args.prior,
        prior_params=dict(args.prior_param or []),
        seed=args.seed,
        chains=args.chains,
        draws=args.draws,
        tune=args.tune,
        clinically_meaningful=args.clinically_meaningful,
        dose_response=args.dose_response,
        likelihood=args.likelihood,
        progress_bar=args.progress,
    )


def _cmd_fit(args) -> int:
    from .display import render_result

    result = _fit_from_args(args)
    _sparse_data_warning(result)
    if args.out:
        written = result.save(args.out)
        print(f"wrote {', '.join(str(p) for p in written.values())}", file=sys.stderr)
    if args.report:
        from .report import write_report

        print(f"wrote {write_report(result, register=args.data)}", file=sys.stderr)
    if args.json:
        from .results import _json_default

        print(json.dumps(result.summary_dict(), indent=2, default=_json_default))
    else:
        print(render_result(result))
    return _diagnostics_status(result, args.strict)


def _sparse_data_warning(result) -> None:
    """Say so when no included study can inform the odds ratio (all zero or all deaths)."""
    if result.spec.outcome != "mortality":
        return
    from .models.sparse import sparse_data_warning

    warning = sparse_data_warning(result.evidence)
    if warning:
        print(f"bayes_msc: WARNING: {warning}", file=sys.stderr)


def _diagnostics_status(result, strict: bool) -> int:
    """Warn loudly when diagnostics fail; with ``--strict`` that is a non-zero exit."""
    if result.diagnostics.passed:
        return 0
    print(f"bayes_msc: WARNING: {result.diagnostics.verdict()}", file=sys.stderr)
    return EXIT_DIAGNOSTICS_FAILED if strict else 0


def _cmd_data(args) -> int:
    from .evidence.register import load_register

    register = load_register(args.directory)
    if args.data_command == "check":
        counts = ", ".join(
            f"{len(getattr(register, t))} {t}" for t in ("studies", "arms", "doses", "mortality", "oxygenation")
        )
        print(f"{register.root}: valid ({counts}); content hash {register.content_hash[:16]}")
        return 0
    from .api import analysis_for, resolve_spec
    from .display import render_inclusion

    spec = resolve_spec(args.analysis, evidence=args.evidence)
    evidence = analysis_for(spec.outcome).build_evidence(register, spec)
    print(render_inclusion(evidence.inclusion, f"{spec.name} ({spec.evidence.evidence_set} evidence): what enters and why"))
    derived = getattr(evidence, "derived", None)
    if derived is not None and len(derived):
        from .display import render_derived

        print()
        print(render_derived(derived))
    return 0


def _cmd_priors(args) -> int:
    from .priors import presets_for
    from .spec import load_spec

    spec = load_spec(args.analysis)
    chosen = spec.priors.names
    for preset in presets_for(spec.scale):
        mark = "*" if chosen.get(preset.role) == preset.name else " "
        print(f"{mark} {preset.name:<22} {preset.role:<14} {preset.prior.describe()}")
        print(f"      {preset.rationale}" + (f" [{preset.reference}]" if preset.reference else ""))
    print("* = used by the spec")
    return 0


def _cmd_bench(args) -> int:
    from .bench import main as bench_main

    return bench_main(args)


def _spec_from_args(args):
    from .api import resolve_spec

    return resolve_spec(
        args.analysis, evidence=args.evidence, priors=args.prior, prior_params=dict(args.prior_param or []),
        seed=args.seed, chains=args.chains, draws=args.draws, tune=args.tune,
        clinically_meaningful=args.clinically_meaningful, dose_response=args.dose_response,
        likelihood=args.likelihood,
    )


def _print_json_or(args, payload, text) -> None:
    if args.json:
        from .results import _json_default

        print(json.dumps(payload.to_dict(), indent=2, default=_json_default))
    else:
        print(text(payload))


def _cmd_sensitivity(args) -> int:
    from .display import render_sensitivity
    from .sensitivity import prior_sensitivity

    sens = prior_sensitivity(_spec_from_args(args), args.data, workers=args.workers, scheduler=args.scheduler)
    _print_json_or(args, sens, render_sensitivity)
    return 0


def _cmd_influence(args) -> int:
    from .display import render_influence
    from .sensitivity import leave_one_study_out

    _print_json_or(args, leave_one_study_out(_spec_from_args(args), args.data), render_influence)
    return 0


def _cmd_compare(args) -> int:
    from .display import render_comparison
    from .dosing import compare_forms

    if args.dose_response:
        raise InputError("compare fits every dose-response form; drop --dose-response")
    _print_json_or(args, compare_forms(_spec_from_args(args), args.data), render_comparison)
    return 0


def _cmd_report(args) -> int:
    from pathlib import Path

    from .report import write_report

    result = _fit_from_args(args)
    _sparse_data_warning(result)
    options = {}
    if args.sensitivity:
        from .sensitivity import leave_one_study_out, prior_sensitivity

        options["sensitivity"] = prior_sensitivity(result.spec, args.data)
        options["influence"] = leave_one_study_out(result.spec, args.data)
    sbc_path = Path(args.sbc) if args.sbc else Path("reports") / f"{result.spec.name}.sbc.json"
    if args.sbc or sbc_path.is_file():
        options["sbc"] = _read_sbc(sbc_path)
    print(f"wrote {write_report(result, args.output, register=args.data, **options)}")
    return _diagnostics_status(result, args.strict)


def _read_sbc(path) -> dict:
    from .errors import Location

    if not path.is_file():
        raise InputError("SBC result not found", Location(str(path)))
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
        for key in ("passed", "n", "date", "verdict", "uniformity", "parameters"):
            payload[key]
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(f"not an SBC result ({exc})", Location(str(path))) from None
    return payload


def _cmd_sbc(args) -> int:
    from pathlib import Path

    from .results import _json_default, write_atomic
    from .sbc import run_sbc

    spec = _spec_from_args(args)
    if args.n < 10:
        raise InputError(f"--n must be at least 10 replicates, got {args.n}")

    from .distributed import print_progress

    if args.workers is not None and args.workers < 1:
        raise InputError(f"--workers must be >= 1, got {args.workers}")
    out = Path(args.out) if args.out else Path("reports") / f"{spec.name}.sbc.json"
    # finished replicates stream here; a rerun with the same settings resumes from them
    from .sbc import SBC_SAMPLER

    # SBC's own (cheaper) draws unless the command line sets them; with --thin, the spec's
    sampler = None if args.thin else {k: getattr(args, k) or v for k, v in SBC_SAMPLER.items()}
    journal = out.with_name(out.name + f".{spec.content_hash()[:12]}-n{args.n}-thin{args.thin or 'ess'}"
                            f"-L{args.ranked}.partial.jsonl")
    result = run_sbc(spec, args.data, n=args.n, thin=args.thin, seed=spec.sampler.seed, progress=print_progress,
                     workers=args.workers, scheduler=args.scheduler, journal=journal, chunk_size=args.chunk_size,
                     sampler=sampler, n_ranked=args.ranked)
    write_atomic(out, json.dumps(result.to_dict(), indent=1, default=_json_default))
    journal.unlink(missing_ok=True)
    print(result.verdict())
    print(f"time: {result.seconds:.1f} s for {result.n} replicates (median {result.ranks['seconds'].median():.2f} s each); "
          f"ranks among L = {result.n_draws} draws; wrote {out}")
    return 0 if result.passed else EXIT_DIAGNOSTICS_FAILED


def _simulation_command(args, kind: str) -> int:
    """``simstudy`` and ``oc``: resumable (a journal next to the output), saved atomically."""
    from pathlib import Path

    from . import simstudy
    from .distributed import print_progress
    from .results import _json_default, write_atomic

    spec = _spec_from_args(args)
    if spec.outcome != "mortality":
        raise InputError(f"{kind} covers the mortality analysis; {spec.name} is {spec.outcome}")
    if spec.model.dose_response != "none":
        raise InputError(f"{kind} covers the pooled model (dose_response = none)")
    if args.reps < 2:
        raise InputError(f"--reps must be at least 2, got {args.reps}")
    out = Path(args.out) if args.out else Path("reports") / f"{spec.name}.{kind}.json"
    sampler = {k: getattr(args, k) for k in ("chains", "draws", "tune") if getattr(args, k) is not None}
    if kind == "simstudy":
        sampler["likelihoods"] = tuple(x.strip() for x in args.likelihoods.split(",") if x.strip())
        for variant in sampler["likelihoods"]:
            simstudy.variant_spec(spec, variant)  # a bad name is an input error before anything runs
    tag = "-" + "_".join(sampler.get("likelihoods", ())).replace("/", "+") if kind == "simstudy" else ""
    journal = out.with_name(out.name + f".{spec.content_hash()[:12]}-r{args.reps}{tag}.partial.jsonl")
    run, render = ((simstudy.simulation_study, simstudy.render_simulation_study) if kind == "simstudy"
                   else (simstudy.operating_characteristics, simstudy.render_oc))
    result = run(spec, args.data, reps=args.reps, workers=args.workers, scheduler=args.scheduler, journal=journal,
                 progress=print_progress, **sampler)
    write_atomic(out, json.dumps(result.to_dict(), indent=1, default=_json_default))
    journal.unlink(missing_ok=True)
    _print_json_or(args, result, render)
    print(f"wrote {out}", file=sys.stderr)
    return 0


COMMANDS = {
    "simstudy": lambda args: _simulation_command(args, "simstudy"),
    "oc": lambda args: _simulation_command(args, "oc"),
    "fit": _cmd_fit,
    "report": _cmd_report,
    "compare": _cmd_compare,
    "sensitivity": _cmd_sensitivity,
    "influence": _cmd_influence,
    "sbc": _cmd_sbc,
    "data": _cmd_data,
    "priors": _cmd_priors,
    "bench": _cmd_bench,
}

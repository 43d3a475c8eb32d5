"""Command line: ``python -m bayes_msc`` / ``bayes-msc``.

Only the standard library is imported at module level so ``--help`` is instant; each
command imports what it needs. User errors (:class:`bayes_msc.io.errors.InputError`) print one
line and exit 2 — no traceback.
"""

from __future__ import annotations

import argparse
import json
import re
import sys

from .io.errors import InputError, Location
from .io.progress import ProgressLine
from .io.terminal import printable
# the choice lists the options offer, from their one home (each imports nothing heavy)
from .evidence.settings import EVIDENCE_SETS, MEDIAN_IQR_METHODS, STUDY_LIST_PREFIX
from .models.choices import DOSE_RESPONSE_FORMS, EFFECT_MEASURES, LIKELIHOODS, MEASURES
from .spec import BENEFIT_DIRECTIONS

EXIT_INPUT_ERROR = 2
EXIT_DIAGNOSTICS_FAILED = 3
EXIT_INTERRUPTED = 130
# Posterior draws (chains x draws) that a report's densities, PSIS-LOO (compare, influence)
# and power-scaling sensitivity need; a plain fit works with any number.
MIN_ANALYSIS_DRAWS = 100
# Most simulated registers per truth for oc/simstudy: 100,000 fits a truth is days of work, and a
# larger number is a typo, not a plan.
MAX_REPS = 100_000


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad option is one line (``bayes_msc: error: ...``), like every other
    input error, instead of the whole usage block."""

    def error(self, message: str):
        self.exit(EXIT_INPUT_ERROR, f"bayes_msc: error: {printable(message)} (see {self.prog} --help)\n")


_EVIDENCE_SET_CHOICES = f"{', '.join(EVIDENCE_SETS)} or {STUDY_LIST_PREFIX}ID1,ID2,... (default: {EVIDENCE_SETS[0]})"


def _whole(minimum: int, maximum: int | None = None):
    def parse(text: str) -> int:
        # plain digits only: int() would also take "4_7" (as 47) and "١٢"
        if not re.fullmatch(r"[+-]?[0-9]+", text.strip()):
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number")
        value = int(text.strip())
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {value}")
        if maximum is not None and value > maximum:
            raise argparse.ArgumentTypeError(f"must be at most {maximum}, got {value}")
        return value

    parse.__name__ = "whole number"
    return parse


def _target_accept(text: str) -> float:
    value = _finite(text)
    if not 0.5 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be in [0.5, 1), got {value:g}")
    return value


def _finite(text: str) -> float:
    import math

    if not re.fullmatch(r"\s*[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?\s*|\s*[+-]?(inf|infinity|nan)\s*",
                        text, flags=re.IGNORECASE):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number")
    value = float(text)
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def _prior_param(text: str) -> tuple[str, float]:
    key, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected role.parameter=value, got {text!r}")
    try:
        return key.strip(), _finite(value)
    except argparse.ArgumentTypeError as exc:
        raise argparse.ArgumentTypeError(f"{exc} (in {text!r})") from None


def _add_fit_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("analysis", help="analysis name in models/ (e.g. mortality) or path to a spec .toml")
    p.add_argument("--data", metavar="DIR", help="evidence register directory (default: the embedded register); "
                   "normal_normal also takes a CSV file of study,estimate,se")
    p.add_argument("--evidence", metavar="SET",
                   help="randomised (default: pool randomised trials only), all (all controlled evidence; "
                        "non-randomised studies with a design-bias adjustment), seed (the seed documents' studies), "
                        "or studies:ID1,ID2,... (a named list)")
    p.add_argument("--prior", action="append", metavar="NAME",
                   help="prior preset (repeatable), e.g. sceptical, halfnormal_1.0; or a family change "
                        "ROLE=FAMILY(PARAM=VALUE,...), e.g. 'heterogeneity=halfcauchy(beta=25)'")
    p.add_argument("--prior-param", action="append", type=_prior_param, metavar="ROLE.PARAM=VALUE",
                   help="override one hyperparameter, e.g. effect.sigma=1.0 (repeatable)")
    p.add_argument("--seed", type=_whole(0))
    p.add_argument("--chains", type=_whole(1), help="sampler chains (default: the spec's)")
    p.add_argument("--draws", type=_whole(1), help="draws per chain after tuning (default: the spec's)")
    p.add_argument("--tune", type=_whole(1))
    p.add_argument("--target-accept", type=_target_accept, metavar="P",
                   help="NUTS target acceptance in [0.5, 1) (default: the spec's); raise it when a fit diverges")
    p.add_argument("--dose-response", choices=DOSE_RESPONSE_FORMS,
                   help="dose-response form (default: the spec's; mortality.toml says none)")
    p.add_argument("--likelihood", choices=LIKELIHOODS,
                   help="mortality: how each study's arms inform the odds ratio (default: the spec's; "
                        "mortality.toml says symmetric)")
    p.add_argument("--clinically-meaningful", type=_finite, metavar="VALUE",
                   help="decision threshold on the scale the effect is stated on: an odds ratio for mortality "
                        "(default 0.8), a risk ratio or risk difference under --effect-measure rr|rd (no default), "
                        "a difference in the outcome's units otherwise (oxygenation: mmHg, default 20)")
    p.add_argument("--effect-measure", choices=EFFECT_MEASURES,
                   help="binary outcomes (mortality): state and decide the effect as an odds ratio (or, default), "
                        "a risk ratio (rr) or a risk difference (rd, cells minus control), the last two at the "
                        "spec's decision.baseline_risk; the model stays the logit model (the OR is printed too)")
    p.add_argument("--measure", choices=MEASURES,
                   help="normal_normal: what the estimates are; it decides which priors fit them "
                        "(mean_difference needs --unit and both priors stated); required unless the spec or the "
                        "data file states it")
    p.add_argument("--unit", help="normal_normal with --measure mean_difference: the estimates' unit, e.g. mmHg")
    p.add_argument("--covariate", action="append", metavar="NAME",
                   help="meta-regression on a study-level covariate (repeatable): a register covariate (e.g. "
                        "publication_year, ards_cause, cell_source, infusions), control_risk (mortality: the trial's "
                        "baseline), small_study (1/N or SE), or an estimates file's own column")
    p.add_argument("--benefit-direction", choices=BENEFIT_DIRECTIONS,
                   help="normal_normal, binary, continuous: which direction of the effect is benefit (decrease for "
                        "log odds ratios of death); required unless the spec or the data file states it")
    # a user's own trials as one table (binary, continuous: bayes_msc.evidence.onetable)
    p.add_argument("--columns", metavar="NAME=COLUMN,...",
                   help="binary, continuous: the --data file's names for the columns the analysis reads, "
                        "e.g. events_treated=dead_msc,n_treated=N1")
    p.add_argument("--event-name", metavar="WORD", help="binary: what an event is, for display (e.g. death)")
    p.add_argument("--median-iqr-method", choices=MEDIAN_IQR_METHODS,
                   help="continuous, oxygenation: how a median and IQR become a mean and SD (default: the spec's)")


def _add_population_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--population", action="append", metavar="KEY=VALUE",
                   help="mortality: a target population, levels of one categorical covariate (repeatable; values "
                        "of one key are grouped into one population), e.g. ards_cause=non_covid; trials are partially "
                        "pooled within and across populations (prior: population_heterogeneity)")


def _n_list(text: str) -> tuple[int, ...]:
    parts = [v.strip() for v in text.split(",") if v.strip()]
    # plain ASCII digits only, as _whole: int() would read "4_7" and Arabic-Indic digits
    if not all(re.fullmatch(r"[0-9]+", v) for v in parts):
        raise argparse.ArgumentTypeError(f"expected whole numbers separated by commas, e.g. 50,100,200; got {text!r}")
    if not parts:
        raise argparse.ArgumentTypeError("no sample size given")
    if any(len(v) > 9 for v in parts):  # far beyond any bound; keeps 10**30 from reaching arithmetic
        raise argparse.ArgumentTypeError(f"a sample size in {text!r} is far too large")
    return tuple(int(v) for v in parts)


def _rule(text: str) -> tuple[float, float]:
    threshold, sep, prob = text.partition(":")
    try:
        if not sep:
            raise argparse.ArgumentTypeError("no ':'")
        return _finite(threshold), _finite(prob)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"expected THRESHOLD:PROB of two finite numbers, e.g. 1:0.975 for P(OR < 1) > 0.975; got {text!r}") from None


def _control_risk(text: str) -> float | str:
    if text in ("baseline", "hierarchical"):
        return text
    try:
        return _finite(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"expected a risk in (0, 1), baseline or hierarchical; got {text!r}") from None


def _add_design_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--n-per-arm", type=_n_list, metavar="LIST", help="sample sizes per arm, e.g. 50,100,200 "
                   "(default 25,50,75,100,150,200,300,400,600,800)")
    p.add_argument("--control-risk", type=_control_risk, metavar="P",
                   help="control risk of the next trial: a risk in (0, 1), 'baseline' (the spec's baseline risk) or "
                        "'hierarchical' (default: predicted by a hierarchical model of the register's control arms)")
    p.add_argument("--outcome-sd", type=_finite, metavar="SD",
                   help="continuous outcomes: the outcome SD (default: pooled from the register's arm SDs, uncertain)")
    p.add_argument("--dose", type=_finite, metavar="D", help="design at this dose (million cells/kg; needs --dose-response)")
    p.add_argument("--alpha", type=_finite, default=0.05, help="two-sided level of the frequentist test (default 0.05)")
    p.add_argument("--test", choices=("log_or", "risk_difference"), default="log_or",
                   help="deaths: frequentist test of the log OR (Wald, default) or of the risk difference")
    p.add_argument("--rule", type=_rule, action="append", metavar="THRESHOLD:PROB",
                   help="Bayesian success criterion on the effect as read (an OR for mortality; a risk ratio or "
                        "risk difference at the spec's baseline risk under --effect-measure rr|rd), repeatable "
                        "(all must hold); default 1:0.975 (mortality), 0:0.975 (oxygenation)")
    p.add_argument("--robust-weight", type=_finite, default=0.2, help="weight of the vague component (default 0.2)")
    p.add_argument("--target", type=_finite, default=0.8, help="target assurance for the sample size (default 0.8)")


_FORCE_HELP = "replace a shipped example or a file tracked in the bayes_msc repository (refused otherwise)"


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="bayes_msc",
        description="Bayesian evidence synthesis for mesenchymal stromal cell therapy in ARDS.",
    )
    from . import __version__

    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="log what the sampling engine does: each compilation and why, each reuse")
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="no progress line (shown on a terminal only: the step a long command is in)")
    sub = parser.add_subparsers(dest="command", required=True)

    fit = sub.add_parser("fit", help="fit an analysis and print its summary")
    _add_fit_options(fit)
    fit.add_argument("--out", metavar="DIR", help="write posterior.nc and summary.json here")
    fit.add_argument("--json", action="store_true", help="print the summary as JSON instead of text")
    fit.add_argument("--strict", action="store_true", help=f"exit {EXIT_DIAGNOSTICS_FAILED} if any diagnostic fails")
    fit.add_argument("--progress", action="store_true", help="show nutpie's progress bar")
    fit.add_argument("--studies", action="store_true",
                     help="list every study of the evidence set with what it contributes or why it does not enter, "
                          "and each diagnostic")
    fit.add_argument("--report", action="store_true", help="also write the HTML report to reports/<analysis>.html "
                     "(bayes_msc_out/ when run from the package's own checkout)")
    fit.add_argument("--force", action="store_true", help=_FORCE_HELP)
    _add_population_option(fit)

    report = sub.add_parser("report", help="fit an analysis and write its self-contained HTML report")
    _add_fit_options(report)
    report.add_argument("--output", "-o", metavar="FILE", help="HTML file to write (default reports/<analysis>.html; "
                        "bayes_msc_out/ when run from the package's own checkout)")
    report.add_argument("--force", action="store_true", help=_FORCE_HELP)
    report.add_argument("--sensitivity", action="store_true",
                        help="also run prior sensitivity and leave-one-study-out and show them")
    report.add_argument("--sbc", metavar="FILE", help="show a saved SBC result (default reports/<analysis>.sbc.json if present)")
    report.add_argument("--cumulative", action="store_true",
                        help="also show the pooled effect as the trials accrued, by publication year (masked refits)")
    report.add_argument("--design", action="store_true",
                        help="add 'The next trial' (MAP prior, assurance, sample size, fragility; defaults of `design`)")
    report.add_argument("--strict", action="store_true", help=f"exit {EXIT_DIAGNOSTICS_FAILED} if any diagnostic fails")
    report.add_argument("--progress", action="store_true", help="show nutpie's progress bar")
    _add_population_option(report)

    figure = sub.add_parser("figure", help="fit an analysis and save one figure for a manuscript (.svg, .png or .pdf)")
    figure.add_argument("kind", metavar="KIND", help="forest (per-study numbers beside the rows), dose (the "
                        "dose-response curve; needs --dose-response), prior (prior vs posterior of the pooled effect and τ), funnel (contour-enhanced), "
                        "cumulative (the pooled effect as the trials accrued, by year)")
    _add_fit_options(figure)
    figure.add_argument("--output", "--out", "-o", dest="output", metavar="FILE", required=True,
                        help="the figure file; its suffix (.svg, .png, .pdf) sets the format")
    figure.add_argument("--sort", choices=("year", "weight", "effect", "label"),
                        help="forest: order the studies by year (oldest first), weight (heaviest first), effect "
                             "(the model's study estimate, lowest first) or label (default: the data's order)")
    figure.add_argument("--force", action="store_true", help=_FORCE_HELP)
    figure.add_argument("--progress", action="store_true", help="show nutpie's progress bar")

    compare = sub.add_parser("compare", help="compare dose-response forms (none, loglinear, emax) by leave-one-study-out PSIS-LOO")
    _add_fit_options(compare)
    compare.add_argument("--json", action="store_true", help="print the comparison as JSON")

    sensitivity = sub.add_parser("sensitivity", help="refit under every named prior combination; power-scaling sensitivity")
    _add_fit_options(sensitivity)
    sensitivity.add_argument("--json", action="store_true")
    sensitivity.add_argument("--workers", type=_whole(1), metavar="N", help="refit on a local Dask cluster of N workers")
    sensitivity.add_argument("--scheduler", metavar="ADDRESS", help="refit on an existing Dask cluster")
    influence = sub.add_parser("influence", help="leave one study out (masked refits) and PSIS-LOO Pareto k per study")
    _add_fit_options(influence)
    influence.add_argument("--json", action="store_true")
    influence.add_argument("--workers", type=_whole(1), metavar="N", help="refit on a local Dask cluster of N workers")
    influence.add_argument("--scheduler", metavar="ADDRESS", help="refit on an existing Dask cluster")

    frequentist = sub.add_parser("frequentist", help="the classic frequentist rows (Mantel-Haenszel, Peto, REML with "
                                 "HKSJ, DerSimonian-Laird, Paule-Mandel, Q, I², Egger's and Peters' tests) beside the "
                                 "Bayesian answer")
    _add_fit_options(frequentist)
    frequentist.add_argument("--json", action="store_true", help="print the rows as JSON")

    provenance = sub.add_parser("provenance", help="mortality headline numbers on primary numbers only, then adding "
                                "secondary, inferred and assumed numbers, then non-randomised designs")
    _add_fit_options(provenance)
    provenance.add_argument("--json", action="store_true")

    cumulative = sub.add_parser("cumulative", help="cumulative meta-analysis: the pooled effect as the trials accrued "
                                "by publication year (masked refits of one compiled model)")
    _add_fit_options(cumulative)
    cumulative.add_argument("--by", choices=("year", "study"), default="year",
                            help="one row per publication year, studies of a year together (default), or one per "
                                 "study in (year, label) order")
    cumulative.add_argument("--json", action="store_true", help="print the table as JSON")
    cumulative.add_argument("--out", metavar="DIR", help="also write cumulative.json and cumulative.svg (the figure) here")
    cumulative.add_argument("--force", action="store_true", help=_FORCE_HELP)
    update = sub.add_parser("update", help="what new trials change: the analysis before and after adding the trials "
                            "of a one-table file, without editing the register")
    _add_fit_options(update)
    update.add_argument("--add", required=True, metavar="FILE",
                        help="CSV of new trials: study,events_treated,n_treated,events_control,n_control (binary) or "
                             "study,estimate,se (a contrast); optional label, year, source, quality, notes, day, "
                             "product_class")
    update.add_argument("--json", action="store_true", help="print the comparison as JSON")

    sbc = sub.add_parser("sbc", help="simulation-based calibration on data shaped like the register")
    _add_fit_options(sbc)
    sbc.add_argument("--n", type=_whole(10), default=200,
                     help="replicates (default 200, the fewest a PASS/FAIL verdict is given on; fewer: no verdict)")
    sbc.add_argument("--thin", type=_whole(1), help="keep every THIN-th draw of the spec's sampler settings for the ranks "
                     "(default: rank among --ranked draws thinned by each replicate's ESS, from SBC's own cheaper "
                     "sampler settings: 2 chains x 500 draws, doubled while the ESS falls short)")
    sbc.add_argument("--ranked", type=_whole(1), default=100, help="draws each rank is taken among (default 100)")
    sbc.add_argument("--out", metavar="FILE", help="where to save the result (default reports/<analysis>.sbc.json)")
    sbc.add_argument("--force", action="store_true", help=_FORCE_HELP)
    sbc.add_argument("--workers", type=_whole(1), metavar="N", help="run on a local Dask cluster of N worker processes")
    sbc.add_argument("--scheduler", metavar="ADDRESS", help="run on an existing Dask cluster (e.g. tcp://host:8786)")
    sbc.add_argument("--chunk-size", type=_whole(1), default=None,
                     help="most replicates per task (default 10; with --workers tasks shrink towards the end)")

    simstudy = sub.add_parser("simstudy", help="mortality likelihoods on registers simulated from known truths "
                              "(bias, coverage, false claims of benefit) -> reports/<analysis>.simstudy.json")
    simstudy.add_argument("--likelihoods", default="arm,symmetric,conditional",
                          help="comma-separated likelihoods to compare; LIKELIHOOD/exchangeable for exchangeable "
                               "baselines (default arm,symmetric,conditional)")
    oc = sub.add_parser("oc", help="operating characteristics of the decision rules on simulated registers "
                        "-> reports/<analysis>.oc.json")
    for p_, reps, what in ((simstudy, 30, "simulated registers per truth"),
                           (oc, 4000, "simulated registers without an effect (OR 1), where a false claim is counted")):
        _add_fit_options(p_)
        p_.add_argument("--reps", type=_whole(2, MAX_REPS), default=reps, help=f"{what} (default {reps})")
        p_.add_argument("--out", metavar="FILE", help="where to save the result")
        p_.add_argument("--force", action="store_true", help=_FORCE_HELP)
        p_.add_argument("--workers", type=_whole(1), metavar="N", help="run on a local Dask cluster of N worker processes")
        p_.add_argument("--scheduler", metavar="ADDRESS", help="run on an existing Dask cluster")
        p_.add_argument("--json", action="store_true")

    oc.add_argument("--alternative-reps", type=_whole(0, MAX_REPS), default=1000,
                    help="simulated registers at the alternative (OR 0.8); 0: the null alone (default 1000)")
    oc.add_argument("--control-risks", choices=("register", "new-trials"), default="register",
                    help="register (default): each trial's control risk from its own posterior; new-trials: every "
                         "trial's from the predictive for a new trial (a sensitivity analysis)")

    smallstudy = sub.add_parser("smallstudy", help="small-study adjustment: the pooled effect of an infinitely large "
                                "trial (a 1/N or SE term in the hierarchical model), against the unadjusted one")
    _add_fit_options(smallstudy)
    smallstudy.add_argument("--json", action="store_true", help="print the comparison as JSON")
    smallstudy.add_argument("--simulate", type=_whole(2, 1000), metavar="REPS",
                            help="instead: check the adjustment on REPS registers simulated per slope (0 and -0.5) "
                                 "with the analysis' trial sizes")
    smallstudy.add_argument("--out", metavar="FILE", help="with --simulate: write the check as JSON here")
    smallstudy.add_argument("--force", action="store_true", help=_FORCE_HELP)
    data = sub.add_parser("data", help="check or show an evidence register")
    data_sub = data.add_subparsers(dest="data_command", required=True)
    check = data_sub.add_parser("check", help="validate a register")
    check.add_argument("directory", nargs="?", help="register directory (default: the embedded register)")
    show = data_sub.add_parser("show", help="per study: what enters each analysis, and why not")
    show.add_argument("directory", nargs="?", help="register directory (default: the embedded register)")
    show.add_argument("--analysis", default="mortality", help="analysis name or spec path (default mortality)")
    show.add_argument("--evidence", metavar="SET", help=_EVIDENCE_SET_CHOICES)

    bench = sub.add_parser("bench", help="measure cold/warm fit time, sampler speed, sweeps and memory")
    bench.add_argument("--quick", action="store_true", help="one repeat, short sweeps (a few minutes)")
    bench.add_argument("--repeats", type=_whole(1), default=3, help="repeats of each whole-process run (default 3)")
    bench.add_argument("--compare-with", metavar="DIR", help="another checkout of bayes_msc: measure it and this "
                       "one side by side (fresh install, warm, new structure, sweep, sbc --n 200)")
    bench.add_argument("--write-table", metavar="FILE", help="with --compare-with: write the comparison as the docs' "
                       "Markdown table (docs/performance_table.md)")

    design = sub.add_parser("design", help="the next trial: MAP prior, assurance, sample size, dose, fragility")
    _add_fit_options(design)
    _add_design_options(design)
    design.add_argument("--json", action="store_true", help="print the design as JSON")
    design.add_argument("--export-prior", metavar="FILE", help="write the robust MAP prior as RBesT mixture JSON")
    design.add_argument("--force", action="store_true", help=_FORCE_HELP)
    design.add_argument("--progress", action="store_true", help="show nutpie's progress bar")
    _add_population_option(design)

    subgroups = sub.add_parser("subgroups", help="who benefits: the mortality effect per level of a categorical "
                               "covariate (levels partially pooled)")
    _add_fit_options(subgroups)
    subgroups.add_argument("--by", required=True, metavar="COVARIATE",
                           help="a categorical covariate, e.g. ards_cause, cell_source, severity_definition, rob2_overall")
    subgroups.add_argument("--json", action="store_true", help="print the table as JSON")
    subgroups.add_argument("--progress", action="store_true", help="show nutpie's progress bar")

    warm = sub.add_parser("warm", help="compile analyses into the compile cache now, so that their first fit "
                          "in any later process starts warm")
    warm.add_argument("analyses", nargs="*", metavar="ANALYSIS",
                      help="analysis names or spec paths (default: the shipped analyses that run on the embedded "
                           "register: mortality, oxygenation)")
    warm.add_argument("--data", metavar="DIR", help="evidence register directory (default: the embedded register)")
    warm.add_argument("--evidence", metavar="SET", help=_EVIDENCE_SET_CHOICES)
    warm.add_argument("--likelihood", choices=LIKELIHOODS, help="mortality: as for fit")
    warm.add_argument("--dose-response", choices=DOSE_RESPONSE_FORMS, help="as for fit")
    warm.add_argument("--prior", action="append", metavar="NAME", help="as for fit (a prior family is part of "
                      "the compiled structure; hyperparameters are not)")

    priors = sub.add_parser("priors", help="list the named prior presets of an analysis")
    priors.add_argument("analysis", nargs="?", default="mortality")
    return parser


# The progress line of this run (main sets it: on for a terminal, off under --quiet).
_PROGRESS = ProgressLine(enabled=False)


# Commands that compile models, and so need a usable compile cache.
_COMPILING = {"fit", "frequentist", "report", "figure", "compare", "sensitivity", "influence", "sbc", "bench",
              "design", "provenance", "simstudy", "oc", "warm", "cumulative", "update", "smallstudy", "subgroups"}


def main(argv: list[str] | None = None) -> int:
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:  # --help, or a bad option (already said, in one line)
        return exc.code if isinstance(exc.code, int) else EXIT_INPUT_ERROR
    global _PROGRESS
    _PROGRESS = ProgressLine(sys.stderr, enabled=False if args.quiet else None)
    _configure_logging(args.verbose, _PROGRESS)
    try:
        if args.command in _COMPILING:
            from .engine.runtime import check_cache_dir

            check_cache_dir()  # before own_process makes BAYES_MSC_CACHE_DIR pytensor's folder
        from .engine.process import own_process

        own_process()  # this process is ours: cache folder, collector, lean imports
        _read_one_table(args)
        return COMMANDS[args.command](args)
    except InputError as exc:
        _error(str(exc))
        return EXIT_INPUT_ERROR
    except KeyboardInterrupt:
        print("bayes_msc: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except OSError as exc:
        if exc.filename is None:
            raise
        # checked before the work started; this is a folder that changed under us, a full disk
        _error(f"{exc.filename}: cannot write or read ({exc.strerror or exc})")
        return EXIT_INPUT_ERROR
    finally:
        _PROGRESS.clear()


def _error(message: str) -> None:
    _PROGRESS.clear()
    text = printable(message).replace("\n", " ")
    print(f"bayes_msc: error: {text}", file=sys.stderr)


def _print(text: str, **kwargs) -> None:
    _PROGRESS.clear()
    print(printable(text), **kwargs)


def _configure_logging(verbose: bool, progress) -> None:
    import logging

    from .io.progress import ClearingStreamHandler, ProgressHandler

    handler = ClearingStreamHandler(progress, sys.stderr)
    handler.setFormatter(logging.Formatter("bayes_msc: %(message)s"))
    handler.setLevel(logging.DEBUG if verbose else logging.WARNING)
    package_log = logging.getLogger("bayes_msc")
    package_log.handlers[:] = [handler] + ([ProgressHandler(progress)] if progress.enabled else [])
    # the progress line reads the engine's INFO records (compiling, sampling); the log shows them under -v
    package_log.setLevel(logging.DEBUG if verbose else logging.INFO if progress.enabled else logging.WARNING)
    package_log.propagate = False


def _fit_from_args(args, spec=None):
    """Fit ``spec`` (resolved already, outputs checked) or the analysis the options describe."""
    from .api import fit

    return fit(spec or _spec_from_args(args), data=args.data, progress_bar=args.progress)


def _check_draws(spec, what: str) -> None:
    from .io.errors import Location

    total = spec.sampler.chains * spec.sampler.draws
    if total < MIN_ANALYSIS_DRAWS:
        raise InputError(f"{what} needs at least {MIN_ANALYSIS_DRAWS} posterior draws (chains x draws), got {total}",
                         Location("--draws"))


def _cmd_fit(args) -> int:
    from .io.display import render_result
    from .io.fileio import check_output_dir, check_output_file

    spec = _spec_from_args(args)
    # every place this run writes is checked before the fit, not discovered after it
    if args.out:
        from .results import POSTERIOR_FILE, SUMMARY_FILE

        check_output_dir(args.out, "--out", (POSTERIOR_FILE, SUMMARY_FILE), force=args.force)
    if args.report:
        from .report import default_report_path

        from .report.presentations import layout_for

        _check_draws(spec, "a report")
        layout_for(spec.outcome_type)
        check_output_file(default_report_path(spec), "--report", force=args.force)
    result = _fit_from_args(args, spec)
    _sparse_data_warning(result)
    if args.out:
        written = result.save(args.out)
        _print(f"wrote {', '.join(str(p) for p in written.values())}", file=sys.stderr)
    if args.report:
        from .report import write_report

        _print(f"wrote {write_report(result, register=args.data)}", file=sys.stderr)
    if args.json:
        from .results import to_json

        _PROGRESS.clear()
        print(to_json(result.summary_dict()))
    else:
        _print(render_result(result, studies=args.studies))
        _print_population(result)
    return _diagnostics_status(result, args.strict)


# -- target populations and subgroups (bayes_msc.models.populations, bayes_msc.analyses.subgroups) --


def _print_population(result) -> None:
    from .models.populations import population_summary

    block = population_summary(result)
    if block is not None:
        from .analyses.subgroups import render_population

        _print(render_population(block))


def _cmd_subgroups(args) -> int:
    from .analyses.subgroups import render_subgroups, run_subgroups
    from .api import load_data

    spec = _spec_from_args(args)
    register = load_data(spec, args.data)
    result, table = run_subgroups(spec, register, args.by, progress_bar=args.progress)
    _print_json_or(args, table, render_subgroups)
    return _diagnostics_status(result, False)


def _sparse_data_warning(result) -> None:
    """Say so when no included study can inform the odds ratio (all zero or all deaths)."""
    if "likelihood" not in result.outcome.model_keys:  # a binary outcome with arm counts
        return
    from .models.sparse import sparse_data_warning

    warning = sparse_data_warning(result.evidence)
    if warning:
        _PROGRESS.clear()
        print(f"bayes_msc: WARNING: {warning}", file=sys.stderr)


def _diagnostics_status(result, strict: bool) -> int:
    """Warn loudly when diagnostics fail; with ``--strict`` that is a non-zero exit."""
    if result.diagnostics.passed:
        return 0
    _PROGRESS.clear()
    print(f"bayes_msc: WARNING: {result.diagnostics.verdict()}", file=sys.stderr)
    return EXIT_DIAGNOSTICS_FAILED if strict else 0


def _cmd_data(args) -> int:
    from .evidence.register import load_register

    register = load_register(args.directory)
    if args.data_command == "check":
        counts = ", ".join(
            f"{len(getattr(register, t))} {t}" for t in ("studies", "arms", "doses", "mortality", "oxygenation")
        )
        from .evidence.register import ID_RULE

        _print(f"{register.root}: valid ({counts}); content hash {register.content_hash[:16]}; {ID_RULE}")
        return 0
    from .api import resolve_spec
    from .io.display import render_inclusion

    spec = resolve_spec(args.analysis, evidence=args.evidence)
    evidence = spec.outcome_type.build_evidence(register, spec)
    _print(render_inclusion(evidence.inclusion, f"{spec.name} ({spec.evidence.evidence_set} evidence): what enters and why",
                            bias_adjusted=spec.outcome_type.adjusts_design_bias))
    derived = getattr(evidence, "derived", None)
    if derived is not None and len(derived):
        from .io.display import render_derived

        print()
        _print(render_derived(derived, register.studies.set_index("study_id")["reference"]))
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


def _cmd_warm(args) -> int:
    import time

    from .api import WARM_BY_DEFAULT, _compile, _evidence_and_inputs, load_data, resolve_spec

    _PROGRESS.enabled = False  # warm names each compile on its own line
    names = args.analyses or list(WARM_BY_DEFAULT)
    # every analysis is resolved and its data read before anything compiles
    planned = []
    for name in names:
        spec = resolve_spec(name, evidence=args.evidence, priors=args.prior, dose_response=args.dose_response,
                            likelihood=args.likelihood)
        planned.append((name, spec, _evidence_and_inputs(spec, load_data(spec, args.data))[1]))
    for number, (name, spec, inputs) in enumerate(planned, 1):
        _print(f"warm: compiling {name} ({number}/{len(planned)}) ...", end="", file=sys.stderr, flush=True)
        start = time.perf_counter()
        _compile(spec, inputs)
        _print(f" done in {time.perf_counter() - start:.1f} s", file=sys.stderr)
    return 0


def _cmd_bench(args) -> int:
    from pathlib import Path

    from .bench import main as bench_main
    from .io.errors import Location

    if args.compare_with and not (Path(args.compare_with) / "bayes_msc" / "__init__.py").is_file():
        raise InputError("not a checkout of bayes_msc (no bayes_msc/__init__.py in it)", Location(args.compare_with))

    return bench_main(args)


def _spec_from_args(args):
    from .api import resolve_spec

    spec = resolve_spec(
        args.analysis, data=args.data, evidence=args.evidence, priors=args.prior,
        prior_params=dict(args.prior_param or []),
        seed=args.seed, chains=args.chains, draws=args.draws, tune=args.tune, target_accept=args.target_accept,
        clinically_meaningful=args.clinically_meaningful, dose_response=args.dose_response,
        measure=args.measure, unit=args.unit, likelihood=args.likelihood, benefit_direction=args.benefit_direction,
        effect_measure=args.effect_measure,
        covariates=args.covariate,
        population=getattr(args, "population", None),
    )
    if getattr(args, "median_iqr_method", None):
        if "median_iqr_method" not in spec.outcome_type.evidence_keys:
            raise InputError(f"the {spec.name} analysis reads no median and IQR; leave --median-iqr-method out")
        spec = spec.with_evidence(median_iqr_method=args.median_iqr_method)
    return spec


def _read_one_table(args) -> None:
    """``--columns`` / ``--event-name``: read the ``--data`` file as the analysis' one table under
    those names (without them, the analysis reads its one table with the default names)."""
    if getattr(args, "columns", None) is None and getattr(args, "event_name", None) is None:
        return
    from .evidence.onetable import parse_column_mapping
    from .spec import load_spec

    outcome = load_spec(args.analysis).outcome_type
    columns = parse_column_mapping(args.columns) if args.columns is not None else None
    if args.data is None:
        outcome.load_data(None)  # refuses, saying what data it needs
    args.data = outcome.read_table(args.data, columns=columns, event_name=args.event_name)


def _print_json_or(args, payload, text) -> None:
    if args.json:
        from .results import to_json

        _PROGRESS.clear()
        print(to_json(payload.to_dict()))
    else:
        _print(text(payload))


def _cmd_sensitivity(args) -> int:
    from .io.display import render_sensitivity
    from .analyses.sensitivity import prior_sensitivity

    spec = _spec_from_args(args)
    _check_draws(spec, "power-scaling sensitivity")
    sens = prior_sensitivity(spec, args.data, workers=args.workers, scheduler=args.scheduler,
                             progress=_PROGRESS.counter("refits"))
    _print_json_or(args, sens, render_sensitivity)
    return 0


def _cmd_influence(args) -> int:
    from .io.display import render_influence
    from .analyses.sensitivity import leave_one_study_out

    spec = _spec_from_args(args)
    _check_draws(spec, "PSIS-LOO")
    _print_json_or(args, leave_one_study_out(spec, args.data, workers=args.workers, scheduler=args.scheduler,
                                             progress=_PROGRESS.counter("refits")),
                   render_influence)
    return 0


def _cmd_smallstudy(args) -> int:
    from .analyses.smallstudy import render_small_study, simulation_check, small_study_analysis

    spec = _spec_from_args(args)
    if args.simulate:
        if "likelihood" not in spec.outcome_type.model_keys:
            raise InputError("the small-study simulation check simulates arm deaths: use the mortality analysis")
        if args.out:
            from .io.fileio import check_output_file

            check_output_file(args.out, "--out", force=args.force)
        check = simulation_check(spec, args.data, reps=args.simulate)
        from .results import to_json

        text = to_json(check | {"command": "python -m bayes_msc " + " ".join(sys.argv[1:])})
        if args.out:
            from .io.fileio import write_atomic

            write_atomic(args.out, text + "\n")
            _print(f"wrote {args.out}", file=sys.stderr)
        _PROGRESS.clear()
        print(to_json(check["summary"]))
        return 0
    _check_draws(spec, "the small-study adjustment")
    _print_json_or(args, small_study_analysis(spec, args.data), render_small_study)
    return 0


def _cmd_provenance(args) -> int:
    from .analyses.provenance import provenance_table, render_provenance

    _print_json_or(args, provenance_table(_spec_from_args(args), args.data), render_provenance)
    return 0


def _cmd_frequentist(args) -> int:
    from .analyses.frequentist import frequentist_summary, render_frequentist
    from .api import fit

    result = fit(_spec_from_args(args), data=args.data)
    _sparse_data_warning(result)
    _print_json_or(args, frequentist_summary(result), render_frequentist)
    return _diagnostics_status(result, False)


def _cmd_cumulative(args) -> int:
    from .analyses.cumulative import cumulative_analysis, render_cumulative

    spec = _spec_from_args(args)
    out = None
    if args.out:
        from .io.fileio import check_output_dir

        out = check_output_dir(args.out, "--out", ("cumulative.json", "cumulative.svg"), force=args.force)
    result = cumulative_analysis(spec, args.data, by=args.by, progress=_PROGRESS.counter("cumulative refits"))
    if out is not None:
        from pathlib import Path

        from .io.fileio import write_atomic
        from .report.figures_cumulative import cumulative_figure, figure_svg
        from .results import to_json

        folder = Path(out)
        written = [write_atomic(folder / "cumulative.json", to_json(result.to_dict(), indent=1)),
                   write_atomic(folder / "cumulative.svg", figure_svg(cumulative_figure(result)))]
        _print(f"wrote {', '.join(str(p) for p in written)}", file=sys.stderr)
    _print_json_or(args, result, render_cumulative)
    return 0


def _cmd_update(args) -> int:
    from .analyses.update import render_update, update_analysis

    _print_json_or(args, update_analysis(_spec_from_args(args), args.data, args.add), render_update)
    return 0


def _cmd_compare(args) -> int:
    from .io.display import render_comparison
    from .analyses.comparison import compare_forms

    if args.dose_response:
        raise InputError("compare fits every dose-response form; drop --dose-response")
    spec = _spec_from_args(args)
    _check_draws(spec, "PSIS-LOO")
    _print_json_or(args, compare_forms(spec, args.data), render_comparison)
    return 0


def _cmd_report(args) -> int:
    from pathlib import Path

    from .io.fileio import check_output_file
    from .report import default_report_path, write_report

    spec = _spec_from_args(args)
    _check_draws(spec, "a report")
    from .report.presentations import layout_for

    layout_for(spec.outcome_type)  # a layout for this outcome, on its scale: before the fit
    output = check_output_file(args.output or default_report_path(spec), "--output", force=args.force)
    sbc_path = Path(args.sbc) if args.sbc else _saved_file(spec, "sbc")
    sbc = _read_sbc(sbc_path) if args.sbc or sbc_path is not None else None  # a bad file fails before the fit
    result = _fit_from_args(args, spec)
    _sparse_data_warning(result)
    options = {} if sbc is None else {"sbc": sbc}
    options.update(_saved_simulations(spec))
    if args.sensitivity:
        from .analyses.sensitivity import leave_one_study_out, prior_sensitivity

        options["sensitivity"] = prior_sensitivity(result.spec, args.data, progress=_PROGRESS.counter("prior refits"))
        options["influence"] = leave_one_study_out(result.spec, args.data,
                                                   progress=_PROGRESS.counter("leave-one-study-out refits"))
        if "evidence_set" in result.outcome.evidence_keys:  # an analysis of the evidence register
            from .analyses.provenance import provenance_table

            options["provenance"] = provenance_table(result.spec, args.data)
    if args.cumulative:
        from .analyses.cumulative import cumulative_analysis

        options["cumulative"] = cumulative_analysis(result.spec, args.data, progress=_PROGRESS.counter("cumulative refits"))
    if args.design:
        from .design import design

        options["design"] = design(result, register=args.data)
    _print(f"wrote {write_report(result, output, register=args.data, **options)}")
    return _diagnostics_status(result, args.strict)


def _cmd_figure(args) -> int:
    from .io.fileio import check_output_file
    from .report.manuscript import check_figure_request, figure

    spec = _spec_from_args(args)
    # the kind, the suffix, the sort and what the kind needs of the spec: refused before the fit
    check_figure_request(args.kind, spec, args.sort, args.output)
    output = check_output_file(args.output, "--output", force=args.force)
    result = _fit_from_args(args, spec)
    _sparse_data_warning(result)
    figure(result, args.kind, output, sort=args.sort, data=args.data)
    _print(f"wrote {output}")
    return 0


def _saved_simulations(spec) -> dict:
    """The saved decision-rule characteristics and likelihood simulation study of this
    analysis (reports/<analysis>.oc.json, .simstudy.json), when they exist, for the report."""
    from .analyses.simstudy import oc_report_table, simstudy_report_table

    found = {}
    for kind, read in (("oc", oc_report_table), ("simstudy", simstudy_report_table)):
        path = _saved_file(spec, kind)
        table = read(path) if path is not None else None
        if table is not None:
            found[kind] = table
    return found


def _default_output(spec, kind: str):
    """Where ``kind`` (sbc, oc, simstudy) is saved by default: ``<output folder>/<analysis>.<kind>.json``."""
    from .io.fileio import safe_file_name
    from .io.paths import default_output_dir

    return default_output_dir() / f"{safe_file_name(spec.name)}.{kind}.json"


def _saved_file(spec, kind: str):
    """A saved result of ``kind`` for the report: the run's own output folder first, then the
    package checkout's shipped one (whether it applies to this spec is the report's to say)."""
    from .io.fileio import safe_file_name
    from .io.paths import shipped_reports_dir

    own = _default_output(spec, kind)
    if own.is_file():
        return own
    shipped = shipped_reports_dir()
    candidate = shipped / f"{safe_file_name(spec.name)}.{kind}.json" if shipped is not None else None
    return candidate if candidate is not None and candidate.is_file() else None


def _read_sbc(path) -> dict:
    from .io.errors import Location

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

    from .api import load_data
    from .io.fileio import check_output_file, write_atomic
    from .results import to_json
    from .analyses.sbc import check_sbc_settings, journal_path, run_sbc

    spec = _spec_from_args(args)
    check_sbc_settings(spec, thin=args.thin, chunk_size=args.chunk_size, n_ranked=args.ranked)

    out = check_output_file(Path(args.out) if args.out else _default_output(spec, "sbc"), "--out", force=args.force)
    from .analyses.sbc import SBC_SAMPLER

    # SBC's own (fewer) draws unless the command line sets them; with --thin, the spec's
    sampler = None if args.thin else {k: getattr(args, k) or v for k, v in SBC_SAMPLER.items()}
    if sampler is not None and args.tune:
        sampler["tune"] = args.tune
    # finished replicates stream here; a rerun with the same settings and register resumes from them
    register_hash = load_data(spec, args.data).content_hash
    from .analyses.sbc import source_commit

    # the code that runs: read before the run, so later edits to the checkout do not relabel it
    made_by = {"command": "python -m bayes_msc " + " ".join(sys.argv[1:]), "commit": source_commit()}
    journal = journal_path(out, spec, register_hash, n=args.n, thin=args.thin, n_ranked=args.ranked, sampler=sampler)
    result = run_sbc(spec, args.data, n=args.n, thin=args.thin, seed=spec.sampler.seed,
                     progress=_PROGRESS.counter("SBC replicates"),
                     workers=args.workers, scheduler=args.scheduler, journal=journal, chunk_size=args.chunk_size,
                     register_hash=register_hash, sampler=sampler, n_ranked=args.ranked)
    write_atomic(out, to_json(result.to_dict() | made_by, indent=1))
    journal.unlink(missing_ok=True)
    _print(result.verdict())
    _print(f"time: {result.seconds:.1f} s for {result.n} replicates (median {result.ranks['seconds'].median():.2f} s each); "
           f"ranks among L = {result.n_draws} draws; wrote {out}")
    return EXIT_DIAGNOSTICS_FAILED if result.failed else 0


def _cmd_design(args) -> int:
    from .design import design
    from .design.plan import DesignSettings
    from .design.text import render_design

    settings = DesignSettings(
        **({"n_grid": args.n_per_arm} if args.n_per_arm else {}),
        control_risk=args.control_risk, sd=args.outcome_sd, alpha=args.alpha,
        rule=tuple(args.rule) if args.rule else None, robust_weight=args.robust_weight, target=args.target,
        dose=args.dose, test=args.test,
    )
    # every option before the fit: a bad one costs nothing
    spec = _spec_from_args(args)
    from .design.outcome import design_outcome

    settings.validate(outcome=design_outcome(spec))  # a rule's threshold on the scale the effect is read
    if args.dose is not None and spec.model.dose_response == "none":
        raise InputError("needs a dose-response fit: add --dose-response loglinear or emax", Location("--dose"))
    from .io.fileio import check_output_file, write_atomic

    export = check_output_file(args.export_prior, "--export-prior", force=args.force) if args.export_prior else None
    result = _fit_from_args(args, spec)
    planned = design(result, settings, register=args.data)
    if export is not None:
        _print(f"wrote {write_atomic(export, planned.rbest_json())}", file=sys.stderr)
    _print_json_or(args, planned, render_design)
    return _diagnostics_status(result, False)


def _simulation_command(args, kind: str) -> int:
    """``simstudy`` and ``oc``: resumable (a journal next to the output), saved atomically."""
    from pathlib import Path

    from .analyses import simstudy
    from .io.fileio import check_output_file, write_atomic
    from .results import to_json

    spec = _spec_from_args(args)
    if "likelihood" not in spec.outcome_type.model_keys:
        raise InputError(f"{kind} compares the likelihoods of an outcome that has a choice of them (mortality); "
                         f"{spec.name} is {spec.outcome}")
    if spec.model.dose_response != "none":
        raise InputError(f"{kind} covers the pooled model (dose_response = none)")
    if spec.model.effect_measure != "or":  # its truths and decision rules are odds ratios
        raise InputError(f"{kind} states its truths and decision rules as odds ratios (P(OR < 1), P(OR < "
                         f"{spec.decision.clinically_meaningful_or:g})); run it with --effect-measure or",
                         Location("--effect-measure"))
    out = check_output_file(Path(args.out) if args.out else _default_output(spec, kind), "--out", force=args.force)
    sampler = {k: getattr(args, k) for k in ("chains", "draws", "tune") if getattr(args, k) is not None}
    if kind == "oc":
        if args.alternative_reps == 1:
            raise InputError("at least 2 registers, or 0 for none", Location("--alternative-reps"))
        sampler["alternative_reps"] = max(args.alternative_reps, 2)
        if args.alternative_reps == 0:
            sampler["ors"] = (1.0,)
        sampler["control_risk"] = args.control_risks.replace("-", "_")
    if kind == "simstudy":
        sampler["likelihoods"] = tuple(x.strip() for x in args.likelihoods.split(",") if x.strip())
        if not sampler["likelihoods"]:
            raise InputError("name at least one likelihood, e.g. arm,symmetric", Location("--likelihoods"))
        if len(set(sampler["likelihoods"])) != len(sampler["likelihoods"]):
            raise InputError(f"a likelihood is listed twice in {args.likelihoods!r}", Location("--likelihoods"))
        for variant in sampler["likelihoods"]:
            try:  # a bad name is an input error before anything runs
                simstudy.variant_spec(spec, variant)
            except InputError as exc:
                raise InputError(f"{variant!r}: {exc.problem}", Location("--likelihoods")) from None
    from .api import load_data

    # the journal resumes only a run of this analysis, these settings and this register
    register_hash = load_data(spec, args.data).content_hash
    key = json.dumps({"kind": kind, "spec": spec.content_hash(), "register": register_hash, "reps": args.reps,
                      "settings": sampler}, sort_keys=True, default=list)
    import hashlib

    journal = out.with_name(out.name + f".{spec.content_hash()[:12]}-data{register_hash[:12]}-r{args.reps}-"
                            f"{hashlib.sha256(key.encode()).hexdigest()[:12]}.partial.jsonl")
    run, render = ((simstudy.simulation_study, simstudy.render_simulation_study) if kind == "simstudy"
                   else (simstudy.operating_characteristics, simstudy.render_oc))
    result = run(spec, args.data, reps=args.reps, workers=args.workers, scheduler=args.scheduler, journal=journal,
                 progress=_PROGRESS.counter("simulated registers"), **sampler)
    write_atomic(out, to_json(result.to_dict(), indent=1))
    journal.unlink(missing_ok=True)
    _print_json_or(args, result, render)
    _print(f"wrote {out}", file=sys.stderr)
    return 0


COMMANDS = {
    "smallstudy": lambda args: _cmd_smallstudy(args),
    "simstudy": lambda args: _simulation_command(args, "simstudy"),
    "oc": lambda args: _simulation_command(args, "oc"),
    "fit": _cmd_fit,
    "report": _cmd_report,
    "figure": _cmd_figure,
    "compare": _cmd_compare,
    "sensitivity": _cmd_sensitivity,
    "influence": _cmd_influence,
    "provenance": _cmd_provenance,
    "frequentist": _cmd_frequentist,
    "cumulative": _cmd_cumulative,
    "update": _cmd_update,
    "sbc": _cmd_sbc,
    "data": _cmd_data,
    "priors": _cmd_priors,
    "bench": _cmd_bench,
    "design": _cmd_design,
    "subgroups": _cmd_subgroups,
    "warm": _cmd_warm,
}

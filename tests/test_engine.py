"""The compile-once / refit-many engine (``bayes_msc.engine.sampling``, ``bayes_msc.api``).

A model structure is compiled once per process; new prior hyperparameters and masked studies
are swapped in as data (nutpie's ``with_data``), so they must neither compile again nor be
silently ignored. A new prior *family* changes the graph and must compile. And the commands
that need no model must not import PyMC, pytensor or nutpie at all.

One module-scoped first fit pays the compile (~15-20 s on 2 cores) for all the re-fits here;
the prior-family test pays one more.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bayes_msc import api
from bayes_msc.engine import sampling
from bayes_msc.api import fit_spec, resolve_spec
from bayes_msc.evidence.register import load_register
from bayes_msc.models.mortality import build_mortality_model, mortality_inputs

ROOT = Path(__file__).resolve().parents[1]

# conftest.py already points the pytensor cache at the session's own directory; repeated here
# (setdefault: same value) so the subprocesses below inherit it even if this file runs alone.
os.environ.setdefault("BAYES_MSC_CACHE_DIR", str(ROOT / ".pytest_cache" / "bayes_msc"))

# Lanzoni 2021 (1/12 vs 7/12 deaths) is the register's strongest signal of benefit: without
# its data the pooled log OR must move up, toward 0.
STRONG_BENEFIT_STUDY = "lanzoni2021"


def compiles() -> int:
    return sampling.COMPILE_COUNT["nutpie"]


@contextlib.contextmanager
def engine_log():
    """The engine's log lines (as ``--verbose`` prints them) while the block runs."""
    records: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())

    logger = logging.getLogger("bayes_msc")
    handler, level = Collect(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    try:
        yield records
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


def mean(result, var: str = "log_or") -> float:
    return float(result.tree["posterior"][var].mean())


@pytest.fixture(scope="module")
def spec(quick_spec):
    return quick_spec.with_sampler(chains=2, draws=300, tune=300)


@pytest.fixture(scope="module")
def register():
    return load_register()


@pytest.fixture(scope="module")
def evidence(register, spec):
    return spec.outcome_type.build_evidence(register, spec)


@pytest.fixture(scope="module")
def first_fit(spec, register):
    """The default mortality analysis; compiles its structure unless this session already has."""
    return fit_spec(spec, register)


# -- 1. same structure, new values: no compile, different posterior ----------------------------


def test_tighter_effect_prior_refits_without_compiling_and_shrinks_log_or(first_fit, spec, register):
    before = compiles()
    # The library's own override path (what `--prior-param effect.sigma=0.1` does).
    tight = api.fit(spec, data=register, prior_params={"effect.sigma": 0.1})
    assert compiles() == before, "a new hyperparameter value must not compile the model again"
    assert tight.spec.priors.effect.sigma == 0.1
    assert tight.spec.priors.structure_key() == spec.priors.structure_key()

    default_mean, tight_mean = mean(first_fit), mean(tight)
    assert abs(default_mean) > 0.3, default_mean  # the data alone pull the log OR well away from 0
    # Normal(0, 0.1) on the log OR must pull it most of the way to 0; an ignored value would not.
    assert abs(tight_mean) < abs(default_mean) - 0.2, (default_mean, tight_mean)
    assert float(tight.tree["posterior"]["log_or"].std()) < 0.15


def test_masked_study_keeps_shapes_refits_without_compiling_and_loses_its_data(first_fit, spec, evidence):
    masked_evidence = evidence.masked({STRONG_BENEFIT_STUDY})
    full_inputs = mortality_inputs(evidence, spec.priors)
    masked_inputs = mortality_inputs(masked_evidence, spec.priors)
    assert masked_inputs.structure_key() == full_inputs.structure_key()
    assert masked_evidence.studies == evidence.studies

    before = compiles()
    masked = fit_spec(spec, evidence=masked_evidence)
    assert compiles() == before, "masking a study must not compile the model again"

    # The masked arms were sampled as n = deaths = 0: their log-likelihood is exactly 0.
    rows = [f"{STRONG_BENEFIT_STUDY}/msc", f"{STRONG_BENEFIT_STUDY}/control"]
    loglik = masked.tree["log_likelihood"]["deaths"].sel(exact_report=rows).values
    assert (loglik == 0.0).all()
    full_loglik = first_fit.tree["log_likelihood"]["deaths"].sel(exact_report=rows).values
    assert (full_loglik < 0.0).all()

    # Without its strongest evidence of benefit the pooled log OR moves toward 0 (posterior sd
    # ~0.27, MCSE of the mean ~0.02 at these draws; the shift is ~0.15).
    assert mean(masked) > mean(first_fit) + 0.08, (mean(first_fit), mean(masked))


def test_masking_a_partial_report_also_reuses_the_compiled_model(first_fit, spec, evidence):
    """Shi 2021 enters as a bound (0-1 deaths of 65): the partial-report arrays are masked too."""
    before = compiles()
    masked = fit_spec(spec, evidence=evidence.masked({"shi2021"}))
    assert compiles() == before
    partial = masked.tree["log_likelihood"]["deaths_partial"].sel(partial_report="shi2021/msc").values
    assert (partial == 0.0).all()
    assert (first_fit.tree["log_likelihood"]["deaths_partial"].sel(partial_report="shi2021/msc").values < 0).all()


def test_excluding_a_study_changes_shapes_so_the_compiled_model_refuses_it(first_fit, spec, register, evidence):
    """Why masking exists: dropping a study from the evidence set is a new structure."""
    full_inputs = mortality_inputs(evidence, spec.priors)
    before = compiles()
    compiled = sampling.compile_analysis(full_inputs, lambda i: build_mortality_model(i, spec.priors))
    assert compiles() == before  # cached since the first fit

    dropped_spec = spec.with_evidence(exclude_studies=(STRONG_BENEFIT_STUDY,))
    dropped_inputs = mortality_inputs(dropped_spec.outcome_type.build_evidence(register, dropped_spec), spec.priors)
    assert dropped_inputs.structure_key() != full_inputs.structure_key()
    with pytest.raises(ValueError, match="different structure"):
        compiled.with_inputs(dropped_inputs)
    # What the log line of the recompile would say, and that reuse finds no difference.
    # (the symmetric coding's centre weights, study x arm, are the first array to differ)
    k, arms = len(evidence.studies), len(evidence.arms)  # the register's included trials and their arms
    assert dropped_inputs.structure_difference(full_inputs) == f"shape of 'arm_centre': ({k}, {arms}) -> ({k - 1}, {arms - 2})"
    assert full_inputs.structure_difference(mortality_inputs(evidence.masked({STRONG_BENEFIT_STUDY}), spec.priors)) == ""


def test_refitting_the_original_settings_after_other_values_is_bit_identical(first_fit, spec, register, evidence):
    """Values swapped in for one fit do not leak into the next."""
    fit_spec(resolve_spec(spec, prior_params={"effect.sigma": 0.1}), register)
    fit_spec(spec, evidence=evidence.masked({STRONG_BENEFIT_STUDY}))
    before = compiles()
    again = fit_spec(spec, register)
    assert compiles() == before
    for var in ("log_or", "tau", "baseline_logit"):
        assert (again.tree["posterior"][var].values == first_fit.tree["posterior"][var].values).all(), var


# -- 2. a new prior family is a new structure: exactly one compile -----------------------------


def test_heterogeneity_family_change_compiles_once_then_its_values_are_data(first_fit, spec, register, evidence):
    turner_spec = resolve_spec(spec, priors=["turner2015_mortality"])
    assert spec.priors.heterogeneity.family == "halfnormal"
    assert turner_spec.priors.heterogeneity.family == "lognormal_tau2"
    turner_inputs = mortality_inputs(evidence, turner_spec.priors)
    # The family itself is part of the structure (not only the hyperparameter names, which
    # happen to differ here too: sigma vs mu, sigma).
    assert "heterogeneity:lognormal_tau2" in turner_inputs.structure.get("priors", ()), turner_inputs.structure
    key = turner_inputs.structure_key()
    assert key != mortality_inputs(evidence, spec.priors).structure_key()
    # Another test module may have compiled this structure earlier in the session; forget that
    # one entry so the compile is observed here (the default structure stays cached).
    sampling._CACHE.pop(key, None)

    before = compiles()
    with engine_log() as messages:
        turner = fit_spec(turner_spec, register)
    assert compiles() == before + 1, "a new prior family must compile exactly once"
    # The log says that it compiled, and why.
    assert any(m.startswith("compiling the mortality model") and "heterogeneity:lognormal_tau2" in m
               for m in messages), messages
    assert any(m.startswith("compiled in") for m in messages), messages
    # Turner's empirical prior (median tau ~0.14) pulls tau well below the half-normal(0.5) fit.
    assert mean(turner, "tau") < mean(first_fit, "tau") - 0.1, (mean(first_fit, "tau"), mean(turner, "tau"))

    # Same family, another hyperparameter (Turner's "any outcome" mu = -2.56, median tau ~0.28):
    # no compile, and a larger tau.
    with engine_log() as messages:
        wider = fit_spec(turner_spec.with_priors(turner_spec.priors.with_parameter("heterogeneity", "mu", -2.56)), register)
    assert compiles() == before + 1
    assert any("compiled already" in m for m in messages) and not any(m.startswith("compiling") for m in messages)
    assert mean(wider, "tau") > mean(turner, "tau") + 0.03, (mean(turner, "tau"), mean(wider, "tau"))


# -- 3. commands that need no model import no model libraries ------------------------------------

_PROBE = r"""
import json, runpy, sys
out, mode, *argv = sys.argv[1:]
code = 0
if mode == "import":
    import bayes_msc
else:  # exactly what `python -m bayes_msc ARGS` runs
    sys.argv = ["bayes_msc", *argv]
    try:
        runpy.run_module("bayes_msc", run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        code = exc.code
heavy = sorted(m for m in ("pymc", "pytensor", "nutpie") if m in sys.modules)
with open(out, "w") as handle:
    json.dump({"code": code, "heavy": heavy}, handle)
"""


@pytest.mark.parametrize(
    "args, expected_output",
    [
        (["import"], ""),
        (["cli", "--help"], "usage:"),
        (["cli", "data", "show"], "what enters and why"),
    ],
    ids=["import bayes_msc", "python -m bayes_msc --help", "python -m bayes_msc data show"],
)
def test_light_commands_do_not_import_pymc_pytensor_or_nutpie(tmp_path, args, expected_output):
    out = tmp_path / "probe.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, str(out), *args],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    probe = json.loads(out.read_text())
    assert probe["code"] in (0, None), done.stderr
    assert expected_output in done.stdout
    assert probe["heavy"] == [], f"{' '.join(args)} imported {probe['heavy']}"


def test_the_import_probe_does_see_heavy_imports(tmp_path):
    """Positive control: the probe reports a heavy import when one happens."""
    out = tmp_path / "probe.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run(
        [sys.executable, "-c", "import pytensor\n" + _PROBE, str(out), "import"],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "pytensor" in json.loads(out.read_text())["heavy"]


def test_refit_through_with_data_equals_a_fresh_compile(tmp_path):
    """Same spec, same seed: identical draws whether the model was compiled for these
    hyperparameters or compiled for others and given these through with_data (the starting
    point depends on the data, e.g. a half-normal's scale)."""
    import numpy as np

    import bayes_msc

    path = tmp_path / "estimates.csv"
    path.write_text("study,estimate,se\na,0.3,0.2\nb,-0.1,0.3\nc,0.5,0.25\nd,0.2,0.4\n")
    spec = (bayes_msc.load_spec("normal_normal").with_model(measure="log_ratio")
            .with_decision(benefit_direction="increase").with_sampler(chains=2, draws=200, tune=200, seed=5))
    wide = spec.with_priors(spec.priors.with_parameter("heterogeneity", "sigma", 1.0))
    sampling._CACHE.clear()
    bayes_msc.fit(spec, data=path)  # compiled for sigma 0.5
    before = sampling.COMPILE_COUNT["nutpie"]
    reused = bayes_msc.fit(wide, data=path)  # sigma 1.0 through with_data
    assert sampling.COMPILE_COUNT["nutpie"] == before
    sampling._CACHE.clear()
    fresh = bayes_msc.fit(wide, data=path)  # compiled for sigma 1.0
    np.testing.assert_array_equal(reused.posterior["tau"].values, fresh.posterior["tau"].values)


def test_new_values_keep_the_structure_and_integer_layout_is_part_of_it(evidence, spec):
    """Counts are data (float, one shared vector); indices are layout (compiled in)."""
    import numpy as np

    inputs = mortality_inputs(evidence, spec.priors)
    deaths = np.zeros(len(inputs.values["exact_deaths"]), dtype="int64")
    same = inputs.with_values(exact_deaths=deaths)
    assert same.values["exact_deaths"].dtype == np.float64
    assert same.structure_key() == inputs.structure_key()
    assert not np.array_equal(same.packed(), inputs.packed())
    swapped = inputs.with_values(arm_study=inputs.values["arm_study"][::-1])
    assert swapped.structure_key() != inputs.structure_key()
    assert "layout 'arm_study'" in swapped.structure_difference(inputs)
    with pytest.raises(KeyError, match="no model data named"):
        inputs.with_values(deaths_total=deaths)


def test_scalar_draws_read_from_the_arrow_trace_are_the_datatree_draws(first_fit, spec, evidence):
    """SBC reads its scalars straight from nutpie's trace; they must be the DataTree's numbers."""
    import numpy as np

    inputs = mortality_inputs(evidence, spec.priors)
    compiled = sampling.compile_analysis(inputs, lambda i: build_mortality_model(i, spec.priors))  # cached
    settings = spec.with_sampler(seed=77).sampler
    tree = compiled.sample(settings)
    draws, divergences = sampling.scalar_draws(compiled.sample(settings, raw_trace=True), ("log_or", "tau"))
    for name in ("log_or", "tau"):
        expected = tree["posterior"][name].transpose("chain", "draw").values
        assert draws[name].shape == expected.shape == (spec.sampler.chains, spec.sampler.draws)
        np.testing.assert_array_equal(draws[name], expected)
    assert divergences == int(tree["sample_stats"]["diverging"].sum())
    with pytest.raises(ValueError, match="not a scalar"):
        sampling.scalar_draws(compiled.sample(settings, raw_trace=True), ("study_log_or",))

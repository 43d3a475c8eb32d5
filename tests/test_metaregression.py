"""Meta-regression (model.covariates): against exact quadrature, coding, exclusions, hostile inputs.

Expected values come from computations that share nothing with the package's model code:

* normal-normal meta-regression on the BCG vaccine trials (Colditz et al., Clin Infect Dis
  1995; metafor's ``dat.bcg``), log risk ratios from the 2x2 counts, absolute latitude as the
  moderator: given tau the intercept and slope are conjugate normal, so their posterior
  moments, and tau's, are 1-D quadrature integrals over tau;
* binomial meta-regression on three trials of the embedded register with tau held at ~0 (a
  Half-normal(0.001) prior): exact 2-D grid quadrature over (intercept, slope), each trial's
  baseline integrated numerically per grid point (symmetric coding), or the conditional
  likelihood written with scipy's Fisher non-central hypergeometric distribution.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from scipy import stats
from scipy.special import expit

from bayes_msc.api import fit, load_data, resolve_spec
from bayes_msc.evidence.register import default_data_dir
from bayes_msc.io.errors import InputError

# dat.bcg: trial, tpos, tneg, cpos, cneg, ablat
BCG = [
    ("Aronson 1948", 4, 119, 11, 128, 44), ("Ferguson & Simes 1949", 6, 300, 29, 274, 55),
    ("Rosenthal 1960", 3, 228, 11, 209, 42), ("Hart & Sutherland 1977", 62, 13536, 248, 12619, 52),
    ("Frimodt-Moller 1973", 33, 5036, 47, 5761, 13), ("Stein & Aronson 1953", 180, 1361, 372, 1079, 44),
    ("Vandiviere 1973", 8, 2537, 10, 619, 19), ("TPT Madras 1980", 505, 87886, 499, 87892, 13),
    ("Coetzee & Berjak 1968", 29, 7470, 45, 7232, 27), ("Rosenthal 1961", 17, 1699, 65, 1600, 42),
    ("Comstock 1974", 186, 50448, 141, 27197, 18), ("Comstock & Webster 1969", 5, 2493, 3, 2338, 33),
    ("Comstock 1976", 27, 16886, 29, 17825, 33),
]


def _bcg_file(tmp_path: Path, extra: str = "") -> tuple[Path, np.ndarray, np.ndarray, np.ndarray]:
    rows = np.array([r[1:] for r in BCG], dtype=float)
    tpos, tneg, cpos, cneg, ablat = rows.T
    yi = np.log(tpos / (tpos + tneg)) - np.log(cpos / (cpos + cneg))
    vi = 1 / tpos - 1 / (tpos + tneg) + 1 / cpos - 1 / (cpos + cneg)
    path = tmp_path / "bcg.csv"
    lines = [f"study,estimate,se,ablat{extra and ',' + extra}"]
    for i, (name, *_rest) in enumerate(BCG):
        lines.append(f"{name},{float(yi[i])!r},{float(np.sqrt(vi[i]))!r},{ablat[i]:g}{extra and ',x'}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path, yi, vi, ablat


def _quadrature_normal_normal(y, v, x, mu_sd, beta_sd, tau_scale):
    """Posterior means and SDs of (mu, beta, tau): tau on a grid, (mu, beta) | tau conjugate."""
    design = np.column_stack([np.ones_like(x), x])
    prior_cov = np.diag([mu_sd ** 2, beta_sd ** 2])
    taus = np.linspace(0.0, 8 * tau_scale, 6001)
    log_post, means, second, thetas = [], [], [], []
    for tau in taus:
        w = 1.0 / (v + tau ** 2)
        precision = design.T @ (design * w[:, None]) + np.linalg.inv(prior_cov)
        cov = np.linalg.inv(precision)
        mean = cov @ (design.T @ (w * y))
        marginal = stats.multivariate_normal(np.zeros(len(y)), np.diag(v + tau ** 2) + design @ prior_cov @ design.T)
        log_post.append(marginal.logpdf(y) + stats.halfnorm(scale=tau_scale).logpdf(tau))
        means.append(mean)
        second.append(np.diag(cov) + mean ** 2)
        shrink = tau ** 2 / (tau ** 2 + v)  # E[theta_j | tau, mu, beta, y] is linear in (mu, beta)
        thetas.append(shrink * y + (1 - shrink) * (design @ mean))
    weight = np.exp(np.array(log_post) - max(log_post))
    weight /= np.trapezoid(weight, taus)
    means, second = np.array(means), np.array(second)
    m = np.array([np.trapezoid(weight * means[:, k], taus) for k in range(2)])
    s = np.sqrt(np.array([np.trapezoid(weight * second[:, k], taus) for k in range(2)]) - m ** 2)
    tau_mean = np.trapezoid(weight * taus, taus)
    tau_sd = np.sqrt(np.trapezoid(weight * taus ** 2, taus) - tau_mean ** 2)
    theta = np.trapezoid(weight[:, None] * np.array(thetas), taus, axis=0)
    return {"mu": (m[0], s[0]), "beta": (m[1], s[1]), "tau": (tau_mean, tau_sd), "theta": theta}


def _check(draws, expected_mean, expected_sd, what):
    import arviz_stats as azs

    mcse_mean = float(azs.mcse(draws, method="mean"))
    mcse_sd = float(azs.mcse(draws, method="sd"))
    mean, sd = float(draws.mean()), float(draws.std())
    assert abs(mean - expected_mean) < 4 * mcse_mean + 1e-3, (what, mean, expected_mean, mcse_mean)
    assert abs(sd - expected_sd) < 4 * mcse_sd + 1e-3, (what, sd, expected_sd, mcse_sd)


def test_normal_normal_meta_regression_matches_quadrature_on_bcg(tmp_path):
    path, yi, vi, ablat = _bcg_file(tmp_path)
    result = fit("normal_normal", data=path, measure="log_ratio", benefit_direction="decrease",
                 covariates=["ablat"], chains=4, draws=2000, seed=11)
    spec = result.spec
    assert spec.priors.covariate.describe() == "Normal(mu=0, sigma=0.5)"
    x = (ablat - ablat.mean()) / ablat.std(ddof=1)
    expected = _quadrature_normal_normal(yi, vi, x, spec.priors.effect.sigma, spec.priors.covariate.sigma,
                                         spec.priors.heterogeneity.sigma)
    post = result.posterior
    _check(post["mu"], *expected["mu"], "intercept")
    _check(post["covariate_effect"].sel(covariate_term="ablat"), *expected["beta"], "slope per SD")
    _check(post["tau"], *expected["tau"], "tau")
    # the study effects drawn after sampling carry the covariate term (exact conditional draws)
    import arviz_stats as azs

    for j, study in enumerate(post["study_effect"]["study"].values):
        draws = post["study_effect"].sel(study=study)
        assert abs(float(draws.mean()) - expected["theta"][j]) < 4 * float(azs.mcse(draws, method="mean")) + 1e-3, study
    # (c) the coding reported is the data's: centre = mean latitude, scale = its SD
    coding = result.covariates["coding"]["ablat"]
    assert coding["centre"] == pytest.approx(ablat.mean()) and coding["scale"] == pytest.approx(ablat.std(ddof=1))
    term = result.covariates["terms"]["ablat"]
    assert term["prob_below_zero"] > 0.95  # higher latitude: BCG protects more (metafor: slope -0.029 per degree)
    assert 0 < term["contraction"] <= 1 and term["prior_sd"] == pytest.approx(0.5)
    explained = result.covariates["heterogeneity_explained"]
    assert explained["share"] > 0.3 and explained["mcse"] > 0  # latitude explains much of tau^2 (metafor: 75.6%)
    summary = result.summary_dict()
    assert summary["covariates"]["ablat"]["prob_below_zero"] == term["prob_below_zero"]
    assert summary["covariate_model"]["coding"]["ablat"]["centre"] == coding["centre"]
    assert list(post["covariate_effect"].dims) == ["chain", "draw", "covariate_term"]


# -- the binomial model against exact quadrature ------------------------------------------------

TRIALS = ("lanzoni2021", "matthay2019", "bowdish2023")
YEARS = {"lanzoni2021": 2021, "matthay2019": 2019, "bowdish2023": 2023}


def _register_with_years(tmp_path: Path) -> Path:
    root = tmp_path / "reg"
    shutil.copytree(default_data_dir(), root)
    rows = "".join(f"{s},publication_year,{y},test fixture,primary,\n" for s, y in YEARS.items())
    (root / "covariates.csv").write_text("study_id,covariate,value,source,quality,notes\n" + rows, encoding="utf-8")
    return root


def _exact_binomial(evidence, x, likelihood, mu_sd, beta_sd, baseline_sd):
    """Posterior means and SDs of (mu, beta) by grid quadrature (tau = 0)."""
    mu = np.linspace(-3.5, 3.5, 281)
    beta = np.linspace(-2.5, 2.5, 201)
    M, B = np.meshgrid(mu, beta, indexing="ij")
    log_post = stats.norm(0, mu_sd).logpdf(M) + stats.norm(0, beta_sd).logpdf(B)
    arms = evidence.arms.set_index(["study_id", "arm_id"])
    a = np.linspace(-10, 10, 801)
    a_weight = stats.norm(0, baseline_sd).pdf(a) * (a[1] - a[0])
    for j, sid in enumerate(evidence.studies):
        rows = evidence.exact[evidence.exact["study_id"] == sid]
        treated = np.array([arms.loc[(sid, r.arm_id), "treated"] for r in rows.itertuples()])
        d1, n1 = rows["deaths"][treated == 1].sum(), rows["n"][treated == 1].sum()
        d0, n0 = rows["deaths"][treated == 0].sum(), rows["n"][treated == 0].sum()
        theta = M + B * x[j]
        if likelihood == "conditional":
            pmf = stats.nchypergeom_fisher(int(n1 + n0), int(n1), int(d1 + d0), np.exp(theta)).pmf(int(d1))
            log_post += np.log(pmf)
        else:  # the baseline integral depends on theta alone: on a fine theta grid, then interpolated
            grid = np.linspace(theta.min(), theta.max(), 4001)
            p1 = expit(a[None, :] + grid[:, None] / 2)
            p0 = expit(a[None, :] - grid[:, None] / 2)
            lik = stats.binom.pmf(d1, n1, p1) * stats.binom.pmf(d0, n0, p0)
            log_post += np.interp(theta, grid, np.log((lik * a_weight).sum(axis=-1)))
    w = np.exp(log_post - log_post.max())
    w /= w.sum()
    out = {}
    for name, grid in (("mu", M), ("beta", B)):
        m = float((w * grid).sum())
        out[name] = (m, float(np.sqrt((w * grid ** 2).sum() - m ** 2)))
    return out


@pytest.mark.parametrize("likelihood", ["symmetric", "conditional"])
def test_binomial_meta_regression_matches_exact_quadrature(tmp_path, likelihood):
    from bayes_msc.api import fit_spec

    root = _register_with_years(tmp_path)
    spec = resolve_spec("mortality", data=root, evidence="studies:" + ",".join(TRIALS), likelihood=likelihood,
                        covariates=["publication_year"], priors=["heterogeneity=halfnormal(sigma=0.001)"],
                        chains=4, draws=2000, seed=5)
    result = fit_spec(spec, load_data(spec, root), compare_designs=False)  # no refit without the covariate
    evidence = result.evidence
    assert set(evidence.studies) == set(TRIALS) and not evidence.partial
    years = np.array([YEARS[s] for s in evidence.studies], dtype=float)
    x = (years - years.mean()) / years.std(ddof=1)
    spec = result.spec
    expected = _exact_binomial(evidence, x, likelihood, spec.priors.effect.sigma, spec.priors.covariate.sigma,
                               spec.priors.baseline.sigma)
    _check(result.posterior["log_or"], *expected["mu"], "log OR at the centre")
    _check(result.posterior["covariate_effect"].sel(covariate_term="publication_year"), *expected["beta"], "slope")
    coding = result.covariates["coding"]["publication_year"]
    assert coding["centre"] == pytest.approx(2021.0) and coding["scale"] == pytest.approx(2.0)


# -- coding, exclusions and hostile inputs (no sampling) ------------------------------------------


def _inputs(spec, data=None):
    from bayes_msc.api import _evidence_and_inputs

    return _evidence_and_inputs(spec, load_data(spec, data))


def test_spec_hash_unchanged_without_covariates_and_changed_with_them():
    plain = resolve_spec("mortality")
    assert "covariates" not in plain.to_dict()["model"] and "covariate" not in plain.to_dict()["priors"]
    with_covariate = resolve_spec("mortality", covariates=["infusions"])
    assert with_covariate.to_dict()["model"]["covariates"] == ["infusions"]
    assert with_covariate.content_hash() != plain.content_hash()
    assert with_covariate.priors.names["covariate"] == "covariate_default"


def test_missing_covariate_excludes_the_study_with_the_reason(tmp_path):
    root = _register_with_years(tmp_path)
    spec = resolve_spec("mortality", data=root, covariates=["publication_year"])
    evidence, inputs = _inputs(spec, root)
    assert set(evidence.studies) == set(TRIALS)
    inclusion = evidence.inclusion.set_index("study_id")
    assert "publication_year not reported" in inclusion.loc["zhu2021", "reason"]
    assert inclusion.loc["zhu2021", "status"] == "excluded"
    x = inputs.values["covariate_matrix"][:, 0]
    years = np.array([YEARS[s] for s in evidence.studies], dtype=float)
    np.testing.assert_allclose(x, (years - years.mean()) / years.std(ddof=1))


def test_categorical_reference_is_the_first_declared_level_present():
    from bayes_msc.evidence.schema import COVARIATES_BY_NAME
    from bayes_msc.models.regression import covariate_design

    spec = resolve_spec("mortality", covariates=["cell_source"])
    evidence, inputs = _inputs(spec)
    design = covariate_design(evidence, ["cell_source"])
    register = load_data(spec, None)
    from bayes_msc.evidence.covariates import study_covariates

    values = study_covariates(register, ["cell_source"]).loc[list(evidence.studies), "cell_source"]
    declared = COVARIATES_BY_NAME["cell_source"].levels
    present = [lv for lv in declared if lv in set(values)]
    assert design.reference_levels["cell_source"] == present[0]
    for k, term in enumerate(design.terms):
        level = term.split("[")[1].rstrip("]")
        np.testing.assert_array_equal(design.matrix[:, k], (values == level).to_numpy(float))
    assert inputs.coords["covariate_term"] == design.terms


def test_control_risk_is_centred_on_observed_logits_and_refused_without_baselines():
    spec = resolve_spec("mortality", covariates=["control_risk"])
    evidence, inputs = _inputs(spec)
    exact = evidence.exact.merge(evidence.arms[["study_id", "arm_id", "treated"]], on=["study_id", "arm_id"])
    control = exact[exact["treated"] == 0].groupby("study_id")[["deaths", "n"]].sum()
    logits = np.log((control["deaths"] + 0.5) / (control["n"] - control["deaths"] + 0.5))
    assert float(inputs.values["control_risk_centre"]) == pytest.approx(logits.mean())
    assert float(inputs.values["control_risk_scale"]) == pytest.approx(logits.std(ddof=1))
    with pytest.raises(InputError, match="conditional likelihood has none"):
        resolve_spec("mortality", covariates=["control_risk"], likelihood="conditional")


@pytest.mark.parametrize(("options", "words"), [
    ({"covariates": ["height"]}, "unknown covariate 'height'"),
    ({"covariates": ["effect"]}, "is a prior role"),
    ({"covariates": ["1st"]}, "not a covariate name"),
    ({"covariates": "infusions"}, "expected a list of covariate names"),
])
def test_hostile_covariate_names_are_refused_before_any_data(options, words):
    with pytest.raises(InputError, match=words):
        resolve_spec("mortality", **options)


def test_small_study_is_refused_for_arm_level_oxygenation():
    with pytest.raises(InputError, match="small_study needs one contrast"):
        resolve_spec("oxygenation", covariates=["small_study"])


def test_one_level_among_included_studies_is_refused():
    spec = resolve_spec("mortality", evidence="studies:lanzoni2021,monsel2022,bowdish2023", covariates=["ards_cause"])
    with pytest.raises(InputError, match="takes one level"):
        _inputs(spec)


def test_covariate_missing_for_every_study_leaves_nothing_to_fit(tmp_path):
    root = tmp_path / "reg"
    shutil.copytree(default_data_dir(), root)
    (root / "covariates.csv").write_text("study_id,covariate,value,source,quality,notes\n", encoding="utf-8")
    spec = resolve_spec("mortality", data=root, covariates=["baseline_pf_ratio"])
    with pytest.raises(InputError, match="no study"):
        _inputs(spec, root)


def test_estimates_file_extra_columns_are_covariates_only_when_named(tmp_path):
    path, *_ = _bcg_file(tmp_path)
    spec = resolve_spec("normal_normal", data=path, measure="log_ratio", benefit_direction="decrease")
    with pytest.raises(InputError, match="unknown column.*--covariate ablat"):
        _inputs(spec, path)
    named = resolve_spec("normal_normal", data=path, measure="log_ratio", benefit_direction="decrease",
                         covariates=["ablat"])
    evidence, inputs = _inputs(named, path)
    assert inputs.values["covariate_matrix"].shape == (13, 1)
    missing = resolve_spec("normal_normal", data=path, measure="log_ratio", benefit_direction="decrease",
                           covariates=["ablat", "latitude"])
    with pytest.raises(InputError, match="no column 'latitude'"):
        _inputs(missing, path)


def test_file_column_kinds_and_mean_difference_prior_must_be_stated(tmp_path):
    from bayes_msc.models.regression import file_column_values

    assert file_column_values(["1", "", "2.5"]) == [1.0, None, 2.5]
    assert file_column_values(["a", "1", ""]) == ["a", "1", None]
    path = tmp_path / "md.csv"
    path.write_text("study,estimate,se,arm\ns1,1,1,a\ns2,2,1,b\ns3,3,1,a\ns4,0,1,a\n", encoding="utf-8")
    spec = resolve_spec("normal_normal", data=path, measure="log_ratio", benefit_direction="increase",
                        covariates=["arm"])
    from bayes_msc.models.regression import covariate_design

    evidence, _ = _inputs(spec, path)
    design = covariate_design(evidence, ["arm"])
    assert design.reference_levels == {"arm": "a"} and design.terms == ("arm[b]",)  # the most common level
    with pytest.raises(InputError, match="covariate"):
        resolve_spec("normal_normal", data=path, measure="mean_difference", unit="mmHg", benefit_direction="increase",
                     covariates=["arm"], priors=["effect=normal(mu=0,sigma=50)",
                                                 "heterogeneity=halfnormal(sigma=25)"])


def test_spec_file_covariates_and_model_shapes_with_dose_response_and_exchangeable_baselines(tmp_path):
    from bayes_msc.spec import load_spec

    text = (Path(__file__).resolve().parents[1] / "models" / "mortality.toml").read_text(encoding="utf-8")
    path = tmp_path / "regression.toml"
    path.write_text(text.replace("\n[model]\n", '\n[model]\ncovariates = ["infusions", "control_risk"]\n', 1), encoding="utf-8")
    spec = load_spec(path)
    assert spec.model.covariates == ("infusions", "control_risk") and spec.priors.covariate is not None
    for variant in (spec.with_model(dose_response="loglinear"), spec.with_model(baselines="exchangeable")):
        _, inputs = _inputs(variant)
        model = variant.outcome_type.build_model(inputs, variant.priors)
        names = {v.name for v in model.free_RVs}
        assert "covariate_effect" in names
        assert model["covariate_effect"].type.shape == (2,) or model.dim_lengths["covariate_term"].eval() == 2
        assert "covariate_shift" in {v.name for v in model.deterministics}
    with pytest.raises(InputError, match="model.covariates"):
        load_spec(path).with_model(likelihood="conditional")

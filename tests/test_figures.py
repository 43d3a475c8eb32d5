"""Figures for manuscripts: files in each format, the forest plot's numbers, orders and weights.

Expected values come from outside the code under test: the events/n strings from the
evidence's own counts, the weights from statsmodels' random-effects weights at a fixed τ and
from an explicit loop over the posterior draws, the orders from the estimates file and numpy
quantiles of the posterior.
"""

from __future__ import annotations

import sys
import types
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

HOSTILE = "<script>alert(1)</script>"
FIT = dict(chains=2, draws=300, tune=300, seed=5)
NN = dict(measure="mean_difference", unit="mmHg", benefit_direction="increase",
          priors=["effect=normal(mu=0,sigma=50)", "heterogeneity=halfnormal(sigma=20)"])
# study, estimate, se, label, year: estimates in mmHg; the years out of order on purpose
ESTIMATES = [
    ("a", 12.0, 8.0, "Alpha 2019", 2019),
    ("b", 20.0, 10.0, f"Beta {HOSTILE}", 2015),
    ("c", 5.0, 9.0, "gamma $x$ & co", 2021),
    ("d", -3.0, 6.0, "Delta", 2017),
    ("e", 30.0, 15.0, "Epsilon", 2023),
]
CLI_NN = ["--measure", "mean_difference", "--unit", "mmHg", "--benefit-direction", "increase",
          "--prior", "effect=normal(mu=0,sigma=50)", "--prior", "heterogeneity=halfnormal(sigma=20)",
          "--chains", "2", "--draws", "300", "--tune", "300"]


def write_estimates(path: Path, rows=ESTIMATES) -> Path:
    frame = pd.DataFrame(rows, columns=["study", "estimate", "se", "label", "year"])
    frame.to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def estimates_file(tmp_path_factory) -> Path:
    return write_estimates(tmp_path_factory.mktemp("estimates") / "estimates.csv")


@pytest.fixture(scope="module")
def nn_fit(estimates_file):
    import bayes_msc

    return bayes_msc.fit("normal_normal", data=str(estimates_file), **NN, **FIT)


def svg_text(path: Path) -> str:
    """All text of an SVG file, parsed as XML (so the file must be well-formed)."""
    root = ET.parse(path).getroot()
    return " ".join(t for t in root.itertext())


# -- files --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["forest", "prior"])
def test_each_format_is_a_valid_file(nn_fit, estimates_file, tmp_path, kind):
    import bayes_msc

    svg = tmp_path / f"{kind}.svg"
    fig = bayes_msc.figure(nn_fit, kind, svg, data=str(estimates_file))
    from matplotlib.figure import Figure

    assert isinstance(fig, Figure)
    text = svg_text(svg)
    if kind == "forest":
        for _, _, _, label, _ in ESTIMATES:
            assert label in text  # escaped in the file, the label itself once parsed
        assert HOSTILE not in svg.read_text(encoding="utf-8")
    else:
        assert "τ" in text
    png = bayes_msc.figure(nn_fit, kind, tmp_path / f"{kind}.png") and tmp_path / f"{kind}.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pdf = tmp_path / f"{kind}.pdf"
    bayes_msc.figure(nn_fit, kind, pdf)
    assert pdf.read_bytes()[:5] == b"%PDF-" and b"%%EOF" in pdf.read_bytes()[-64:]


def test_svg_and_pdf_files_are_reproducible(nn_fit, tmp_path):
    import bayes_msc

    for suffix in ("svg", "pdf"):
        first, second = tmp_path / f"a.{suffix}", tmp_path / f"b.{suffix}"
        bayes_msc.figure(nn_fit, "forest", first)
        bayes_msc.figure(nn_fit, "forest", second)
        assert first.read_bytes() == second.read_bytes()


def test_bad_suffix_and_requests_are_refused_before_fitting(estimates_file, tmp_path, monkeypatch, capsys):
    import bayes_msc.api
    from bayes_msc.cli import main

    def no_fit(*args, **kwargs):
        raise AssertionError("fitted before refusing")

    monkeypatch.setattr(bayes_msc.api, "fit", no_fit)
    base = ["normal_normal", "--data", str(estimates_file), *CLI_NN]
    cases = [
        (["figure", "forest", *base, "--out", str(tmp_path / "f.jpg")], ".jpg"),
        (["figure", "forest", *base, "--out", str(tmp_path / "f")], "no suffix"),
        (["figure", "funnelx", *base, "--out", str(tmp_path / "f.svg")], "unknown figure 'funnelx'"),
        (["figure", "dose", *base, "--out", str(tmp_path / "f.svg")], "needs a dose-response fit"),
        (["figure", "prior", *base, "--sort", "year", "--out", str(tmp_path / "f.svg")], "--sort applies to the forest"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, err
    assert list(tmp_path.iterdir()) == []


def test_library_refuses_a_bad_suffix_before_drawing(nn_fit, tmp_path, monkeypatch):
    import bayes_msc
    from bayes_msc.io.errors import InputError
    from bayes_msc.report import manuscript

    drawn = []
    monkeypatch.setitem(manuscript.FIGURES, "forest", manuscript.FigureKind(lambda r, *, sort=None: drawn.append(1)))
    with pytest.raises(InputError, match=r"\.svg, \.png, \.pdf"):
        bayes_msc.figure(nn_fit, "forest", tmp_path / "forest.eps")
    assert drawn == [] and list(tmp_path.iterdir()) == []


def test_cli_writes_the_figure(estimates_file, tmp_path, capsys):
    from bayes_msc.cli import main

    out = tmp_path / "forest.svg"
    assert main(["figure", "forest", "normal_normal", "--data", str(estimates_file), *CLI_NN,
                 "--sort", "year", "--out", str(out)]) == 0
    assert str(out) in capsys.readouterr().out
    text = svg_text(out)
    positions = [text.index(label) for _, _, _, label, _ in sorted(ESTIMATES, key=lambda r: r[4])]
    assert positions == sorted(positions)  # drawn oldest first


# -- the forest plot's numbers ------------------------------------------------------------------


def test_forest_columns_are_the_arm_counts(small_mortality_fit, tmp_path):
    """events/n per arm, summed over a study's cell arms, straight from the evidence's counts."""
    import bayes_msc
    from bayes_msc.report.forest import forest_table

    result = small_mortality_fit
    ev = result.evidence
    exact = ev.exact.merge(ev.arms[["study_id", "arm_id", "treated"]], on=["study_id", "arm_id"])
    partial = {r.study_id for r in ev.partial}
    expected = {}
    for sid, part in exact.groupby("study_id"):
        if sid in partial:
            continue
        t, c = part[part.treated == 1], part[part.treated == 0]
        expected[sid] = (f"{t.deaths.sum()}/{t.n.sum()}", f"{c.deaths.sum()}/{c.n.sum()}")
    assert len(expected) >= 5
    table = forest_table(result).set_index("study_id")
    for sid, (cells, control) in expected.items():
        assert (table.loc[sid, "events_cells"], table.loc[sid, "events_control"]) == (cells, control), sid
    out = tmp_path / "forest.svg"
    bayes_msc.figure(result, "forest", out)
    text = svg_text(out)
    for cells, control in expected.values():
        assert cells in text and control in text
    # the observed OR column: exp of the Wald interval of log(a d / (b c)) for a study without a zero cell
    sid = next(s for s in expected if "0/" not in "".join(expected[s]))
    t = exact[(exact.study_id == sid) & (exact.treated == 1)]
    c = exact[(exact.study_id == sid) & (exact.treated == 0)]
    a, n1, cc, n2 = t.deaths.sum(), t.n.sum(), c.deaths.sum(), c.n.sum()
    log_or = np.log(a * (n2 - cc) / ((n1 - a) * cc))
    assert table.loc[sid, "obs_est_low"] == pytest.approx(log_or, rel=1e-12)
    assert f"{np.exp(log_or):.2f} [" in text


def test_forest_estimate_column_is_the_file(nn_fit):
    from bayes_msc.report.forest import forest_table

    table = forest_table(nn_fit).set_index("study_id")
    for sid, est, se, _, _ in ESTIMATES:
        assert table.loc[sid, "estimate_text"] == f"{est:.1f} ± {se:.1f}".replace("-", "\u2212")  # a true minus
        assert table.loc[sid, "obs_lower"] == pytest.approx(est - 1.959963984540054 * se, rel=1e-12)


def test_sort_orders_follow_the_data(nn_fit, estimates_file):
    from bayes_msc.report.forest import forest_table

    post = nn_fit.posterior["study_effect"]
    medians = {sid: float(np.median(post.sel(study=sid).values)) for sid, *_ in ESTIMATES}
    by = {
        "year": [r[0] for r in sorted(ESTIMATES, key=lambda r: r[4])],
        "effect": sorted(medians, key=medians.get),
        "label": [r[0] for r in sorted(ESTIMATES, key=lambda r: r[3].casefold())],
        None: [r[0] for r in ESTIMATES],
    }
    for sort, expected in by.items():
        assert list(forest_table(nn_fit, sort=sort, data=str(estimates_file))["study_id"]) == expected, sort
    weights = forest_table(nn_fit, sort="weight")
    assert list(weights["weight"]) == sorted(weights["weight"], reverse=True)
    assert weights["study_id"].iloc[0] == "d"  # the smallest SE


def test_sort_by_year_refuses_missing_years(small_mortality_fit, monkeypatch):
    """Register years come from the publication_year covariate; a missing one is named."""
    from bayes_msc.io.errors import InputError
    from bayes_msc.report.forest import forest_table

    result = small_mortality_fit
    studies = list(result.evidence.studies)
    years = {sid: 2010 + i for i, sid in enumerate(reversed(studies))}
    missing = studies[2]
    fake = types.ModuleType("bayes_msc.evidence.covariates")

    def study_covariates(register, names):
        frame = pd.DataFrame({"publication_year": [years[s] if s != missing else np.nan for s in studies]},
                             index=pd.Index(studies, name="study_id"))
        return frame[list(names)]

    fake.study_covariates = study_covariates
    monkeypatch.setitem(sys.modules, "bayes_msc.evidence.covariates", fake)
    labels = result.evidence.inclusion.set_index("study_id")["label"]
    with pytest.raises(InputError, match=f"no year for {labels[missing]}") as caught:
        forest_table(result, sort="year")
    assert sum(str(labels[s]) in str(caught.value) for s in studies) == 1
    missing = None
    assert list(forest_table(result, sort="year")["study_id"]) == list(reversed(studies))


# -- the weights --------------------------------------------------------------------------------


def test_weights_at_a_fixed_tau_are_the_random_effects_weights():
    """At one τ the weight is statsmodels' relative random-effects weight at that τ²."""
    from statsmodels.stats.meta_analysis import combine_effects

    from bayes_msc.report.forest import precision_weights

    est = np.array([r[1] for r in ESTIMATES])
    se = np.array([r[2] for r in ESTIMATES])
    fitted = combine_effects(est, se**2, method_re="dl")
    tau2 = float(fitted.tau2)
    assert tau2 > 0
    expected = np.asarray(fitted.weights_rel_re, float)
    np.testing.assert_allclose(precision_weights(se, np.full(10, np.sqrt(tau2))), expected, rtol=1e-12)
    fixed = np.asarray(fitted.weights_rel_fe, float)  # τ = 0: inverse-variance weights
    np.testing.assert_allclose(precision_weights(se, [0.0]), fixed, rtol=1e-12)
    with_gap = precision_weights(np.r_[se[:2], np.nan, se[2:]], [0.0])
    assert np.isnan(with_gap[2]) and np.nansum(with_gap) == pytest.approx(1.0)


def test_forest_weights_average_over_the_posterior_of_tau(nn_fit):
    from bayes_msc.report.forest import forest_table

    tau = nn_fit.posterior["tau"].values.ravel()
    se = {r[0]: r[2] for r in ESTIMATES}
    shares = {sid: 0.0 for sid in se}
    for t in tau:  # explicit loop: share of precision at each draw, then the mean
        total = sum(1.0 / (s * s + t * t) for s in se.values())
        for sid, s in se.items():
            shares[sid] += (1.0 / (s * s + t * t)) / total / len(tau)
    table = forest_table(nn_fit).set_index("study_id")
    for sid, share in shares.items():
        assert table.loc[sid, "weight"] == pytest.approx(share, rel=1e-9)


# -- the registry -------------------------------------------------------------------------------


def test_a_kind_registers_in_one_line(nn_fit, tmp_path, monkeypatch):
    import bayes_msc
    from bayes_msc.report import manuscript

    def studies_figure(result, *, sort=None):
        from matplotlib.figure import Figure

        fig = Figure()
        fig.add_subplot().set_title(f"{len(result.evidence.studies)} studies, sort {sort}")
        return fig

    monkeypatch.setattr(manuscript, "FIGURES", dict(manuscript.FIGURES))
    manuscript.register_figure("studies", studies_figure)
    assert "studies" in manuscript.figure_kinds()
    bayes_msc.figure(nn_fit, "studies", tmp_path / "s.svg", sort="label")
    assert "5 studies, sort label" in svg_text(tmp_path / "s.svg")


# -- dose and prior -----------------------------------------------------------------------------


def test_prior_figure_draws_the_stated_priors(nn_fit):
    """The prior curves are the priors the fit states (scipy, from the spec's words), the
    posterior curves integrate to about one over the drawn grid."""
    from scipy import stats

    import bayes_msc

    fig = bayes_msc.figure(nn_fit, "prior")
    effect_ax, tau_ax = fig.axes[:2]
    for ax, prior in ((effect_ax, stats.norm(0, 50)), (tau_ax, stats.halfnorm(scale=20))):
        prior_line, posterior_line = ax.lines[:2]
        x = prior_line.get_xdata()
        np.testing.assert_allclose(prior_line.get_ydata(), prior.pdf(x), rtol=1e-12)
        area = np.trapezoid(posterior_line.get_ydata(), posterior_line.get_xdata())
        assert 0.9 < area < 1.1


def test_dose_figure_draws_the_fitted_curve(small_mortality_fit, tmp_path):
    import bayes_msc
    from bayes_msc.io.errors import InputError

    result = bayes_msc.fit("mortality", dose_response="loglinear", chains=2, draws=200, tune=200, seed=3)
    out = tmp_path / "dose.svg"
    fig = bayes_msc.figure(result, "dose", out)
    bands = result.dose_response.bands()
    median = next(line for line in fig.axes[0].lines if len(line.get_xdata()) == len(bands))
    np.testing.assert_allclose(median.get_xdata(), bands["dose"])
    np.testing.assert_allclose(median.get_ydata(), bands["median"])
    assert "odds ratio" in svg_text(out)
    with pytest.raises(InputError, match="needs a dose-response fit"):
        bayes_msc.figure(small_mortality_fit, "dose")  # a fit without a dose-response form


def test_an_estimates_files_year_is_a_whole_number(tmp_path):
    from bayes_msc.evidence.estimates import load_estimates
    from bayes_msc.io.errors import InputError

    good = load_estimates(write_estimates(tmp_path / "good.csv"))
    assert list(good.rows["year"]) == [r[4] for r in ESTIMATES]
    bad = tmp_path / "bad.csv"
    bad.write_text("study,estimate,se,year\na,1.0,0.5,2019\nb,2.0,0.5,20x9\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"bad\.csv.*row 2.*year|year.*20x9") as caught:
        load_estimates(bad)
    assert "year" in str(caught.value) and "2" in str(caught.value)
    missing = tmp_path / "missing.csv"
    missing.write_text("study,estimate,se,year\na,1.0,0.5,2019\nb,2.0,0.5,\n", encoding="utf-8")
    assert load_estimates(missing).rows["year"].isna().tolist() == [False, True]

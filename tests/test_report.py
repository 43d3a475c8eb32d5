"""The HTML report: one self-contained file, rendered in a real (headless) browser.

The browser tests prove three things about a report built from a register whose study label
contains ``<script>alert(1)</script>``: the page draws something (the screenshot is not
blank), it makes no network request (Chromium's own net log, plus a static check of every
``src``/``href``), and the label is shown as text (the browser's DOM holds it escaped and no
script element exists). A positive control checks that the net-log check does catch a page
that fetches something.
"""

from __future__ import annotations

import html
import json
import math
import re
import shutil
import subprocess
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import html_tags, skip_or_fail

ROOT = Path(__file__).resolve().parents[1]
INJECTED = "<script>alert(1)</script>"
INJECTED_STUDY = "lanzoni2021"
FIT = dict(chains=2, draws=300, tune=300, seed=11)
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-extensions",
    "--disable-default-apps", "--no-pings", "--hide-scrollbars",
)


# -- fixtures ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chromium() -> str:
    path = shutil.which("chromium") or ("/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
    if path is None:
        skip_or_fail("chromium is not installed (Debian: apt-get install chromium); the browser tests need it")
    return path


@pytest.fixture(scope="module")
def injected_register(relabelled_register) -> Path:
    """A copy of the embedded register with a script tag in one included study's label."""
    return relabelled_register(INJECTED_STUDY, f"Lanzoni 2021 {INJECTED}")


@pytest.fixture(scope="module")
def fitted(injected_register):
    import bayes_msc

    register = bayes_msc.load_register(injected_register)
    return bayes_msc.fit("mortality", data=register, **FIT), register


@pytest.fixture(scope="module")
def report_file(fitted, tmp_path_factory) -> Path:
    from bayes_msc.report import write_report

    result, register = fitted
    return write_report(result, tmp_path_factory.mktemp("report") / "mortality.html", register=register)


@pytest.fixture(scope="module")
def report_html(report_file) -> str:
    return report_file.read_text(encoding="utf-8")


# -- browser helpers -----------------------------------------------------------------------


def run_chromium(chromium: str, tmp: Path, page: Path, *extra: str) -> tuple[subprocess.CompletedProcess, Path]:
    """Run headless Chromium on ``page`` with its net log on; returns (process, net-log path)."""
    profile = tmp / f"profile-{len(list(tmp.glob('profile-*')))}"
    netlog = profile.with_suffix(".netlog.json")
    command = [chromium, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--log-net-log={netlog}",
               "--enable-logging", "--v=1", *extra, page.resolve().as_uri()]
    done = subprocess.run(command, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    return done, netlog


def page_requests(netlog: Path) -> list[str]:
    """URLs the page asked the network stack for, from Chromium's net log.

    Chromium's browser process makes its own background requests (component updates,
    account checks) even with background networking disabled; those carry the initiator
    "not an origin" and no file:// isolation key, and are not the page's. Every other URL
    request counts — including any a file:// page makes.
    """
    text = netlog.read_text(encoding="utf-8", errors="replace").rstrip().rstrip(",")
    try:
        log = json.loads(text)
    except json.JSONDecodeError:  # the browser may exit before closing the JSON arrays
        log = json.loads(text + "]}")
    start_job = log["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    urls = []
    for event in log["events"]:
        params = event.get("params") or {}
        if event.get("type") != start_job or "url" not in params:
            continue
        page_context = "file://" in str(params.get("network_isolation_key", "")) or "file://" in str(
            params.get("site_for_cookies", ""))
        browser_internal = params.get("initiator") == "not an origin" and not page_context
        if not browser_internal:
            urls.append(params["url"])
    return urls


def network_urls(urls: list[str]) -> list[str]:
    return [u for u in urls if re.match(r"^(https?|wss?|ftp):", u, re.I) or u.startswith("//")]


class DomScan(HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.scripts = 0
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "script":
            self.scripts += 1

    def handle_data(self, data):
        self.text.append(data)


# -- the browser tests ---------------------------------------------------------------------


def test_report_renders_in_chromium_without_network_and_escapes_data(chromium, report_file, tmp_path):
    # 1. it draws: the screenshot is neither blank nor a single colour
    shot = tmp_path / "shot.png"
    _, netlog = run_chromium(chromium, tmp_path, report_file, f"--screenshot={shot}", "--window-size=1280,2000")
    assert shot.is_file() and shot.stat().st_size > 10_000
    from PIL import Image

    image = np.asarray(Image.open(shot).convert("RGB"), dtype=np.int16)
    assert image.shape[:2] == (2000, 1280)
    non_white = (np.abs(255 - image).sum(axis=2) > 30).mean()
    colours = len(np.unique(image.reshape(-1, 3), axis=0))
    assert non_white > 0.03, f"page looks blank: {non_white:.1%} non-white pixels"
    assert colours > 50, f"only {colours} distinct colours"

    # 2. no network: the page asked for no http(s)/ws URL
    assert network_urls(page_requests(netlog)) == []

    # 3. the injected label is text in the browser's DOM, never a script element
    dumped, netlog_dom = run_chromium(chromium, tmp_path, report_file, "--dump-dom")
    dom = dumped.stdout
    assert "<main>" in dom and "The answer" in dom, dom[:500]
    scan = DomScan()
    scan.feed(dom)
    assert scan.scripts == 0
    assert INJECTED in "".join(scan.text)  # visible as literal text
    assert html.escape(INJECTED, quote=False) in dom
    assert INJECTED not in dom
    assert network_urls(page_requests(netlog_dom)) == []


def test_net_log_check_catches_a_page_that_fetches(chromium, tmp_path):
    """Positive control: the same check on a page with remote images must report them."""
    page = tmp_path / "probe.html"
    page.write_text('<!DOCTYPE html><html><body><p>probe</p><img src="http://127.0.0.1:9/probe.png">'
                    '<img src="https://example.invalid/x.png"></body></html>', encoding="utf-8")
    _, netlog = run_chromium(chromium, tmp_path, page, f"--screenshot={tmp_path / 'probe.png'}",
                             "--window-size=400,300")
    found = network_urls(page_requests(netlog))
    assert "http://127.0.0.1:9/probe.png" in found
    assert "https://example.invalid/x.png" in found


# -- static checks -------------------------------------------------------------------------


def test_html_references_nothing_outside_the_file(report_html):
    references = re.findall(r"""\b(?:src|href|xlink:href|action|poster)\s*=\s*["']?([^"'\s>]*)""", report_html, re.I)
    assert references, "expected in-page links (#anchors)"
    for ref in references:
        assert ref.startswith(("#", "data:")), ref
    assert not re.search(r"url\(\s*['\"]?\s*(https?:|//)", report_html, re.I)
    assert "@import" not in report_html
    for tag in ("<script", "<link", "<iframe", "<object", "<embed"):
        assert tag not in report_html.lower()
    assert INJECTED not in report_html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in report_html


def test_report_sections_show_the_numbers(fitted, report_html):
    from bayes_msc.report.html import pct

    result, register = fitted
    d = result.decisions
    text = html.unescape(report_html)
    # 1. the answer, in plain words and numbers
    assert pct(d.prob_benefit.prob) in text
    assert pct(d.prob_meaningful.prob) in text
    assert "95% equal-tailed" in text
    assert f"{d.pooled_effect.median:.2f}" in text and f"{d.predictive_effect.median:.2f}" in text
    assert d.get("nnt")["text"] in text and pct(d.get("baseline_risk")) in text
    # 2. every study in the register, in or out with its reason; derived numbers with sources
    for label in register.studies["label"]:
        assert label in text, label
    assert "withdrawn registration" in text and "no control arm" in text
    assert "Survival 91% at day 31" in text and "PMC9217728 Table 2 (SAE count in Shi 2021)" in text
    # sources name the publication; the curators' working notes and seed-file badges stay out
    for note in ("EVIDENCE.md", "Seed says", "Looked (", "NOT FOUND", 'class="badge seed"'):
        assert note not in text, note
    # 3. forest plot: observed (0.5 correction, display only), shrunken, pooled, prediction
    assert "0.5 added to every cell" in text and "partial report" in text
    assert "study_log_or" in text and "log_or_new" in text
    # 4. no dose-response section for a pooled-effect analysis
    assert 'id="dose-response"' not in report_html
    # 5. prior vs posterior of mu and tau
    assert "HalfNormal(sigma=0.5)" in text and "between-trial SD τ" in text
    # 6. diagnostics: every check with its verdict, rank plot, predictive check
    for check in result.diagnostics.checks:
        assert check.name in text
    assert "Rank plots" in text and "Posterior predictive check" in text
    # 7. methods: spec, hashes, seed, references
    assert result.spec.content_hash() in text and result.evidence.register_hash in text
    assert str(result.spec.sampler.seed) in text
    assert "Vehtari" in text and "Friede" in text
    # the baseline prior is described for the coding fitted (symmetric: the arms' midpoint)
    assert "each trial's baseline α_j, the midpoint of its control-arm and cell-arm log-odds" in text
    assert "control-arm log-odds α_j" not in text
    # tau's interval ends carry their Monte Carlo error
    assert f"MCSE of the ends {d.tau.mcse_lower * 1:.3f} and {d.tau.mcse_upper:.3f}" in text
    # every figure has a text alternative and a caption
    assert report_html.count("<figure") == report_html.count("<figcaption>") >= 4
    assert report_html.count('role="img" aria-label="') == report_html.count("<figure")
    # laptop width and print
    assert "max-width" in report_html and "@media print" in report_html


# -- the pieces ----------------------------------------------------------------------------


def test_empirical_log_or_uses_correction_only_with_a_zero_cell():
    from bayes_msc.report.mortality import empirical_log_or

    est, se, corrected = empirical_log_or(1, 12, 7, 12)
    assert not corrected
    assert est == pytest.approx(math.log(1 * 5 / (11 * 7)))
    assert se == pytest.approx(math.sqrt(1 + 1 / 11 + 1 / 7 + 1 / 5))
    est, _, corrected = empirical_log_or(0, 12, 3, 29)
    assert corrected
    assert est == pytest.approx(math.log(0.5 * 26.5 / (12.5 * 3.5)))


def test_forest_rows_and_posterior_predictive(fitted):
    from bayes_msc.report.mortality import forest_rows

    result, _ = fitted
    rows = forest_rows(result).set_index("study_id")
    assert list(rows.index) == list(result.evidence.studies)
    assert rows.loc["shi2021", "obs_kind"] == "partial"  # msc deaths only bounded (0-1)
    assert rows.loc["bowdish2023", "obs_kind"] == "exact"
    assert rows.loc["bowdish2023", "obs_est_low"] == pytest.approx(math.log(42 * 63 / (70 * 47)))
    assert (rows["post_lower"] < rows["post_median"]).all() and (rows["post_median"] < rows["post_upper"]).all()

    ppc = result.outcome.posterior_predictive(result)
    assert len(ppc) == len(result.evidence.exact) + len(result.evidence.partial)
    assert ((ppc["pred_q025"] >= 0) & (ppc["pred_q975"] <= ppc["n"])).all()
    assert set(ppc["kind"]) == {"exact", "bounded"}
    again = result.outcome.posterior_predictive(result)
    pd.testing.assert_frame_equal(ppc, again)  # seeded


def test_dose_response_section_only_for_dose_response_fits(fitted):
    from bayes_msc.report.sections import ReportContext, dose_response_section

    result, register = fitted
    assert dose_response_section(ReportContext(result=result, register=register), ylabel="odds ratio of death") is None
    emax = bayes_msc_fit_emax(register)
    shown = dose_response_section(ReportContext(result=emax, register=register), ylabel="odds ratio of death",
                                  reference=1.0)
    table = emax.dose_response.table.set_index("dose")
    assert "<svg" in shown and "Form: emax" in shown
    # the grid table shows the fit's own numbers
    assert f"{table.loc[2.0, 'prob_benefit']:.3f} ± {table.loc[2.0, 'prob_benefit_mcse']:.3f}" in shown
    assert "log-normal with median 80 kg" in shown  # the body-weight assumption is stated


def bayes_msc_fit_emax(register):
    import bayes_msc

    return bayes_msc.fit("mortality", data=register, dose_response="emax", **FIT)


def test_sensitivity_table_is_escaped(fitted):
    from bayes_msc.report import render_report

    result, register = fitted
    table = pd.DataFrame({"prior": ["default", "<b>sceptical</b>"], "P(OR < 1)": [0.95, 0.81]})
    page = render_report(result, register=register, sensitivity=table)
    assert "&lt;b&gt;sceptical&lt;/b&gt;" in page and "<b>sceptical</b>" not in page
    assert "0.81" in page


def test_an_outcome_without_a_layout_gets_the_generic_report(fitted, tmp_path, monkeypatch):
    from bayes_msc.report import write_report
    from bayes_msc.report.presentations import PRESENTATIONS

    result, register = fitted
    monkeypatch.delitem(PRESENTATIONS, "mortality")  # as if mortality had no presentation of its own
    page = write_report(result, tmp_path / "r.html", register=register).read_text(encoding="utf-8")
    anchors = re.findall(r'<section id="([^"]+)"', page)
    assert anchors[:3] == ["answer", "forest", "studies"] and "methods" in anchors
    assert "flow" not in anchors and "evidence" not in anchors  # the mortality layout's own sections
    assert "P(OR &lt; 1)" in page and "42/112" in page  # its measure's words, events/n per arm
    assert INJECTED not in page and html.escape(INJECTED, quote=False) in page


def test_a_failed_report_leaves_the_file_untouched(fitted, tmp_path):
    from bayes_msc.io.errors import InputError
    from bayes_msc.report import write_report

    result, _ = fitted
    target = tmp_path / "r.html"
    target.write_text("previous", encoding="utf-8")
    with pytest.raises(InputError, match="not the one this result was fitted on"):
        write_report(result, target)  # the embedded register, not the fit's
    assert target.read_text(encoding="utf-8") == "previous"  # untouched
    assert [p.name for p in tmp_path.iterdir()] == ["r.html"]  # no temp file left


def test_report_refuses_another_register(fitted):
    from bayes_msc.io.errors import InputError
    from bayes_msc.report import render_report

    result, _ = fitted
    with pytest.raises(InputError, match="not the one this result was fitted on"):
        render_report(result)  # the embedded register, not the injected copy


def test_cli_report_and_fit_report(injected_register, tmp_path, monkeypatch, capsys):
    from bayes_msc.cli import main

    monkeypatch.chdir(tmp_path)
    options = ["--data", str(injected_register), "--chains", "2", "--draws", "200", "--tune", "200"]
    out = tmp_path / "custom" / "report.html"
    assert main(["report", "mortality", *options, "--output", str(out)]) == 0
    assert out.is_file() and "<figure" in out.read_text(encoding="utf-8")
    assert str(out) in capsys.readouterr().out

    assert main(["fit", "mortality", *options, "--report"]) == 0
    default = tmp_path / "reports" / "mortality.html"
    assert default.is_file()
    assert not list(tmp_path.rglob(".*.tmp"))


def test_every_section_of_a_mortality_report_with_the_next_trial_keeps_markup_as_text(fitted):
    """A study label carrying markup, through every section of a mortality report with the
    next trial in it: no section gains an element or attribute from it, and it is shown whole."""
    from bayes_msc.design import design
    from bayes_msc.design.plan import DesignSettings
    from bayes_msc.report import render_report

    result, register = fitted
    page = render_report(result, register=register, design=design(result, DesignSettings(n_grid=(50,), refit=False)))
    sections = page.split("<section")[1:]
    assert len(sections) >= 6 and any('id="next-trial"' in s for s in sections)


    shown = 0
    for chunk in sections:
        parsed = html_tags("<section" + chunk)
        assert "script" not in {t for t, _ in parsed.tags}, chunk[:80]
        assert not [n for _, a in parsed.tags for n in a if n.startswith("on")], chunk[:80]
        shown += "".join(parsed.text).count(f"Lanzoni 2021 {INJECTED}")
    assert shown >= 3
    assert INJECTED not in page


# -- every outcome has a report: normal-normal from an estimates file ------------------------------

NN_OPTIONS = ["--measure", "mean_difference", "--unit", "mmHg", "--benefit-direction", "increase",
              "--prior", "effect=normal(mu=0,sigma=50)", "--prior", "heterogeneity=halfnormal(sigma=20)",
              "--chains", "2", "--draws", "300", "--tune", "300", "--seed", "3"]


@pytest.fixture(scope="module")
def normal_normal_report(tmp_path_factory) -> Path:
    """``report normal_normal --data estimates.csv`` with a script tag in a study label."""
    from bayes_msc.cli import main

    folder = tmp_path_factory.mktemp("normal_normal")
    estimates = folder / "estimates.csv"
    pd.DataFrame({"study": ["a", "b", "c", "d"], "estimate": [12.0, 20.0, 5.0, -3.0], "se": [8.0, 10.0, 9.0, 6.0],
                  "label": ["Alpha 2019", f"Beta {INJECTED}", "Gamma & co", "Delta"]}).to_csv(estimates, index=False)
    out = folder / "r.html"
    assert main(["report", "normal_normal", "--data", str(estimates), *NN_OPTIONS, "--out", str(out)]) == 0
    return out


def test_normal_normal_report_renders_in_chromium(chromium, normal_normal_report, tmp_path):
    page = normal_normal_report.read_text(encoding="utf-8")
    assert "<script" not in page.lower() and INJECTED not in page
    # it loads and draws, with no console message (an error would be logged as CONSOLE)
    shot = tmp_path / "shot.png"
    done, netlog = run_chromium(chromium, tmp_path, normal_normal_report, f"--screenshot={shot}",
                                "--window-size=1280,1600", "--enable-logging=stderr", "--v=0")
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    assert console == []
    from PIL import Image

    image = np.asarray(Image.open(shot).convert("RGB"), dtype=np.int16)
    assert (np.abs(255 - image).sum(axis=2) > 30).mean() > 0.03
    assert network_urls(page_requests(netlog)) == []
    # the answer and the forest plot are in the browser's DOM; the label is text
    dumped, _ = run_chromium(chromium, tmp_path, normal_normal_report, "--dump-dom")
    dom = dumped.stdout
    assert "The answer" in dom and "P(benefit)" in dom
    assert re.search(r'<figure id="fig-forest">.*?<svg', dom, re.S)
    scan = DomScan()
    scan.feed(dom)
    assert scan.scripts == 0
    text = "".join(scan.text)
    assert f"Beta {INJECTED}" in text and "Gamma & co" in text
    assert INJECTED not in dom


def test_console_check_catches_a_page_that_logs(chromium, tmp_path):
    """Positive control: a page with a script error shows in the CONSOLE lines the test reads."""
    page = tmp_path / "probe.html"
    page.write_text("<!DOCTYPE html><html><body><p>x</p><script>undefinedFunction();</script></body></html>",
                    encoding="utf-8")
    done, _ = run_chromium(chromium, tmp_path, page, "--dump-dom", "--enable-logging=stderr", "--v=0")
    assert any(":CONSOLE" in line and "undefinedFunction" in line for line in done.stderr.splitlines())

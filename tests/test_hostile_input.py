"""Hostile and careless input (issue 15): every case exits 0 or exits 2 with one line naming the
file (or option) and the field; no traceback, no crash, nothing written where it should not be.

The CLI runs in-process (``bayes_msc.cli.main``): a subprocess per case would cost seconds.
Only a few tests sample, with small draws; everything else stops in validation. The
property-based tests (hypothesis) corrupt registers and specs cell by cell and field by field.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import shutil
import stat
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bayes_msc.cli import main

ROOT = Path(__file__).resolve().parents[1]
SPEC_TEXT = (ROOT / "models" / "mortality.toml").read_text(encoding="utf-8")


# -- helpers ---------------------------------------------------------------------------------


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str, *fragments: str) -> str:
    assert code == 2, err
    assert "Traceback" not in err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("bayes_msc: error: "), lines[0]
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])
    return lines[0]


def read_rows(path: Path) -> tuple[list[str], list[dict]]:
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames), list(reader)


def write_rows(path: Path, header: list[str], rows: list[dict]) -> None:
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=header)
    writer.writeheader()
    writer.writerows(rows)
    path.write_text(buffer.getvalue(), encoding="utf-8", newline="")


def set_cell(path: Path, row: int, field: str, value: str) -> None:
    header, rows = read_rows(path)
    rows[row - 1][field] = value
    write_rows(path, header, rows)


def row_of(path: Path, **match: str) -> int:
    _, rows = read_rows(path)
    return next(i for i, r in enumerate(rows, start=1) if all(r[k] == v for k, v in match.items()))


def copy_register(target: Path) -> Path:
    shutil.copytree(ROOT / "data", target, ignore=shutil.ignore_patterns("*.md"))
    return target


def spec_file(tmp_path: Path, text: str = SPEC_TEXT, name: str = "spec.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


@pytest.fixture
def no_fit(monkeypatch):
    """Fail the test if any model is fitted: a bad setting must stop the run before the work."""
    import bayes_msc.api

    def refuse(*args, **kwargs):
        raise AssertionError("the run started fitting before refusing its settings")

    monkeypatch.setattr(bayes_msc.api, "fit_spec", refuse)
    import bayes_msc.analyses.sbc

    monkeypatch.setattr(bayes_msc.analyses.sbc, "run_replicates", refuse)


# -- the register ---------------------------------------------------------------------------


BOWDISH_MSC = {"study_id": "bowdish2023", "arm_id": "msc"}


@pytest.mark.parametrize(
    "table, match, field, value, fragments",
    [
        # absurd counts: an OverflowError before; now the schema's bound
        ("arms.csv", BOWDISH_MSC, "n", "1" + "0" * 30, ("arms.csv", "field 'n'", "out of range")),
        ("arms.csv", BOWDISH_MSC, "n", "1e30", ("arms.csv", "field 'n'", "out of range")),
        # Python's int() reads "4_7" as 47
        ("arms.csv", BOWDISH_MSC, "n", "4_7", ("arms.csv", "field 'n'", "not a whole number")),
        ("arms.csv", BOWDISH_MSC, "n", "12.5", ("arms.csv", "field 'n'", "not a whole number")),
        ("arms.csv", BOWDISH_MSC, "n", "0x10", ("arms.csv", "field 'n'", "not a whole number")),
        ("arms.csv", BOWDISH_MSC, "n", "inf", ("arms.csv", "field 'n'", "not a finite number")),
        ("mortality.csv", {"study_id": "bowdish2023", "arms": "msc"}, "deaths", "1e30", ("field 'deaths'", "out of range")),
        ("studies.csv", {"study_id": "bowdish2023"}, "n_total", "9" * 25, ("field 'n_total'", "out of range")),
        ("oxygenation.csv", {"study_id": "lanzoni2021"}, "estimate", "1e300", ("field 'estimate'", "out of range")),
        # a spread so small the likelihood's precision is infinite: the sampler could not start
        ("oxygenation.csv", {"study_id": "monsel2022", "quantity": "baseline", "arm": "msc"}, "sd", "1e-300",
         ("field 'sd'", "too small")),
        # a zero-width IQR gives an SD of 0 (RuntimeError: All initialization points failed)
        ("oxygenation.csv", {"study_id": "monsel2022", "quantity": "change_from_baseline", "arm": "msc"}, "q1", "93.3",
         ("field 'q3'", "below q3")),
    ],
)
def test_bad_numbers_in_the_register_are_refused_at_file_row_field(
    tmp_path, capsys, table, match, field, value, fragments
):
    register = copy_register(tmp_path / "register")
    row = row_of(register / table, **match)
    set_cell(register / table, row, field, value)
    code, _, err = run(capsys, "data", "check", str(register))
    assert_one_line_error(code, err, *fragments, f"row {row}")


def test_a_whole_number_written_as_12_0_is_12(tmp_path, capsys):
    from bayes_msc.evidence.register import load_register

    register = copy_register(tmp_path / "register")
    row = row_of(register / "arms.csv", **BOWDISH_MSC)
    _, rows = read_rows(register / "arms.csv")
    n = rows[row - 1]["n"]
    set_cell(register / "arms.csv", row, "n", f"{n}.0")  # what pandas writes for a column with gaps
    code, _, err = run(capsys, "data", "check", str(register))
    assert code == 0, err
    arms = load_register(register).arms.set_index(["study_id", "arm_id"])
    assert arms.loc[("bowdish2023", "msc"), "n"] == int(n)


def test_the_notes_column_may_be_left_out(tmp_path, capsys):
    from bayes_msc.evidence.register import load_register

    register = copy_register(tmp_path / "register")
    for name in ("arms.csv", "mortality.csv", "studies.csv"):
        header, rows = read_rows(register / name)
        header.remove("notes")
        write_rows(register / name, header, [{k: v for k, v in r.items() if k != "notes"} for r in rows])
    code, _, err = run(capsys, "data", "check", str(register))
    assert code == 0, err
    assert load_register(register).arms["notes"].isna().all()


def test_an_arm_listed_twice_in_a_mortality_row_is_refused(tmp_path, capsys):
    """msc+msc counted the 12-patient arm twice: 20 deaths passed and the pooled OR moved."""
    register = copy_register(tmp_path / "register")
    path = register / "mortality.csv"
    row = row_of(path, study_id="lanzoni2021", arms="msc", day="31")
    set_cell(path, row, "arms", "msc+msc")
    set_cell(path, row, "deaths", "20")
    code, _, err = run(capsys, "data", "check", str(register))
    assert_one_line_error(code, err, "mortality.csv", f"row {row}", "field 'arms'", "'msc' is listed twice")


def test_a_column_named_twice_in_the_header_is_refused(tmp_path, capsys):
    register = copy_register(tmp_path / "register")
    path = register / "arms.csv"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    lines = [lines[0].rstrip("\r\n") + ",n\r\n"] + [line.rstrip("\r\n") + ",999\r\n" for line in lines[1:]]
    path.write_text("".join(lines), encoding="utf-8", newline="")
    code, _, err = run(capsys, "data", "check", str(register))
    assert_one_line_error(code, err, "arms.csv", "field 'n'", "twice")


def test_a_doses_table_that_is_a_folder_is_refused(tmp_path, capsys):
    register = copy_register(tmp_path / "register")
    (register / "doses.csv").unlink()
    (register / "doses.csv").mkdir()
    code, _, err = run(capsys, "data", "check", str(register))
    assert_one_line_error(code, err, "doses.csv", "not a file")


def test_a_register_file_that_is_not_utf8_is_refused(tmp_path, capsys):
    register = copy_register(tmp_path / "register")
    (register / "arms.csv").write_bytes((register / "arms.csv").read_bytes() + b"\xff\xfe,\n")
    code, _, err = run(capsys, "data", "check", str(register))
    assert_one_line_error(code, err, "arms.csv", "not UTF-8")


@pytest.mark.parametrize("separator", ["\u2028", "\u0085", "\u2029", "\x0c", "\x1c"])
def test_line_separators_inside_a_cell_keep_the_row_numbers_right(tmp_path, capsys, separator):
    """str.splitlines() broke a row at these; the csv module keeps them in the cell."""
    register = copy_register(tmp_path / "register")
    path = register / "arms.csv"
    set_cell(path, 1, "label", f"UC{separator}MSC")
    bad = row_of(path, **BOWDISH_MSC)
    set_cell(path, bad, "n", "forty")
    code, _, err = run(capsys, "data", "check", str(register))
    assert_one_line_error(code, err, "arms.csv", f"row {bad},", "field 'n'")


def test_control_characters_in_a_label_reach_the_terminal_escaped(tmp_path, capsys):
    register = copy_register(tmp_path / "register")
    path = register / "studies.csv"
    row = row_of(path, study_id="bowdish2023")
    fake = "\x1b[2J\x1b[HALL CHECKS PASSED\u202e"
    set_cell(path, row, "label", f"Bowdish{fake}")
    code, out, err = run(capsys, "data", "show", str(register))
    assert code == 0, err
    assert "\x1b" not in out and "\u202e" not in out
    assert "Bowdish\\x1b[2J\\x1b[HALL CHECKS PASSED\\u202e" in out


def test_printable_leaves_ordinary_text_alone():
    from bayes_msc.io.terminal import printable

    text = "Zarrabi 2023 — 10⁶/kg, P ≤ 0.05\n\tindented"
    assert printable(text) == text
    assert printable("a\x07b\x85c") == "a\\x07b\\x85c"


# -- estimates files (normal-normal) -----------------------------------------------------------


@pytest.mark.parametrize(
    "estimate, se, field",
    [("1e300", "1", "estimate"), ("0.1", "1e300", "se"), ("0.1", "1e-300", "se"), ("-1e300", "0.2", "estimate"),
     ("0.1", "nan", "se"), ("1_000", "0.2", "estimate")],
)
def test_extreme_estimates_are_refused_before_the_sampler(tmp_path, capsys, no_fit, estimate, se, field):
    """Finite but extreme estimates or SEs crashed the sampler (a segmentation fault)."""
    path = tmp_path / "estimates.csv"
    path.write_text(f"study,estimate,se\na,0.1,0.2\nb,{estimate},{se}\nc,-0.3,0.25\n", encoding="utf-8")
    code, _, err = run(capsys, "fit", "normal_normal", "--data", str(path), "--measure", "log_ratio",
                       "--benefit-direction", "increase")
    assert_one_line_error(code, err, "estimates.csv", "row 2", f"field '{field}'")


# -- specs ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "old, new, fragments",
    [
        ('effect = "default"', "effect = { family = \"normal\", mu = 0.0, sigma = true }", ("priors.effect", "sigma", "True")),
        ('effect = "default"', "effect = { family = \"normal\", mu = 0.0, sigma = \"1.5\" }", ("priors.effect", "sigma", "'1.5'")),
        ('effect = "default"', "effect = { family = \"normal\", mu = 0.0, sigma = -1.0 }", ("priors.effect", "sigma", "> 0")),
        ('effect = "default"', "effect = { family = \"normal\", mu = 0.0, sigma = 0.0 }", ("priors.effect", "sigma", "> 0")),
        ('effect = "default"', "effect = { family = \"normal\", mu = 0.0, sigma = inf }", ("priors.effect", "sigma", "finite")),
        ('"msc_unspecified"]', '"msc_unspecified", "umbilical_chord"]',
         ("field 'evidence.product_classes'", "umbilical_chord", "known: umbilical_cord")),
        ('dose_response = "none"', 'dose_response = "none"\ndose_grid = ["a", 1.0]', ("field 'model.dose_grid'", "'a'")),
        ('dose_response = "none"', 'dose_response = "none"\ndose_grid = [true]', ("field 'model.dose_grid'",)),
        ('dose_response = "none"', 'dose_response = "emax"\nbody_weight_kg = inf', ("field 'model.body_weight_kg'",)),
        ('dose_response = "none"', 'dose_response = "emax"\nbody_weight_kg = 1e300', ("field 'model.body_weight_kg'",)),
        ('dose_response = "none"', 'dose_response = "none"\nreference_dose = nan', ("field 'model.reference_dose'",)),
        ("timepoint_window_days = [28, 31]", "timepoint_window_days = [true, 31]", ("field 'evidence.timepoint_window_days'",)),
        ("chains = 4", "chains = 1000000000000000000000000000000", ("field 'sampler.chains'",)),
        ("chains = 4", "chains = true", ("field 'sampler.chains'",)),
        ("seed = 20261122", "seed = -1", ("field 'sampler.seed'",)),
        # the mortality family's own settings (bayes_msc.models.settings), checked by its table
        ('likelihood = "symmetric"', 'likelihood = "exact"', ("field 'model.likelihood'", "'exact'", "known: arm")),
        ('likelihood = "symmetric"', 'likelihood = 3', ("field 'model.likelihood'", "expected str")),
        ('likelihood = "symmetric"', 'likelihood = "conditional"\nbaselines = "exchangeable"',
         ("field 'model.baselines'", "conditional likelihood has no baselines")),
        ('likelihood = "symmetric"', 'likelihood = "arm"\nbaselines = "shared"', ("field 'model.baselines'", "'shared'")),
        ('nonrandomised = "bias"', 'nonrandomised = "bias"\nlikelihood_ = 1', ("field 'model.likelihood_'", "unknown key")),
        ("power_prior_weight = 0.5", "power_prior_weight = 1.5", ("field 'model.power_prior_weight'", "[0, 1]")),
        ('nonrandomised = "bias"', 'nonrandomised = "weights"', ("field 'model.nonrandomised'", "'weights'")),
        ('nonrandomised = "bias"', 'nonrandomised = "bias"\nmeasure = "smd"', ("field 'model.measure'", "unknown key")),
        ("baseline_risk = 0.427", "baseline_risk = nan", ("field 'decision.baseline_risk'",)),
        ('name = "mortality"', 'name = "../../x"', ("field 'name'", "plain name")),
        ('name = "mortality"', 'name = "/tmp/x"', ("field 'name'", "plain name")),
        ('name = "mortality"', 'name = "a\\u0000b"', ("field 'name'", "plain name")),
        ('name = "mortality"', 'name = ".hidden"', ("field 'name'", "plain name")),
        ('title = "All-cause mortality with mesenchymal stromal cells vs control in ARDS"', "title = 3", ("field 'title'",)),
    ],
)
def test_bad_spec_values_name_the_spec_file_and_field(tmp_path, capsys, no_fit, old, new, fragments):
    assert old in SPEC_TEXT
    path = spec_file(tmp_path, SPEC_TEXT.replace(old, new, 1))
    code, _, err = run(capsys, "fit", str(path))
    assert_one_line_error(code, err, str(path), *fragments)


def test_a_spec_that_is_not_utf8_is_refused(tmp_path, capsys, no_fit):
    path = tmp_path / "latin1.toml"
    path.write_bytes(SPEC_TEXT.replace("Röver", "R\xf6ver").encode("latin-1", errors="replace"))
    code, _, err = run(capsys, "fit", str(path))
    assert_one_line_error(code, err, str(path), "not UTF-8")


def test_output_paths_from_a_spec_name_stay_in_their_folder():
    from bayes_msc.io.fileio import safe_file_name

    for hostile in ("../../x", "/etc/passwd", "a\0b", "..", "", "C:\\x", "reports/../../y"):
        name = safe_file_name(hostile)
        assert name and "/" not in name and "\\" not in name and "\0" not in name and not name.startswith(".")
        assert (Path("reports") / f"{name}.html").resolve().parent == Path("reports").resolve()
    assert safe_file_name("mortality") == "mortality"


# -- options --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv, fragments",
    [
        (("fit", "mortality", "--seed", "abc"), ("--seed", "'abc'")),
        (("fit", "mortality", "--chains", "0"), ("--chains", "at least 1")),
        (("fit", "mortality", "--seed", "4_7"), ("--seed", "'4_7' is not a whole number")),
        (("fit", "mortality", "--clinically-meaningful", "0_8"), ("--clinically-meaningful", "'0_8' is not a number")),
        (("fit", "mortality", "--draws", "-5"), ("--draws",)),
        (("fit", "mortality", "--target-accept", "1.5"), ("--target-accept", "[0.5, 1)")),
        (("fit", "mortality", "--target-accept", "nan"), ("--target-accept",)),
        (("fit", "mortality", "--clinically-meaningful", "inf"), ("--clinically-meaningful",)),
        (("fit", "mortality", "--prior-param", "effect.sigma=inf"), ("--prior-param",)),
        (("fit", "mortality", "--prior-param", "effect.sigma=-1"), ("--prior-param", "effect.sigma", "> 0")),
        (("fit", "mortality", "--nosuch"), ("unrecognized arguments: --nosuch",)),
        (("sbc", "mortality", "--chunk-size", "0"), ("--chunk-size", "at least 1")),
        (("sbc", "mortality", "--thin", "0"), ("--thin", "at least 1")),
        (("sbc", "mortality", "--thin", "100000"), ("--thin", "keeps 1 of", "at least 100")),
        (("sbc", "mortality", "--draws", "10", "--chains", "1", "--thin", "1"), ("--thin", "keeps 10 of")),
        (("sbc", "mortality", "--n", "3"), ("--n", "at least 10")),
        (("report", "mortality", "--draws", "1", "--chains", "1"), ("--draws", "at least 100 posterior draws")),
        (("fit", "mortality", "--draws", "20", "--chains", "4", "--report"), ("--draws", "got 80")),
        (("influence", "mortality", "--draws", "1", "--chains", "1"), ("--draws", "PSIS-LOO")),
        (("compare", "mortality", "--draws", "1", "--chains", "1"), ("--draws", "PSIS-LOO")),
        (("sensitivity", "mortality", "--draws", "50", "--chains", "1"), ("--draws", "power-scaling")),
        (("nosuchcommand",), ("invalid choice",)),
    ],
)
def test_bad_options_are_one_line_naming_the_option(capsys, no_fit, argv, fragments):
    code, _, err = run(capsys, *argv)
    assert_one_line_error(code, err, *fragments)


# -- output locations, checked before any work ----------------------------------------------


def _read_only(monkeypatch, folder: Path) -> None:
    """Make ``folder`` unwritable. Root ignores permission bits, so the check's view of the
    folder is also narrowed (the check asks os.access, which is what it would see)."""
    folder.chmod(stat.S_IRUSR | stat.S_IXUSR)
    real = os.access

    def access(path, mode, *args, **kwargs):
        if Path(path).resolve() == folder.resolve() and mode & os.W_OK:
            return False
        return real(path, mode, *args, **kwargs)

    monkeypatch.setattr(os, "access", access)


@pytest.mark.parametrize(
    "case",
    ["out is a file", "out under a file", "out read-only", "report output is a folder", "report output read-only",
     "report flag read-only", "sbc out is a folder", "cache is a file", "cache has a comma", "cache read-only"],
)
def test_unusable_output_locations_fail_before_any_work(tmp_path, capsys, monkeypatch, no_fit, case):
    monkeypatch.chdir(tmp_path)
    blocker = tmp_path / "a_file"
    blocker.write_text("keep me", encoding="utf-8")
    locked = tmp_path / "locked"
    locked.mkdir()
    argv, option = {
        "out is a file": (("fit", "mortality", "--out", str(blocker)), "--out"),
        "out under a file": (("fit", "mortality", "--out", str(blocker / "sub")), "--out"),
        "out read-only": (("fit", "mortality", "--out", str(locked / "results")), "--out"),
        "report output is a folder": (("report", "mortality", "--output", str(locked)), "--output"),
        "report output read-only": (("report", "mortality", "--output", str(locked / "r.html")), "--output"),
        "report flag read-only": (("fit", "mortality", "--report"), "--report"),
        "sbc out is a folder": (("sbc", "mortality", "--out", str(locked)), "--out"),
        "cache is a file": (("fit", "mortality"), "BAYES_MSC_CACHE_DIR"),
        "cache has a comma": (("fit", "mortality"), "BAYES_MSC_CACHE_DIR"),
        "cache read-only": (("fit", "mortality"), "BAYES_MSC_CACHE_DIR"),
    }[case]
    if case == "report flag read-only":
        (tmp_path / "reports").mkdir()
        _read_only(monkeypatch, tmp_path / "reports")
    if "read-only" in case and case != "report flag read-only":
        _read_only(monkeypatch, locked if "cache" not in case else locked)
    if "cache" in case:  # the test session's PYTENSOR_FLAGS choose a folder, which BAYES_MSC_CACHE_DIR then defers to
        monkeypatch.delenv("PYTENSOR_FLAGS", raising=False)
    if case == "cache is a file":
        monkeypatch.setenv("BAYES_MSC_CACHE_DIR", str(blocker))
    if case == "cache has a comma":
        monkeypatch.setenv("BAYES_MSC_CACHE_DIR", str(tmp_path / "a,b"))
    if case == "cache read-only":
        monkeypatch.setenv("BAYES_MSC_CACHE_DIR", str(locked / "cache"))
    before = files_under(tmp_path)
    code, _, err = run(capsys, *argv)
    assert_one_line_error(code, err, option)
    assert files_under(tmp_path) == before and blocker.read_text(encoding="utf-8") == "keep me"
    locked.chmod(0o755)


def test_an_empty_or_truncated_posterior_names_its_path(tmp_path):
    from bayes_msc.io.errors import InputError
    from bayes_msc.results import load_result

    for content in (b"", b"\x89HDF\r\n\x1a\n" + b"\0" * 40):
        (tmp_path / "posterior.nc").write_bytes(content)
        with pytest.raises(InputError) as caught:
            load_result(tmp_path)
        assert str(tmp_path / "posterior.nc") in str(caught.value) and "\n" not in str(caught.value)


# -- the one atomic writer --------------------------------------------------------------------


def test_atomic_writes_get_the_permissions_of_a_normal_file(tmp_path):
    from bayes_msc.io.fileio import write_atomic

    old = os.umask(0o022)
    try:
        text = write_atomic(tmp_path / "a.json", "{}")
        data = write_atomic(tmp_path / "b.bin", b"\0\1")
        called = write_atomic(tmp_path / "c.txt", lambda p: p.write_text("x", encoding="utf-8"))
        os.umask(0o077)
        private = write_atomic(tmp_path / "d.txt", "secret")
    finally:
        os.umask(old)
    for path in (text, data, called):
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, oct(path.stat().st_mode)
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert (tmp_path / "b.bin").read_bytes() == b"\0\1" and (tmp_path / "c.txt").read_text() == "x"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.bin", "c.txt", "d.txt"]  # no temp left


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    from bayes_msc.io.fileio import write_atomic

    target = write_atomic(tmp_path / "r.html", "old")

    def half_then_fail(path):
        path.write_text("half", encoding="utf-8")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError):
        write_atomic(target, half_then_fail)
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["r.html"]


# -- fits that must work, and interrupts ------------------------------------------------------


def test_one_chain_of_one_draw_fits_and_says_rhat_is_not_computable(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    old = os.umask(0o022)
    try:
        code, out, err = run(capsys, "fit", "mortality", "--chains", "1", "--draws", "1", "--tune", "100",
                             "--out", "results", "--studies")  # --studies: every diagnostic, each with its reason
    finally:
        os.umask(old)
    assert code == 0, err
    assert "Traceback" not in err
    assert "R-hat not computable" in out and "FAIL R-hat" in out
    assert "MCSE" in out.split("pooled odds ratio")[1].splitlines()[0]  # the median's MCSE is shown
    for name in ("posterior.nc", "summary.json"):  # mkstemp's 0600 used to leak through
        assert stat.S_IMODE((tmp_path / "results" / name).stat().st_mode) == 0o644
    summary = json.loads((tmp_path / "results" / "summary.json").read_text())
    rhat = next(c for c in summary["diagnostics"]["checks"] if c["name"] == "R-hat")
    assert rhat["value"] is None and not rhat["passed"]


def test_one_chain_with_target_accept_fits(capsys):
    code, out, err = run(capsys, "fit", "mortality", "--chains", "1", "--draws", "200", "--tune", "200",
                         "--target-accept", "0.99", "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["sampler"]["chains"] == 1 and summary["sampler"]["target_accept"] == 0.99
    checks = {c["name"]: c for c in summary["diagnostics"]["checks"]}
    assert checks["R-hat"]["value"] is None and "not computable" in checks["R-hat"]["detail"]  # needs 2 chains
    assert checks["bulk ESS"]["value"] > 0 and checks["divergences"]["value"] is not None


def test_ctrl_c_during_sampling_exits_130_without_writing(tmp_path, capsys, monkeypatch):
    """nutpie turns Ctrl-C into a silently truncated trace; the run must stop instead."""
    import sys

    import nutpie  # noqa: F401

    nutpie_sample = sys.modules["nutpie.sample"]  # the module (nutpie.sample is also the function)

    cancelled = []

    def interrupted(self, *args, **kwargs):
        raise KeyboardInterrupt

    original_cancel = nutpie_sample._BackgroundSampler.cancel

    def cancel(self):
        cancelled.append(True)
        original_cancel(self)

    monkeypatch.setattr(nutpie_sample._BackgroundSampler, "wait", interrupted)
    monkeypatch.setattr(nutpie_sample._BackgroundSampler, "cancel", cancel)
    code, out, err = run(capsys, "fit", "mortality", "--draws", "200", "--tune", "200", "--out", str(tmp_path / "r"))
    assert code == 130 and "Traceback" not in err and "interrupted" in err
    assert cancelled and not (tmp_path / "r").exists()


STATED = ("--measure", "log_ratio", "--benefit-direction", "increase")  # what normal_normal estimates are


def test_normal_normal_evidence_printout_has_no_empty_quality_label(tmp_path, capsys):
    path = tmp_path / "estimates.csv"
    path.write_text("study,estimate,se\na,0.1,0.2\nb,-0.2,0.3\nc,0.05,0.25\n", encoding="utf-8")
    code, out, err = run(capsys, "fit", "normal_normal", "--data", str(path), "--draws", "200", "--tune", "200",
                         "--measure", "log_ratio", "--benefit-direction", "increase", "--studies")
    assert code == 0, err
    evidence = out.split("\nEvidence\n")[1]
    assert "contributes estimate: 0.1 (SE 0.2)" in evidence and "quality" not in evidence


# -- SBC journals belong to one register -------------------------------------------------------


def test_sbc_journal_names_carry_the_register_hash(tmp_path):
    from bayes_msc.analyses.sbc import journal_path
    from bayes_msc.spec import load_spec

    spec = load_spec("mortality")
    out = tmp_path / "mortality.sbc.json"
    one = journal_path(out, spec, "a" * 64, n=200, thin=5)
    other = journal_path(out, spec, "b" * 64, n=200, thin=5)
    assert one != other and "a" * 12 in one.name and "b" * 12 in other.name
    assert one.parent == out.parent
    # ... and the SBC's own sampler settings: rows drawn with another warm-up are not resumed
    short = journal_path(out, spec, "a" * 64, n=200, thin=None, sampler={"chains": 2, "draws": 500, "tune": 500})
    spec_tune = journal_path(out, spec, "a" * 64, n=200, thin=None, sampler={"chains": 2, "draws": 500})
    assert short != spec_tune


def test_sbc_never_resumes_a_journal_from_another_register(tmp_path, capsys, monkeypatch):
    """A journal left by an interrupted run on register A is not read by a run on register B."""
    import bayes_msc.analyses.sbc as sbc
    from bayes_msc.evidence.estimates import load_estimates

    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_text("study,estimate,se\ns1,0.1,0.2\ns2,-0.2,0.3\n", encoding="utf-8")
    b.write_text("study,estimate,se\ns1,0.4,0.2\ns2,-0.2,0.3\n", encoding="utf-8")
    out = tmp_path / "nn.sbc.json"
    from bayes_msc.spec import load_spec

    spec = load_spec("normal_normal").with_sampler(chains=2, draws=100, tune=100)
    stale = sbc.journal_path(out, spec, load_estimates(a).content_hash, n=10, thin=2)
    stale.write_text("".join(json.dumps({"replicate": i, "mu": 0, "tau": 0, "n_draws": 100, "divergences": 0,
                                         "seconds": 0.0, "sampler_seed": 0}) + "\n" for i in range(10)))
    seen = []

    def fake(spec, data, indices, **kwargs):  # records what still had to run
        seen.extend(indices)
        return [{"replicate": i, "mu": 50, "tau": 50, "n_draws": 100, "divergences": 0, "seconds": 0.0,
                 "sampler_seed": 0} for i in indices]

    monkeypatch.setattr(sbc, "run_replicates", fake)
    code, _, err = run(capsys, "sbc", "normal_normal", "--data", str(b), "--n", "10", "--thin", "2",
                       "--chains", "2", "--draws", "100", "--tune", "100", "--out", str(out), *STATED)
    assert code in (0, 3), err
    assert sorted(seen) == list(range(10))  # nothing reused from register A's journal
    saved = json.loads(out.read_text())
    assert saved["register_hash"] == load_estimates(b).content_hash
    assert stale.exists()  # A's journal is left for A
    # ...while a rerun on A resumes from A's journal and runs nothing
    seen.clear()
    code, _, err = run(capsys, "sbc", "normal_normal", "--data", str(a), "--n", "10", "--thin", "2",
                       "--chains", "2", "--draws", "100", "--tune", "100", "--out", str(out), *STATED)
    assert code in (0, 3), err
    assert seen == [] and json.loads(out.read_text())["register_hash"] == load_estimates(a).content_hash


# -- property-based: corrupt any cell or field -----------------------------------------------

CORRUPTIONS = st.one_of(
    st.sampled_from([
        "", " ", "nan", "inf", "-inf", "-1", "0", "1e30", "1" + "0" * 40, "12.0", "4_7", "0x1f", "1e-320",
        "\x1b[2J", "\u2028", "\u0085", "a,b", '"', '"unterminated', "msc+msc", "msc+", "+", "|", "1|2|",
        "0|0", "true", "NULL", "∞", "١٢", "\0", "\ufeff", "x" * 300, "control", "cells", "primary", "covid",
    ]),
    st.text(max_size=12),
    st.integers(min_value=-10**40, max_value=10**40).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
)
# CI runs a bounded number of examples; BAYES_MSC_FUZZ_EXAMPLES=2000 searches harder locally.
EXAMPLES = int(os.environ.get("BAYES_MSC_FUZZ_EXAMPLES", "60"))
TABLES = ("studies.csv", "arms.csv", "doses.csv", "mortality.csv", "oxygenation.csv")


@pytest.fixture(scope="module")
def pristine_register(tmp_path_factory):
    return copy_register(tmp_path_factory.mktemp("pristine") / "register")


def _assert_clean_outcome(code: int, err: str, must_name: tuple[str, ...]) -> None:
    assert "Traceback" not in err
    if code == 0:
        return
    line = assert_one_line_error(code, err)
    assert any(name in line for name in must_name), (must_name, line)
    if ", row " in line and "not readable as CSV" not in line and "more cells" not in line:
        assert "field '" in line, line


def _run_quietly(*argv: str) -> tuple[int, str]:
    """main() with stdout/stderr captured per call (hypothesis examples cannot use capsys)."""
    import contextlib

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, err.getvalue()


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_corrupted_register_cell_is_accepted_or_refused_in_one_line(tmp_path_factory, data):
    register = copy_register(tmp_path_factory.mktemp("fuzz") / "register")
    table = data.draw(st.sampled_from(TABLES), label="table")
    header, rows = read_rows(register / table)
    field = data.draw(st.sampled_from(header), label="field")
    row = data.draw(st.integers(1, len(rows)), label="row")
    operation = data.draw(st.sampled_from(["set cell"] * 6 + ["drop row", "repeat row", "drop column"]),
                          label="operation")
    if operation == "set cell":
        rows[row - 1][field] = data.draw(CORRUPTIONS, label="value")
    elif operation == "drop row":
        del rows[row - 1]
    elif operation == "repeat row":
        rows.insert(row, dict(rows[row - 1]))
    else:
        header.remove(field)
        rows = [{k: v for k, v in r.items() if k != field} for r in rows]
    write_rows(register / table, header, rows)
    before = files_under(register.parent)
    for argv in (("data", "check", str(register)), ("data", "show", str(register)),
                 ("data", "show", str(register), "--analysis", "oxygenation"),
                 ("data", "show", str(register), "--analysis", "normal_normal")):
        code, err = _run_quietly(*argv)
        _assert_clean_outcome(code, err, (".csv",))
    assert files_under(register.parent) == before


def test_a_median_iqr_row_of_one_patient_is_refused_or_passed_over_in_one_line(tmp_path):
    """Found by the fuzz above: an IQR row with n = 1 (no spread to derive an SD from) crashed
    the SD-borrowing pool with a ValueError instead of being named or passed over."""
    register = copy_register(tmp_path / "register")
    header, rows = read_rows(register / "oxygenation.csv")
    (first,) = [i for i, r in enumerate(rows) if r["statistic"] == "median_iqr"][:1]
    rows[first]["n"] = "1"
    write_rows(register / "oxygenation.csv", header, rows)
    for argv in (("data", "check", str(register)), ("data", "show", str(register), "--analysis", "oxygenation")):
        code, err = _run_quietly(*argv)
        _assert_clean_outcome(code, err, (".csv",))


# TOML values of every kind, for any field of a spec
TOML_VALUES = st.one_of(
    st.sampled_from(["true", "false", "0", "-1", "1e400", "inf", "nan", "-inf", "0.0", "1000000000000000000000",
                     '""', '"../../x"', '"/tmp/x"', '"a\\u0000b"', '"umbilical_chord"', '"none"', '"emax"',
                     '"plugin"', '"cumulative"', "[]", '["a"]', "[1, 2]", "[true]", "[0.5, 1e400]", '["mapc"]',
                     "{}", "{ family = \"normal\", mu = 0, sigma = true }", "{ family = \"halfnormal\", sigma = -1 }",
                     "{ family = \"lognormal\", mu = 0, sigma = \"1.5\" }", '"default"', '"sceptical"', "0.5", "1",
                     "2026-01-01"]),
    st.integers(-10**30, 10**30).map(str),
    st.floats(allow_nan=False).map(lambda x: repr(x) if math.isfinite(x) else ("inf" if x > 0 else "-inf")),
    st.text(max_size=10).map(json.dumps),
)


def _spec_fields() -> list[tuple[str | None, str]]:
    """(table, key) of every setting a spec may carry, including those the default omits."""
    import dataclasses

    from bayes_msc.models.settings import MortalitySettings, NormalNormalSettings
    from bayes_msc.spec import SHARED_MODEL_KEYS, DecisionSettings, EvidenceSelection, SamplerSettings

    fields = [(None, "name"), (None, "outcome"), (None, "title"), (None, "nosuch")]
    for table, cls in (("evidence", EvidenceSelection), ("decision", DecisionSettings), ("sampler", SamplerSettings)):
        fields += [(table, f.name) for f in dataclasses.fields(cls)]
    fields += [("model", key) for key in SHARED_MODEL_KEYS + MortalitySettings.keys() + NormalNormalSettings.keys()]
    fields += [("model", "family")]  # the attribute holding a family's table is no key of the file
    fields += [("priors", role) for role in ("effect", "heterogeneity", "baseline", "dose_slope", "ed50", "nosuch")]
    return fields


def _set_toml(text: str, table: str | None, key: str, value: str) -> str:
    """Set ``[table] key = value`` in a spec's text (replacing the line, or adding it)."""
    lines = text.splitlines()
    start = 0 if table is None else lines.index(f"[{table}]") + 1
    end = next((i for i in range(start, len(lines)) if lines[i].startswith("[")), len(lines))
    for i in range(start, end):
        if lines[i].split("=")[0].strip() == key:
            lines[i] = f"{key} = {value}"
            break
    else:
        lines.insert(start if table is not None else 0, f"{key} = {value}")
    return "\n".join(lines) + "\n"


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_corrupted_spec_field_is_accepted_or_refused_in_one_line(tmp_path_factory, data):
    folder = tmp_path_factory.mktemp("spec")
    table, key = data.draw(st.sampled_from(_spec_fields()), label="field")
    if data.draw(st.integers(0, 9), label="drop the key instead") == 0:
        text = "\n".join(line for line in SPEC_TEXT.splitlines() if line.split("=")[0].strip() != key)
    else:
        text = _set_toml(SPEC_TEXT, table, key, data.draw(TOML_VALUES, label="value"))
    path = spec_file(folder, text)
    before = files_under(folder)
    for argv in (("priors", str(path)), ("data", "show", "--analysis", str(path))):
        code, err = _run_quietly(*argv)
        _assert_clean_outcome(code, err, (str(path), ".csv"))
    assert files_under(folder) == before


@pytest.mark.parametrize("name", ["Mortalité — my copy", "x y"])
def test_a_fit_from_an_odd_but_valid_spec_writes_only_where_asked(tmp_path, capsys, monkeypatch, name):
    """The two examples that sample: --out and --report land in their folders, nowhere else."""
    monkeypatch.chdir(tmp_path)
    path = spec_file(tmp_path, SPEC_TEXT.replace('name = "mortality"', f"name = {json.dumps(name)}"))
    before = files_under(tmp_path)
    code, _, err = run(capsys, "fit", str(path), "--draws", "100", "--tune", "200", "--out", "results", "--report")
    assert code == 0, err
    new = files_under(tmp_path) - before
    assert {p.parent for p in new} == {tmp_path / "results", tmp_path / "reports"}, new
    assert len([p for p in new if p.parent.name == "reports"]) == 1


NUMBER_TEXT = st.one_of(
    st.floats(min_value=-1e7, max_value=1e7, allow_nan=False).map(lambda x: f"{x:g}"),
    st.integers(-5, 10**7).map(str),
    st.sampled_from(["0", "1e-7", "1e-5", "999999", "0.5"]),
)


@settings(max_examples=int(os.environ.get("BAYES_MSC_FUZZ_FITS", "6")), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_corrupted_numbers_that_pass_validation_fit_or_are_refused(tmp_path_factory, data):
    """The examples that sample: a changed number keeps the model's structure (no recompile),
    so a fit is cheap; whatever the value, the run ends in diagnostics or one line."""
    folder = tmp_path_factory.mktemp("fit")
    register = copy_register(folder / "register")
    table, field, outcome = data.draw(st.sampled_from([
        ("mortality.csv", "deaths", "mortality"), ("oxygenation.csv", "estimate", "oxygenation"),
        ("oxygenation.csv", "sd", "oxygenation"), ("oxygenation.csv", "q3", "oxygenation"),
    ]), label="column")
    header, rows = read_rows(register / table)
    candidates = [i for i, r in enumerate(rows, start=1) if r[field]]
    row = data.draw(st.sampled_from(candidates), label="row")
    rows[row - 1][field] = data.draw(NUMBER_TEXT, label="value")
    write_rows(register / table, header, rows)
    before = files_under(folder)
    code, err = _run_quietly("fit", outcome, "--data", str(register), "--draws", "100", "--tune", "100",
                             "--chains", "2", "--out", str(folder / "out"))
    _assert_clean_outcome(code, err, (".csv",))
    written = files_under(folder) - before
    assert written <= {folder / "out" / "posterior.nc", folder / "out" / "summary.json"}
    assert bool(written) == (code == 0)


# -- the newer commands: design, oc, simstudy -------------------------------------------------


@pytest.fixture
def no_simulation(monkeypatch):
    """Fail the test if oc or simstudy starts simulating: a bad option must stop the run first."""
    import bayes_msc.analyses.simstudy

    def refuse(*args, **kwargs):
        raise AssertionError("the run started simulating before refusing its settings")

    monkeypatch.setattr(bayes_msc.analyses.simstudy, "simulation_study", refuse)
    monkeypatch.setattr(bayes_msc.analyses.simstudy, "operating_characteristics", refuse)


@pytest.mark.parametrize(
    "argv, fragments",
    [
        (("design", "mortality", "--dose-response", "loglinear", "--dose", "-1"), ("--dose",)),
        (("design", "mortality", "--dose-response", "loglinear", "--dose", "1e9"), ("--dose", "10000")),
        (("design", "mortality", "--dose", "2"), ("--dose", "dose-response")),
        (("design", "mortality", "--n-per-arm", "100000"), ("--n-per-arm", "5000")),
        (("design", "mortality", "--n-per-arm", "1" + "0" * 30), ("--n-per-arm",)),
        (("design", "mortality", "--n-per-arm", "4_7"), ("--n-per-arm", "'4_7'")),
        (("design", "mortality", "--n-per-arm", "\u0661\u0662\u0660"), ("--n-per-arm",)),  # Arabic-Indic 120
        (("design", "mortality", "--n-per-arm", "1"), ("--n-per-arm",)),
        (("design", "mortality", "--outcome-sd", "inf"), ("--outcome-sd",)),
        (("design", "mortality", "--outcome-sd", "nan"), ("--outcome-sd",)),
        (("design", "mortality", "--outcome-sd", "0"), ("--outcome-sd",)),
        (("design", "mortality", "--alpha", "0_05"), ("--alpha", "'0_05'")),
        (("design", "mortality", "--alpha", "\u0660.05"), ("--alpha",)),
        (("design", "mortality", "--control-risk", "1"), ("--control-risk",)),
        (("design", "mortality", "--target", "nan"), ("--target",)),
        (("design", "mortality", "--robust-weight", "1"), ("--robust-weight",)),
        (("design", "mortality", "--rule", "abc"), ("--rule", "THRESHOLD:PROB")),
        (("design", "mortality", "--rule", "1"), ("--rule", "THRESHOLD:PROB")),
        (("design", "mortality", "--rule", "1:1.5"), ("--rule", "probability")),
        (("design", "mortality", "--rule", "0:0.9"), ("--rule", "odds ratio")),
        (("design", "mortality", "--rule", "1:nan"), ("--rule",)),
        (("design", "mortality", "--rule", "1_0:0.9"), ("--rule", "'1_0:0.9'")),
        (("design", "mortality", "--rule", "\u0661:0.9"), ("--rule",)),
    ],
)
def test_bad_design_options_are_refused_before_the_fit(capsys, no_fit, argv, fragments):
    code, _, err = run(capsys, *argv)
    assert_one_line_error(code, err, *fragments)


@pytest.mark.parametrize(
    "argv, fragments",
    [
        (("oc", "mortality", "--workers", "0"), ("--workers", "at least 1")),
        (("oc", "mortality", "--workers", "-1"), ("--workers", "at least 1")),
        (("simstudy", "mortality", "--workers", "0"), ("--workers", "at least 1")),
        (("simstudy", "mortality", "--likelihoods", ""), ("--likelihoods", "at least one")),
        (("simstudy", "mortality", "--likelihoods", " , ,"), ("--likelihoods", "at least one")),
        (("simstudy", "mortality", "--likelihoods", "arm,arm"), ("--likelihoods", "twice")),
        (("oc", "mortality", "--reps", "1"), ("--reps", "at least 2")),
        (("oc", "mortality", "--reps", "4_7"), ("--reps",)),
        (("oc", "mortality", "--reps", "1" + "0" * 30), ("--reps", "at most")),
        (("oc", "mortality", "--alternative-reps", "1"), ("--alternative-reps", "at least 2")),
        (("oc", "mortality", "--alternative-reps", "-1"), ("--alternative-reps", "at least 0")),
        (("oc", "mortality", "--alternative-reps", "٣"), ("--alternative-reps",)),
    ],
)
def test_bad_oc_and_simstudy_options_are_refused_before_any_simulation(tmp_path, capsys, monkeypatch, no_simulation,
                                                                       argv, fragments):
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, *argv)
    assert_one_line_error(code, err, *fragments)
    assert not list(tmp_path.rglob("*.partial.jsonl"))  # no empty journal left behind


def test_oc_and_simstudy_journals_are_keyed_by_the_register(tmp_path, capsys, monkeypatch):
    """A run resumed with another --data must start afresh, not reuse the first register's rows."""
    import bayes_msc.analyses.simstudy as simstudy
    from bayes_msc.evidence.register import load_register

    monkeypatch.chdir(tmp_path)
    other = copy_register(tmp_path / "other")
    set_cell(other / "mortality.csv", row_of(other / "mortality.csv", study_id="bowdish2023", arms="msc"), "notes", "x")
    journals = []

    def record(spec, data, *, journal, **kwargs):
        journals.append(journal)
        raise KeyboardInterrupt  # as if interrupted: the journal would be resumed next time

    for kind in ("oc", "simstudy"):
        monkeypatch.setattr(simstudy, {"oc": "operating_characteristics", "simstudy": "simulation_study"}[kind], record)
        for data in (None, other):
            code, _, _ = run(capsys, kind, "mortality", "--reps", "4", *(("--data", str(data)) if data else ()))
            assert code == 130
    oc_a, oc_b, sim_a, sim_b = journals
    assert oc_a != oc_b and sim_a != sim_b and oc_a != sim_a
    assert load_register().content_hash[:12] in oc_a.name and load_register(other).content_hash[:12] in oc_b.name
    # other settings, another journal too
    run(capsys, "oc", "mortality", "--reps", "4", "--draws", "300")
    assert journals[-1] not in (oc_a, oc_b)


def test_a_newline_in_a_register_label_cannot_forge_a_terminal_line(tmp_path, capsys):
    register = copy_register(tmp_path / "register")
    path = register / "studies.csv"
    set_cell(path, row_of(path, study_id="bowdish2023"), "label", "Bowdish\nALL CHECKS PASSED\r\tx")
    code, out, err = run(capsys, "data", "show", str(register))
    assert code == 0, err
    assert not any(line.startswith("ALL CHECKS PASSED") for line in out.splitlines())
    assert "Bowdish\\nALL CHECKS PASSED\\x0d\\tx" in out


def test_spec_names_differing_only_in_unsafe_characters_get_different_files():
    from bayes_msc.io.fileio import safe_file_name

    names = ["mortality", "mortality李", "mortality张", "mortality_", "mortality/", "mortality?", "../mortality"]
    files = [safe_file_name(n) for n in names]
    assert len(set(files)) == len(files), files
    assert files[0] == "mortality"  # a plain name is kept as it is
    assert all(f.startswith("mortality") for f in files)


def test_ctrl_c_while_a_temporary_file_is_made_leaves_no_temporary_file(tmp_path, monkeypatch):
    import bayes_msc.io.fileio as fileio

    target = tmp_path / "out.json"
    real_close = os.close
    calls = {"n": 0}

    def interrupted_close(fd):  # the temporary file exists; Ctrl-C arrives before it is recorded
        real_close(fd)
        calls["n"] += 1
        if calls["n"] == 1:
            raise KeyboardInterrupt

    monkeypatch.setattr(fileio.os, "close", interrupted_close)
    with pytest.raises(KeyboardInterrupt):
        fileio.write_atomic(target, "{}")
    monkeypatch.undo()
    assert not target.exists() and list(tmp_path.iterdir()) == []


def test_json_output_never_holds_nan():
    from bayes_msc.results import to_json

    text = to_json({"a": float("nan"), "b": [1.0, float("inf")], "c": {"d": -float("inf")}})
    assert json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard JSON constant {c}")) == {
        "a": None, "b": [1.0, None], "c": {"d": None}}


def test_design_json_has_no_nan(capsys, monkeypatch):
    import types

    import bayes_msc.cli as cli
    import bayes_msc.design

    result = types.SimpleNamespace(diagnostics=types.SimpleNamespace(passed=True))
    monkeypatch.setattr(cli, "_fit_from_args", lambda args, spec=None: result)
    planned = types.SimpleNamespace(to_dict=lambda: {"ess": float("nan"), "rows": [{"x": float("inf")}]})
    monkeypatch.setattr(bayes_msc.design, "design", lambda *a, **k: planned)
    code, out, err = run(capsys, "design", "mortality", "--json")
    assert code == 0, err
    assert "NaN" not in out and "Infinity" not in out
    assert json.loads(out) == {"ess": None, "rows": [{"x": None}]}


# -- property-based: design, oc and simstudy options -------------------------------------------

OPTION_TEXT = st.one_of(
    st.sampled_from(["", "0", "-1", "1e9", "inf", "-inf", "nan", "1_0", "0x10", "1e-300", "\u0661\u0662", "٣",
                     "1,2", "50,100", "2", "0.5", "0.99", "1:0.975", "0.8:0.5", "0:0.9", "1:1", ":", "abc",
                     "\x1b[2J", "1 ", " 2", "+3", "25,50,,75", "5001", "20000"]),
    st.integers(-10, 10**6).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.text(max_size=8),
)
_NUMBER = r"\s*[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?\s*"


def _plain_number(text: str) -> float | None:
    """The test's own reading of a number: plain ASCII decimal, finite (None otherwise)."""
    import re

    if not re.fullmatch(_NUMBER, text):
        return None
    value = float(text)
    return value if math.isfinite(value) else None


def _valid_design_option(option: str, text: str) -> bool:
    """Whether the option's value is one a design run may start a fit with (mortality)."""
    import re

    if option == "--n-per-arm":
        parts = [p.strip() for p in text.split(",") if p.strip()]
        return bool(parts) and all(re.fullmatch(r"[0-9]+", p) and 2 <= int(p) <= 5000 for p in parts)
    if option == "--rule":
        threshold, sep, prob = text.partition(":")
        t, p = _plain_number(threshold), _plain_number(prob)
        return bool(sep) and t is not None and p is not None and t > 0 and 0 < p < 1
    value = _plain_number(text)
    if value is None:
        return False
    return {"--dose": 0 < value <= 1e4, "--outcome-sd": 0 < value <= 1e6, "--alpha": 0 < value < 1,
            "--target": 0 < value < 1, "--control-risk": 0 < value < 1, "--robust-weight": 0 <= value < 1}[option]


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_design_option_value_is_refused_in_one_line_or_reaches_the_fit(no_fit, data):
    option = data.draw(st.sampled_from(["--n-per-arm", "--rule", "--dose", "--outcome-sd", "--alpha", "--target",
                                        "--control-risk", "--robust-weight"]), label="option")
    text = data.draw(OPTION_TEXT, label="value")
    argv = ["design", "mortality", *(("--dose-response", "loglinear") if option == "--dose" else ()), f"{option}={text}"]
    try:
        code, err = _run_quietly(*argv)
    except AssertionError as reached:  # no_fit: the options were accepted and the fit began
        assert "started fitting" in str(reached)
        assert _valid_design_option(option, text), (option, text)
        return
    assert not _valid_design_option(option, text) or "\x00" in text, (option, text, err)
    line = assert_one_line_error(code, err)
    assert option in line, line


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_oc_or_simstudy_option_value_is_refused_in_one_line_or_reaches_the_simulation(
        tmp_path_factory, monkeypatch, data):
    import re

    import bayes_msc.analyses.simstudy

    def refuse(*args, **kwargs):
        raise AssertionError("started simulating")

    monkeypatch.setattr(bayes_msc.analyses.simstudy, "simulation_study", refuse)
    monkeypatch.setattr(bayes_msc.analyses.simstudy, "operating_characteristics", refuse)
    monkeypatch.chdir(tmp_path_factory.mktemp("oc"))
    command = data.draw(st.sampled_from(["oc", "simstudy"]), label="command")
    option = data.draw(st.sampled_from(["--workers", "--reps"] + (["--likelihoods"] if command == "simstudy"
                                                                   else ["--alternative-reps"])),
                       label="option")
    text = data.draw(OPTION_TEXT | st.sampled_from(["arm", "arm,symmetric", "conditional/exchangeable", "arm,,arm",
                                                    "symmetric/exchangeable", "nosuch"]), label="value")
    if option == "--likelihoods":
        items = [x.strip() for x in text.split(",") if x.strip()]
        def known(item: str) -> bool:  # LIKELIHOOD or LIKELIHOOD/BASELINES (README, "Sparse data")
            name, _, baselines = item.partition("/")
            return name in ("arm", "symmetric", "conditional") and baselines in ("", "independent", "exchangeable") \
                and not (name == "conditional" and baselines == "exchangeable")

        valid = bool(items) and len(set(items)) == len(items) and all(known(x) for x in items)
    else:
        valid = bool(re.fullmatch(r"\s*\+?[0-9]+\s*", text)) and (1 if option == "--workers" else 2) <= int(text) <= (
            10**9 if option == "--workers" else 100_000)
        if option == "--alternative-reps":  # 0: the null alone
            valid = valid or bool(re.fullmatch(r"\s*[+-]?0+\s*", text))
    try:
        code, err = _run_quietly(command, "mortality", f"{option}={text}")
    except AssertionError as reached:
        assert "started simulating" in str(reached)
        assert valid, (command, option, text)
        return
    assert not valid, (command, option, text, err)
    line = assert_one_line_error(code, err)
    assert option in line, line


# -- library arguments ------------------------------------------------------------------------

ANY_VALUE = st.one_of(st.none(), st.booleans(), st.integers(-3, 10**4), st.floats(allow_nan=True),
                      st.text(max_size=8), st.lists(st.integers(), max_size=2), st.dictionaries(st.text(max_size=3),
                      st.integers(), max_size=2), st.just(b"x"), st.just(object()))
FIT_ARGUMENTS = ("data", "evidence", "priors", "prior_params", "seed", "chains", "draws", "tune",
                 "clinically_meaningful", "dose_response", "measure", "unit", "target_accept", "likelihood",
                 "benefit_direction")


@pytest.mark.parametrize(
    "call, message",
    [
        (lambda b: b.fit(priors=5), "fit(priors=...): expected a list of preset names or prior strings, got int"),
        (lambda b: b.fit(data=5), "fit(data=...): expected"),
        (lambda b: b.fit(prior_params={"effect.sigma": "wide"}), "fit(prior_params=...): 'effect.sigma' must be a number"),
        (lambda b: b.fit(draws="10"), "fit(draws=...): expected a whole number, got str"),
        (lambda b: b.fit(chains=True), "fit(chains=...)"),
        (lambda b: b.load_result(5), "load_result(out_dir=...)"),
        (lambda b: b.load_result(".", spec=5), "load_result(spec=...): expected an AnalysisSpec"),
        (lambda b: b.load_register(5), "load_register(directory=...): expected a folder path, got int"),
        (lambda b: b.load_spec(5), "load_spec(name_or_path=...): expected an analysis name or a spec path, got int"),
    ],
)
def test_library_arguments_of_the_wrong_type_are_named(no_fit, call, message):
    import bayes_msc

    with pytest.raises(bayes_msc.InputError) as caught:
        call(bayes_msc)
    assert message in str(caught.value)
    assert "command line" not in str(caught.value)


def test_errors_from_keyword_arguments_do_not_say_command_line(no_fit):
    import bayes_msc

    for kwargs in ({"draws": 0}, {"target_accept": 2.0}, {"evidence": "nosuch"}, {"dose_response": "cubic"},
                   {"prior_params": {"effect.sigma": -1.0}}, {"clinically_meaningful": -1.0}):
        with pytest.raises(bayes_msc.InputError) as caught:
            bayes_msc.fit("mortality", **kwargs)
        assert "command line" not in str(caught.value), kwargs


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_fit_argument_is_refused_as_an_input_error_or_reaches_the_sampler(no_fit, data):
    import bayes_msc

    name = data.draw(st.sampled_from(FIT_ARGUMENTS), label="argument")
    value = data.draw(ANY_VALUE, label="value")
    try:
        bayes_msc.fit("mortality", **{name: value})
    except AssertionError as reached:
        assert "started fitting" in str(reached)
    except bayes_msc.InputError as exc:
        assert "\n" not in str(exc) and "command line" not in str(exc)

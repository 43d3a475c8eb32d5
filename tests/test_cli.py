"""The command line: bad input is one clear line and a non-zero exit; results are complete."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args: str, cwd: Path | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run(
        [sys.executable, "-m", "bayes_msc", *args],
        capture_output=True, text=True, cwd=cwd or ROOT, env=env, timeout=timeout,
    )


def set_cell(path: Path, row: int, field: str, value: str) -> None:
    """Set one cell; ``row`` is the 1-based data row, as error messages count them."""
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
        fieldnames = list(rows[0].keys())
    rows[row - 1][field] = value
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fieldnames)
        writer.writeheader()
        writer.writerows(rows)


def find_row(path: Path, **match: str) -> int:
    with path.open(newline="", encoding="utf-8") as handle:
        for number, row in enumerate(csv.DictReader(handle), start=1):
            if all(row[k] == v for k, v in match.items()):
                return number
    raise AssertionError(f"no row {match} in {path}")


def assert_one_line_error(result, *fragments: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


def test_help_is_fast_and_lists_commands():
    result = run_cli("--help")
    assert result.returncode == 0
    for command in ("fit", "data", "priors"):
        assert command in result.stdout


def test_data_check_accepts_the_embedded_register():
    result = run_cli("data", "check")
    assert result.returncode == 0, result.stderr
    assert "valid" in result.stdout


@pytest.mark.parametrize(
    "table, match, field, value, expected",
    [
        ("mortality.csv", {"study_id": "bowdish2023", "arms": "msc"}, "deaths", "500", "exceed"),
        ("arms.csv", {"study_id": "bowdish2023", "arm_id": "msc"}, "n", "-3", "negative"),
        ("mortality.csv", {"study_id": "bowdish2023", "arms": "msc"}, "deaths", "forty", "forty"),
        ("mortality.csv", {"study_id": "bowdish2023", "arms": "msc"}, "study_id", "nosuchstudy", "nosuchstudy"),
        ("mortality.csv", {"study_id": "bowdish2023", "arms": "msc"}, "arms", "nosucharm", "nosucharm"),
    ],
)
def test_bad_register_cell_exits_2_naming_file_row_field_and_writes_nothing(
    register_copy, tmp_path, table, match, field, value, expected
):
    path = register_copy / table
    row = find_row(path, **match)
    set_cell(path, row, field, value)
    out = tmp_path / "results"
    result = run_cli("fit", "mortality", "--data", str(register_copy), "--out", str(out))
    assert_one_line_error(result, table, f"row {row}", f"'{field}'", expected)
    assert not out.exists()
    check = run_cli("data", "check", str(register_copy))
    assert_one_line_error(check, table, f"row {row}", f"'{field}'")


def test_duplicate_row_is_rejected(register_copy):
    path = register_copy / "mortality.csv"
    lines = path.read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join(lines + [lines[1]]) + "\n", encoding="utf-8")
    result = run_cli("data", "check", str(register_copy))
    assert_one_line_error(result, "mortality.csv", f"row {len(lines)}", "duplicate")


def test_bad_spec_and_options_are_one_line_errors(tmp_path):
    spec = tmp_path / "broken.toml"
    text, replaced = re.subn(r"(?m)^draws = ", "drawz = ", (ROOT / "models" / "mortality.toml").read_text())
    assert replaced == 1  # the typo is really in the file under test
    spec.write_text(text)
    assert_one_line_error(run_cli("fit", str(spec)), "broken.toml", "sampler.drawz")
    assert_one_line_error(run_cli("fit", "nosuchanalysis"), "unknown analysis")
    assert_one_line_error(run_cli("fit", "mortality", "--prior", "optimistic"), "unknown prior preset")
    assert_one_line_error(run_cli("fit", "mortality", "--prior-param", "effect.sigma=-1"), "sigma must be > 0")
    assert_one_line_error(run_cli("fit", "mortality", "--draws", "0"), "--draws", "at least 1")


def test_data_show_lists_every_study_with_a_reason():
    result = run_cli("data", "show")
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert "Kaffash" in text and "deaths not reported" in text
    assert "withdrawn" in text
    assert "no control arm" in text  # BC-U001 under the pooled model


@pytest.mark.slow
def test_fit_writes_complete_results_and_json(tmp_path):
    out = tmp_path / "results"
    result = run_cli("-v", "fit", "mortality", "--draws", "300", "--tune", "300", "--chains", "2",
                     "--out", str(out), "--json")
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)  # --verbose logs go to stderr only
    assert "bayes_msc: compiling the mortality model" in result.stderr
    assert "first fit of this model in this process" in result.stderr
    assert summary == json.loads((out / "summary.json").read_text())
    assert 0 < summary["decisions"]["pooled_effect"]["median"] < 5
    assert 0 <= summary["decisions"]["prob_benefit"]["prob"] <= 1
    assert summary["decisions"]["prob_benefit"]["mcse"] > 0
    # the default pools randomised trials only, and the summary says what it set aside
    assert summary["evidence_set"] == "randomised"
    assert summary["designs"]["sentence"] == "10 randomised trials; 8 non-randomised studies not pooled: design"
    assert summary["designs"]["not_pooled_design"] == 8 and summary["design_shift"] is None

    from bayes_msc.results import load_result
    from bayes_msc.spec import load_spec

    spec = load_spec("mortality").with_sampler(draws=300, tune=300, chains=2)
    loaded = load_result(out, spec=spec)
    tree = loaded.tree
    assert {"posterior", "sample_stats", "log_likelihood", "log_prior"} <= set(tree.children)
    assert tree.attrs["bayes_msc_spec_hash"] == summary["spec_hash"]
    # a saved fit answers as the fit did, without refitting
    assert loaded.prob_benefit().prob == summary["decisions"]["prob_benefit"]["prob"]
    assert load_result(out).spec.content_hash() == summary["spec_hash"]  # the spec saved with it
    from bayes_msc.io.errors import InputError

    with pytest.raises(InputError, match="spec hash mismatch"):
        load_result(out, spec=spec.with_sampler(seed=99))
    assert not list(out.glob(".*.tmp"))

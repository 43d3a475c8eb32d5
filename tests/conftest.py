"""Shared fixtures. Fits in tests use few draws; all fits of one model structure in a session
share one compiled model (the engine caches per structure), so compilation is paid once."""

from __future__ import annotations

import importlib
import os
import shutil
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]


# -- optional dependencies: skipped on a laptop, a failure in CI ------------------------------------


def in_ci() -> bool:
    """True when the environment variable ``CI`` is set (to anything but empty, 0, false or no)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def skip_or_fail(reason: str) -> None:
    """Skip the calling test (or module) because something optional is missing; in CI fail it.

    The one place tests may skip: CI installs everything the suite needs, so a missing optional
    dependency there means the checks did not run, and a green run would hide it.
    """
    if in_ci():
        pytest.fail(f"{reason} — in CI (CI is set) this is a failure, not a skip", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


def require_module(name: str, why: str) -> ModuleType:
    """Import an optional module, or :func:`skip_or_fail` saying what needs it."""
    try:
        return importlib.import_module(name)
    except ImportError as exc:
        skip_or_fail(f"{name} is not importable ({exc}); {why}")

# Tests must not depend on (or fill) the user's own cache: give the session its own. The test
# process is ours, so it may set pytensor's folder (the package itself never does: library
# calls use pytensor's own); child processes of the command line get it from BAYES_MSC_CACHE_DIR.
TEST_CACHE = ROOT / ".pytest_cache" / "bayes_msc"
os.environ.setdefault("BAYES_MSC_CACHE_DIR", str(TEST_CACHE))
if "base_compiledir" not in os.environ.get("PYTENSOR_FLAGS", ""):
    os.environ["PYTENSOR_FLAGS"] = ",".join(
        filter(None, [os.environ.get("PYTENSOR_FLAGS", ""), f"base_compiledir={TEST_CACHE / 'pytensor'}"]))


def child_env(cache: Path, **environ: str) -> dict[str, str]:
    """The environment for a child process (command line or library script) that compiles into
    ``cache`` alone: pytensor's folder and the command line's ``BAYES_MSC_CACHE_DIR`` both there."""
    env = {name: value for name, value in os.environ.items() if name != "PYTENSOR_FLAGS"}
    return {**env, "PYTHONPATH": str(ROOT), "BAYES_MSC_CACHE_DIR": str(cache),
            "PYTENSOR_FLAGS": f"base_compiledir={cache / 'pytensor'}", **environ}


def run_python(code: str, cache: Path, timeout: int = 600, **environ: str):
    """``python -c code`` in a fresh interpreter that compiles into ``cache`` (:func:`child_env`),
    from the checkout's root; asserts that it succeeded and returns the finished process."""
    import subprocess
    import sys

    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         env=child_env(cache, **environ), timeout=timeout)
    assert run.returncode == 0, run.stderr[-3000:]
    return run


def require_accel(feature: str) -> None:
    """Skip (a failure in CI, where the lock installs the exact versions) unless the
    accelerations of ``feature`` apply in this environment."""
    from bayes_msc import accel

    if accel.switched_off():
        skip_or_fail(f"{accel.SWITCH} switches the accelerations off")
    mismatches = accel.version_mismatches(feature)
    if mismatches:
        skip_or_fail(f"accel {feature} needs its exact versions: {'; '.join(mismatches)}")


@pytest.fixture(scope="session")
def quick_spec():
    from bayes_msc.spec import load_spec

    return load_spec("mortality").with_sampler(chains=2, draws=500, tune=500, seed=7)


@pytest.fixture
def register_copy(tmp_path) -> Path:
    """A writable copy of the embedded register, for corrupting one cell at a time."""
    target = tmp_path / "register"
    shutil.copytree(ROOT / "data", target, ignore=shutil.ignore_patterns("*.md"))
    return target


def relabel_register(parent: Path, study_id: str, label: str) -> Path:
    """A copy of the embedded register under ``parent`` with one study's label replaced."""
    import csv

    target = parent / "register"
    shutil.copytree(ROOT / "data", target, ignore=shutil.ignore_patterns("*.md"))
    path = target / "studies.csv"
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    (row,) = [r for r in rows if r["study_id"] == study_id]
    row["label"] = label
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return target


@pytest.fixture(scope="module")
def relabelled_register(tmp_path_factory):
    """Make copies of the embedded register with one study's label replaced (e.g. by markup)."""

    def make(study_id: str, label: str) -> Path:
        return relabel_register(tmp_path_factory.mktemp("register"), study_id, label)

    return make


# A study label that tries every way out of HTML text and attribute values.
HOSTILE_LABEL = "Monsel 2022 \"dq\" 'sq' <script>alert(1)</script> x=\" onmouseover=\"alert(2)\" &amp;"
SMALL_FIT = dict(chains=2, draws=300, tune=300, seed=11)  # as the report tests: one compiled model


@pytest.fixture(scope="session")
def hostile_oxygenation(tmp_path_factory):
    """An oxygenation fit on a register copy whose Monsel 2022 label is :data:`HOSTILE_LABEL`
    (Monsel 2022 enters the analysis, so the label reaches the answer, the tables and the
    forest plot's text alternative). Returns ``(result, register)``."""
    import bayes_msc

    target = relabel_register(tmp_path_factory.mktemp("hostile"), "monsel2022", HOSTILE_LABEL)
    register = bayes_msc.load_register(target)
    result = bayes_msc.fit("oxygenation", data=register, **SMALL_FIT)
    assert "monsel2022" in result.evidence.studies
    return result, register


@pytest.fixture(scope="session")
def small_mortality_fit():
    """A small mortality fit on the embedded register, shared by the tests that read its numbers."""
    import bayes_msc

    return bayes_msc.fit("mortality", **SMALL_FIT)


def html_tags(markup: str):
    """The start tags (with their attributes) and the text of an HTML fragment, as a browser's
    parser sees them: what markup a label could have smuggled in, and what reads as text."""
    from html.parser import HTMLParser

    class Tags(HTMLParser):
        def __init__(self):
            super().__init__(convert_charrefs=True)
            self.tags, self.text = [], []

        def handle_starttag(self, tag, attrs):
            self.tags.append((tag, dict(attrs)))

        def handle_data(self, data):
            self.text.append(data)

    parser = Tags()
    parser.feed(markup)
    return parser

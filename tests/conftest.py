"""Shared fixtures. Fits in tests use few draws; all fits of one model structure in a session
share one compiled model (the engine caches per structure), so compilation is paid once."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Tests must not depend on (or fill) the user's own cache: give the session its own.
os.environ.setdefault("BAYES_MSC_CACHE_DIR", str(ROOT / ".pytest_cache" / "bayes_msc"))


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


@pytest.fixture(scope="module")
def relabelled_register(tmp_path_factory):
    """Make copies of the embedded register with one study's label replaced (e.g. by markup)."""
    import csv

    def make(study_id: str, label: str) -> Path:
        target = tmp_path_factory.mktemp("register") / "register"
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

    return make

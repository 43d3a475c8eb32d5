"""No silent skips in CI: every skip goes through ``conftest.skip_or_fail``, which fails when
``CI`` is set (CI installs all optional dependencies, so a skip there hides unrun checks)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import conftest

TESTS = Path(__file__).resolve().parent


@pytest.mark.parametrize("value", ["true", "1", "yes", "anything"])
def test_a_missing_dependency_fails_when_ci_is_set(monkeypatch, value):
    monkeypatch.setenv("CI", value)
    with pytest.raises(pytest.fail.Exception, match="in CI .* failure, not a skip"):
        conftest.skip_or_fail("chromium is not installed")
    with pytest.raises(pytest.fail.Exception, match="no_such_module_xyz is not importable"):
        conftest.require_module("no_such_module_xyz", "a check needs it")


@pytest.mark.parametrize("value", [None, "", "0", "false", "no"])
def test_outside_ci_it_is_a_skip(monkeypatch, value):
    if value is None:
        monkeypatch.delenv("CI", raising=False)
    else:
        monkeypatch.setenv("CI", value)
    with pytest.raises(pytest.skip.Exception, match="chromium is not installed"):
        conftest.skip_or_fail("chromium is not installed")


def test_an_available_module_is_returned():
    import json

    assert conftest.require_module("json", "always there") is json


def test_every_skip_in_the_suite_goes_through_the_helper():
    pattern = re.compile(r"pytest\.skip\(|importorskip|mark\.skip|skipif|pytest\.xfail|mark\.xfail")
    offenders = [
        f"{path.name}:{number}: {line.strip()}"
        for path in sorted(TESTS.glob("*.py")) if path.name not in ("conftest.py", Path(__file__).name)
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1)
        if pattern.search(line)
    ]
    assert offenders == [], "skip through conftest.skip_or_fail / require_module:\n" + "\n".join(offenders)

"""A seeded run gives bit-identical numbers with a cold and with a warm compile cache, with and
without the compile helper, and through the public path alone (the accelerations off)."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import child_env, require_accel

ROOT = Path(__file__).resolve().parents[1]


def _fit_json(cache: Path, **environ: str) -> tuple[dict, str]:
    result = subprocess.run(
        [sys.executable, "-m", "bayes_msc", "-v", "fit", "mortality", "--json",
         "--draws", "300", "--tune", "300", "--chains", "2", "--seed", "123"],
        capture_output=True, text=True, env=child_env(cache, **environ), cwd=ROOT, timeout=900,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout), result.stderr


def _numbers(summary: dict) -> dict:
    return {"decisions": summary["decisions"], "diagnostics": summary["diagnostics"]}


@pytest.mark.slow
def test_cold_and_warm_cache_give_identical_numbers(tmp_path):
    require_accel("compile")
    cache, home = tmp_path / "cache", tmp_path / "home"
    cold, cold_log = _fit_json(cache, HOME=str(home))  # empty cache directory: everything compiles
    assert any(cache.rglob("*")), "the compile cache was not written"
    # ... all of it, the compile helper's share included, into that folder, not pytensor's default
    assert not list(home.rglob("*.nbi")), "a process compiled into pytensor's default folder"
    warm, warm_log = _fit_json(cache)  # same directory, now populated
    assert _numbers(cold) == _numbers(warm)  # exact equality, not approximate
    # ... and the warm process really took nutpie's callbacks from the disk cache
    # (bayes_msc.accel.callback_cache) and reassembled the compiled model without building
    # pytensor functions (bayes_msc.accel.warm_start), where the cold one compiled everything.
    assert "0 of 2 loaded from the disk cache" in cold_log, cold_log
    assert "2 of 2 loaded from the disk cache, no pytensor function built" in warm_log, warm_log
    # A cold compile on two or more cores hands part of the log density to a helper process
    # (bayes_msc.accel.compile_helper) and loads what it compiled; without the helper, the same numbers.
    from bayes_msc.engine.runtime import available_cores

    if available_cores() >= 2:
        assert re.search(r"a helper process compiled part of it, [1-9]\d* compiled functions loaded", cold_log), cold_log
    alone, alone_log = _fit_json(tmp_path / "cache_without_helper", BAYES_MSC_COMPILE_HELPER="0")
    assert "helper" not in alone_log, alone_log
    assert _numbers(alone) == _numbers(cold)
    # The public path alone (nutpie's own callbacks, nothing reassembled): the same numbers.
    plain, plain_log = _fit_json(cache, BAYES_MSC_ACCEL="0")
    assert "(nutpie's callbacks)" in plain_log and "lean" not in plain_log, plain_log
    assert _numbers(plain) == _numbers(cold)

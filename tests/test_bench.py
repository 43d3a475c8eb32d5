"""The benchmark's arithmetic: given measurements, the right medians, ratios and verdicts.

Timing itself is never asserted (it belongs to ``python -m bayes_msc bench``); these tests
feed :func:`bayes_msc.bench.summarise` made-up measurements whose answers are known.
"""

from __future__ import annotations

import io
import re

from bayes_msc.bench import summarise


def _fit(whole, ess_per_second, steady, **extra):
    return {"whole": whole, "import": 1.0, "compile": whole - 2.0, "sample": 0.5, "postprocess": 0.1,
            "peak_rss_mb": 500.0, "child_peak_rss_mb": 0.0, "ess_per_second": ess_per_second,
            "steady_ess_per_second": steady, "divergences": 0, **extra}


def _runs(cold=(10.0, 12.0, 11.0), warm=(5.0, 5.0, 5.0), pymc=(20.0, 20.0, 20.0),
          nutpie_steady=2000.0, pymc_first=150.0, pymc_steady=100.0):
    return {
        "cold": [_fit(w, 1000.0, nutpie_steady) for w in cold],
        "warm": [_fit(w, 1000.0, nutpie_steady) for w in warm],
        "pymc": [_fit(w, pymc_first, pymc_steady, child_peak_rss_mb=300.0) for w in pymc],
        "numpyro": [],
    }


def _targets(text: str) -> dict[str, tuple[float, str]]:
    found = {}
    for line in text.splitlines():
        match = re.match(r"\s+(.+?)\s+([0-9.]+)\s+(PASS|FAIL)$", line)
        if match:
            found[match.group(1)] = (float(match.group(2)), match.group(3))
    return found


def _summary(runs, sweep_whole=20.0, independent=(10.0,) * 4):
    out = io.StringIO()
    sweep = {"fits": 20, "compiles": 1, "first_fit": 10.0, "later_fit_median": 0.5, "peak_rss_mb": 520.0,
             "whole": sweep_whole}
    summarise(runs, sweep, [_fit(w, 1000.0, 2000.0) for w in independent], out)
    return out.getvalue()


def test_ratios_use_medians_and_pass_when_targets_are_met():
    text = _summary(_runs())
    targets = _targets(text)
    assert targets["cold fit <= PyMC NUTS whole process"] == (0.55, "PASS")  # median 11 / 20
    assert targets["warm fit <= 0.5 x cold fit"] == (0.45, "PASS")
    assert targets["20-fit sweep <= 2 x one cold fit"] == (1.82, "PASS")
    # nutpie steady 2000 against PyMC's FASTER sampling (150, not 100): 13.3, not 20.
    assert targets["sampling ESS/s >= 10 x PyMC NUTS"] == (13.33, "PASS")
    assert "medians [min-max] over 3 repeat(s)" in text
    assert "11.00 [10.00-12.00]" in text


def test_each_target_fails_when_its_measurement_misses():
    text = _summary(_runs(cold=(25.0,) * 3, warm=(15.0,) * 3, nutpie_steady=1400.0), sweep_whole=60.0)
    targets = _targets(text)
    assert targets["cold fit <= PyMC NUTS whole process"][1] == "FAIL"
    assert targets["warm fit <= 0.5 x cold fit"][1] == "FAIL"
    assert targets["20-fit sweep <= 2 x one cold fit"][1] == "FAIL"
    assert targets["sampling ESS/s >= 10 x PyMC NUTS"] == (9.33, "FAIL")


def test_missing_numpyro_is_said_not_hidden():
    assert "NumPyro, cold cache         not installed" in _summary(_runs())

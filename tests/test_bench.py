"""The benchmark's arithmetic: given measurements, the right medians, ratios and verdicts.

Timing itself is never asserted (it belongs to ``python -m bayes_msc bench``); these tests
feed :func:`bayes_msc.bench.summarise` made-up measurements whose answers are known.
"""

from __future__ import annotations

import io
import re

from bayes_msc.bench import COMPARED, summarise, summarise_comparison


def _fit(whole, ess_per_second, steady, **extra):
    return {"whole": whole, "import": 1.0, "compile": whole - 2.0, "sample": 0.5, "postprocess": 0.1,
            "peak_rss_mb": 500.0, "child_peak_rss_mb": 0.0, "ess_per_second": ess_per_second,
            "steady_ess_per_second": steady, "divergences": 0, "floor": 1.6, "cpu": whole, **extra}


def _runs(cold=(10.0, 12.0, 11.0), warm=(2.0, 2.0, 2.0), pymc=(20.0, 20.0, 20.0),
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


def _summary(runs, sweep_whole=20.0, independent=(10.0,) * 4, scaling=None):
    out = io.StringIO()
    sweep = {"fits": 20, "compiles": 1, "first_fit": 10.0, "later_fit_median": 0.5, "peak_rss_mb": 520.0,
             "whole": sweep_whole}
    summarise(runs, sweep, [_fit(w, 1000.0, 2000.0) for w in independent], out, scaling)
    return out.getvalue()


def test_ratios_use_medians_and_pass_when_targets_are_met():
    text = _summary(_runs())
    targets = _targets(text)
    assert targets["cold fit <= 0.7 x PyMC NUTS whole process"] == (0.55, "PASS")  # median 11 / 20
    assert targets["warm fit <= 1.5 x warm floor"] == (1.25, "PASS")  # 2.0 / (1.0 + 0.5 + 0.1)
    assert targets["warm fit <= 0.5 x cold fit"] == (0.18, "PASS")
    assert targets["20-fit sweep <= 2 x one cold fit"] == (1.82, "PASS")
    # nutpie steady 2000 against PyMC's FASTER sampling (150, not 100): 13.3, not 20.
    assert targets["sampling ESS/s >= 10 x PyMC NUTS"] == (13.33, "PASS")
    assert "medians [min-max] over 3 repeat(s)" in text
    assert "11.00 [10.00-12.00]" in text


def test_each_target_fails_when_its_measurement_misses():
    text = _summary(_runs(cold=(15.0,) * 3, warm=(15.0,) * 3, nutpie_steady=1400.0), sweep_whole=60.0)
    targets = _targets(text)
    assert targets["cold fit <= 0.7 x PyMC NUTS whole process"] == (0.75, "FAIL")
    assert targets["warm fit <= 1.5 x warm floor"][1] == "FAIL"
    assert targets["warm fit <= 0.5 x cold fit"][1] == "FAIL"
    assert targets["20-fit sweep <= 2 x one cold fit"][1] == "FAIL"
    assert targets["sampling ESS/s >= 10 x PyMC NUTS"] == (9.33, "FAIL")


def test_missing_numpyro_is_said_not_hidden():
    assert "NumPyro, cold cache         not installed" in _summary(_runs())


def _scaling(efficiency: float):
    """Serial: 1 rep/s with 2 threads; a replicate costs 0.5 CPU s in the main thread and 1.0
    in the sampler's threads, so the model gives 1 / (0.5 + 1.0 / 2) = 1 rep/s serially too."""
    settings = {"chains": 4, "draws": 500, "tune": 500, "thin": 4}
    serial = {"workers": 0, "n": 12, "wall": 20.0, "to_first": 5.0, "steady_per_second": 1.0, "threads": 2,
              "cores_used": 2, "cpu_per_replicate": 1.5, "settings": settings,
              "sequential_cpu": 0.5, "parallel_cpu": 1.0}
    # CPU per replicate on the workers: 1.5 / efficiency (the wall-clock rate is only shown)
    workers = {**serial, "workers": 2, "n": 24, "threads": 1, "steady_per_second": 1.2,
               "cpu_per_replicate": 1.5 / efficiency}
    del workers["sequential_cpu"], workers["parallel_cpu"]
    return [serial, workers]


def test_scaling_model_predicts_sixteen_cores_from_two():
    text = _summary(_runs(), scaling=_scaling(0.9))
    targets = _targets(text)
    assert "0.500 s sequential (main thread) + 1.000 s in the sampler's threads" in text
    # 2 workers x 1 thread: CPU per replicate 1.67 s against 1.5 s serially -> efficiency 0.9.
    # 16 cores, 4 workers x 4 threads: 4 / (0.5 + 0.25) x 0.9 = 4.8 rep/s; serial on 16
    # cores (4 threads) 1 / 0.75 = 1.33; target 0.8 x 16 / 4 x 1.33 -> ratio 4.8 / 5.33 = 0.9.
    assert targets["16 cores (model): SBC rate >= 0.8 x 16/4 x serial"] == (0.9, "PASS")
    # 1000 replicates at the best modelled rate (2 workers: 1.33 x 0.9 = 1.2/s) after 5 s: 838 s.
    assert targets["sbc --n 1000, dedicated cores (model; / 300 s)"] == (2.79, "FAIL")
    assert re.search(r"2 workers\s+1\s+2\s+24\s+20.0\s+5.0\s+1.20\s+0.600\s+1.20", text)


def test_scaling_target_fails_when_workers_contend():
    targets = _targets(_summary(_runs(), scaling=_scaling(0.45)))
    assert targets["16 cores (model): SBC rate >= 0.8 x 16/4 x serial"] == (0.45, "FAIL")


def test_the_compile_helper_row_compares_cold_fits_side_by_side():
    runs = _runs(cold=(9.0, 9.0, 9.0))
    runs["cold_alone"] = [_fit(w, 1000.0, 2000.0) for w in (12.0, 11.0, 13.0)]
    text = _summary(runs)
    assert re.search(r"nutpie, cold, no helper\s+12\.00 \[11\.00-13\.00\]", text), text
    line = next(l for l in text.splitlines() if "with / without compile helper" in l)
    assert re.search(r"\s0\.75\s", line), line  # median 9 / median 12
    assert "not installed" not in text.split("NumPyro")[0]  # the row is simply absent when not measured
    assert "no helper" not in _summary(_runs())


def test_plain_install_after_warm_and_new_structure_rows():
    runs = _runs(cold=(9.0, 9.0, 9.0), warm=(2.0, 2.0, 2.0))
    runs["warm_plain"] = [_fit(w, 1000.0, 2000.0) for w in (5.0, 6.0, 7.0)]
    runs["after_warm"] = [_fit(w, 1000.0, 2000.0, warm_command=c) for w, c in ((2.5, 8.0), (3.0, 9.0), (2.0, 10.0))]
    runs["new_structure"] = [_fit(w, 1000.0, 2000.0) for w in (6.0, 6.0, 6.0)]
    runs["numpyro"] = [_fit(w, 500.0, 600.0) for w in (6.0, 6.0, 6.0)]
    text = _summary(runs)
    assert re.search(r"plain install \(no accel\)\s+6\.00 \[5\.00-7\.00\]", text), text
    assert re.search(r"nutpie, after `warm`\s+2\.50 \[2\.00-3\.00\]", text), text
    assert "`python -m bayes_msc warm mortality` itself: 9.00 [8.00-10.00] s" in text
    assert re.search(r"nutpie, new structure\s+6\.00", text), text
    line = next(l for l in text.splitlines() if "plain install / with accel" in l)
    assert re.search(r"\s3\.00\s", line), line  # 6 / 2
    line = next(l for l in text.splitlines() if "first fit after `warm` / cold fit" in l)
    assert re.search(r"\s0\.28$", line), line  # 2.5 / 9
    assert _targets(text)["cold fit vs NumPyro whole process"] == (1.5, "FAIL")  # 9 / 6


def _comparison(before_sweep=20.0, after_sweep=20.0, before_sbc=100.0, after_sbc=100.0, warm=(2.4, 2.6, 2.5),
                floor=(2.0, 2.0, 2.0), fresh=(12.0, 13.0, 14.0)):
    before = {"fresh": [3.0, 3.0, 3.0], "after_warm": [], "warm_command": [], "warm": [2.4, 2.4, 2.4], "warm_plain": [],
              "floor": [2.0, 2.0, 2.0], "new_structure": [7.0, 7.0, 7.0], "sweep": [before_sweep], "sbc": [before_sbc]}
    after = {"fresh": list(fresh), "after_warm": [2.5, 2.5, 2.5], "warm_command": [9.0, 9.0, 9.0],
             "warm": list(warm), "floor": list(floor), "warm_plain": [4.0, 4.2, 4.1], "new_structure": [10.0, 10.0, 10.0], "sweep": [after_sweep],
             "sbc": [after_sbc]}
    out = io.StringIO()
    summarise_comparison({"before": before, "after": after}, [20.0, 20.0, 20.0], out)
    return out.getvalue()


def test_the_before_after_table_and_its_targets():
    text = _comparison()
    targets = _targets(text)
    assert targets["in-process refits no slower: sweep"] == (1.0, "PASS")
    assert targets["warm fit <= 1.5 x its floor"] == (1.25, "PASS")  # median 2.5 / 2.0
    assert targets["cold fit <= 0.7 x PyMC NUTS"] == (0.65, "PASS")  # median 13 / 20
    assert re.search(r"first fit after a fresh install\s+3\.00 \[3\.00-3\.00\]\s+13\.00 \[12\.00-14\.00\]\s+4\.33", text)
    assert re.search(r"after `python -m bayes_msc warm`\s+n/a\s+2\.50", text), text  # no `warm` before
    assert re.search(r"plain install \(BAYES_MSC_ACCEL=0\)\s+n/a\s+4\.10 \[4\.00-4\.20\]", text), text
    failing = _targets(_comparison(after_sweep=21.2, after_sbc=104.0, warm=(3.1,) * 3, fresh=(15.0,) * 3))
    assert failing["in-process refits no slower: sweep"] == (1.06, "FAIL")  # 21.2 / 20 > 1.05
    assert failing["in-process refits no slower: sbc"] == (1.04, "PASS")  # within the 5% allowed for noise
    assert failing["warm fit <= 1.5 x its floor"] == (1.55, "FAIL")
    assert failing["cold fit <= 0.7 x PyMC NUTS"] == (0.75, "FAIL")


def test_the_docs_table_is_the_printed_comparison_read_back():
    """``bench --compare-with --write-table`` and ``bench table PRINTOUT`` write one Markdown table
    from the same numbers the terminal shows (bayes_msc.bench.comparison_markdown)."""
    from bayes_msc.bench import comparison_markdown, comparison_stats, parse_comparison_printout

    before = {row: [10.0, 12.0, 11.0] for row in COMPARED}
    after = {row: [5.0, 6.0, 7.0] for row in COMPARED}
    before["warm_plain"] = []
    out = io.StringIO()
    summarise_comparison({"before": before, "after": after}, [20.0, 21.0, 22.0], out)
    stats = parse_comparison_printout(out.getvalue())
    assert stats == comparison_stats({"before": before, "after": after}, [20.0, 21.0, 22.0])
    table = comparison_markdown(stats, command="python -m bayes_msc bench --compare-with DIR")
    assert "| first fit after a fresh install | 11.00 [10.00–12.00] | 6.00 [5.00–7.00] | 0.55 |" in table
    assert "plain install (BAYES_MSC_ACCEL=0) | n/a | 6.00 [5.00–7.00] |  |" in table
    assert "| cold fit <= 0.7 x PyMC NUTS | 0.29 | PASS |" in table


def test_a_printout_that_is_not_a_comparison_is_refused():
    import pytest

    from bayes_msc.bench import parse_comparison_printout

    with pytest.raises(ValueError, match="not a `bench --compare-with` printout"):
        parse_comparison_printout("bayes_msc bench: `fit mortality` ...\n")

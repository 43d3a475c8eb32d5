"""The terminal answers first: ``fit`` prints the answer, what entered, the diagnostics verdict and
what to run next on one screen, in words a reader can use (no curators' working notes, sources that
name the publication)."""

from __future__ import annotations

import pytest

from bayes_msc.cli import main
from bayes_msc.evidence.citation import public_note, public_source

TINY = ["--chains", "2", "--draws", "100", "--tune", "100", "--seed", "3"]
WORKING_NOTES = ("EVIDENCE.md", "Seed says", "[seed]", "seed 00", "Looked (", "NOT FOUND")


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def included_mortality():
    import bayes_msc
    from bayes_msc.api import resolve_spec

    spec = resolve_spec("mortality")
    evidence = spec.outcome_type.build_evidence(bayes_msc.load_register(None), spec)
    inclusion = evidence.inclusion
    return evidence, inclusion[inclusion["status"] == "included"]


def test_fit_mortality_answers_on_one_screen(capsys, included_mortality):
    evidence, included = included_mortality
    code, out, _ = run(capsys, "fit", "mortality", *TINY)
    assert code == 0
    lines = out.rstrip("\n").splitlines()
    assert len(lines) <= 50, f"{len(lines)} lines"
    assert any(line.strip().startswith("pooled odds ratio") and "95% ETI" in line for line in lines)
    assert any("P(OR < 1)" in line and "pooled" in line and "MCSE" in line for line in lines)
    assert any("odds ratio in a new trial" in line for line in lines)
    assert any("NNT" in line for line in lines)
    assert any(line.startswith("Diagnostics:") for line in lines)
    # each included trial on its own row, with its cells and control counts and time point
    exact = evidence.exact.set_index(["study_id", "arm_id"])
    for row in included.itertuples():
        own = [line for line in lines if line.strip().startswith(str(row.label))]
        assert len(own) == 1, row.label
        counts = [f"{int(c.deaths)}/{int(c.n)}" for c in exact.loc[row.study_id].itertuples()] \
            if row.study_id in exact.index.get_level_values(0) else []
        assert all(c in own[0] for c in counts), (own[0], counts)
        assert row.timepoint in own[0]
    assert "Bowdish 2023" in out and "42/112" in out and "47/110" in out
    # the studies that did not enter stay behind --studies
    assert "Kaffash" not in out
    assert lines[-1].startswith("next:") and "report mortality" in lines[-1] and "--studies" in lines[-1]
    for note in WORKING_NOTES:
        assert note not in out, note


def test_fit_studies_lists_every_study_without_working_notes(capsys, included_mortality):
    _, included = included_mortality
    code, out, _ = run(capsys, "fit", "mortality", *TINY, "--studies")
    assert code == 0
    assert "Kaffash" in out and "deaths not reported" in out  # an excluded study, with its reason
    assert "R-hat" in out  # each diagnostic
    for note in WORKING_NOTES:
        assert note not in out, note


def test_fit_oxygenation_shows_its_own_columns(capsys):
    code, out, _ = run(capsys, "fit", "oxygenation", *TINY)
    assert code == 0
    lines = out.rstrip("\n").splitlines()
    assert len(lines) <= 50
    assert "cells change (SE)" in out and "control change (SE)" in out
    monsel = [line for line in lines if line.strip().startswith("Monsel 2022")]
    assert len(monsel) == 1 and "+44.0" in monsel[0] and "day 0 to 7" in monsel[0]
    assert lines[-1].startswith("next:")


def test_data_show_sources_name_the_publication(capsys):
    code, out, _ = run(capsys, "data", "show", "--analysis", "oxygenation")
    assert code == 0
    assert "Crit Care" in out
    for note in WORKING_NOTES:
        assert note not in out, note


@pytest.mark.parametrize("source, reference, expected", [
    ("EVIDENCE.md §2 (Matthay 2019)", "Lancet Respir Med 2019", "Lancet Respir Med 2019"),
    ("EVIDENCE.md §7.2", "Chest 2023;164:1444", "Chest 2023;164:1444"),
    ("Zhu 2021 Table 4 via EVIDENCE.md §7.2", "Cell Res 2021", "Zhu 2021 Table 4"),
    ("Monsel 2022 Crit Care 26:48 Table 4 (EVIDENCE.md §2)", "Crit Care 2022", "Monsel 2022 Crit Care 26:48 Table 4"),
    ("seed 003 (Lanzoni 2021 abstract)", "Stem Cells Transl Med 2021; doi 10.1002/sctm.20-0472",
     "Stem Cells Transl Med 2021; doi 10.1002/sctm.20-0472; Lanzoni 2021 abstract"),
    ("review table (EVIDENCE.md §2)", "Intensive Care Med 2022", "Intensive Care Med 2022; review table"),
    ("Bowdish 2023 Table 2", "Crit Care Med 2023", "Bowdish 2023 Table 2"),  # a publication already
])
def test_public_source_names_the_publication(source, reference, expected):
    assert public_source(source, reference) == expected


def test_public_note_keeps_the_study_and_drops_the_search():
    note = ("Deaths NOT FOUND. Looked (2026-11-29, search tool, pages corpus): the registration text "
            "(21 vs 21; 'unknown status'); Randomised 2:1")
    assert public_note(note) == "Randomised 2:1"
    assert public_note("Seed says patients were 'divided into two groups'; SpO2/FiO2 improvement reported "
                       "as direction only") == "SpO2/FiO2 improvement reported as direction only"
    assert public_note("Phase 1/2a; survival at day 31 reported as Kaplan-Meier percentages") == \
        "Phase 1/2a; survival at day 31 reported as Kaplan-Meier percentages"


@pytest.mark.parametrize("command", ["influence", "provenance"])
def test_refitted_headlines_say_they_are_monte_carlo_variants_of_the_fit(capsys, command):
    code, out, _ = run(capsys, command, "mortality", *TINY)
    assert code == 0
    flat = " ".join(out.split())
    assert "Monte Carlo variants of one number" in flat and "MCSE" in flat
    if command == "influence":
        (all_studies,) = [line for line in out.splitlines() if line.strip().startswith("all studies")]
        assert "MCSE" in all_studies


def test_public_note_keeps_a_caveat_about_the_numbers():
    note = "Counts from a secondary table not verified against the primary report; timepoint not stated"
    assert public_note(note) == note

"""fit_spec builds a register's evidence once per register content and evidence settings
(bayes_msc.api._evidence): a refit under other priors reuses it, a table edited in place
is rebuilt, and a caller that edits the evidence it got does not edit the memo."""

import pytest


@pytest.fixture
def counted(monkeypatch):
    from bayes_msc import api
    from bayes_msc.api import resolve_spec
    from bayes_msc.evidence.register import load_register

    monkeypatch.setattr(api, "_EVIDENCE_MEMO", {})
    spec = resolve_spec("mortality")
    outcome = spec.outcome_type
    calls = []
    build = type(outcome).build_evidence

    def counting(self, source, spec_):
        calls.append(spec_)
        return build(self, source, spec_)

    monkeypatch.setattr(type(outcome), "build_evidence", counting)
    return api, spec, outcome, load_register(), calls


def test_a_refit_under_other_priors_or_sampler_settings_reuses_the_evidence(counted):
    api, spec, outcome, register, calls = counted
    first = api._evidence(outcome, register, spec)
    other_priors = spec.with_priors(spec.priors.with_parameter("effect", "sigma", 0.5))
    second = api._evidence(outcome, register, other_priors)
    assert len(calls) == 1
    assert second.studies == first.studies and second.exact.equals(first.exact)
    assert second is not first  # a copy each time


def test_other_evidence_settings_or_an_edited_table_are_rebuilt(counted):
    from dataclasses import replace

    api, spec, outcome, register, calls = counted
    before = api._evidence(outcome, register, spec)
    excluded = replace(spec, evidence=replace(spec.evidence, exclude_studies=(before.studies[0],)))
    assert api._evidence(outcome, register, excluded).studies == before.studies[1:]
    assert len(calls) == 2
    # edit one arm's deaths in place: same object, same content_hash, new content
    mortality = register.tables["mortality"]
    row = mortality.index[(mortality["study_id"] == "lanzoni2021") & (mortality["arms"] == "control")][0]
    mortality.loc[row, "deaths"] = 6
    after = api._evidence(outcome, register, spec)
    assert len(calls) == 3
    deaths = lambda ev: ev.exact.set_index(["study_id", "arm_id"]).loc[("lanzoni2021", "control"), "deaths"]
    assert (deaths(before), deaths(after)) == (7, 6)


def test_editing_the_evidence_returned_does_not_edit_the_memo(counted):
    api, spec, outcome, register, calls = counted
    first = api._evidence(outcome, register, spec)
    first.exact.loc[first.exact.index[0], "deaths"] = -99
    again = api._evidence(outcome, register, spec)
    assert again.exact["deaths"].iloc[0] != -99 and len(calls) == 1

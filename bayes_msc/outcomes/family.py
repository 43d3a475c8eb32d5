"""How an outcome is modelled (the second of an outcome's three parts), in the spirit of bambi's
``Family``: which settings it reads, how its data are loaded and its evidence built, its model's
inputs and PyMC model, the pointwise log-likelihood and log-prior, and for SBC and trial design
its simulator and posterior predictive check.

:class:`ModelFamily` declares the hooks; an outcome (:class:`bayes_msc.outcomes.base.Outcome`)
implements them beside its :class:`~bayes_msc.outcomes.record.Measured` record. Heavy modules
(PyMC, the evidence builders) are imported inside the hooks, so that looking an outcome up (e.g. to
read a spec) stays cheap.
"""

from __future__ import annotations

from typing import Any, ClassVar


def evidence_model_settings(model) -> dict:
    """The model settings an evidence builder reads: whether the fit models dose-response, and
    whether an arm whose dose is an assumption may enter one."""
    return {"dose_response": model.dose_response != "none", "use_assumed_doses": model.use_assumed_doses}


class ModelFamily:
    """The model hooks of an outcome, and the settings they read; the base of
    :class:`~bayes_msc.outcomes.base.Outcome`."""

    evidence_keys: ClassVar[tuple[str, ...]]  # spec [evidence] settings this outcome reads
    has_doses: ClassVar[bool] = False  # can fit a dose-response form
    simulates_doses: ClassVar[bool] = False  # draw_truth/simulate cover its dose-response forms (SBC)
    simulates_covariates: ClassVar[bool] = False  # draw_truth/simulate cover a meta-regression's terms (SBC)
    data_description: ClassVar[str] = "an evidence register directory"
    # The model settings only this family reads, with their defaults and checks
    # (bayes_msc.models.settings): e.g. the normal-normal model's "measure", which sets its scale.
    # None: it reads only the settings every family shares (bayes_msc.spec.ModelSettings).
    model_settings: ClassVar[type | None] = None
    # Non-randomised studies enter through a design-bias model (or a power prior).
    adjusts_design_bias: ClassVar[bool] = False
    measures: ClassVar[tuple[str, ...]] = ()

    @property
    def model_keys(self) -> tuple[str, ...]:
        """The [model] settings only this family reads (its :attr:`model_settings` table)."""
        return self.model_settings.keys() if self.model_settings is not None else ()

    def specialise(self, model, decision=None) -> "ModelFamily":
        """This outcome on the scale ``model`` (the spec's model settings) states; most
        outcomes have one scale and return themselves. ``decision``: the spec's decision
        settings, for a scale stated at one of them (a risk ratio at the baseline risk); None
        where only the settings' names are asked for (reading a spec)."""
        return self

    # -- evidence and model -----------------------------------------------------------
    def load_data(self, data: Any):
        """What ``data`` means for this outcome; default: an evidence register."""
        from ..evidence.register import Register, load_register

        return data if isinstance(data, Register) else load_register(data)

    def read_table(self, path, columns: dict[str, str] | None = None, event_name: str | None = None):
        """``path`` read as this outcome's one-table file under the user's column names
        (:mod:`bayes_msc.evidence.onetable`); outcomes without one refuse."""
        from ..io.errors import InputError

        raise InputError(f"the {self.name} analysis reads no one-table file: --columns and --event-name are for "
                         "the binary and continuous analyses")

    def prior_warnings(self, priors) -> list[str]:
        """Priors whose scale does not fit what this outcome measures (warned about, not refused)."""
        return []

    def data_statement(self, source) -> dict[str, str]:
        """What loaded data say about themselves (``measure``, ``unit``, ``benefit_direction``);
        empty when they say nothing."""
        return {}

    def build_evidence(self, source, spec):
        raise NotImplementedError

    def make_inputs(self, evidence, priors, model):
        raise NotImplementedError

    def build_model(self, inputs, priors):
        raise NotImplementedError

    def pointwise(self, posterior, inputs, priors):
        """(log_likelihood, log_prior) Datasets computed in numpy/scipy (no PyMC recompile)."""
        raise NotImplementedError

    # -- simulation (SBC, recovery tests, design) ---------------------------------------
    def draw_truth(self, spec, evidence, rng, priors=None) -> dict[str, Any]:
        raise NotImplementedError

    def simulate(self, evidence, truth: dict[str, Any], rng):
        """Evidence of the same shape with data drawn from the model at ``truth``."""
        raise NotImplementedError

    def simulation_padding(self, evidence) -> int:
        """How far simulated inputs must be padded so every replicate has one shape."""
        return 0

    def pad_inputs(self, inputs, padding: int):
        return inputs

    # -- model checking -----------------------------------------------------------------
    def posterior_predictive(self, result, seed: int | None = None):
        """One row per observed report: observed value or range, replicated quantiles, a
        two-sided posterior predictive p-value, whether the observation is inside 95%."""
        raise NotImplementedError

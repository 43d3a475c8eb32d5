"""Dose harmonisation: every cell arm's dose on one axis, million cells per kg.

Trials gave cells per kg (most) or a fixed number of cells per infusion (Lanzoni, Shi,
Zarrabi, Gorman, the MAPC trials), over one to three infusions. A fixed dose becomes per kg
only through the patients' body weight, which none of these trials reports; the model
carries it as an uncertain quantity per trial (or a plug-in, if the spec says so), so the
per-kg dose of a fixed-dose arm is a posterior quantity, not a number. Dose levels that are
an assumption (BC-U001's, taken from the BX-U001 registration) are flagged and can be left
out (``model.use_assumed_doses = false``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from .register import Register


@dataclass(frozen=True)
class ArmDose:
    """One arm's dose as reported; ``per_kg`` or ``fixed_millions`` is NaN."""

    per_kg: float  # million cells/kg per infusion
    fixed_millions: float  # million cells per infusion
    infusions: int
    assumed: bool
    source: str

    @property
    def known(self) -> bool:
        return not (math.isnan(self.per_kg) and math.isnan(self.fixed_millions))

    @property
    def is_fixed(self) -> bool:
        return math.isnan(self.per_kg) and not math.isnan(self.fixed_millions)

    def metric_factor(self, metric: str) -> float:
        """Multiplier from per-infusion dose to the spec's dose metric."""
        return float(self.infusions) if metric == "cumulative" else 1.0

    def describe(self, metric: str) -> str:
        per = f"{self.per_kg:g}x10^6/kg" if not self.is_fixed else f"{self.fixed_millions:g}x10^6 cells (fixed)"
        text = f"{per} x {self.infusions}"
        return text + (" [assumed]" if self.assumed else "")


NO_DOSE = ArmDose(math.nan, math.nan, 1, False, "")


def arm_dose(register: Register, study_id: str, arm_id: str) -> ArmDose:
    doses = register.doses
    hit = doses[(doses["study_id"] == study_id) & (doses["arm_id"] == arm_id)]
    if hit.empty:
        return NO_DOSE
    row = hit.iloc[0]

    def number(value) -> float:
        return math.nan if pd.isna(value) else float(value)

    return ArmDose(
        per_kg=number(row["dose_per_kg"]),
        fixed_millions=number(row["fixed_dose"]),
        infusions=1 if pd.isna(row["infusions"]) else int(row["infusions"]),
        assumed=row["quality"] == "assumption",
        source=str(row["source"]),
    )


def dose_problem(doses: list[ArmDose], use_assumed: bool) -> str:
    """Why a study's cell arms cannot enter a dose-response model, or "" if they can."""
    if any(not d.known for d in doses):
        return "dose not reported for a cell arm: cannot be placed on the dose axis"
    if not use_assumed and any(d.assumed for d in doses):
        return "dose levels are an assumption (model.use_assumed_doses = false)"
    return ""


def dose_columns(doses: list[ArmDose], treated: list[int], metric: str) -> dict[str, list]:
    """Per-arm model columns: known per-kg dose, fixed dose, whether fixed, metric factor.

    Control arms get the reference placeholder per-kg dose 1.0 (never used: their effect is
    multiplied by 0) so the curve is never evaluated at log(0).
    """
    out: dict[str, list] = {"dose_per_kg": [], "dose_fixed": [], "dose_is_fixed": [], "dose_factor": [], "dose_assumed": []}
    for dose, is_cell in zip(doses, treated):
        usable = bool(is_cell) and dose.known
        out["dose_is_fixed"].append(float(usable and dose.is_fixed))
        out["dose_per_kg"].append(dose.per_kg if usable and not dose.is_fixed else 1.0)
        out["dose_fixed"].append(dose.fixed_millions if usable and dose.is_fixed else 0.0)
        out["dose_factor"].append(dose.metric_factor(metric) if usable else 1.0)
        out["dose_assumed"].append(bool(usable and dose.assumed))
    return out

"""The package's named random streams: every random draw made outside the sampler, and its purpose.

A stream is ``numpy.random.default_rng([seed, TAG, *index])``: the run's seed, the stream's tag
and, for a stream per replicate, the replicate's index. Distinct tags make the streams
independent of one another and of the order in which they are drawn, so a repeated run
reproduces every number bit for bit, and one analysis drawing more or fewer numbers leaves the
others as they were. A tag's value is part of every saved result drawn from it: never change
one (the numbers would change), and give a new stream a tag of its own.
"""

from __future__ import annotations

import numpy as np

# -- a fit's own quantities (seeded from the spec's sampler seed) ------------------------------
PREDICTIVE_EFFECT = 0x5EED
"""The effect in a new trial, mean + tau * eps: the eps per draw (:func:`bayes_msc.decisions.predictive_effect`)."""
CONTINUOUS_STUDY_EFFECTS = 0x57D
"""The continuous model's study effects, drawn from their conditional posterior given each draw
(the marginalised model samples without them)."""
MORTALITY_CHECK = 0x99C
"""Replicated deaths per arm for the mortality posterior predictive check."""
CONTINUOUS_CHECK = 0x0C2
"""Replicated term estimates for the continuous outcome's posterior predictive check."""

# -- the next trial (seeded from the design settings' seed) ------------------------------------
NEXT_TRIAL_EFFECT_AT_DOSE = 0xD05E
"""The new trial's effect at a chosen dose: the eps of pooled + tau * eps per draw."""
CONTROL_RISK = 0xC0
"""Draws of the new trial's control risk from the hierarchical control-risk model."""

# -- calibration and simulation studies (one stream per replicate) -----------------------------
SBC_REPLICATE = 0x5BC
"""One SBC replicate's truth and simulated data (index: the replicate), whoever runs it, whenever."""
SBC_RANK_TIES = 1
"""The random tie-breaks that make SBC ranks fractional."""
SIMULATION_REPLICATE = 0x51D
"""One simulation-study register's truth (tau, study effects) and data (index: the item)."""
SMALL_STUDY_REPLICATE = 0x55E
"""One small-study-adjustment check's simulated register (index: scenario, replicate)."""

COVARIATE_POWER_REPLICATE = 0xC0B
"""One covariate-power register's study effects and deaths (index: scenario, replicate)."""


def stream(seed: int, tag: int, *index: int) -> np.random.Generator:
    """The generator for stream ``tag`` of run ``seed`` (and replicate ``index``, if any)."""
    return np.random.default_rng([seed, tag, *index])

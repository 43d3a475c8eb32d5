"""The next trial: what today's synthesis says about designing it.

* :mod:`.outcome` — the one place that says what an outcome means to a design (effect
  variable names, scale, direction of benefit, the unit information of one patient);
* :mod:`.map_prior` — the meta-analytic-predictive (MAP) prior of a new trial's effect as a
  mixture of normals, robustified, with its effective sample size and RBesT-style JSON;
* :mod:`.assurance` — assurance and operating characteristics of a two-arm trial by sample
  size (exact binomial outcomes / normal outcomes, analysed in closed form), sample size and dose;
* :mod:`.fragility` — how many deaths, changed within what each report allows, flip today's
  conclusion, and how large a null trial would;
* :mod:`.plan` — :func:`design`, which runs all of them on a fit.
"""

from .plan import DesignResult, design

__all__ = ["DesignResult", "design"]

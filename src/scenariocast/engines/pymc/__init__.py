"""The PyMC engine: every probability and likelihood parameter with a prior, sampled by NUTS.

Imported only when a forecast asks for it (``engine="pymc"``): PyMC, PyTensor, nutpie and ArviZ
cost seconds of start-up that the exact engine's commands never pay.

- :mod:`.priors`: the priors of the numbers in a tree (Dirichlet rows, Beta persistences and
  reliabilities, normal or Gamma parameters held with uncertainty);
- :mod:`.evidence`: the readings as log-potentials, constant where nothing about them is
  uncertain, as PyTensor expressions of the parameters otherwise;
- :mod:`.elimination`: the exact engine's junction tree written in PyTensor, which sums the
  scenario states out of the likelihood;
- :mod:`.model`: the PyMC model of a tree and its readings;
- :mod:`.sampling`: compiling (and keeping) the model, and running nutpie or PyMC's NUTS;
- :mod:`.posterior`: from draws to the scenario probabilities, diagnostics, the DataTree and
  the one result type.
"""

from scenariocast.engines.pymc.posterior import PosteriorRun, forecast_pymc, load_posterior

__all__ = ["PosteriorRun", "forecast_pymc", "load_posterior"]

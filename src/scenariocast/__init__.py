"""scenariocast: scenario trees, an evidence ledger and Bayesian updating for forecasters.

The API is imported lazily so that ``import scenariocast`` stays cheap::

    from scenariocast import load_tree, Ledger, Model, forecast, explain, watch, sensitivity
    from scenariocast import write_report

(The report object itself comes from ``scenariocast.api.report``: ``scenariocast.report`` is the
package that lays reports out.)
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

_EXPORTS = {
    "load_tree": "scenariocast.spec.load",
    "forecast": "scenariocast.api",
    "Model": "scenariocast.api",
    "explain": "scenariocast.api",
    "watch": "scenariocast.api",
    "sensitivity": "scenariocast.api",
    "parse_given": "scenariocast.api",
    "write_report": "scenariocast.api",
    "Ledger": "scenariocast.ledger",
    "ForecastResult": "scenariocast.engines.result",
    "Explanation": "scenariocast.analysis.explain",
    "Reading": "scenariocast.evidence.readings",
    "ObservedDate": "scenariocast.evidence.readings",
    "Catalog": "scenariocast.evidence.catalog",
    "ScenariocastError": "scenariocast.errors",
}

__all__ = [
    "Catalog",
    "Explanation",
    "ForecastResult",
    "Ledger",
    "Model",
    "ObservedDate",
    "Reading",
    "ScenariocastError",
    "__version__",
    "explain",
    "forecast",
    "load_tree",
    "parse_given",
    "sensitivity",
    "watch",
    "write_report",
]

if TYPE_CHECKING:
    from scenariocast.analysis.explain import Explanation
    from scenariocast.api import (
        Model,
        explain,
        forecast,
        parse_given,
        sensitivity,
        watch,
        write_report,
    )
    from scenariocast.engines.result import ForecastResult
    from scenariocast.errors import ScenariocastError
    from scenariocast.evidence.catalog import Catalog
    from scenariocast.evidence.readings import ObservedDate, Reading
    from scenariocast.ledger import Ledger
    from scenariocast.spec.load import load_tree


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'scenariocast' has no attribute {name!r}")

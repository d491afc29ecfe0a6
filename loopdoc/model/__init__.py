"""The model layer: pure data describing a loop, a traced run and a comparison, and reading them from JSON.

``loopdoc.model.loop`` (the loop model), ``loopdoc.model.trace`` (a traced run),
``loopdoc.model.diff`` (a comparison of two loops) and ``loopdoc.model.documents``
(``load_json``: a saved ``.json`` checked against its schema). These modules import no
other layer of loopdoc (``loopdoc.errors`` is below every layer); only the notebook view
reaches the renderer, lazily (``loop._notebook``). The loop model's names are re-exported here.
"""

from .documents import load_json, schema, trace_schema
from .loop import (
    SCHEMA_VERSION,
    Callback,
    Cancel,
    Event,
    Framework,
    Handler,
    LearnerSummary,
    Loop,
    Node,
    Phase,
    SourceLocation,
    Step,
    json_shape,
)

__all__ = ["SCHEMA_VERSION", "Callback", "Cancel", "Event", "Framework", "Handler", "LearnerSummary", "Loop", "Node",
           "Phase", "SourceLocation", "Step", "json_shape", "load_json", "schema", "trace_schema"]

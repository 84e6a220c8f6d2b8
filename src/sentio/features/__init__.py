"""Features: the original spec format, every op, one compiled driver for batch and stream."""

from sentio.features.engine import FeatureEngine, FeatureFrame, segment_starts
from sentio.features.inputs import BarInput, as_input, from_arrays, from_frame
from sentio.features.program import Program, compile_spec
from sentio.features.registry import OPS, REGISTRY, SOURCES, Op, Warmup
from sentio.features.spec import SHIPPED, Feature, FeatureSpec, load_spec, parse_spec
from sentio.features.state import StreamState

__all__ = [
    "BarInput",
    "Feature",
    "FeatureEngine",
    "FeatureFrame",
    "FeatureSpec",
    "OPS",
    "Op",
    "Program",
    "REGISTRY",
    "SHIPPED",
    "SOURCES",
    "StreamState",
    "Warmup",
    "as_input",
    "compile_spec",
    "from_arrays",
    "from_frame",
    "load_spec",
    "parse_spec",
    "segment_starts",
]

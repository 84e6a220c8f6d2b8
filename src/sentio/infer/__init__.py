"""Inference: the sequence context (batch over a series) and the stream context (bar by bar),
which agree bit for bit; both torch-free, both counting the scored bars whose features leave
what the model was trained on (``range_report()``, ``sentio.infer.ranges``)."""

from sentio.infer.cache import ProbabilityCache, cache_key
from sentio.infer.parity import ParityReport, bars_of, compare, stream_probabilities
from sentio.infer.ranges import RangeCounter, RangeReport, limits_of
from sentio.infer.registry import LoadedModel, load_model
from sentio.infer.seq import SequenceContext, probability
from sentio.infer.stream import StreamContext

__all__ = [
    "LoadedModel",
    "ParityReport",
    "ProbabilityCache",
    "RangeCounter",
    "RangeReport",
    "SequenceContext",
    "StreamContext",
    "bars_of",
    "cache_key",
    "compare",
    "limits_of",
    "load_model",
    "probability",
    "stream_probabilities",
]

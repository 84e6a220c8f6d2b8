"""Inference: the sequence context (batch over a series) and the stream context (bar by bar),
which agree bit for bit; both torch-free."""

from sentio.infer.cache import ProbabilityCache, cache_key
from sentio.infer.parity import ParityReport, bars_of, compare, stream_probabilities
from sentio.infer.registry import LoadedModel, load_model
from sentio.infer.seq import SequenceContext, probability
from sentio.infer.stream import StreamContext

__all__ = [
    "LoadedModel",
    "ParityReport",
    "ProbabilityCache",
    "SequenceContext",
    "StreamContext",
    "bars_of",
    "cache_key",
    "compare",
    "load_model",
    "probability",
    "stream_probabilities",
]

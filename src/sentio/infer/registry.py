"""The model registry: an artifact loaded, verified and checked against its own feature spec.

Two doors, one check: the sequence context reads ``model.meta.json`` (its ``expects`` block),
the stream context the legacy ``metadata.json`` (as the original registry did). Both verify
the manifest first, then refuse, naming what differs, any disagreement between the metadata,
the feature spec and the ONNX graph's input shape: nothing is projected, padded or guessed.
A causal artifact (docs/model.md, "The causal presets") has no legacy file: both doors read
its model.meta.json, and its runtime is the torch-free causal network instead of ONNX Runtime.
Torch-free.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sentio.core.errors import ParityError
from sentio.core.hashing import sha256_file
from sentio.features import FeatureEngine, parse_spec
from sentio.model.artifact import MANIFEST, causal_net, is_causal, load_verified, read_json
from sentio.model.causal_runtime import CausalNet
from sentio.model.runtime import OnnxModel


@dataclass(frozen=True)
class LoadedModel:
    """What both inference paths need: the runtime (``onnx`` for a window model, ``net`` for a
    causal one), the engine, the window length T."""

    directory: Path
    onnx: OnnxModel | None
    engine: FeatureEngine
    seq_len: int
    feature_names: tuple[str, ...]
    manifest_hash: str  # sha256 of manifest.json: identifies the artifact's exact bytes
    door: str  # "model.meta.json" or "metadata.json"
    net: CausalNet | None = None  # the causal runtime; None for a window model

    @property
    def spec_hash(self) -> str:
        return self.engine.content_hash

    @property
    def causal(self) -> bool:
        return self.net is not None

    @property
    def reach(self) -> int:
        """Feature rows that decide one bar's probability (T, or L (T - 1) + 1 causal)."""
        return self.net.context_rows if self.net is not None else self.seq_len


def load_model(directory: str | Path, door: str = "model.meta.json") -> LoadedModel:
    """Verify the artifact and load it through ``door`` (``model.meta.json`` for the
    sequence context, ``metadata.json`` for the stream context)."""
    directory = Path(directory)
    meta = load_verified(directory)  # manifest, metadata consistency, recorded windows
    if is_causal(meta):
        door = "model.meta.json"  # the only door of a causal artifact
    spec = parse_spec(
        read_json(directory, "feature_spec.json"),
        origin=str(directory / "feature_spec.json"),
    )
    engine = FeatureEngine(spec)
    doc = read_json(directory, door)  # the one bounded reader, as load_verified used
    if door == "model.meta.json":
        expects = doc["expects"]
        names, seq_len, dtype = expects["feature_names"], expects["seq_len"], expects["dtype"]
        if expects["spec_hash"] != spec.content_hash:
            raise ParityError(
                f"{door}: expects.spec_hash {expects['spec_hash']} but "
                f"feature_spec.json hashes to {spec.content_hash}"
            )
        if expects.get("output") != "logit":
            raise ParityError(f"{door}: output {expects.get('output')!r}, expected 'logit'")
    elif door == "metadata.json":
        names, seq_len, dtype = doc["feature_names"], doc["seq_len"], "float32"
        if doc.get("input_layout") != "BTF":
            raise ParityError(f"{door}: input_layout {doc.get('input_layout')!r}, expected 'BTF'")
    else:
        raise ValueError(f"unknown door {door!r}")
    if dtype != "float32":
        raise ParityError(f"{door}: dtype {dtype!r}; the engine produces float32")
    if list(names) != list(spec.names):
        first = next(
            (i for i, (a, b) in enumerate(zip(names, spec.names, strict=False)) if a != b),
            min(len(names), len(spec.names)),
        )
        raise ParityError(
            f"{door}: feature names differ from feature_spec.json from position "
            f"{first} ({len(names)} vs {len(spec.names)} names)"
        )
    onnx = net = None
    if is_causal(meta):
        net = causal_net(directory, meta)
    else:
        onnx = OnnxModel(directory / "model.onnx")
        shape = onnx.session.get_inputs()[0].shape  # [batch, T, F]
        if list(shape[1:]) != [seq_len, len(names)]:
            raise ParityError(
                f"model.onnx expects windows of {shape[1:]} (T, F), {door} says "
                f"[{seq_len}, {len(names)}]"
            )
    return LoadedModel(
        directory=directory,
        onnx=onnx,
        engine=engine,
        seq_len=int(seq_len),
        feature_names=tuple(names),
        manifest_hash=sha256_file(directory / MANIFEST),
        door=door,
        net=net,
    )


__all__ = ["LoadedModel", "load_model"]

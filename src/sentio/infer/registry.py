"""The model registry: an artifact loaded, verified and checked against its own feature spec.

Two doors, one check: the sequence context reads ``model.meta.json`` (its ``expects`` block),
the stream context the legacy ``metadata.json`` (as the original registry did). Both verify
the manifest first, then refuse, naming what differs, any disagreement between the metadata,
the feature spec and the ONNX graph's input shape: nothing is projected, padded or guessed.
Torch-free.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sentio.core.errors import ParityError
from sentio.core.hashing import sha256_file
from sentio.features import FeatureEngine, parse_spec
from sentio.model.artifact import MANIFEST, load_verified, read_json
from sentio.model.runtime import OnnxModel


@dataclass(frozen=True)
class LoadedModel:
    """What both inference paths need: the runtime, the engine, the window length T."""

    directory: Path
    onnx: OnnxModel
    engine: FeatureEngine
    seq_len: int
    feature_names: tuple[str, ...]
    manifest_hash: str  # sha256 of manifest.json: identifies the artifact's exact bytes
    door: str  # "model.meta.json" or "metadata.json"

    @property
    def spec_hash(self) -> str:
        return self.engine.content_hash


def load_model(directory: str | Path, door: str = "model.meta.json") -> LoadedModel:
    """Verify the artifact and load it through ``door`` (``model.meta.json`` for the
    sequence context, ``metadata.json`` for the stream context)."""
    directory = Path(directory)
    load_verified(directory)  # manifest, metadata consistency, recorded windows
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
    )


__all__ = ["LoadedModel", "load_model"]

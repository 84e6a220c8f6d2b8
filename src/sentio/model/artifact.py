"""The artifact directory (ARCHITECTURE.md section 5), written atomically, verified on load.

Files: ``model.onnx``, ``model.pt`` (TorchScript), ``model.meta.json`` (new format with the
``expects`` block the original C++ loader reads), ``metadata.json`` (legacy registry format),
``feature_spec.json`` (with ``content_hash``), ``metrics.json``, ``parity_windows.npy`` (the
recorded windows export was checked on; their eager logits are in model.meta.json) and
``manifest.json`` (sha256 of every other file). Torch-free: production loads and verifies
artifacts without PyTorch. Nothing here is a pickle.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sentio.core.errors import ArtifactError
from sentio.core.hashing import sha256_file, sha256_hex
from sentio.features.spec import parse_spec

MANIFEST = "manifest.json"
FILES = (
    "model.onnx",
    "model.pt",
    "model.meta.json",
    "metadata.json",
    "feature_spec.json",
    "metrics.json",
    "parity_windows.npy",
)
PARITY_TOLERANCE = 1e-5  # max |logit difference| between eager, TorchScript and ONNX Runtime


def json_bytes(obj: object) -> bytes:
    """Indented, key-sorted JSON (stable bytes for the same content)."""
    return (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode("utf-8")


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


def write_artifact(directory: str | Path, files: dict[str, bytes]) -> Path:
    """Write ``files`` plus ``manifest.json`` into ``directory`` atomically: everything goes
    into a temporary sibling directory that is renamed into place at the end."""
    directory = Path(directory)
    missing = set(FILES) - set(files)
    if missing:
        raise ArtifactError(f"artifact lacks {sorted(missing)}", file=str(directory))
    if directory.exists() and any(directory.iterdir()):
        raise ArtifactError(
            "exists and is not empty; choose another --output or remove it", file=str(directory)
        )
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        for name in sorted(files):
            (tmp / name).write_bytes(files[name])
        manifest = {"files": {name: sha256_hex(files[name]) for name in sorted(files)}}
        (tmp / MANIFEST).write_bytes(json_bytes(manifest))
        tmp.chmod(0o755)  # mkdtemp makes it private; an artifact is meant to be shared
        if directory.exists():
            directory.rmdir()
        os.replace(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return directory


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str


def _read_json(directory: Path, name: str) -> dict:
    try:
        return json.loads((directory / name).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"unreadable JSON ({exc})", file=str(directory / name)) from exc


def check_manifest(directory: Path) -> Check:
    """Every listed file exists with its sha256, and nothing unlisted is there."""
    manifest = _read_json(directory, MANIFEST).get("files", {})
    for name in FILES:
        if name not in manifest:
            return Check("manifest", False, f"{name} is not listed in {MANIFEST}")
    present = {p.name for p in directory.iterdir() if p.is_file()} - {MANIFEST}
    extra = present - set(manifest)
    if extra:
        return Check("manifest", False, f"files not in {MANIFEST}: {sorted(extra)}")
    for name, digest in sorted(manifest.items()):
        path = directory / name
        if not path.exists():
            return Check("manifest", False, f"{name} is missing")
        if sha256_file(path) != digest:
            return Check("manifest", False, f"{name}: sha256 differs from {MANIFEST}")
    return Check("manifest", True, f"{len(manifest)} files, every sha256 matches")


def check_metadata(directory: Path) -> Check:
    """model.meta.json, metadata.json, feature_spec.json and the ONNX graph agree."""
    meta = _read_json(directory, "model.meta.json")
    legacy = _read_json(directory, "metadata.json")
    spec = parse_spec(_read_json(directory, "feature_spec.json"), origin="feature_spec.json")
    expects = meta["expects"]
    problems = []
    if expects["spec_hash"] != spec.content_hash:
        problems.append(
            f"expects.spec_hash {expects['spec_hash']} != feature_spec.json {spec.content_hash}"
        )
    if list(expects["feature_names"]) != list(spec.names):
        problems.append("expects.feature_names differ from feature_spec.json's names")
    if list(legacy["feature_names"]) != list(spec.names):
        problems.append("metadata.json feature_names differ from feature_spec.json's names")
    counts = {expects["input_dim"], meta["feature_count"], len(spec.names), len(legacy["mean"])}
    if len(counts) != 1:
        problems.append(f"feature counts disagree: {sorted(counts)}")
    lengths = {expects["seq_len"], meta["sequence_length"], legacy["seq_len"]}
    if len(lengths) != 1:
        problems.append(f"sequence lengths disagree: {sorted(lengths)}")
    from sentio.model.runtime import OnnxModel

    onnx_meta = OnnxModel(directory / "model.onnx").metadata
    if onnx_meta.get("spec_hash") != spec.content_hash:
        problems.append("model.onnx metadata_props spec_hash differs from feature_spec.json")
    if onnx_meta.get("seq_len") != str(meta["sequence_length"]):
        problems.append("model.onnx metadata_props seq_len differs from model.meta.json")
    if problems:
        return Check("metadata", False, "; ".join(problems))
    return Check(
        "metadata",
        True,
        f"spec {spec.content_hash[:19]}..., F={len(spec.names)}, T={meta['sequence_length']}",
    )


def check_parity(directory: Path) -> Check:
    """ONNX Runtime (one thread) on the recorded windows reproduces the recorded logits."""
    from sentio.model.runtime import OnnxModel

    meta = _read_json(directory, "model.meta.json")
    windows = np.load(directory / "parity_windows.npy", allow_pickle=False)
    expected = np.array(meta["parity"]["logits_eager"], dtype=np.float64)
    got = OnnxModel(directory / "model.onnx").logits(windows).astype(np.float64)
    worst = float(np.abs(got - expected).max())
    ok = worst <= PARITY_TOLERANCE
    detail = (
        f"{len(windows)} recorded windows, max |logit diff| {worst:.2g} (<= {PARITY_TOLERANCE})"
    )
    return Check("onnx parity", ok, detail)


def verify(directory: str | Path) -> list[Check]:
    """All checks; the manifest first (the others only run on an intact artifact)."""
    directory = Path(directory)
    if not (directory / MANIFEST).exists():
        raise ArtifactError(f"no {MANIFEST}: not an artifact directory", file=str(directory))
    checks = [check_manifest(directory)]
    if checks[0].passed:
        # the manifest pins every file's sha256, so its hash names the exact bytes checked:
        # the recorded windows are re-run once per artifact and process, not at every load
        key = sha256_file(directory / MANIFEST)
        if key not in _PARITY_CHECKED:
            _PARITY_CHECKED[key] = check_parity(directory)
        checks += [check_metadata(directory), _PARITY_CHECKED[key]]
    return checks


_PARITY_CHECKED: dict[str, Check] = {}


def load_verified(directory: str | Path) -> dict:
    """model.meta.json of an artifact that passes :func:`verify`; else ArtifactError naming
    the file and what differs."""
    for check in verify(directory):
        if not check.passed:
            raise ArtifactError(f"{check.name}: {check.detail}", file=str(directory))
    return _read_json(Path(directory), "model.meta.json")


def info(directory: str | Path) -> dict:
    """A summary of an artifact (no verification)."""
    directory = Path(directory)
    meta = _read_json(directory, "model.meta.json")
    metrics = _read_json(directory, "metrics.json")
    test = metrics.get("evaluation", {}).get("test", {}).get("model", {})
    return {
        "directory": str(directory),
        "model_type": meta["model_type"],
        "version": meta.get("version"),
        "saved_at": meta["saved_at"],
        "feature_count": meta["feature_count"],
        "sequence_length": meta["sequence_length"],
        "d_model": meta["d_model"],
        "nhead": meta["nhead"],
        "num_layers": meta["num_layers"],
        "spec_hash": meta["expects"]["spec_hash"],
        "label": meta["label"],
        "seed": meta["seed"],
        "splits": meta["data"]["splits"],
        "test_auc": test.get("auc"),
        "test_log_loss": test.get("log_loss"),
    }


__all__ = [
    "FILES",
    "MANIFEST",
    "Check",
    "info",
    "json_bytes",
    "load_verified",
    "npy_bytes",
    "verify",
    "write_artifact",
]

"""The artifact directory (docs/model.md), written atomically, verified on load.

Files: ``model.onnx``, ``model.pt`` (TorchScript), ``model.meta.json`` (new format with the
``expects`` block the original C++ loader reads), ``metadata.json`` (legacy registry format),
``feature_spec.json`` (with ``content_hash``), ``metrics.json``, ``parity_windows.npy`` (the
recorded windows export was checked on; their eager logits are in model.meta.json),
``manifest.json`` (sha256 of every other file) and, when a signing key is configured,
``signature.json`` (an HMAC of the manifest, see :mod:`sentio.model.signing`). Torch-free:
production loads and verifies artifacts without PyTorch. Nothing here is a pickle.

Nothing is opened through a symbolic link or outside the directory: an entry that is a link, a
folder, or a manifest path that is not a plain file name is refused before any file is read.

>>> _plain_name("model.onnx"), _plain_name("../x"), _plain_name("/etc/passwd")
(True, False, False)
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sentio.core.errors import ArtifactError, SentioError, excerpt
from sentio.core.files import write_bytes_atomic
from sentio.core.hashing import sha256_file, sha256_hex
from sentio.features.spec import parse_spec
from sentio.model.metadata import finite, is_number, load_json, meta_problems
from sentio.model.signing import SIGNATURE, SigningKey, sign_manifest, signature_status, signing_key

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
# A causal model (docs/model.md, "The causal presets") has no ONNX graph, TorchScript or legacy
# metadata.json: its weights for the torch-free causal runtime, and recorded stretches of rows.
CAUSAL_FILES = (
    "model.safetensors",
    "model.meta.json",
    "feature_spec.json",
    "metrics.json",
    "parity_rows.npy",
)
CAUSAL_TYPE = "TFA-causal"  # model.meta.json model_type of a causal artifact
PARITY_TOLERANCE = 1e-5  # max |logit difference| between eager, TorchScript and ONNX Runtime

# metadata.json's clip for the original C++ ModelRegistryTS, which applies it after
# (x - mean) / std with our mean 0 / std 1: a finite float32 bound that no finite float32
# feature exceeds, so the legacy loader's normalisation is the identity (issue 12 section 5).
LEGACY_CLIP = 3.0e38

# Keys (and their JSON types) that the loaders read; a missing one is named, never a KeyError.
META_KEYS = {
    "model_type": str,
    "saved_at": str,
    "feature_count": int,
    "sequence_length": int,
    "d_model": int,
    "nhead": int,
    "num_layers": int,
    "seed": int,
    "expects": dict,
    "label": dict,
    "data": dict,
    "parity": dict,
    "thresholds": dict,
}
EXPECTS_KEYS = {
    "input_dim": int,
    "feature_names": list,
    "spec_hash": str,
    "seq_len": int,
    "dtype": str,
    "output": str,
}
LEGACY_KEYS = {
    "feature_names": list,
    "mean": list,
    "std": list,
    "clip": list,
    "seq_len": int,
    "input_layout": str,
}
_SHA256 = re.compile(r"[0-9a-f]{64}")


def json_bytes(obj: object) -> bytes:
    """Indented, key-sorted JSON (stable bytes for the same content)."""
    return (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode("utf-8")


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


def write_artifact(
    directory: str | Path, files: dict[str, bytes], key: SigningKey | None = None
) -> Path:
    """Write ``files`` plus ``manifest.json`` (and ``signature.json`` when ``key`` is given)
    into ``directory`` atomically: everything goes into a temporary sibling directory that is
    renamed into place at the end."""
    directory = Path(directory)
    missing = set(CAUSAL_FILES if "model.safetensors" in files else FILES) - set(files)
    if missing:
        raise ArtifactError(f"artifact lacks {sorted(missing)}", file=str(directory))
    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise ArtifactError(
            "exists and is not an empty directory; choose another --output or remove it",
            file=str(directory),
        )
    directory.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.", dir=directory.parent))
    try:
        for name in sorted(files):
            (tmp / name).write_bytes(files[name])
        manifest = {"files": {name: sha256_hex(files[name]) for name in sorted(files)}}
        (tmp / MANIFEST).write_bytes(json_bytes(manifest))
        if key is not None:
            (tmp / SIGNATURE).write_bytes(json_bytes(sign_manifest(manifest, key)))
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
    """One verification: ``checked`` is False when it could not run (``passed`` is then True
    and ``detail`` says why, e.g. "model.pt not checked (torch not installed)")."""

    name: str
    passed: bool
    detail: str
    checked: bool = True


# --- reading an artifact safely -------------------------------------------------------------


def _plain_name(name: object) -> bool:
    """A file name directly inside the artifact: no folder part, not absolute, not ``..``,
    and no longer than a file name can be (255 bytes, Linux's NAME_MAX)."""
    return (
        isinstance(name, str)
        and name not in ("", ".", "..")
        and not any(c in name for c in "/\\\0")
        and len(name.encode("utf-8", "surrogatepass")) <= 255
    )


def artifact_directory(directory: str | Path) -> Path:
    """``directory`` if it looks like an artifact whose entries are all regular files; else one
    ArtifactError line (missing, a file, empty, a symbolic link or folder inside)."""
    directory = Path(directory)
    if not directory.exists():
        raise ArtifactError("no such artifact directory", file=str(directory))
    if not directory.is_dir():
        raise ArtifactError("is a file, not an artifact directory", file=str(directory))
    try:
        entries = sorted(directory.iterdir())
    except OSError as exc:
        raise ArtifactError(f"cannot list: {exc.strerror or exc}", file=str(directory)) from exc
    if not entries:
        raise ArtifactError(
            f"is empty, not an artifact directory (expected {MANIFEST} and its files)",
            file=str(directory),
        )
    for entry in entries:
        if entry.is_symlink():
            raise ArtifactError(
                "is a symbolic link; an artifact holds only its own regular files, and nothing "
                "is opened through a link",
                file=str(entry),
            )
        if not entry.is_file():
            raise ArtifactError(
                "is not a regular file; an artifact has no folders", file=str(entry)
            )
    if not (directory / MANIFEST).exists():
        raise ArtifactError(f"no {MANIFEST}: not an artifact directory", file=str(directory))
    return directory


def read_json(
    directory: Path, name: str, required: dict[str, type] | None = None, where: str = ""
) -> dict:
    """A JSON object from the artifact, with ``required`` keys of the given types (read
    through the one bounded reader, :func:`sentio.model.metadata.load_json`)."""
    path = directory / name
    doc = load_json(path)
    if not isinstance(doc, dict):
        raise ArtifactError(f"must be a JSON object, got a {type(doc).__name__}", file=str(path))
    require(doc, required or {}, str(path), where)
    return doc


def require(doc: dict, keys: dict[str, type], file: str, where: str = "") -> None:
    """Every key present with the JSON type the loaders expect; else ArtifactError naming it."""
    for key, kind in keys.items():
        name = f"{where}{key}"
        if key not in doc:
            raise ArtifactError(f"lacks the required key {name!r}", file=file)
        value = doc[key]
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise ArtifactError(
                f"key {name!r} must be a {kind.__name__}, got {excerpt(value)}", file=file
            )


def read_manifest(directory: Path) -> dict:
    """manifest.json checked for shape: ``{"files": {plain name: sha256 hex}}``."""
    doc = read_json(directory, MANIFEST, {"files": dict})
    path = str(directory / MANIFEST)
    for name, digest in doc["files"].items():
        if not _plain_name(name):
            raise ArtifactError(
                f"path {excerpt(name)} is not a plain file name inside the artifact (absolute, "
                "a folder, leaving it, or too long); nothing outside the directory is opened",
                file=path,
            )
        if name in (MANIFEST, SIGNATURE):
            raise ArtifactError(f"lists {name}, which cannot hash itself", file=path)
        if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
            raise ArtifactError(
                f"files[{excerpt(name)}] must be 64 lowercase hex digits, got {excerpt(digest)}",
                file=path,
            )
    return doc


def _read_signature(directory: Path) -> dict | None:
    if not (directory / SIGNATURE).exists():
        return None
    return read_json(directory, SIGNATURE)


# --- the checks -------------------------------------------------------------------------------


def check_manifest(directory: Path, manifest: dict | None = None) -> Check:
    """Every listed file exists with its sha256, and nothing unlisted is there."""
    listed = (manifest or read_manifest(directory))["files"]
    for name in CAUSAL_FILES if "model.safetensors" in listed else FILES:
        if name not in listed:
            return Check("manifest", False, f"{name} is not listed in {MANIFEST}")
    present = {p.name for p in directory.iterdir() if p.is_file()} - {MANIFEST, SIGNATURE}
    extra = present - set(listed)
    if extra:
        return Check("manifest", False, f"files not in {MANIFEST}: {excerpt(sorted(extra), 200)}")
    for name, digest in sorted(listed.items()):
        path = directory / name
        if not path.exists():  # a listed name may be 100,000 characters long: shown cut
            return Check("manifest", False, f"{_shown(name)} is missing")
        if sha256_file(path) != digest:
            return Check("manifest", False, f"{_shown(name)}: sha256 differs from {MANIFEST}")
    return Check("manifest", True, f"{len(listed)} files, every sha256 matches")


def _shown(name: str) -> str:
    """A file name as a message shows it: as is when short, else a bounded excerpt."""
    return name if len(name) <= 80 and name.isprintable() else excerpt(name, 80)


def check_signature(directory: Path, manifest: dict, key: SigningKey | None) -> Check:
    """signature.json against the configured key (not checked, and said so, without a key)."""
    status, detail = signature_status(manifest, _read_signature(directory), key)
    if status in ("verified", "bad") or key is not None:
        return Check("signature", status == "verified", detail)
    return Check("signature", True, detail, checked=False)


def read_meta(directory: Path) -> dict:
    """model.meta.json with every key the loaders read (``expects`` included), each of its
    JSON type; the values are checked by :func:`check_metadata` (``meta_problems``)."""
    meta = read_json(directory, "model.meta.json", META_KEYS)
    require(meta["expects"], EXPECTS_KEYS, str(directory / "model.meta.json"), "expects.")
    return meta


def _legacy_problems(legacy: dict) -> list[str]:
    """metadata.json must be the identity for the original loader (the graph normalises
    itself): mean 0, std 1, a clip of two finite numbers. Only a clip that binds is left to
    :func:`check_legacy`, which Sentio's loaders do not need (they never read the clip)."""
    problems = []
    if any(v != 0 for v in legacy["mean"]) or any(v != 1 for v in legacy["std"]):
        problems.append(
            "metadata.json mean must be 0 and std 1 (the graph normalises itself; the original "
            "loader would normalise a second time)"
        )
    clip = legacy["clip"]
    if len(clip) != 2 or not all(finite(v) for v in clip):
        problems.append(f"metadata.json clip must be two finite numbers, got {excerpt(clip)}")
    elif clip[0] >= clip[1]:
        problems.append(f"metadata.json clip [{clip[0]:g}, {clip[1]:g}] is empty")
    return problems


def is_causal(meta: dict) -> bool:
    """A causal artifact (model.meta.json ``model_type``)."""
    return meta.get("model_type") == CAUSAL_TYPE


def causal_net(directory: Path, meta: dict):
    """The torch-free causal runtime of the artifact, its weights' names and shapes checked
    against model.meta.json (ArtifactError naming model.safetensors otherwise)."""
    from sentio.model.causal_runtime import WEIGHTS, CausalNet
    from sentio.model.weights import from_bytes

    path = directory / "model.safetensors"
    config = meta.get("config") if isinstance(meta.get("config"), dict) else {}
    ff_mult, clip = config.get("ff_mult", 4), config.get("clip", 10.0)
    problems = meta_problems(meta, only=("shape", "expects"))  # before any array is sized
    if isinstance(ff_mult, bool) or not isinstance(ff_mult, int) or not 1 <= ff_mult <= 16:
        problems.append(f"config.ff_mult must be an integer in [1, 16], got {excerpt(ff_mult)}")
    if not is_number(clip) or not 0 < clip <= 1e6:
        problems.append(f"config.clip must be a number in (0, 1e6], got {excerpt(clip)}")
    if problems:
        raise ArtifactError("; ".join(problems), file=str(directory / "model.meta.json"))
    weights = from_bytes(path.read_bytes(), str(path))
    f, d, layers = meta["feature_count"], meta["d_model"], meta["num_layers"]
    h, t, ff = meta["nhead"], meta["sequence_length"], ff_mult * meta["d_model"]
    shapes = {
        "mean": (f,), "std": (f,), "embed_w": (f, d), "embed_b": (d,),
        "ln1_w": (layers, d), "ln1_b": (layers, d), "qkv_w": (layers, d, 3 * d),
        "qkv_b": (layers, 3 * d), "rel": (layers, h, t), "proj_w": (layers, d, d),
        "proj_b": (layers, d), "ln2_w": (layers, d), "ln2_b": (layers, d),
        "fc_w": (layers, d, ff), "fc_b": (layers, ff), "out_w": (layers, ff, d),
        "out_b": (layers, d), "lnf_w": (d,), "lnf_b": (d,), "head_w": (d,), "head_b": (1,),
    }  # fmt: skip
    if set(weights) != set(WEIGHTS):
        raise ArtifactError(
            f"tensors {sorted(set(weights) ^ set(WEIGHTS))} missing or unexpected", file=str(path)
        )
    for name, shape in shapes.items():
        if weights[name].shape != shape:
            raise ArtifactError(
                f"tensor {name!r} has shape {weights[name].shape}, model.meta.json implies {shape}",
                file=str(path),
            )
    if not all(np.isfinite(v).all() for v in weights.values()):
        raise ArtifactError("a weight is not finite", file=str(path))
    return CausalNet(weights, t, h, float(clip))


def _causal_metadata(directory: Path, meta: dict, spec) -> Check:
    expects = meta["expects"]
    problems = [f"model.meta.json {p}" for p in meta_problems(meta)]
    if expects["spec_hash"] != spec.content_hash:
        problems.append(
            f"expects.spec_hash {expects['spec_hash']} != feature_spec.json {spec.content_hash}"
        )
    if list(expects["feature_names"]) != list(spec.names):
        problems.append("expects.feature_names differ from feature_spec.json's names")
    if len({expects["input_dim"], meta["feature_count"], len(spec.names)}) != 1:
        problems.append("feature counts disagree")
    if expects["seq_len"] != meta["sequence_length"]:
        problems.append("sequence lengths disagree")
    if not isinstance(meta.get("config"), dict) or meta["config"].get("family") != "causal":
        problems.append("config.family must be 'causal' for model_type TFA-causal")
    if problems:
        return Check("metadata", False, "; ".join(problems))
    causal_net(directory, meta)  # the weights fit the metadata
    return Check(
        "metadata",
        True,
        f"spec {spec.content_hash[:19]}..., F={len(spec.names)}, T={meta['sequence_length']}, "
        "causal",
    )


def check_metadata(directory: Path) -> Check:
    """model.meta.json's values are in range, and it, metadata.json, feature_spec.json and the
    ONNX graph (a causal artifact: its weights) agree."""
    meta = read_meta(directory)
    if is_causal(meta):
        spec = parse_spec(read_json(directory, "feature_spec.json"), origin="feature_spec.json")
        return _causal_metadata(directory, meta, spec)
    legacy = read_json(directory, "metadata.json", LEGACY_KEYS)
    spec = parse_spec(read_json(directory, "feature_spec.json"), origin="feature_spec.json")
    expects = meta["expects"]
    problems = [f"model.meta.json {p}" for p in meta_problems(meta)] + _legacy_problems(legacy)
    if expects["spec_hash"] != spec.content_hash:
        problems.append(
            f"expects.spec_hash {expects['spec_hash']} != feature_spec.json {spec.content_hash}"
        )
    if list(expects["feature_names"]) != list(spec.names):
        problems.append("expects.feature_names differ from feature_spec.json's names")
    if list(legacy["feature_names"]) != list(spec.names):
        problems.append("metadata.json feature_names differ from feature_spec.json's names")
    counts = {expects["input_dim"], meta["feature_count"], len(spec.names)}
    counts |= {len(legacy["mean"]), len(legacy["std"])}
    if len(counts) != 1:
        problems.append(f"feature counts disagree: {sorted(counts)}")
    lengths = {expects["seq_len"], meta["sequence_length"], legacy["seq_len"]}
    if len(lengths) != 1:
        problems.append(f"sequence lengths disagree: {sorted(lengths)}")
    from sentio.model.runtime import OnnxModel

    onnx = OnnxModel(directory / "model.onnx")
    onnx_meta = onnx.metadata
    shape = list(onnx.session.get_inputs()[0].shape)  # [batch, T, F]
    if shape[1:] != [meta["sequence_length"], meta["feature_count"]]:
        problems.append(
            f"model.onnx takes windows of {excerpt(shape[1:])} (T, F), model.meta.json says "
            f"[{meta['sequence_length']}, {meta['feature_count']}]"
        )
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


def check_legacy(directory: Path) -> Check:
    """metadata.json is the identity for the original loader: mean 0, std 1 and a clip that
    cannot bind after ``(x - mean) / std`` (issue 12 section 5)."""
    if is_causal(read_meta(directory)):
        return Check("legacy metadata.json", True, "none: a causal artifact has no legacy loader")
    legacy = read_json(directory, "metadata.json", LEGACY_KEYS)
    if _legacy_problems(legacy):  # reported once, by the metadata check
        return Check("legacy metadata.json", True, "clip not checked (see metadata)", False)
    low, high = legacy["clip"]
    if low > -LEGACY_CLIP or high < LEGACY_CLIP:
        return Check(
            "legacy metadata.json",
            False,
            f"clip [{low:g}, {high:g}] binds: the original loader clips raw features (close "
            "~600, EMAs) after (x - 0) / 1; an artifact written before issue 12; retrain with "
            "`sentio train` (Sentio's own loaders do not read this clip)",
        )
    return Check(
        "legacy metadata.json", True, f"identity for the original loader (clip +/-{high:g})"
    )


def _inputs_and_logits(directory: Path, meta: dict, name: str) -> tuple[np.ndarray, list]:
    """The recorded inputs (``name``, a .npy file) and model.meta.json's recorded logits."""
    path = directory / name
    try:
        inputs = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ArtifactError(f"not a readable .npy array ({exc})", file=str(path)) from exc
    logits = meta["parity"].get("logits_eager")
    if not isinstance(logits, list) or not all(is_number(v) for v in logits):
        raise ArtifactError(
            "key 'parity.logits_eager' must be a list of numbers",
            file=str(directory / "model.meta.json"),
        )
    return inputs, logits


def _recorded(directory: Path) -> tuple[np.ndarray, np.ndarray]:
    """The recorded windows (B, T, F) float32 and their eager logits (B,) float64."""
    path = directory / "parity_windows.npy"
    windows, logits = _inputs_and_logits(directory, read_meta(directory), path.name)
    if windows.ndim != 3 or len(windows) != len(logits) or windows.dtype != np.float32:
        raise ArtifactError(
            f"shape {windows.shape} {windows.dtype} does not match the {len(logits)} recorded "
            "logits (expected (B, T, F) float32)",
            file=str(path),
        )
    return windows, np.array(logits, dtype=np.float64)


def _compare(name: str, got: np.ndarray, expected: np.ndarray) -> Check:
    worst = float(np.abs(got.astype(np.float64) - expected).max()) if len(expected) else 0.0
    ok = bool(worst <= PARITY_TOLERANCE) and len(expected) > 0
    detail = (
        f"{len(expected)} recorded windows, max |logit diff| {worst:.2g} (<= {PARITY_TOLERANCE})"
    )
    return Check(name, ok, detail)


def _causal_parity(directory: Path, meta: dict) -> Check:
    """The causal runtime, from an empty state over each recorded stretch of rows, reproduces
    the recorded logits of the stretch's rows T..C."""
    path = directory / "parity_rows.npy"
    stretches, logits = _inputs_and_logits(directory, meta, path.name)
    t = meta["sequence_length"]
    if (
        stretches.ndim != 3
        or stretches.dtype != np.float32
        or stretches.shape[2] != meta["feature_count"]
        or len(stretches) * max(stretches.shape[1] - t + 1, 0) != len(logits)
    ):
        raise ArtifactError(
            f"shape {stretches.shape} {stretches.dtype} does not match the {len(logits)} "
            "recorded logits (expected (K, C, F) float32, C - T + 1 logits per stretch)",
            file=str(path),
        )
    net = causal_net(directory, meta)
    got = [net.run(net.state(), rows)[t - 1 :] for rows in stretches]
    worst = _compare("runtime parity", np.concatenate(got), np.array(logits, np.float64))
    return Check("runtime parity", worst.passed, worst.detail.replace("windows", "rows"))


def check_parity(directory: Path) -> Check:
    """ONNX Runtime (one thread) on the recorded windows reproduces the recorded logits; for
    a causal artifact, the causal runtime on the recorded stretches of rows."""
    from sentio.model.runtime import OnnxModel

    meta = read_meta(directory)
    if is_causal(meta):
        return _causal_parity(directory, meta)

    windows, expected = _recorded(directory)
    try:
        got = OnnxModel(directory / "model.onnx").logits(windows)
    except SentioError:
        raise
    except Exception as exc:  # onnxruntime's own error types: the graph does not take them
        return Check("onnx parity", False, f"model.onnx cannot run the recorded windows ({exc})")
    return _compare("onnx parity", got.reshape(-1), expected)


def check_torchscript(directory: Path) -> Check:
    """TorchScript (model.pt) on the recorded windows reproduces the recorded logits, when
    torch is installed; otherwise a check that says it did not run."""
    if is_causal(read_meta(directory)):
        return Check("torchscript parity", True, "none: a causal artifact has no model.pt", False)
    try:
        import torch
    except ImportError:
        return Check(
            "torchscript parity", True, "model.pt not checked (torch not installed)", False
        )
    import warnings

    windows, expected = _recorded(directory)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch.jit is deprecated, not gone
            module = torch.jit.load(str(directory / "model.pt"), map_location="cpu")
        with torch.no_grad():
            got = module(torch.from_numpy(windows)).reshape(-1).double().numpy()
    except Exception as exc:  # torch raises many kinds for a damaged or foreign archive
        reason = " ".join(str(exc).split())
        return Check(
            "torchscript parity",
            False,
            f"model.pt cannot run the recorded windows ({excerpt(reason, 160)})",
        )
    if got.shape != expected.shape:
        return Check(
            "torchscript parity",
            False,
            f"model.pt gives {got.shape[0]} logits for {len(expected)} windows: another model",
        )
    return _compare("torchscript parity", got, expected)


_PARITY_CHECKED: dict[str, Check] = {}


def verify(
    directory: str | Path, key: SigningKey | None = None, *, torchscript: bool = False
) -> list[Check]:
    """All checks; the manifest and signature first (the others only run on an intact
    artifact). ``key`` None means the configured key (:func:`signing_key`), if any.
    ``torchscript`` also runs model.pt on the recorded windows (``sentio model verify``)."""
    directory = artifact_directory(directory)
    key = key if key is not None else signing_key()
    manifest = read_manifest(directory)
    checks = [check_manifest(directory, manifest), check_signature(directory, manifest, key)]
    if checks[0].passed:
        # the manifest pins every file's sha256, so its hash names the exact bytes checked:
        # the recorded windows are re-run once per artifact and process, not at every load
        digest = sha256_file(directory / MANIFEST)
        if digest not in _PARITY_CHECKED:
            _PARITY_CHECKED[digest] = check_parity(directory)
        checks += [check_metadata(directory), check_legacy(directory), _PARITY_CHECKED[digest]]
        if torchscript:
            checks.append(check_torchscript(directory))
    return checks


# Sentio's own loaders never read metadata.json's clip, so an artifact written before the clip
# was fixed still loads; `sentio model verify` fails it (docs/model.md, "The legacy clip").
# Every other check, metadata.json's mean and std included, binds the loaders too.
NOT_FOR_LOADERS = ("legacy metadata.json",)


def load_verified(directory: str | Path) -> dict:
    """model.meta.json of an artifact that passes :func:`verify` (its signature too, when a
    key is configured); else ArtifactError naming the file and what differs."""
    for check in verify(directory):
        if not check.passed and check.name not in NOT_FOR_LOADERS:
            raise ArtifactError(f"{check.name}: {check.detail}", file=str(directory))
    return read_meta(Path(directory))


def sign(directory: str | Path, key: SigningKey) -> dict:
    """Write ``signature.json`` for an artifact that passes every other check; returns it."""
    directory = artifact_directory(directory)
    manifest = read_manifest(directory)
    checks = [check_manifest(directory, manifest)]
    if checks[0].passed:
        checks += [check_metadata(directory), check_parity(directory)]
    for check in checks:
        if not check.passed:
            raise ArtifactError(
                f"not signed: {check.name} fails ({check.detail})", file=str(directory)
            )
    doc = sign_manifest(manifest, key)
    write_bytes_atomic(directory / SIGNATURE, json_bytes(doc), flag=None)
    return doc


def signature_state(directory: Path, key: SigningKey | None, files: Check) -> str:
    """What ``sentio model info`` says: "signed and verified", "signed, not checked (no
    key)", "unsigned", or why the signature does not hold (``files``: the manifest check)."""
    manifest = read_manifest(directory)
    status, detail = signature_status(manifest, _read_signature(directory), key)
    if status == "verified":
        return "signed and verified" if files.passed else f"signed, but {files.detail}"
    if status == "not checked":
        return "signed, not checked (no key)"
    if status == "unsigned":
        return "unsigned"
    return f"signature does not verify: {detail}"


def _dig(doc: object, *keys: str) -> object:
    """``doc[k1][k2]...``, or None where a level is missing or not an object."""
    for key in keys:
        doc = doc.get(key) if isinstance(doc, dict) else None
    return doc


def info(directory: str | Path, key: SigningKey | None = None) -> dict:
    """A summary of an artifact. The cheap checks run: the manifest (``manifest`` says
    "FAILED: ..." when a file's sha256 differs), the signature when a key is configured, and
    the metadata check (ArtifactError when it fails; only model.meta.json's own values when
    the manifest failed, as the files may be anything). The recorded windows are not run:
    that is :func:`verify`."""
    directory = artifact_directory(directory)
    key = key if key is not None else signing_key()
    files = check_manifest(directory, read_manifest(directory))
    meta = read_meta(directory)
    problems = meta_problems(meta)
    if problems:
        raise ArtifactError("; ".join(problems), file=str(directory / "model.meta.json"))
    if files.passed:
        metadata = check_metadata(directory)
        if not metadata.passed:
            raise ArtifactError(f"metadata: {metadata.detail}", file=str(directory))
    metrics = read_json(directory, "metrics.json")
    return {
        "directory": str(directory),
        "manifest": files.detail if files.passed else f"FAILED: {files.detail}",
        "model_type": meta["model_type"],
        "version": meta.get("version"),
        "saved_at": meta["saved_at"],
        "signature": signature_state(directory, key, files),
        "feature_count": meta["feature_count"],
        "sequence_length": meta["sequence_length"],
        "d_model": meta["d_model"],
        "nhead": meta["nhead"],
        "num_layers": meta["num_layers"],
        "spec_hash": meta["expects"]["spec_hash"],
        "label": meta["label"],
        "seed": meta["seed"],
        "splits": meta["data"]["splits"],
        "test_auc": _dig(metrics, "evaluation", "test", "model", "auc"),
        "test_log_loss": _dig(metrics, "evaluation", "test", "model", "log_loss"),
        "training_cpu": _dig(meta, "training_platform", "torch_cpu_capability"),
        **({"regimes": _regimes(meta["regimes"])} if "regimes" in meta else {}),
    }


def _regimes(record: dict) -> dict:
    """model.meta.json's regime record in brief: which labeller, whether the model reads the
    regime columns and, for a model that does, that the original C++ code cannot load it."""
    brief = {"labeller": record.get("labeller"), "in_model": record.get("in_model")}
    if record.get("in_model"):
        brief |= {"model": record.get("model"), "original_cpp": record.get("original_cpp")}
    return brief


def model_rows(meta: dict, ts: np.ndarray, session: np.ndarray) -> tuple[int, int]:
    """Rows [lo, hi) of ``ts`` (``session``: their NYSE session numbers) that lie in the
    model's own data: its first training bar to its validation end, widened by
    ``embargo_bars`` rows on a side where the given bars continue the model's data (the
    neighbouring bar lies in the same or the next session; bars months away share no label
    or window with it and are all scored). ``sentio model evaluate`` scores no bar inside, and
    strattest trades none (issue 16).

    >>> import pandas as pd
    >>> minute = 60 * 10**9
    >>> ts = pd.Timestamp("2024-03-05 14:30", tz="UTC").value + minute * np.arange(10)
    >>> meta = {"data": {"embargo_bars": 2, "splits": {"train": {"first_ts": int(ts[3])},
    ...         "validation": {"last_ts": int(ts[5])}}}}
    >>> model_rows(meta, ts, np.full(10, 7343))  # one session, the model's
    (1, 8)
    """
    splits, embargo = meta["data"]["splits"], int(meta["data"]["embargo_bars"])
    first, last = int(splits["train"]["first_ts"]), int(splits["validation"]["last_ts"])
    from sentio.features.inputs import clock_columns

    own = clock_columns(np.array([first, last], dtype=np.int64))[1]
    start = int(np.searchsorted(ts, first, side="left"))
    end = int(np.searchsorted(ts, last, side="right"))
    if start > 0 and own[0] - session[start - 1] <= 1:
        start = max(start - embargo, 0)
    if end < len(ts) and session[end] - own[1] <= 1:
        end = min(end + embargo, len(ts))
    return start, end


__all__ = [
    "model_rows",
    "CAUSAL_FILES",
    "CAUSAL_TYPE",
    "FILES",
    "causal_net",
    "is_causal",
    "LEGACY_CLIP",
    "MANIFEST",
    "Check",
    "artifact_directory",
    "info",
    "json_bytes",
    "load_verified",
    "npy_bytes",
    "read_json",
    "read_manifest",
    "read_meta",
    "sign",
    "verify",
    "write_artifact",
]

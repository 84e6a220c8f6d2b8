"""Export (torch): TorchScript and ONNX of the eval model, checked against eager on recorded
windows before anything is written (max |logit difference| <= PARITY_TOLERANCE)."""

from __future__ import annotations

import hashlib
import io
import json
import warnings
import zipfile
from contextlib import contextmanager

import numpy as np
import torch

from sentio.core.errors import ArtifactError
from sentio.model.artifact import PARITY_TOLERANCE
from sentio.model.runtime import OnnxModel

OPSET = 17


def to_torchscript(model: torch.nn.Module, example: torch.Tensor, meta: dict) -> bytes:
    """Trace the eval model; ``meta`` travels as the extra file ``sentio_meta.json``."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.jit is deprecated in favour of torch.export
        with fresh_script_types():
            traced = torch.jit.trace(model, example, check_trace=False)
            buffer = io.BytesIO()
            torch.jit.save(traced, buffer, _extra_files={"sentio_meta.json": json.dumps(meta)})
    return reproducible_zip(buffer.getvalue())


@contextmanager
def fresh_script_types():
    """Trace as a fresh process would. TorchScript names a module's type after its class in
    one process-wide compilation unit and renames a second type of the same class
    (``TFA.___torch_mangle_80``), so the archive's bytes would depend on how many models the
    process had traced before: a walk-forward run trains many, a Ray worker some of them.
    The unit and torch's cache of module types are swapped for new ones while tracing (private
    parts of torch.jit, checked on the torch versions pyproject allows by the walk-forward
    rerun test) and put back after."""
    import torch.jit._recursive as recursive
    import torch.jit._state as state

    saved = state._python_cu, recursive.concrete_type_store
    state._python_cu = torch._C.CompilationUnit()
    recursive.concrete_type_store = recursive.ConcreteTypeStore()
    try:
        yield
    finally:
        state._python_cu, recursive.concrete_type_store = saved


def reproducible_zip(data: bytes) -> bytes:
    """The TorchScript archive made byte-reproducible: torch writes a random
    ``serialization_id`` and ``*.debug_pkl`` files holding the caller's stack with absolute
    paths; the first becomes a hash of the content, the second are left out (optional for
    loading). Entries keep their order; timestamps are fixed."""
    source = zipfile.ZipFile(io.BytesIO(data))
    records = [
        (i.filename, source.read(i.filename))
        for i in source.infolist()
        if not i.filename.endswith(".debug_pkl")
    ]
    digest = hashlib.sha256()
    for name, body in records:
        if not name.endswith("serialization_id"):
            digest.update(name.encode() + b"\0" + body)
    identity = str(int(digest.hexdigest(), 16))[:40].encode()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as target:
        for name, body in records:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            target.writestr(info, identity if name.endswith("serialization_id") else body)
    return out.getvalue()


def to_onnx(model: torch.nn.Module, example: torch.Tensor, meta: dict[str, str]) -> bytes:
    """ONNX (opset 17, dynamic batch) with ``meta`` in metadata_props."""
    import onnx

    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript-based exporter is deprecated, not gone
        torch.onnx.export(
            model,
            (example,),
            buffer,
            dynamo=False,
            opset_version=OPSET,
            input_names=["features"],
            output_names=["logit"],
            dynamic_axes={"features": {0: "batch"}, "logit": {0: "batch"}},
        )
    proto = onnx.load_from_string(buffer.getvalue())
    for key, value in sorted(meta.items()):
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    return proto.SerializeToString()


def export(
    model: torch.nn.Module, windows: np.ndarray, ts_meta: dict, onnx_meta: dict[str, str]
) -> tuple[bytes, bytes, dict]:
    """(model.onnx bytes, model.pt bytes, parity report) for the eval model; raises
    ArtifactError when eager, TorchScript and ONNX Runtime disagree on ``windows``."""
    model = model.cpu().eval()
    example = torch.from_numpy(windows[:1])
    pt_bytes = to_torchscript(model, example, ts_meta)
    onnx_bytes = to_onnx(model, example, onnx_meta)
    x = torch.from_numpy(windows)
    with torch.no_grad():
        eager = model(x).reshape(-1).numpy()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            scripted = torch.jit.load(io.BytesIO(pt_bytes))(x).reshape(-1).numpy()
    ort = OnnxModel(onnx_bytes).logits(windows)
    report = {
        "windows": len(windows),
        "tolerance": PARITY_TOLERANCE,
        "max_abs_diff_torchscript": float(np.abs(scripted - eager).max()),
        "max_abs_diff_onnxruntime": float(np.abs(ort - eager).max()),
        "logits_eager": [float(v) for v in eager],
    }
    worst = max(report["max_abs_diff_torchscript"], report["max_abs_diff_onnxruntime"])
    if not worst <= PARITY_TOLERANCE:
        raise ArtifactError(
            f"export parity failed: eager vs TorchScript {report['max_abs_diff_torchscript']:.3g}, "
            f"vs ONNX Runtime {report['max_abs_diff_onnxruntime']:.3g} (tolerance "
            f"{PARITY_TOLERANCE}); nothing was written"
        )
    return onnx_bytes, pt_bytes, report


def export_causal(model: torch.nn.Module, stretches: np.ndarray) -> tuple[bytes, dict]:
    """(model.safetensors bytes, parity report) of a causal model, checked before anything is
    written: the torch-free runtime (``sentio.model.causal_runtime``) run from an empty state
    over each recorded stretch of feature rows (K, C, F) must reproduce eager torch's logits
    of the stretch's rows T..C (max |diff| <= PARITY_TOLERANCE); else ArtifactError."""
    from sentio.model.causal import runtime_weights
    from sentio.model.causal_runtime import CausalNet
    from sentio.model.weights import from_bytes, to_bytes

    model = model.cpu().eval()
    blob = to_bytes(runtime_weights(model))
    t = model.cfg.seq_len
    with torch.no_grad():
        eager = model(torch.from_numpy(stretches))[:, t - 1 :].reshape(-1).numpy()
    net = CausalNet(from_bytes(blob, "model.safetensors"), t, model.cfg.nhead, model.cfg.clip)
    served = np.concatenate([net.run(net.state(), rows)[t - 1 :] for rows in stretches])
    worst = float(np.abs(served.astype(np.float64) - eager).max())
    report = {
        "stretches": len(stretches),
        "tolerance": PARITY_TOLERANCE,
        "max_abs_diff_runtime": worst,
        "logits_eager": [float(v) for v in eager],
    }
    if not worst <= PARITY_TOLERANCE:
        raise ArtifactError(
            f"export parity failed: eager vs the causal runtime {worst:.3g} (tolerance "
            f"{PARITY_TOLERANCE}); nothing was written"
        )
    return blob, report


__all__ = ["PARITY_TOLERANCE", "export", "export_causal", "to_onnx", "to_torchscript"]

"""Torch-free inference: ONNX Runtime on one intra-op thread.

On one thread a batch of windows and the same windows one at a time give bit-identical logits
(docs/inference.md); the two inference paths (issue 5) build their parity on that.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sentio.core.errors import ArtifactError


class OnnxModel:
    """``logits(windows (B, T, F) float32) -> (B,) float32``."""

    def __init__(self, model: str | Path | bytes, threads: int = 1) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        # The bytes, not the path: ONNX Runtime cannot open a path that is not valid UTF-8.
        source = model if isinstance(model, bytes) else Path(model).read_bytes()
        try:
            self.session = ort.InferenceSession(
                source, sess_options=options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own exception types
            name = None if isinstance(model, bytes) else str(model)
            raise ArtifactError(f"ONNX Runtime cannot load the model ({exc})", file=name) from exc
        self.input_name = self.session.get_inputs()[0].name
        self.metadata = dict(self.session.get_modelmeta().custom_metadata_map)

    def logits(self, windows: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(windows, dtype=np.float32)
        return self.session.run(None, {self.input_name: x})[0].reshape(-1)


__all__ = ["OnnxModel"]

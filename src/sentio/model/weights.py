"""Named float32 arrays in one file, in the safetensors layout (torch-free, no pickle).

8 bytes little-endian header length, a JSON header ``{name: {"dtype": "F32", "shape": [...],
"data_offsets": [begin, end]}}`` (keys sorted, padded with spaces to 8 bytes), then the raw
little-endian data in header order. The same bytes for the same arrays, so artifacts stay
reproducible; any safetensors reader opens it.

>>> blob = to_bytes({"b": np.ones(2, np.float32), "a": np.zeros((1, 3), np.float32)})
>>> {k: v.shape for k, v in from_bytes(blob, "w").items()}
{'a': (1, 3), 'b': (2,)}
"""

from __future__ import annotations

import json
import struct

import numpy as np

from sentio.core.errors import ArtifactError

MAX_HEADER = 1 << 20  # a header beyond 1 MiB is not one this project wrote


def to_bytes(arrays: dict[str, np.ndarray]) -> bytes:
    header, chunks, offset = {}, [], 0
    for name in sorted(arrays):
        data = np.ascontiguousarray(arrays[name], dtype="<f4")
        raw = data.tobytes()
        header[name] = {
            "dtype": "F32",
            "shape": list(data.shape),
            "data_offsets": [offset, offset + len(raw)],
        }
        chunks.append(raw)
        offset += len(raw)
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(chunks)


def from_bytes(blob: bytes, file: str) -> dict[str, np.ndarray]:
    """The arrays of ``blob``; ArtifactError naming ``file`` when it is not such a file."""
    if len(blob) < 8:
        raise ArtifactError("too short for a weights file", file=file)
    (size,) = struct.unpack("<Q", blob[:8])
    if size > MAX_HEADER or 8 + size > len(blob):
        raise ArtifactError(f"header length {size} does not fit the file", file=file)
    try:
        header = json.loads(blob[8 : 8 + size])
    except ValueError as exc:
        raise ArtifactError(f"header is not JSON ({exc})", file=file) from exc
    body = memoryview(blob)[8 + size :]
    out = {}
    for name, entry in header.items() if isinstance(header, dict) else ():
        if name == "__metadata__":
            continue
        try:
            begin, end = (int(v) for v in entry["data_offsets"])
            shape = tuple(int(v) for v in entry["shape"])
            ok = entry["dtype"] == "F32" and 0 <= begin <= end <= len(body)
            ok = ok and end - begin == 4 * int(np.prod(shape, dtype=np.int64))
        except (KeyError, TypeError, ValueError):
            ok = False
        if not ok:
            raise ArtifactError(f"tensor {name!r}: bad dtype, shape or offsets", file=file)
        out[name] = np.frombuffer(body[begin:end], dtype="<f4").reshape(shape).copy()
    if not isinstance(header, dict):
        raise ArtifactError("header is not a JSON object", file=file)
    return out


__all__ = ["from_bytes", "to_bytes"]

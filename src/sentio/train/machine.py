"""The machine a model is trained on: the train extra, the pinned CPU kernels, the record.

PyTorch picks its CPU kernels at start-up from the CPU (ATen's capability: AVX2 or AVX-512 on
x86; MKL's and oneDNN's code paths likewise), and different kernels sum in different orders: the
same training on an AVX-512 and an AVX2 machine gives different last digits, then different
weights. Pinning all three to one instruction set makes the kernels, and so the results, those
of that set on every machine that has it. The pin is read once, when torch starts, so
:func:`pin_cpu` must run before the first ``import torch`` (``sentio train`` does); if torch is
already running with other kernels, :func:`training_platform` refuses rather than record a pin
that did not happen.

>>> sorted(PINS)
['avx2', 'avx512', 'default']
>>> PINS["avx2"]["ATEN_CPU_CAPABILITY"], PINS["avx2"]["MKL_CBWR"]
('avx2', 'AVX2')
"""

from __future__ import annotations

import os
import re
import sys

from sentio.core.environment import environment
from sentio.core.errors import OptionError, SentioError

# The environment variables each choice sets (ATen: aten/src/ATen/native/DispatchStub.cpp;
# oneDNN: "CPU dispatcher control" in its docs; MKL: conditional numerical reproducibility).
PINS = {
    "avx2": {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_CBWR": "AVX2"},
    "avx512": {
        "ATEN_CPU_CAPABILITY": "avx512",
        "ONEDNN_MAX_CPU_ISA": "AVX512_CORE",
        "MKL_CBWR": "AVX512",
    },
    "default": {
        "ATEN_CPU_CAPABILITY": "default",
        "ONEDNN_MAX_CPU_ISA": "SSE41",
        "MKL_CBWR": "COMPATIBLE",
    },
}
CHOICES = ("auto", "native", *PINS)
TRAIN_EXTRA = "training needs the train extra: pip install 'sentio[train]'"


def resolve(choice: str) -> str:
    """``auto`` is ``avx2`` on a CPU that has it, else ``native`` (torch's own choice)."""
    if choice not in CHOICES:
        raise OptionError(
            f"must be one of {', '.join(CHOICES)}, got {choice!r}", flag="--cpu-capability"
        )
    if choice == "auto":
        return "avx2" if "avx2" in environment()["cpu_isa"] else "native"
    return choice


def pin_cpu(choice: str) -> str:
    """Set the environment for ``choice`` (before torch starts); returns the resolved pin.

    Torch reads the pin once, when it starts: in a process where it has started already the
    environment is left as it is (``training_platform`` then refuses a pin torch does not
    run), because a pin set afterwards would reach only child processes. Ray workers inherit
    this process's environment, and with a stale pin they ran other kernels than this
    process and wrote other bytes (a walk-forward sweep on Ray against the local backend)."""
    pinned = resolve(choice)
    if "torch" not in sys.modules:
        os.environ.update(PINS.get(pinned, {}))
    return pinned


def require_torch() -> None:
    """Import torch and onnx, or say which extra installs them."""
    try:
        import onnx  # noqa: F401
        import torch  # noqa: F401
    except ImportError as exc:
        raise SentioError(f"{TRAIN_EXTRA} ({exc.name or 'torch'} is not installed)") from exc


def _onednn_version(config: str) -> str | None:
    found = re.search(r"(?:MKL-DNN|oneDNN)\s+v?([0-9][0-9.]*)", config)
    return found.group(1) if found else None


def training_platform(pinned: str, requested: str) -> dict:
    """What the training ran on: the machine, the kernels torch actually uses and the pin.

    Refuses (OptionError on --cpu-capability) when torch does not run the pinned kernels: the
    CPU lacks them, or torch had started before the pin was set.
    """
    import torch

    capability = torch.backends.cpu.get_cpu_capability()
    if pinned != "native" and capability.lower() != PINS[pinned]["ATEN_CPU_CAPABILITY"]:
        raise OptionError(
            f"{requested} asks for {pinned} kernels but torch runs {capability}: this CPU lacks "
            "them, or torch had started before the pin (it is read once, at start); choose "
            "another value, or native to record whatever this CPU gives",
            flag="--cpu-capability",
        )
    config = torch.__config__.show()
    blas = re.search(r"BLAS_INFO=([^,\s]*)", config)
    return {
        "requested": requested,
        "pinned": pinned,
        "pin_env": dict(PINS.get(pinned, {})),
        "torch_cpu_capability": capability,
        "onednn_version": _onednn_version(config),
        "mkldnn_enabled": bool(torch.backends.mkldnn.is_available()),
        "blas": blas.group(1) if blas else None,
    }


__all__ = [
    "CHOICES",
    "PINS",
    "TRAIN_EXTRA",
    "pin_cpu",
    "require_torch",
    "resolve",
    "training_platform",
]

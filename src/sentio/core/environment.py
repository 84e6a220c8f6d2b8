"""The machine and library versions a result was computed on.

Bit-for-bit promises hold on one machine and one set of locked versions; some also hold across
machines (docs/reproducibility.md says which). Every artifact and every audit run records
:func:`environment` so a reader can tell whether two results were computed in comparable places.

Nothing here imports a heavy library: versions come from the installed distributions' metadata,
and the CPU's instruction-set extensions from ``/proc/cpuinfo`` (Linux) or ``platform``.

>>> env = environment()
>>> sorted(env)[1:3]
['cpu_isa', 'cpu_model']
>>> 'X86_V2' in env['numpy_simd'] or env['machine'] != 'x86_64'
True
>>> env["packages"]["numpy"] != ""
True
"""

from __future__ import annotations

import os
import platform
from functools import cache
from importlib import metadata

# Libraries whose version can change a number Sentio writes (features through numba and numpy,
# probabilities through ONNX Runtime, training through torch, tables through pandas/pyarrow).
PACKAGES = ("numba", "numpy", "onnx", "onnxruntime", "pandas", "pyarrow", "sentio", "torch")

# Instruction-set extensions that change which kernels numba, oneDNN, MLAS and OpenBLAS run.
ISA_FLAGS = (
    "sse4_2",
    "avx",
    "avx2",
    "fma",
    "f16c",
    "avx512f",
    "avx512dq",
    "avx512bw",
    "avx512vl",
    "avx512_vnni",
    "avx512_bf16",
    "amx_tile",
    "neon",
    "asimd",
    "sve",
)


# Environment variables that select kernels (torch, oneDNN, MKL, OpenBLAS, numpy, numba).
ENV_VARS = (
    "ATEN_CPU_CAPABILITY",
    "ONEDNN_MAX_CPU_ISA",
    "OPENBLAS_CORETYPE",
    "MKL_CBWR",
    "MKL_ENABLE_INSTRUCTIONS",
    "NPY_DISABLE_CPU_FEATURES",
    "NUMBA_CPU_NAME",
    "NUMBA_CPU_FEATURES",
)


def package_versions(names: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    """Installed version of each distribution, ``"absent"`` when it is not installed."""
    out = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "absent"
    return out


@cache
def _cpu() -> tuple[str, tuple[str, ...]]:
    model, flags = platform.processor() or "unknown", set()
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                key, _, value = line.partition(":")
                key = key.strip()
                if key == "model name" and model in ("unknown", "", platform.machine()):
                    model = value.strip()
                elif key in ("flags", "Features") and not flags:
                    flags = set(value.split())
    except OSError:
        pass
    return model, tuple(f for f in ISA_FLAGS if f in flags)


def numpy_simd() -> list[str]:
    """The SIMD targets numpy dispatches to here (baseline + those found at run time).

    numpy's exp and log pick an implementation per target: on an AVX-512 machine (X86_V4) and
    an AVX2 one (X86_V3) they differ in the last bit of a few percent of values, which is
    enough to change the built-in market's prices (docs/reproducibility.md).
    """
    try:
        from numpy._core import _multiarray_umath as umath
    except ImportError:  # pragma: no cover - numpy < 2
        from numpy.core import _multiarray_umath as umath
    found = [t for t in umath.__cpu_dispatch__ if umath.__cpu_features__.get(t)]
    return list(umath.__cpu_baseline__) + found


def environment() -> dict:
    """Machine, CPU instruction set, numpy's SIMD targets, thread-related settings and library
    versions, as plain JSON."""
    model, isa = _cpu()
    return {
        "machine": platform.machine(),
        "system": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "cpu_model": model,
        "cpu_isa": list(isa),
        "cpu_count": os.cpu_count(),
        "numpy_simd": numpy_simd(),
        "packages": package_versions(),
        "env": {name: os.environ[name] for name in ENV_VARS if name in os.environ},
    }


__all__ = ["ENV_VARS", "ISA_FLAGS", "PACKAGES", "environment", "numpy_simd", "package_versions"]

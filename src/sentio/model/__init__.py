"""The TFA model: configuration, the artifact directory and torch-free inference.

The network itself (``sentio.model.tfa``) and its export (``sentio.model.export``) need
PyTorch and are imported explicitly; nothing here does.
"""

from sentio.model.artifact import FILES, MANIFEST, Check, info, load_verified, verify
from sentio.model.config import PRESETS, ModelConfigError, TFAConfig, preset
from sentio.model.runtime import OnnxModel

__all__ = [
    "Check",
    "FILES",
    "MANIFEST",
    "ModelConfigError",
    "OnnxModel",
    "PRESETS",
    "TFAConfig",
    "info",
    "load_verified",
    "preset",
    "verify",
]

"""The TFA model: configuration, the artifact directory and torch-free inference.

The network itself (``sentio.model.tfa``) and its export (``sentio.model.export``) need
PyTorch and are imported explicitly; nothing here does.
"""

from sentio.model.artifact import (
    FILES,
    LEGACY_CLIP,
    MANIFEST,
    Check,
    info,
    load_verified,
    sign,
    verify,
)
from sentio.model.config import PRESETS, ModelConfigError, TFAConfig, preset
from sentio.model.runtime import OnnxModel
from sentio.model.signing import SIGNATURE, SigningKey, signing_key

__all__ = [
    "Check",
    "FILES",
    "LEGACY_CLIP",
    "MANIFEST",
    "ModelConfigError",
    "OnnxModel",
    "PRESETS",
    "SIGNATURE",
    "SigningKey",
    "TFAConfig",
    "info",
    "load_verified",
    "preset",
    "sign",
    "signing_key",
    "verify",
]

"""Load .pth / .ckpt / .safetensors weights through spandrel, with errors that name the file.

spandrel reads .pth files with ``torch.load`` and an allowlisting unpickler, so a pickle cannot run
code. Its ``.pt`` path uses ``torch.jit.load``, which does run code: this loader never passes it one.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from farm.errors import EngineError

if TYPE_CHECKING:
    import torch
    from spandrel import ModelDescriptor

SPANDREL_SUFFIXES = (".pth", ".ckpt", ".safetensors")


def load_spandrel(path: Path, device: torch.device | str) -> ModelDescriptor:
    """The spandrel descriptor of the model in ``path``, on ``device``, in eval mode, fp32."""
    if path.suffix.lower() not in SPANDREL_SUFFIXES:
        raise EngineError(f"{path}: only {', '.join(SPANDREL_SUFFIXES)} weights load here")
    if not path.is_file():
        raise EngineError(f"model file {path} is missing (was it moved or deleted?)")
    from spandrel import ModelLoader, UnsupportedModelError

    try:
        # Read on the CPU, then move: a failed load never leaves half a model on the GPU.
        desc = ModelLoader(device="cpu").load_from_file(path)
    except UnsupportedModelError:
        raise EngineError(
            f"{path.name}: the weights in this file are of no architecture spandrel "
            f"knows (is it a LaMa, ESRGAN, Real-ESRGAN, SwinIR... model?)"
        ) from None
    except Exception as exc:  # corrupt zip, truncated safetensors, refused pickle global...
        raise EngineError(
            f"{path.name}: cannot load the model ({type(exc).__name__}: {exc}); the file may be corrupt or incomplete"
        ) from None
    return desc.to(device).eval()

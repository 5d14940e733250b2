"""numpy BGR uint8 <-> torch RGB float tensors, and padding to a model's size rules.

Imported only from the engines' load/run paths, never at ``import farm`` time.
"""

from __future__ import annotations

import numpy as np
import torch


def to_tensor(image: np.ndarray, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """HxWx3 BGR uint8 -> 1x3xHxW RGB in [0, 1]."""
    rgb = np.ascontiguousarray(image[:, :, ::-1])
    return torch.from_numpy(rgb).to(device).permute(2, 0, 1).unsqueeze(0).to(dtype).div_(255.0)


def mask_to_tensor(mask: np.ndarray, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """HxW 0/255 -> 1x1xHxW of 0 (keep) / 1 (fill)."""
    return torch.from_numpy((mask > 0).astype(np.float32)).to(device, dtype)[None, None]


def to_image(tensor: torch.Tensor) -> np.ndarray:
    """1x3xHxW RGB in [0, 1] -> HxWx3 BGR uint8."""
    rgb = tensor[0].float().clamp(0, 1).mul(255.0).round().byte().permute(1, 2, 0).cpu().numpy()
    return np.ascontiguousarray(rgb[:, :, ::-1])

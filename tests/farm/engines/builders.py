"""Random-weight models with the real architectures, saved the ways users' files come.

Nothing here downloads: spandrel architectures are built from their classes, the SD pipeline from
tiny configs and a hand-written CLIP vocabulary.
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from pathlib import Path

import torch

TINY_VOCAB_WORDS = ("a", "cat", "dog", "red", "blue", "sky", "tree", "house", "photo", "of", "the")


def _seeded(seed: int) -> None:
    torch.manual_seed(seed)


def lama_module(seed: int = 0) -> torch.nn.Module:
    from spandrel.architectures.LaMa import LaMa

    _seeded(seed)
    return LaMa(in_nc=4, out_nc=3).eval()


def compact_state_dict(scale: int = 4, seed: int = 0) -> dict[str, torch.Tensor]:
    from spandrel.architectures.Compact import Compact

    _seeded(seed)
    return Compact(num_feat=16, num_conv=4, upscale=scale).eval().state_dict()


def esrgan_state_dict(scale: int = 2, seed: int = 0) -> dict[str, torch.Tensor]:
    from spandrel.architectures.ESRGAN import ESRGAN

    _seeded(seed)
    return ESRGAN(num_filters=16, num_blocks=1, scale=scale).eval().state_dict()


def save_pth(state: dict[str, torch.Tensor], path: Path) -> Path:
    torch.save(state, path)
    return path


def save_safetensors(state: dict[str, torch.Tensor], path: Path) -> Path:
    from safetensors.torch import save_file

    save_file({k: v.contiguous() for k, v in state.items()}, str(path))
    return path


def save_traced_lama(model: torch.nn.Module, path: Path) -> Path:
    """``model`` traced to TorchScript like IOPaint's big-lama.pt: forward(image, mask) -> image."""
    example = (torch.rand(1, 3, 64, 64), (torch.rand(1, 1, 64, 64) > 0.5).float())
    # torch 2.14 deprecates jit.trace (FutureWarning), but IOPaint's file is TorchScript, so it is
    # the faithful way to make one.
    with warnings.catch_warnings(), torch.no_grad():
        warnings.filterwarnings("ignore", message=r".*torch\.jit\.trace.* is deprecated", category=FutureWarning)
        traced = torch.jit.trace(model, example, check_trace=False)
    traced.save(str(path))
    return path


def write_tiny_tokenizer(folder: Path) -> None:
    """A CLIP BPE vocabulary of single letters and a few whole words (enough to tokenize prompts)."""
    folder.mkdir(parents=True, exist_ok=True)
    tokens = ["<|startoftext|>", "<|endoftext|>"]
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    tokens += letters + [f"{c}</w>" for c in letters] + [f"{w}</w>" for w in TINY_VOCAB_WORDS]
    (folder / "vocab.json").write_text(json.dumps({t: i for i, t in enumerate(tokens)}), "utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n", "utf-8")


def build_tiny_sd_inpaint(folder: Path, seed: int = 0) -> Path:
    """save_pretrained of a tiny random StableDiffusionInpaintPipeline (9-channel UNet)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionInpaintPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    _seeded(seed)
    unet = UNet2DConditionModel(
        block_out_channels=(32, 64),
        layers_per_block=1,
        sample_size=32,
        in_channels=9,
        out_channels=4,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=8,
    )
    vae = AutoencoderKL(
        block_out_channels=(32, 64),
        in_channels=3,
        out_channels=3,
        latent_channels=4,
        down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
        up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"),
        sample_size=64,
    )
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            bos_token_id=0,
            eos_token_id=1,
            pad_token_id=1,
            hidden_size=32,
            intermediate_size=37,
            layer_norm_eps=1e-5,
            num_attention_heads=4,
            num_hidden_layers=2,
            vocab_size=100,
            max_position_embeddings=77,
        )
    )
    with tempfile.TemporaryDirectory() as tmp:
        write_tiny_tokenizer(Path(tmp))
        tokenizer = CLIPTokenizer(str(Path(tmp) / "vocab.json"), str(Path(tmp) / "merges.txt"), model_max_length=77)
    scheduler = PNDMScheduler(skip_prk_steps=True, steps_offset=1)
    pipe = StableDiffusionInpaintPipeline(
        unet=unet,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(str(folder))
    return folder


def random_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    """Weights of no known architecture."""
    _seeded(seed)
    return {"encoder.layer0.weight": torch.randn(8, 3, 3, 3), "encoder.layer0.bias": torch.randn(8)}

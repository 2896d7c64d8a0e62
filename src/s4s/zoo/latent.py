"""``digits-sd3``: a latent flow-matching model on the 8x8 digits, as a diffusers
``StableDiffusion3Pipeline`` folder (the layout, conditioning and calling convention of SD3).

* ``vae``: an ``AutoencoderKL`` from 1x8x8 images to 4x4x4 latents, with SD3's
  ``scaling_factor`` and ``shift_factor`` (latents ``(z - shift) * scale`` have unit variance).
* ``transformer``: an ``SD3Transformer2DModel`` (patch 1, 16 image tokens) trained with
  conditional flow matching on those latents (Esser et al. 2024: ``x_t = (1 - t) x0 + t n``,
  target ``n - x0``, logit-normal ``t``), conditioned on the prompt ``"0"`` ... ``"9"`` (the
  empty prompt, the pipeline's default negative prompt, for 10% of the rows: classifier-free
  guidance).
* ``text_encoder``, ``text_encoder_2``: two small CLIP text models with projections, random
  and frozen, over a byte-level CLIP tokenizer (no merges); no T5 (the pipeline pads with zeros).
* ``scheduler``: ``FlowMatchEulerDiscreteScheduler(shift=1)``.

Everything is built offline from configs; :func:`train_digits_sd3` trains the VAE and the
transformer with a fixed seed and writes the folder.
"""

from __future__ import annotations

import json
import logging
import math
import tempfile
from pathlib import Path
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..frame import Denoiser

__all__ = ["PROMPTS", "byte_clip_tokenizer", "small_clip", "build_digits_sd3", "digits_sd3", "digits_sd3_path", "train_digits_sd3"]

log = logging.getLogger(__name__)

PROMPTS = [str(d) for d in range(10)]
"""``digits-sd3``'s prompts: seed ``s`` draws the digit ``PROMPTS[s % 10]``."""


def _byte_alphabet() -> list[str]:
    """CLIP's printable stand-ins for the 256 byte values (GPT-2 byte-level BPE)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    extra = [b for b in range(256) if b not in printable]
    return [chr(c) for c in printable] + [chr(256 + i) for i in range(len(extra))]


def byte_clip_tokenizer(folder: Path, max_length: int = 16) -> tuple[Any, dict[str, int]]:
    """A ``CLIPTokenizer`` over single bytes (no merges) and its vocabulary, written to
    ``folder`` (``vocab.json``, ``merges.txt``): a real tokenizer that needs no download."""
    from transformers import CLIPTokenizer

    chars = _byte_alphabet()
    vocab = {c: i for i, c in enumerate(chars + [c + "</w>" for c in chars] + ["<|startoftext|>", "<|endoftext|>"])}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n")
    return CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=max_length), vocab


def small_clip(vocab: dict[str, int]) -> Any:
    """A random two-layer ``CLIPTextModelWithProjection`` (width 16, 16 positions) over ``vocab``
    (:func:`byte_clip_tokenizer`'s)."""
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection

    eos = vocab["<|endoftext|>"]
    return CLIPTextModelWithProjection(CLIPTextConfig(
        vocab_size=len(vocab), hidden_size=16, intermediate_size=32, num_attention_heads=2, num_hidden_layers=2,
        max_position_embeddings=16, projection_dim=16, bos_token_id=vocab["<|startoftext|>"], eos_token_id=eos,
        pad_token_id=eos))


def build_digits_sd3(seed: int = 0) -> Any:
    """The untrained ``digits-sd3`` pipeline (random weights from ``seed``)."""
    from diffusers import (AutoencoderKL, FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel,
                           StableDiffusion3Pipeline)

    with tempfile.TemporaryDirectory() as tmp:
        tokenizer, vocab = byte_clip_tokenizer(Path(tmp))
    torch.manual_seed(seed)
    text_encoder, text_encoder_2 = small_clip(vocab), small_clip(vocab)
    vae = AutoencoderKL(
        in_channels=1, out_channels=1, block_out_channels=(32, 64), down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2, layers_per_block=1, latent_channels=4, norm_num_groups=8,
        sample_size=8, scaling_factor=1.0, shift_factor=0.0, use_quant_conv=False, use_post_quant_conv=False)
    transformer = SD3Transformer2DModel(
        sample_size=4, patch_size=1, in_channels=4, num_layers=2, attention_head_dim=32, num_attention_heads=2,
        joint_attention_dim=32, caption_projection_dim=64, pooled_projection_dim=32, out_channels=4,
        pos_embed_max_size=4)
    pipe = StableDiffusion3Pipeline(
        transformer=transformer, scheduler=FlowMatchEulerDiscreteScheduler(shift=1.0), vae=vae,
        text_encoder=text_encoder, tokenizer=tokenizer, text_encoder_2=text_encoder_2, tokenizer_2=tokenizer,
        text_encoder_3=None, tokenizer_3=None)
    for module in (text_encoder, text_encoder_2):
        module.requires_grad_(False).eval()
    pipe.set_progress_bar_config(disable=True)
    return pipe


def digits_sd3_path() -> Path:
    """The pipeline folder of ``digits-sd3`` (``StableDiffusion3Pipeline.from_pretrained(path)``)."""
    from .neural import WEIGHTS

    return WEIGHTS / "digits-sd3"


def digits_sd3(guidance: float | None = None, path: Path | None = None, device: str | torch.device = "cpu") -> Denoiser:
    """``digits-sd3`` through :func:`s4s.integrations.diffusers_flow.from_flow_pipeline`: samples
    are the pipeline's latents ``[4, 4, 4]``, ``model.conditions(seeds)`` the prompts
    ``PROMPTS[s % 10]``, ``model.decode`` the VAE (images ``[B, 1, 8, 8]`` in ``[-1, 1]``).
    ``guidance``: the pipeline's ``guidance_scale`` (classifier-free, against the empty prompt)."""
    from ..integrations.diffusers import load_pipeline
    from ..integrations.diffusers_flow import from_flow_pipeline

    folder = Path(path or digits_sd3_path())
    if not (folder / "model_index.json").exists():
        raise FileNotFoundError(f"no pipeline at {folder}; train it with `s4s zoo train digits-sd3`")
    pipe = load_pipeline(folder).to(device)
    pipe.set_progress_bar_config(disable=True)
    model = from_flow_pipeline(pipe, prompts=PROMPTS, guidance_scale=guidance)
    model.name = "digits-sd3"
    model.pipeline = pipe  # type: ignore[attr-defined]
    return model


def _vae_loss(vae: nn.Module, x: Tensor, label: Tensor, g: torch.Generator, beta: float = 1e-3) -> Tensor:
    """The VAE's objective: reconstruction MSE of a posterior sample plus ``beta`` times its KL
    to the standard normal (per latent number)."""
    post = vae.encode(x).latent_dist
    z = post.mean + post.std * torch.randn(post.mean.shape, generator=g)
    recon = vae.decode(z).sample
    kl = 0.5 * (post.mean**2 + post.var - 1 - post.logvar).mean()
    return F.mse_loss(recon, x) + beta * kl


def _flow_matching_loss(table: dict[str, Tensor], null: int) -> Callable[[nn.Module, Tensor, Tensor, torch.Generator], Tensor]:
    """Rectified-flow matching for an SD3 transformer on latents ``x0``, with the prompt table
    ``{"encoder_hidden_states": [11, L, D], "pooled_projections": [11, P]}`` (row ``null`` the
    empty prompt, given to 10% of the rows) and ``t`` logit-normal (Esser et al. 2024, eq. 19)."""

    def loss(net: nn.Module, x0: Tensor, label: Tensor, g: torch.Generator) -> Tensor:
        b = x0.shape[0]
        t = torch.sigmoid(torch.randn(b, generator=g))
        label = torch.where(torch.rand(b, generator=g) < 0.1, torch.full_like(label, null), label)
        n = torch.randn(x0.shape, generator=g)
        tt = t.reshape(-1, 1, 1, 1)
        v = net(hidden_states=(1 - tt) * x0 + tt * n, timestep=t * 1000,
                encoder_hidden_states=table["encoder_hidden_states"][label],
                pooled_projections=table["pooled_projections"][label], return_dict=False)[0]
        return F.mse_loss(v, n - x0)

    return loss


def train_digits_sd3(out: Path, seed: int, fit: Callable[..., tuple[nn.Module, list[float]]], vae_recipe: Any,
                     recipe: Any, steps: int | None = None,
                     progress: Callable[[int, float], None] | None = None) -> list[float]:
    """Train the VAE, then the transformer on its latents; write the pipeline to
    ``out / "digits-sd3"``. ``fit(net, loss_fn, x, y, recipe, seed, steps, progress)`` is the
    zoo's training loop. Returns the transformer's losses."""
    from .data import load_digits

    pipe = build_digits_sd3(seed)
    x, y = load_digits()
    vae_steps = None if steps is None else max(1, steps // 2)
    vae, _ = fit(pipe.vae, _vae_loss, x, y, vae_recipe, seed, vae_steps, None)
    vae.requires_grad_(False).eval()
    with torch.no_grad():
        post = vae.encode(x).latent_dist
        z = post.mean + post.std * torch.randn(post.mean.shape, generator=torch.Generator().manual_seed(seed))
        shift, scale = float(z.mean()), 1.0 / float(z.std())
        recon = F.mse_loss(vae.decode(post.mean).sample, x).item()
    vae.register_to_config(scaling_factor=scale, shift_factor=shift)
    latents = ((z - shift) * scale).contiguous()
    log.info("digits-sd3 VAE: reconstruction MSE %.4f, latent shift %.4f, scale %.4f", recon, shift, scale)
    with torch.no_grad():
        embeds, _, pooled, _ = pipe.encode_prompt(prompt=PROMPTS + [""], prompt_2=None, prompt_3=None,
                                                  do_classifier_free_guidance=False, max_sequence_length=256)
    table = {"encoder_hidden_states": embeds, "pooled_projections": pooled}
    transformer, losses = fit(pipe.transformer, _flow_matching_loss(table, len(PROMPTS)), latents, y, recipe, seed,
                              steps, progress)
    transformer.requires_grad_(False).eval()
    pipe.vae, pipe.transformer = vae, transformer
    pipe.save_pretrained(out / "digits-sd3", safe_serialization=True)
    (out / "digits-sd3" / "training.json").write_text(json.dumps(
        {"seed": seed, "vae_reconstruction_mse": recon, "transformer_steps": len(losses),
         "final_loss": sum(losses[-100:]) / min(100, len(losses)), "scaling_factor": scale, "shift_factor": shift,
         "nan_free": all(math.isfinite(v) for v in losses)}, indent=1) + "\n")
    return losses

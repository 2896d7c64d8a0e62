"""PNG grids of samples: one labelled row per model or solver, the same seeds in every column."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

import torch
from torch import Tensor

from ._atomic import atomic_path

__all__ = ["save_grid"]


def _to_uint8(x: Tensor) -> Tensor:
    """``[B, C, H, W]`` (or ``[B, H, W]``) in ``[-1, 1]`` -> ``[B, H, W, C]`` uint8."""
    x = x.detach().float().cpu()
    if x.dim() == 3:
        x = x[:, None]
    if x.dim() != 4:
        raise ValueError(f"images must be [B, C, H, W] or [B, H, W], got shape {tuple(x.shape)}")
    return ((x.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).permute(0, 2, 3, 1)


def save_grid(rows: Mapping[str, Tensor], path: str | os.PathLike[str], scale: int = 4, pad: int = 2,
              columns: int = 32) -> Path:
    """Write a PNG with one row of images per entry of ``rows`` (label -> ``[B, C, H, W]``); a row
    of more than ``columns`` images wraps onto further lines (the label on its first)."""
    from PIL import Image, ImageDraw, ImageFont

    if not rows:
        raise ValueError("nothing to draw: rows is empty")
    if columns < 1:
        raise ValueError(f"columns must be positive, got {columns}")
    imgs = {k: _to_uint8(v) for k, v in rows.items()}
    shapes = {tuple(v.shape) for v in imgs.values()}
    if len(shapes) != 1:
        raise ValueError(f"every row needs the same number and shape of images, got {sorted(shapes)}")
    b, h, w, c = shapes.pop()
    per_line = min(b, columns)
    lines = -(-b // per_line)
    font = ImageFont.load_default()
    label_w = 8 + max(int(ImageDraw.Draw(Image.new("L", (1, 1))).textlength(k, font=font)) for k in imgs)
    cell_h, cell_w = h * scale + pad, w * scale + pad
    canvas = Image.new("RGB", (label_w + per_line * cell_w + pad, len(imgs) * lines * cell_h + pad), "white")
    draw = ImageDraw.Draw(canvas)
    for r, (label, batch) in enumerate(imgs.items()):
        top = pad + r * lines * cell_h
        draw.text((4, top + cell_h // 2 - 6), label, fill="black", font=font)
        for i in range(b):
            arr = batch[i].numpy()
            tile = Image.fromarray(arr[..., 0] if c == 1 else arr, "L" if c == 1 else "RGB")
            tile = tile.resize((w * scale, h * scale), Image.NEAREST)
            canvas.paste(tile, (label_w + (i % per_line) * cell_w, top + (i // per_line) * cell_h))
    path = Path(path)
    with atomic_path(path) as tmp:
        canvas.save(tmp, format="PNG")
    return path

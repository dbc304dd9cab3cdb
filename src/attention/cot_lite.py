"""The seed's CoTAttention: its exact __init__, with the simplified forward YOLO blog posts ship.

This is NOT the paper's CoT block (that is `cot`, cot.py): averaging the k*k attention maps right
after a 1x1 conv collapses them into one 1x1 conv, the softmax runs over the whole feature map (so
the "dynamic context" is tiny), and there is no local k x k aggregation. Kept because it is what
users copy, so the ablation shows what it really does.

Departures from the seed, none of which changes its numbers where the seed runs:
- key_embed's groups=4 needs dim % 4 == 0; otherwise groups = gcd(dim, 4) (logged), where the seed
  crashes;
- the BatchNorms are `src.attention.BatchNorm2d` (same state_dict), which in training normalizes a
  batch of one value per channel (batch 1 on a 1x1 map) with the running statistics instead of
  raising.
"""

from __future__ import annotations

import logging
import math

import torch
import torch.nn.functional as F
from torch import nn

from src.attention import BatchNorm2d, register

log = logging.getLogger(__name__)


@register("cot_lite")
class CoTAttention(nn.Module):
    def __init__(self, dim: int = 512, kernel_size: int = 3):
        super().__init__()
        if dim < 2 or kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(
                f"CoTAttention: needs dim >= 2 and an odd kernel_size, got dim={dim}, kernel_size={kernel_size}"
            )
        self.dim = dim
        self.kernel_size = kernel_size
        key_groups = math.gcd(dim, 4)  # the seed's 4 whenever it divides dim
        if key_groups != 4:
            log.info("CoTAttention: %d channels are not divisible by 4; key_embed uses groups=%d", dim, key_groups)
        self.key_embed = nn.Sequential(
            nn.Conv2d(dim, dim, kernel_size=kernel_size, padding=kernel_size // 2, groups=key_groups, bias=False),
            BatchNorm2d(dim),
            nn.ReLU(),
        )
        self.value_embed = nn.Sequential(nn.Conv2d(dim, dim, 1, bias=False), BatchNorm2d(dim))
        factor = 4
        self.attention_embed = nn.Sequential(
            nn.Conv2d(2 * dim, 2 * dim // factor, 1, bias=False),
            BatchNorm2d(2 * dim // factor),
            nn.ReLU(),
            nn.Conv2d(2 * dim // factor, kernel_size * kernel_size * dim, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        k1 = self.key_embed(x)  # static context
        v = self.value_embed(x).reshape(b, c, -1)
        att = self.attention_embed(torch.cat([k1, x], dim=1))
        att = att.reshape(b, c, self.kernel_size * self.kernel_size, h, w).mean(2).reshape(b, c, -1)
        k2 = (F.softmax(att, dim=-1) * v).reshape(b, c, h, w)  # softmax over all h*w positions
        return k1 + k2

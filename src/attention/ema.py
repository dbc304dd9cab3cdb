"""EMA: Efficient Multi-Scale Attention (Ouyang et al., ICASSP 2023), as in the seed document.

Kept from the seed: the submodules and their names (`gn`, `conv1x1`, `conv3x3`), so a seed
state_dict loads unchanged and gives the same output. Changed, with the same numbers:
- the adaptive average pools are plain means: they export to ONNX and have a deterministic
  backward (adaptive pooling's CUDA backward is not);
- the spatial mean of the GroupNorm output is, per channel, exactly `gn.bias` (GroupNorm with one
  channel per group centres each channel over H x W), so that branch's channel softmax is an
  input-independent constant and is computed from `gn.bias` directly, one reduction less;
- `factor` (the number of channel groups) falls back where the seed fails (see `ema_groups`).
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from src.attention import nearest_divisor, register

log = logging.getLogger(__name__)


def ema_groups(channels: int, factor: int) -> int:
    """The seed's `factor` where it divides `channels`; else the divisor closest to it (smaller on a tie)
    that leaves at least 2 channels per group.

    The seed asserts `channels // factor > 0` but then needs `channels % factor == 0` in a reshape
    (48 channels fail; 16 channels at YOLO11n layer 0 fail the assert). Within a group EMA takes a
    softmax over the group's channels, which is a constant 1 for a single channel, so our own
    fallback never picks 1-channel groups (the seed's exact setting, e.g. 32 channels / factor 32,
    is kept as is so its weights still load).
    """
    if channels < 1 or factor < 1:
        raise ValueError(f"EMA: channels and factor must be positive, got channels={channels}, factor={factor}")
    if channels % factor == 0:
        return factor
    groups = nearest_divisor(channels, factor, min_quotient=2)
    log.info(
        "EMA: %d channels are not divisible by factor=%d; using %d groups (%d channels each)",
        channels,
        factor,
        groups,
        channels // groups,
    )
    return groups


@register("ema")
class EMA(nn.Module):
    def __init__(self, channels: int, factor: int = 32):
        super().__init__()
        self.groups = ema_groups(channels, factor)
        cg = channels // self.groups
        self.softmax = nn.Softmax(-1)
        self.gn = nn.GroupNorm(cg, cg)
        self.conv1x1 = nn.Conv2d(cg, cg, kernel_size=1, stride=1, padding=0)
        self.conv3x3 = nn.Conv2d(cg, cg, kernel_size=3, stride=1, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        bg, cg = b * self.groups, c // self.groups
        group_x = x.reshape(bg, cg, h, w)
        x_h = group_x.mean(dim=3, keepdim=True)  # (bg, cg, h, 1): the seed's pool_h
        x_w = group_x.mean(dim=2, keepdim=True).transpose(2, 3)  # (bg, cg, w, 1): the seed's pool_w
        hw = self.conv1x1(torch.cat([x_h, x_w], dim=2))
        x_h, x_w = torch.split(hw, [h, w], dim=2)
        x1 = self.gn(group_x * x_h.sigmoid() * x_w.transpose(2, 3).sigmoid())
        x2 = self.conv3x3(group_x)
        x11 = self.softmax(self.gn.bias).view(1, 1, cg).expand(bg, 1, cg)  # = softmax(mean of x1 over H, W)
        x12 = x2.reshape(bg, cg, h * w)
        x21 = self.softmax(x2.mean(dim=(2, 3)).reshape(bg, 1, cg))
        x22 = x1.reshape(bg, cg, h * w)
        weights = torch.baddbmm(torch.bmm(x11, x12), x21, x22).reshape(bg, 1, h, w)
        return (group_x * weights.sigmoid()).reshape(b, c, h, w)

"""Coordinate Attention (Hou, Zhou, Feng, CVPR 2021), as the official `CoordAtt`.

Follows houqb/CoordAttention `coordatt.py` with its names (`conv1`, `bn1`, `conv_h`, `conv_w`), so
an official state_dict loads unchanged and gives the same output: average pools along W and along
H, concatenated, a shared 1x1 conv (c -> mip = max(8, c // reduction), with bias), BN, h-swish,
split again, one 1x1 conv per direction back to c channels, sigmoid; out = x * a_w * a_h.
Channels in = channels out (the official `oup` is `inp`). Changed, with the same numbers: the
adaptive pools are plain means (they export to ONNX, deterministic backward); h_swish is
`nn.Hardswish` (the same x * relu6(x + 3) / 6); the BN is `src.attention.BatchNorm2d`.
"""

from __future__ import annotations

import torch
from torch import nn

from src.attention import BatchNorm2d, register


@register("coordatt")
class CoordAtt(nn.Module):
    def __init__(self, channels: int, reduction: int = 32):
        super().__init__()
        if channels < 1 or reduction < 1:
            raise ValueError(
                f"CoordAtt: channels and reduction must be positive, got channels={channels}, reduction={reduction}"
            )
        mip = max(8, channels // reduction)
        self.conv1 = nn.Conv2d(channels, mip, kernel_size=1)
        self.bn1 = BatchNorm2d(mip)
        self.act = nn.Hardswish()
        self.conv_h = nn.Conv2d(mip, channels, kernel_size=1)
        self.conv_w = nn.Conv2d(mip, channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[2:]
        x_h = x.mean(dim=3, keepdim=True)  # (n, c, h, 1): the official pool_h
        x_w = x.mean(dim=2, keepdim=True).permute(0, 1, 3, 2)  # (n, c, w, 1): pool_w, transposed
        y = self.act(self.bn1(self.conv1(torch.cat([x_h, x_w], dim=2))))
        y_h, y_w = torch.split(y, [h, w], dim=2)
        a_h = self.conv_h(y_h).sigmoid()
        a_w = self.conv_w(y_w.permute(0, 1, 3, 2)).sigmoid()
        return x * a_w * a_h

"""CBAM, Convolutional Block Attention Module (Woo, Park, Lee, Kweon, ECCV 2018), as the official code.

Follows Jongchan/attention-module `MODELS/cbam.py` with its submodule names (`ChannelGate.mlp`,
`SpatialGate.spatial.conv` / `.bn`), so an official state_dict loads unchanged and gives the
same output:
1. Channel gate: one MLP (Linear c -> c/r, ReLU, Linear c/r -> c, with biases) applied to the
   average- and the max-pooled map, the two summed, sigmoid, times x.
2. Spatial gate: [max, mean] across channels, 7x7 conv (2 -> 1, no bias), BN (momentum 0.01), no
   ReLU, sigmoid, times the channel-gated map.
This is not ultralytics' `CBAM`, whose channel gate is a single 1x1 conv on the average pool (no
MLP, no max pool). Changed, with the same numbers: the pools are plain means/maxima (they export
to ONNX); the BN is `src.attention.BatchNorm2d` (same state_dict), so batch 1 on a 1x1 map trains.
Where `channels // reduction_ratio` is 0 the hidden size is 1 (logged).
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from src.attention import BatchNorm2d, hidden_width, register

log = logging.getLogger(__name__)


class ChannelGate(nn.Module):
    def __init__(self, gate_channels: int, reduction_ratio: int = 16):
        super().__init__()
        hidden = hidden_width(gate_channels, reduction_ratio, "CBAM", log)
        self.mlp = nn.Sequential(  # index 0 is the official Flatten, so the keys are mlp.1 / mlp.3
            nn.Flatten(),
            nn.Linear(gate_channels, hidden),
            nn.ReLU(),
            nn.Linear(hidden, gate_channels),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        att = self.mlp(x.mean(dim=(2, 3))) + self.mlp(x.amax(dim=(2, 3)))
        return x * att.sigmoid()[:, :, None, None]


class BasicConv(nn.Module):
    """The official BasicConv as SpatialGate uses it: conv and BN, no ReLU."""

    def __init__(self, in_planes: int, out_planes: int, kernel_size: int):
        super().__init__()
        self.conv = nn.Conv2d(in_planes, out_planes, kernel_size, padding=(kernel_size - 1) // 2, bias=False)
        self.bn = BatchNorm2d(out_planes, eps=1e-5, momentum=0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


class SpatialGate(nn.Module):
    def __init__(self, kernel_size: int = 7):
        super().__init__()
        self.spatial = BasicConv(2, 1, kernel_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        compressed = torch.cat([x.amax(dim=1, keepdim=True), x.mean(dim=1, keepdim=True)], dim=1)  # ChannelPool
        return x * self.spatial(compressed).sigmoid()


@register("cbam")
class CBAM(nn.Module):
    def __init__(self, channels: int, reduction_ratio: int = 16, no_spatial: bool = False):
        super().__init__()
        self.ChannelGate = ChannelGate(channels, reduction_ratio)  # noqa: N815 (the official names)
        self.no_spatial = bool(no_spatial)
        if not self.no_spatial:
            self.SpatialGate = SpatialGate()  # noqa: N815

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.ChannelGate(x)
        return x if self.no_spatial else self.SpatialGate(x)

"""ECA, Efficient Channel Attention (Wang, Wu, Zhu, Li, Zuo, Hu, CVPR 2020), as the official `eca_layer`.

Follows BangguWu/ECANet `models/eca_module.py`: a 1D conv (`conv`, 1 -> 1 channel, kernel k, no
bias) slides across the channels of the global average pool, sigmoid, times x; the state_dict
(`conv.weight`) loads unchanged. `k_size="auto"` is the paper's adaptive rule
k = |log2(C)/2 + 1/2| rounded down, made odd (+1 when even): 3 below 128 channels, 5 from 128
to 2047, 7 from 2048. The official layer takes k as given (its ResNets pass 3). Changed, with the same
numbers: the adaptive pool is a plain mean (exports to ONNX, deterministic backward).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from src.attention import register


def eca_kernel_size(channels: int, k_size: int | str = "auto", gamma: int = 2, b: int = 1) -> int:
    """The paper's adaptive k for `channels` (k_size="auto"), else k_size itself, which must be odd
    (an even k with the official padding (k-1)//2 would drop a channel)."""
    if channels < 1:
        raise ValueError(f"ECA: channels must be positive, got {channels}")
    if k_size == "auto":
        t = int(abs((math.log2(channels) + b) / gamma))
        return t if t % 2 else t + 1
    if isinstance(k_size, bool) or not isinstance(k_size, int) or k_size < 1 or k_size % 2 == 0:
        raise ValueError(f"ECA: k_size must be 'auto' or a positive odd integer, got {k_size!r}")
    return k_size


@register("eca")
class ECA(nn.Module):
    def __init__(self, channels: int, k_size: int | str = "auto"):
        super().__init__()
        self.k_size = eca_kernel_size(channels, k_size)
        self.conv = nn.Conv1d(1, 1, kernel_size=self.k_size, padding=(self.k_size - 1) // 2, bias=False)

    @staticmethod
    def check_knobs(k_size: int | str = "auto") -> None:
        eca_kernel_size(1, k_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c = x.shape[:2]
        y = self.conv(x.mean(dim=(2, 3)).view(b, 1, c))  # channels as the 1D sequence
        return x * y.sigmoid().view(b, c, 1, 1)

"""The Contextual Transformer (CoT) block of CoTNet, pure PyTorch.

Li, Yao, Pan, Mei: "Contextual Transformer Networks for Visual Recognition", TPAMI 2022
(arXiv:2107.12292; official code JDAI-CV/CoTNet, `CotLayer`). Follows the official layer:
1. Static context K1: a k x k grouped conv (4 groups) of the input, the keys; BN, ReLU.
2. Attention weights: two 1x1 convs on [X, K1] (dim -> dim/2 with BN and ReLU, then -> k*k weights
   per weight map), GroupNorm per map. Channels share maps as in the official aggregation op:
   channel i uses map i % (dim / share_planes), so each map serves `share_planes` channels.
3. Values: 1x1 conv + BN. Dynamic context K2: each pixel's k x k neighbourhood of values, weighted
   (`local_aggregate`: F.unfold with zero padding, where the official code needs a CuPy CUDA
   kernel), then BN and SiLU.
4. Fusion, split-attention style as in the official code: global average pool of K1 + K2, a 1x1
   MLP (dim -> max(dim/2, 32) -> 2*dim, BN and ReLU between), softmax over the two branches per
   channel, weighted sum.

Channels in = channels out, so it drops in anywhere. Where the official 4 key groups or
`share_planes` do not divide dim, the gcd is used (logged). The BatchNorms are
`src.attention.BatchNorm2d`, so batch 1 trains even on a 1x1 map (and the fusion MLP's BN, which
sees one pooled value per channel and sample, at batch 1). The aggregation is an einsum, so FLOP
counters (torch's FlopCounterMode) see its cost.
"""

from __future__ import annotations

import logging
import math

import torch
import torch.nn.functional as F
from torch import nn

from src.attention import BatchNorm2d, register

log = logging.getLogger(__name__)


def local_aggregate(values: torch.Tensor, weights: torch.Tensor, kernel_size: int) -> torch.Tensor:
    """out[:, i, p] = sum over p's k x k neighbours q (zero padded) of weights[:, i % m, q - p, p] * values[:, i, q].

    values: (b, c, h, w); weights: (b, m, k*k, h, w) with c % m == 0; k odd. Channel i uses map i % m,
    as the official CUDA op does.
    """
    b, c, h, w = values.shape
    maps, kk = weights.shape[1], kernel_size * kernel_size
    patches = F.unfold(values, kernel_size, padding=kernel_size // 2)  # (b, c*kk, h*w), channel-major
    patches = patches.view(b, c // maps, maps, kk, h * w)
    out = torch.einsum("bsmkl,bmkl->bsml", patches, weights.reshape(b, maps, kk, h * w))
    return out.reshape(b, c, h, w)


def _gcd_fallback(what: str, dim: int, wanted: int) -> int:
    chosen = math.gcd(dim, wanted)
    if chosen != wanted:
        log.info("CoTBlock: %d channels are not divisible by %s=%d; using %d", dim, what, wanted, chosen)
    return chosen


@register("cot")
class CoTBlock(nn.Module):
    def __init__(self, dim: int, kernel_size: int = 3, share_planes: int = 8):
        super().__init__()
        if dim < 1 or kernel_size < 1 or kernel_size % 2 == 0 or share_planes < 1:
            raise ValueError(
                f"CoTBlock: needs dim >= 1, an odd kernel_size and share_planes >= 1, got "
                f"dim={dim}, kernel_size={kernel_size}, share_planes={share_planes}"
            )
        self.kernel_size = kernel_size
        kk = kernel_size * kernel_size
        key_groups = _gcd_fallback("key groups", dim, 4)
        self.maps = dim // _gcd_fallback("share_planes", dim, share_planes)  # weight maps per pixel
        hidden = max(dim // 2, 1)
        self.key_embed = nn.Sequential(
            nn.Conv2d(dim, dim, kernel_size, padding=kernel_size // 2, groups=key_groups, bias=False),
            BatchNorm2d(dim),
            nn.ReLU(inplace=True),
        )
        self.embed = nn.Sequential(
            nn.Conv2d(2 * dim, hidden, 1, bias=False),
            BatchNorm2d(hidden),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, kk * self.maps, 1),
            nn.GroupNorm(self.maps, kk * self.maps),
        )
        self.value_embed = nn.Sequential(nn.Conv2d(dim, dim, 1, bias=False), BatchNorm2d(dim))
        self.bn = BatchNorm2d(dim)
        self.act = nn.SiLU(inplace=True)
        attn_channels = max(dim * 2 // 4, 32)
        self.se = nn.Sequential(
            nn.Conv2d(dim, attn_channels, 1),
            BatchNorm2d(attn_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(attn_channels, 2 * dim, 1),  # per channel: a logit for K2 and one for K1
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        k1 = self.key_embed(x)
        weights = self.embed(torch.cat([x, k1], dim=1)).view(b, self.maps, -1, h, w)
        k2 = self.act(self.bn(local_aggregate(self.value_embed(x), weights, self.kernel_size)))
        attn = self.se((k1 + k2).mean(dim=(2, 3), keepdim=True)).view(b, c, 2).softmax(dim=2)
        return k2 * attn[:, :, 0, None, None] + k1 * attn[:, :, 1, None, None]

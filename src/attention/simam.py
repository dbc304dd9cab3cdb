"""SimAM, a simple parameter-free attention module (Yang, Zhang, Li, Xie, ICML 2021), as the official code.

Follows ZjjConan/SimAM `simam_module`: per channel, each position's energy
d / (4 (sum(d) / n + e_lambda)) + 1/2 with d = (x - mean)^2 over the H x W map and n = h*w - 1,
through a sigmoid, times x. No parameters, so nothing to load. Departures, each where the official
code gives NaN or inf and identical numbers elsewhere:
- a 1x1 map has n = 0 and d = 0, 0/0 = NaN in the official code; n is taken as at least 1, so the
  gate is sigmoid(1/2) there;
- in float16 / bfloat16 the energy is computed in float32 and the gate cast back: d reaches 1e5 for
  activations of a few hundred, beyond float16's 65504 (inf / inf = NaN), which is what
  ultralytics' half-precision validation would feed it.
"""

from __future__ import annotations

import torch
from torch import nn

from src.attention import register


@register("simam")
class SimAM(nn.Module):
    def __init__(self, channels: int, e_lambda: float = 1e-4):
        super().__init__()
        if e_lambda <= 0:
            raise ValueError(f"SimAM: e_lambda must be positive, got {e_lambda}")
        self.e_lambda = float(e_lambda)

    def extra_repr(self) -> str:
        return f"e_lambda={self.e_lambda}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[2:]
        n = max(h * w - 1, 1)
        xf = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
        d = (xf - xf.mean(dim=(2, 3), keepdim=True)).pow(2)
        y = d / (4 * (d.sum(dim=(2, 3), keepdim=True) / n + self.e_lambda)) + 0.5
        return x * y.sigmoid().to(x.dtype)

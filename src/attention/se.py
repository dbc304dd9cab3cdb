"""SE, Squeeze-and-Excitation (Hu, Shen, Sun, CVPR 2018), as the widely used PyTorch `SELayer`.

Parameter names are those of moskomule/senet.pytorch (`fc.0`, `fc.2`: Linear layers without
bias), so its state_dict loads unchanged and gives the same output. Changed, with the same
numbers: the adaptive average pool is a plain mean (exports to ONNX, deterministic backward).
Where `channels // reduction` is 0 the hidden size is 1 (logged) instead of an empty Linear.
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from src.attention import hidden_width, register

log = logging.getLogger(__name__)


@register("se")
class SELayer(nn.Module):
    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        hidden = hidden_width(channels, reduction, "SELayer", log)
        self.fc = nn.Sequential(
            nn.Linear(channels, hidden, bias=False),
            nn.ReLU(inplace=True),
            nn.Linear(hidden, channels, bias=False),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c = x.shape[:2]
        y = self.fc(x.mean(dim=(2, 3)))  # squeeze: global average pool; excitation: the gate
        return x * y.view(b, c, 1, 1)

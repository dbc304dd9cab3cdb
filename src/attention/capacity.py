"""Capacity control: as many parameters as a named attention module, and no attention at all.

Answers "is it the attention or the parameters?": a residual block x + BN(conv3x3(ReLU(BN(conv1x1(x)))))
whose hidden width is chosen so that its parameter count at this channel count is within 5 % of
the module named by `match` (built with its default knobs) at the same channel count. Nothing in
it is input-dependent gating: no sigmoid or softmax weights, and ReLU rather than SiLU, so not
even a self-gate x * sigmoid(x); only convs, BN and a pointwise activation. Where no width gets
within 5 % (a module with almost or exactly no parameters, like eca or simam) the closest one is
used and logged. `capacity_report` (src.attention) lists the counts of every such layer.
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from src.attention import BatchNorm2d, available, build, register
from src.results.schema import BASELINE

log = logging.getLogger(__name__)

TOLERANCE = 0.05  # relative parameter-count mismatch accepted without a log line


def matchable() -> list[str]:
    """The registered modules a capacity control can be sized against."""
    return [name for name in available() if name not in (BASELINE, "capacity")]


def block_params(channels: int, width: int) -> int:
    """Parameters of the block at `width`: 1x1 conv, BN(width), 3x3 conv, BN(channels)."""
    return channels * width + 2 * width + 9 * width * channels + 2 * channels


def closest_width(channels: int, target: int) -> int:
    """The width >= 1 whose block has the parameter count closest to `target` (the smaller on a tie)."""
    per_width = 10 * channels + 2
    guess = max(1, round((target - 2 * channels) / per_width))
    candidates = [w for w in (guess - 1, guess, guess + 1) if w >= 1]
    return min(candidates, key=lambda w: (abs(block_params(channels, w) - target), w))


def matched_params(match: str, channels: int) -> int:
    """Parameter count of `match` with its default knobs at `channels` (built on the meta device:
    no memory, no initialisation)."""
    with torch.device("meta"):
        module = build(match, channels)
    return sum(p.numel() for p in module.parameters())


@register("capacity")
class CapacityControl(nn.Module):
    def __init__(self, channels: int, match: str = "cot"):
        super().__init__()
        self.check_knobs(match)
        self.channels, self.matched_module = channels, match
        self.matched_params = matched_params(match, channels)
        self.width = closest_width(channels, self.matched_params)
        self.cv1 = nn.Conv2d(channels, self.width, 1, bias=False)
        self.bn1 = BatchNorm2d(self.width)
        self.act = nn.ReLU(inplace=True)
        self.cv2 = nn.Conv2d(self.width, channels, 3, padding=1, bias=False)
        self.bn2 = BatchNorm2d(channels)
        self.n_params = block_params(channels, self.width)
        mismatch = abs(self.n_params - self.matched_params) / max(self.matched_params, 1)
        if mismatch > TOLERANCE:
            log.info(
                "capacity: %s has %d params at %d channels; the closest block (width %d) has %d (%+.0f %%)",
                match,
                self.matched_params,
                channels,
                self.width,
                self.n_params,
                100 * (self.n_params - self.matched_params) / max(self.matched_params, 1),
            )

    @staticmethod
    def check_knobs(match: str = "cot") -> None:
        if match not in matchable():
            raise ValueError(
                f"capacity: match={match!r} is not a module to match; valid choices: {', '.join(matchable())}"
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.bn2(self.cv2(self.act(self.bn1(self.cv1(x)))))

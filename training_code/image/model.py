"""The small CNN of the image workload.

Four 3x3 convolution blocks (width, width, 2*width, 4*width channels; two 2x2 max-pools) and a head
on global average *and* max pooling: a defect is a small local anomaly, and averaging alone would
wash a 3-pixel spot out of a 32x32 surface, while the maximum keeps it.

GroupNorm, not BatchNorm: its statistics do not depend on the batch, so N data-parallel processes
train exactly the model one process trains (SyncBatchNorm needs a GPU; gloo on CPU has none), and the
small per-process batches of distributed training do not hurt it.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn


@dataclass(frozen=True)
class ModelConfig:
    num_classes: int
    in_channels: int = 1
    width: int = 16
    image_size: int = 32

    def __post_init__(self) -> None:
        if self.num_classes < 2:
            raise ValueError(f"num_classes must be at least 2, got {self.num_classes}")
        if self.in_channels not in (1, 3):
            raise ValueError(f"in_channels must be 1 (greyscale) or 3 (RGB), got {self.in_channels}")
        if self.width < 1:
            raise ValueError(f"width must be positive, got {self.width}")
        if self.image_size < 8:
            raise ValueError(f"image_size must be at least 8 (two 2x2 pools), got {self.image_size}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _block(c_in: int, c_out: int) -> nn.Sequential:
    # gcd keeps the group count valid for any width the tuner picks (8..32, not only powers of two).
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),  # GroupNorm's shift makes a bias redundant
        nn.GroupNorm(math.gcd(c_out, 4), c_out),
        nn.ReLU(inplace=True),
    )


class SmallCNN(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        w = cfg.width
        self.features = nn.Sequential(
            _block(cfg.in_channels, w),
            _block(w, w),
            nn.MaxPool2d(2),
            _block(w, 2 * w),
            nn.MaxPool2d(2),
            _block(2 * w, 4 * w),
        )
        self.avg = nn.AdaptiveAvgPool2d(1)
        self.max = nn.AdaptiveMaxPool2d(1)
        self.head = nn.Linear(8 * w, cfg.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) normalized pixels -> (N, num_classes) logits."""
        f = self.features(x)
        pooled = torch.cat([self.avg(f), self.max(f)], dim=1).flatten(1)
        return self.head(pooled)


def build_model(cfg: ModelConfig, seed: int | None = None) -> SmallCNN:
    """A freshly initialised model; with `seed`, the same weights on every process and every run."""
    if seed is not None:
        torch.manual_seed(seed)
    return SmallCNN(cfg)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())

"""One exponential moving average of a model's weights, for every trainer that evaluates one.

`buffers="average"` averages floating buffers (batch-norm statistics) like the weights, as
timm's ModelEmaV2 does; `buffers="copy"` copies them from the live model, for recipes that
re-estimate batch-norm statistics afterwards (chapter 5). Integer buffers are always copied.
With `warmup`, the decay ramps up as min(decay, (1 + n) / (10 + n)) over the first updates.
"""

from __future__ import annotations

import copy
from typing import Literal

import torch


class EMA:
    """A frozen copy of `model` updated towards it after every optimiser step."""

    def __init__(
        self,
        model: torch.nn.Module,
        decay: float,
        warmup: bool = True,
        buffers: Literal["average", "copy"] = "average",
    ):
        if not 0 < decay < 1:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.decay, self.warmup, self.buffers, self.updates = decay, warmup, buffers, 0

    def current_decay(self) -> float:
        """The decay the next update uses (warm-up ramps it up)."""
        n = self.updates + 1
        return min(self.decay, (1 + n) / (10 + n)) if self.warmup else self.decay

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        d = self.current_decay()
        self.updates += 1
        for ema, live in zip(self.module.parameters(), model.parameters()):
            ema.lerp_(live.detach(), 1.0 - d)
        for ema, live in zip(self.module.buffers(), model.buffers()):
            if self.buffers == "average" and ema.dtype.is_floating_point:
                ema.lerp_(live.detach(), 1.0 - d)
            else:
                ema.copy_(live)

    def state_dict(self) -> dict:
        return {"module": self.module.state_dict(), "updates": self.updates}

    def load_state_dict(self, state: dict) -> None:
        self.module.load_state_dict(state["module"])
        self.updates = int(state["updates"])

"""Sharpness-aware minimization as a two-step optimizer (Foret et al., "Sharpness-Aware Minimization for
Efficiently Improving Generalization", ICLR 2021)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch


class SAM(torch.optim.Optimizer):
    """SAM around a base optimizer: :meth:`first_step` moves the parameters to
    :math:`w + \\rho\\, g / \\lVert g \\rVert` (to first order, the worst case in a ball of radius :math:`\\rho`),
    :meth:`second_step` puts them back to :math:`w` and lets the base
    optimizer step with the gradients taken there.

    As davda54/sam (the implementation SAR's authors copy, mr-eggplant/SAR at 20f6e24, ``sam.py`` lines
    8-63): the base optimizer shares this optimizer's parameter groups, and ``adaptive=True`` scales the
    ball by :math:`|w|` (ASAM). Unlike theirs, :meth:`state_dict` also holds the base optimizer's state
    (its momentum buffers), so that loading a saved state restores those too.
    """

    def __init__(self, params: Iterable[Any], base_optimizer: type[torch.optim.Optimizer], rho: float = 0.05,
                 adaptive: bool = False, **kwargs: Any) -> None:  # fmt: skip
        if rho < 0:
            raise ValueError(f"rho must be >= 0, got {rho!r}")
        super().__init__(params, {"rho": rho, "adaptive": adaptive, **kwargs})
        self.base_optimizer = base_optimizer(self.param_groups, **kwargs)
        self.param_groups = self.base_optimizer.param_groups
        self.defaults.update(self.base_optimizer.defaults)

    @torch.no_grad()
    def first_step(self, zero_grad: bool = False) -> None:
        grad_norm = self._grad_norm()
        for group in self.param_groups:
            scale = group["rho"] / (grad_norm + 1e-12)
            for p in group["params"]:
                if p.grad is None:
                    continue
                self.state[p]["old_p"] = p.data.clone()
                p.add_((torch.pow(p, 2) if group["adaptive"] else 1.0) * p.grad * scale.to(p))
        if zero_grad:
            self.zero_grad()

    @torch.no_grad()
    def second_step(self, zero_grad: bool = False) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                p.data = self.state[p]["old_p"]
        self.base_optimizer.step()
        if zero_grad:
            self.zero_grad()

    def step(self, closure: Any = None) -> None:  # type: ignore[override]
        """One SAM step; ``closure`` recomputes the loss and its gradients (forward and backward)."""
        if closure is None:
            raise ValueError("SAM.step needs a closure that recomputes the loss and calls backward()")
        self.first_step(zero_grad=True)
        with torch.enable_grad():
            closure()
        self.second_step()

    def _grad_norm(self) -> torch.Tensor:
        grads = [((torch.abs(p) if group["adaptive"] else 1.0) * p.grad).norm(p=2)
                 for group in self.param_groups for p in group["params"] if p.grad is not None]  # fmt: skip
        if not grads:
            return torch.zeros(())
        return torch.norm(torch.stack(grads), p=2)

    def __getstate__(self) -> dict[str, Any]:  # copy and pickle the base optimizer too (torch's keeps 3 fields)
        return {**super().__getstate__(), "base_optimizer": self.base_optimizer}

    def state_dict(self) -> dict[str, Any]:
        return {"sam": super().state_dict(), "base": self.base_optimizer.state_dict()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict["sam"])
        self.base_optimizer.load_state_dict(state_dict["base"])
        self.base_optimizer.param_groups = self.param_groups

"""Adam for the fitter's few small tensors, without ``torch.optim``.

``torch.optim.Optimizer.__init__`` imports ``torch._dynamo`` (2-3 s, the bulk of the first
fit in a process; issue 15). The fitter optimises a handful of small leaf tensors, so it
carries this Adam (Kingma & Ba 2015, Algorithm 1) instead: the same arithmetic, op for op,
as torch's single-tensor CPU path, so the iterates are bit-identical to
``torch.optim.Adam(params, lr, betas=(0.9, 0.999), eps=1e-8)``.
"""

from __future__ import annotations

import torch

__all__ = ["Adam"]


class Adam:
    """Adam over parameter groups: ``Adam([{"params": [...], "lr": 0.01}, ...])`` or a list
    of tensors with ``lr``. ``zero_grad()`` drops the gradients; ``step()`` updates in place.
    """

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8):
        params = list(params)
        groups = params if params and isinstance(params[0], dict) else [{"params": params}]
        self.groups = [{"params": list(g["params"]), "lr": float(g.get("lr", lr))}
                       for g in groups]
        self.betas = (float(betas[0]), float(betas[1]))
        self.eps = float(eps)
        self.state: dict[int, tuple] = {}  # id(param) -> (step, exp_avg, exp_avg_sq)

    def zero_grad(self) -> None:
        for group in self.groups:
            for p in group["params"]:
                p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        """One update of every parameter with a gradient: the parameters of a group that share
        a step count are updated together by torch's ``_foreach`` ops (one call per operation
        instead of one per tensor: ~half the per-step cost for the fitter's 2-4 tensors; on
        the CPU they run the same per-tensor kernels, so the iterates do not change)."""
        beta1, beta2 = self.betas
        for group in self.groups:
            lr = group["lr"]
            buckets: dict[float, list] = {}  # step -> [(param, grad, exp_avg, exp_avg_sq)]
            for p in group["params"]:
                if p.grad is None:
                    continue
                step, exp_avg, exp_avg_sq = self.state.get(
                    id(p), (0.0, torch.zeros_like(p), torch.zeros_like(p)))
                step += 1.0  # a float, as torch's step tensor's .item()
                self.state[id(p)] = (step, exp_avg, exp_avg_sq)
                buckets.setdefault(step, []).append((p, p.grad, exp_avg, exp_avg_sq))
            for step, items in buckets.items():
                params, grads, exp_avgs, exp_avg_sqs = (list(x) for x in zip(*items, strict=True))
                torch._foreach_lerp_(exp_avgs, grads, 1 - beta1)  # m ← β1 m + (1 − β1) g
                torch._foreach_mul_(exp_avg_sqs, beta2)
                torch._foreach_addcmul_(exp_avg_sqs, grads, grads, value=1 - beta2)  # v
                bias_correction1 = 1 - beta1**step
                bias_correction2 = 1 - beta2**step
                denom = torch._foreach_sqrt(exp_avg_sqs)
                torch._foreach_div_(denom, bias_correction2**0.5)
                torch._foreach_add_(denom, self.eps)
                torch._foreach_addcdiv_(params, exp_avgs, denom, value=-lr / bias_correction1)

"""Building blocks shared by the UNet, the VAE, TAESD and the text encoder.

Every layer is created through the constructors below, so that `build_on("meta")` can build the
full SD-Turbo (1.3 billion parameters) without allocating or initialising them: the tests count
and name its parameters that way in a fraction of a second.

Everything here must compile with torch.jit.script under PyTorch 1.13 (Debian, our libtorch) and
2.x (the GPU machine): no scaled_dot_product_attention unless the running torch has it, no
`match`, no dataclasses in scripted code.
"""

import contextlib
import math
from typing import Dict, Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

# Keyword arguments for every parameter-creating constructor (see build_on).
_factory: Dict[str, object] = {}


@contextlib.contextmanager
def build_on(device) -> Iterator[None]:
    """Within the block, layers are created on `device`; "meta" gives shapes without storage."""
    global _factory
    saved = _factory
    _factory = {"device": torch.device(device)}
    try:
        yield
    finally:
        _factory = saved


def linear(n_in: int, n_out: int, bias: bool = True) -> nn.Linear:
    return nn.Linear(n_in, n_out, bias=bias, **_factory)


def conv(n_in: int, n_out: int, kernel: int = 3, stride: int = 1, padding: int = -1, bias: bool = True) -> nn.Conv2d:
    if padding < 0:
        padding = kernel // 2
    return nn.Conv2d(n_in, n_out, kernel, stride=stride, padding=padding, bias=bias, **_factory)


def group_norm(channels: int, groups: int = 32, eps: float = 1e-5) -> nn.GroupNorm:
    return nn.GroupNorm(groups, channels, eps=eps, affine=True, **_factory)


def layer_norm(channels: int, eps: float = 1e-5) -> nn.LayerNorm:
    return nn.LayerNorm(channels, eps=eps, **_factory)


def embedding(n: int, dim: int) -> nn.Embedding:
    return nn.Embedding(n, dim, **_factory)


# PyTorch 2.0 added a fused attention (flash / memory-efficient kernels on CUDA). A file exported
# under 2.x uses it; one exported under 1.13 uses the plain formulation. The choice is made when the
# model is built, by instantiating one of two parameterless modules, so the scripted code never
# refers to a function the running torch lacks.
HAS_SDPA = hasattr(F, "scaled_dot_product_attention")


class PlainAttention(nn.Module):
    """softmax(q k^T / sqrt(d)) v over [B, heads, L, d]; the softmax in float32 (SD 2.x's attention
    overflows in fp16 otherwise, which is why diffusers "upcasts" it)."""

    def forward(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        scale = 1.0 / math.sqrt(float(q.size(-1)))
        weights = torch.matmul(q.float(), k.float().transpose(-1, -2)) * scale
        return torch.matmul(weights.softmax(-1).to(v.dtype), v)


class FusedAttention(nn.Module):
    def forward(self, q: Tensor, k: Tensor, v: Tensor) -> Tensor:
        return F.scaled_dot_product_attention(q, k, v)


def attention_core() -> nn.Module:
    return FusedAttention() if HAS_SDPA else PlainAttention()


def split_heads(x: Tensor, heads: int) -> Tensor:
    """[B, L, heads*d] -> [B, heads, L, d]"""
    return x.view(x.size(0), x.size(1), heads, x.size(2) // heads).transpose(1, 2)


def merge_heads(x: Tensor) -> Tensor:
    """[B, heads, L, d] -> [B, L, heads*d]"""
    return x.transpose(1, 2).reshape(x.size(0), x.size(2), x.size(1) * x.size(3))


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())

"""The SD 2.x UNet (diffusers' UNet2DConditionModel), parameter names as in the checkpoint's
unet/diffusion_pytorch_model.safetensors:

    conv_in, time_embedding.linear_{1,2},
    down_blocks.B.resnets.R.{norm1,conv1,time_emb_proj,norm2,conv2,conv_shortcut},
    down_blocks.B.attentions.R.{norm,proj_in,transformer_blocks.0.{norm1,attn1,norm2,attn2,norm3,ff},proj_out},
    down_blocks.B.downsamplers.0.conv, mid_block.{resnets.0,attentions.0,resnets.1},
    up_blocks.B.{resnets,attentions,upsamplers.0.conv}, conv_norm_out, conv_out

It predicts the noise (epsilon) in a latent, given the timestep and the prompt embedding.
"""

import math
from typing import List, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from configs import UNetConfig
from layers import attention_core, conv, group_norm, layer_norm, linear, merge_heads, split_heads


def timestep_embedding(t: Tensor, dim: int) -> Tensor:
    """diffusers' Timesteps(dim, flip_sin_to_cos=True, downscale_freq_shift=0): [cos | sin] of
    t * 10000^(-i/half)."""
    half = dim // 2
    freqs = torch.exp(torch.arange(half, dtype=torch.float32, device=t.device) * (-math.log(10000.0) / half))
    args = t.float().view(-1, 1) * freqs.view(1, -1)
    return torch.cat([torch.cos(args), torch.sin(args)], 1)


class TimestepEmbedding(nn.Module):
    def __init__(self, n_in: int, n_out: int):
        super().__init__()
        self.linear_1 = linear(n_in, n_out)
        self.linear_2 = linear(n_out, n_out)

    def forward(self, x: Tensor) -> Tensor:
        return self.linear_2(F.silu(self.linear_1(x)))


class ResnetBlock(nn.Module):
    """diffusers' ResnetBlock2D: two GroupNorm-SiLU-conv stages, the time embedding added between
    them (absent in the VAE), a 1x1 conv on the skip path when the width changes."""

    def __init__(self, n_in: int, n_out: int, temb: int, groups: int = 32, eps: float = 1e-5):
        super().__init__()
        self.norm1 = group_norm(n_in, groups, eps)
        self.conv1 = conv(n_in, n_out)
        self.time_emb_proj = linear(temb, n_out) if temb > 0 else None
        self.norm2 = group_norm(n_out, groups, eps)
        self.conv2 = conv(n_out, n_out)
        self.conv_shortcut = conv(n_in, n_out, 1) if n_in != n_out else None

    def forward(self, x: Tensor, temb: Optional[Tensor]) -> Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        proj = self.time_emb_proj
        if proj is not None and temb is not None:
            h = h + proj(F.silu(temb)).to(h.dtype)[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        shortcut = self.conv_shortcut
        if shortcut is not None:
            x = shortcut(x)
        return x + h


class Attention(nn.Module):
    """diffusers' Attention as used by the UNet: to_q/to_k/to_v without bias, to_out.0 with bias.
    Self-attention when `context` is None, cross-attention on the prompt embedding otherwise."""

    def __init__(self, dim: int, context_dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.to_q = linear(dim, dim, bias=False)
        self.to_k = linear(context_dim, dim, bias=False)
        self.to_v = linear(context_dim, dim, bias=False)
        self.to_out = nn.ModuleList([linear(dim, dim), nn.Dropout(0.0)])
        self.core = attention_core()

    def forward(self, x: Tensor, context: Optional[Tensor]) -> Tensor:
        c = x if context is None else context
        q = split_heads(self.to_q(x), self.heads)
        k = split_heads(self.to_k(c), self.heads)
        v = split_heads(self.to_v(c), self.heads)
        out = merge_heads(self.core(q, k, v))
        for layer in self.to_out:
            out = layer(out)
        return out


class GEGLU(nn.Module):
    """ff.net.0: one Linear producing value and gate, value * gelu(gate)."""

    def __init__(self, dim: int, inner: int):
        super().__init__()
        self.proj = linear(dim, inner * 2)

    def forward(self, x: Tensor) -> Tensor:
        value, gate = self.proj(x).chunk(2, dim=-1)
        return value * F.gelu(gate)


class FeedForward(nn.Module):
    def __init__(self, dim: int):
        super().__init__()
        # net.0 GEGLU, net.1 dropout, net.2 the output Linear: the indices are the checkpoint's names.
        self.net = nn.ModuleList([GEGLU(dim, dim * 4), nn.Dropout(0.0), linear(dim * 4, dim)])

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.net:
            x = layer(x)
        return x


class TransformerBlock(nn.Module):
    """BasicTransformerBlock: self-attention, cross-attention on the prompt, GEGLU feed-forward,
    each pre-normed with LayerNorm and residual."""

    def __init__(self, dim: int, heads: int, context_dim: int):
        super().__init__()
        self.norm1 = layer_norm(dim)
        self.attn1 = Attention(dim, dim, heads)
        self.norm2 = layer_norm(dim)
        self.attn2 = Attention(dim, context_dim, heads)
        self.norm3 = layer_norm(dim)
        self.ff = FeedForward(dim)

    def forward(self, x: Tensor, context: Tensor) -> Tensor:
        x = x + self.attn1(self.norm1(x), None)
        x = x + self.attn2(self.norm2(x), context)
        return x + self.ff(self.norm3(x))


class Transformer2D(nn.Module):
    """Transformer2DModel with use_linear_projection=True: GroupNorm (eps 1e-6), flatten to tokens,
    Linear in, one transformer block, Linear out, residual."""

    def __init__(self, dim: int, heads: int, context_dim: int, groups: int):
        super().__init__()
        self.norm = group_norm(dim, groups, 1e-6)
        self.proj_in = linear(dim, dim)
        self.transformer_blocks = nn.ModuleList([TransformerBlock(dim, heads, context_dim)])
        self.proj_out = linear(dim, dim)

    def forward(self, x: Tensor, context: Tensor) -> Tensor:
        b, c, h, w = x.size(0), x.size(1), x.size(2), x.size(3)
        tokens = self.norm(x).permute(0, 2, 3, 1).reshape(b, h * w, c)
        tokens = self.proj_in(tokens)
        for block in self.transformer_blocks:
            tokens = block(tokens, context)
        tokens = self.proj_out(tokens)
        return x + tokens.reshape(b, h, w, c).permute(0, 3, 1, 2)


class Downsample(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv = conv(channels, channels, 3, stride=2, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(x)


class Upsample(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv = conv(channels, channels)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class DownBlock(nn.Module):
    """CrossAttnDownBlock2D (with attentions) or DownBlock2D (without). Returns the output and
    appends every intermediate to `skips` for the up path."""

    def __init__(self, n_in: int, n_out: int, temb: int, layers: int, heads: int, context_dim: int,
                 cross_attention: bool, downsample: bool, groups: int, eps: float):
        super().__init__()
        self.resnets = nn.ModuleList([ResnetBlock(n_in if i == 0 else n_out, n_out, temb, groups, eps)
                                      for i in range(layers)])
        # An empty ModuleList keeps the scripted loop uniform for blocks without attention.
        self.attentions = nn.ModuleList([Transformer2D(n_out, heads, context_dim, groups) for _ in range(layers)]
                                        if cross_attention else [])
        self.downsamplers = nn.ModuleList([Downsample(n_out)] if downsample else [])
        self.has_attention = cross_attention

    def forward(self, x: Tensor, temb: Tensor, context: Tensor, skips: List[Tensor]) -> Tensor:
        if self.has_attention:
            for resnet, attn in zip(self.resnets, self.attentions):
                x = attn(resnet(x, temb), context)
                skips.append(x)
        else:
            for resnet in self.resnets:
                x = resnet(x, temb)
                skips.append(x)
        for down in self.downsamplers:
            x = down(x)
            skips.append(x)
        return x


class UpBlock(nn.Module):
    """CrossAttnUpBlock2D or UpBlock2D: each resnet takes the running tensor concatenated with the
    matching skip from the down path (popped in reverse order)."""

    def __init__(self, n_prev: int, n_out: int, skip_channels: List[int], temb: int, heads: int,
                 context_dim: int, cross_attention: bool, upsample: bool, groups: int, eps: float):
        super().__init__()
        self.resnets = nn.ModuleList([ResnetBlock((n_prev if i == 0 else n_out) + s, n_out, temb, groups, eps)
                                      for i, s in enumerate(skip_channels)])
        self.attentions = nn.ModuleList([Transformer2D(n_out, heads, context_dim, groups) for _ in skip_channels]
                                        if cross_attention else [])
        self.upsamplers = nn.ModuleList([Upsample(n_out)] if upsample else [])
        self.has_attention = cross_attention

    def forward(self, x: Tensor, temb: Tensor, context: Tensor, skips: List[Tensor]) -> Tensor:
        if self.has_attention:
            for resnet, attn in zip(self.resnets, self.attentions):
                x = attn(resnet(torch.cat([x, skips.pop()], 1), temb), context)
        else:
            for resnet in self.resnets:
                x = resnet(torch.cat([x, skips.pop()], 1), temb)
        for up in self.upsamplers:
            x = up(x)
        return x


class MidBlock(nn.Module):
    """UNetMidBlock2DCrossAttn: resnet, transformer, resnet."""

    def __init__(self, channels: int, temb: int, heads: int, context_dim: int, groups: int, eps: float):
        super().__init__()
        self.resnets = nn.ModuleList([ResnetBlock(channels, channels, temb, groups, eps) for _ in range(2)])
        self.attentions = nn.ModuleList([Transformer2D(channels, heads, context_dim, groups)])

    def forward(self, x: Tensor, temb: Tensor, context: Tensor) -> Tensor:
        first = True
        for resnet in self.resnets:
            if not first:
                for attn in self.attentions:
                    x = attn(x, context)
            x = resnet(x, temb)
            first = False
        return x


class UNet(nn.Module):
    def __init__(self, c: UNetConfig):
        super().__init__()
        ch = list(c.block_out_channels)
        n = len(ch)
        temb = ch[0] * 4
        self.time_dim = ch[0]
        self.conv_in = conv(c.in_channels, ch[0])
        self.time_embedding = TimestepEmbedding(ch[0], temb)

        self.down_blocks = nn.ModuleList()
        skip_channels = [ch[0]]  # what the down path leaves for the up path, in order
        for i in range(n):
            last = i == n - 1
            self.down_blocks.append(DownBlock(ch[max(i - 1, 0)], ch[i], temb, c.layers_per_block, c.attention_heads[i],
                                              c.cross_attention_dim, c.cross_attention_blocks[i], not last,
                                              c.norm_groups, c.norm_eps))
            skip_channels += [ch[i]] * c.layers_per_block + ([] if last else [ch[i]])

        self.mid_block = MidBlock(ch[-1], temb, c.attention_heads[-1], c.cross_attention_dim, c.norm_groups,
                                  c.norm_eps)

        self.up_blocks = nn.ModuleList()
        rev = ch[::-1]
        rev_heads = list(c.attention_heads)[::-1]
        rev_cross = list(c.cross_attention_blocks)[::-1]
        prev = rev[0]
        for i in range(n):
            last = i == n - 1
            skips = [skip_channels.pop() for _ in range(c.layers_per_block + 1)]
            self.up_blocks.append(UpBlock(prev, rev[i], skips, temb, rev_heads[i], c.cross_attention_dim,
                                          rev_cross[i], not last, c.norm_groups, c.norm_eps))
            prev = rev[i]

        self.conv_norm_out = group_norm(ch[0], c.norm_groups, c.norm_eps)
        self.conv_out = conv(ch[0], c.out_channels)
        # Width and height of the latent must divide by this (one stride-2 conv per level but the last).
        self.downscale = 2 ** (n - 1)

    def forward(self, x: Tensor, t: Tensor, context: Tensor) -> Tensor:
        """x: [N, 4, h, w] latents; t: [N] timesteps; context: [N, 77, cross_attention_dim]."""
        temb = self.time_embedding(timestep_embedding(t, self.time_dim).to(x.dtype))
        x = self.conv_in(x)
        skips: List[Tensor] = [x]
        for block in self.down_blocks:
            x = block(x, temb, context, skips)
        x = self.mid_block(x, temb, context)
        for block in self.up_blocks:
            x = block(x, temb, context, skips)
        return self.conv_out(F.silu(self.conv_norm_out(x)))

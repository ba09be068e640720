"""Stable Diffusion's VAE (diffusers' AutoencoderKL), names as in vae/diffusion_pytorch_model.safetensors:

    encoder.{conv_in, down_blocks.B.resnets.R, down_blocks.B.downsamplers.0.conv,
             mid_block.{resnets.0, attentions.0.{group_norm,to_q,to_k,to_v,to_out.0}, resnets.1},
             conv_norm_out, conv_out}
    quant_conv, post_quant_conv
    decoder.{conv_in, mid_block, up_blocks.B.resnets.R, up_blocks.B.upsamplers.0.conv, conv_norm_out, conv_out}

Images are in [-1, 1]; the encoder's 2*latent channels are the mean and log-variance of the
posterior, of which img2img uses the mean.
"""

import torch.nn.functional as F
from torch import Tensor, nn

from configs import VAEConfig
from layers import attention_core, conv, group_norm, linear
from unet import ResnetBlock, Upsample

_EPS = 1e-6  # the VAE's GroupNorms all use eps 1e-6


class VaeAttention(nn.Module):
    """The mid block's single-head self-attention over all pixels (its own group_norm, residual).
    Older diffusers checkpoints name it query/key/value/proj_attn: see RENAMES."""

    def __init__(self, channels: int, groups: int):
        super().__init__()
        self.group_norm = group_norm(channels, groups, _EPS)
        self.to_q = linear(channels, channels)
        self.to_k = linear(channels, channels)
        self.to_v = linear(channels, channels)
        self.to_out = nn.ModuleList([linear(channels, channels), nn.Dropout(0.0)])
        self.core = attention_core()

    def forward(self, x: Tensor) -> Tensor:
        b, c, h, w = x.size(0), x.size(1), x.size(2), x.size(3)
        tokens = self.group_norm(x).view(b, c, h * w).transpose(1, 2)
        q = self.to_q(tokens).unsqueeze(1)  # one head
        k = self.to_k(tokens).unsqueeze(1)
        v = self.to_v(tokens).unsqueeze(1)
        out = self.core(q, k, v).squeeze(1)
        for layer in self.to_out:
            out = layer(out)
        return x + out.transpose(1, 2).reshape(b, c, h, w)


class VaeMidBlock(nn.Module):
    def __init__(self, channels: int, groups: int):
        super().__init__()
        self.resnets = nn.ModuleList([ResnetBlock(channels, channels, 0, groups, _EPS) for _ in range(2)])
        self.attentions = nn.ModuleList([VaeAttention(channels, groups)])

    def forward(self, x: Tensor) -> Tensor:
        first = True
        for resnet in self.resnets:
            if not first:
                for attn in self.attentions:
                    x = attn(x)
            x = resnet(x, None)
            first = False
        return x


class VaeDownsample(nn.Module):
    """Stride-2 3x3 conv without padding after an asymmetric (0, 1, 0, 1) zero pad."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv = conv(channels, channels, 3, stride=2, padding=0)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.pad(x, [0, 1, 0, 1]))


class VaeDownBlock(nn.Module):
    def __init__(self, n_in: int, n_out: int, layers: int, downsample: bool, groups: int):
        super().__init__()
        self.resnets = nn.ModuleList([ResnetBlock(n_in if i == 0 else n_out, n_out, 0, groups, _EPS)
                                      for i in range(layers)])
        self.downsamplers = nn.ModuleList([VaeDownsample(n_out)] if downsample else [])

    def forward(self, x: Tensor) -> Tensor:
        for resnet in self.resnets:
            x = resnet(x, None)
        for down in self.downsamplers:
            x = down(x)
        return x


class VaeUpBlock(nn.Module):
    def __init__(self, n_in: int, n_out: int, layers: int, upsample: bool, groups: int):
        super().__init__()
        self.resnets = nn.ModuleList([ResnetBlock(n_in if i == 0 else n_out, n_out, 0, groups, _EPS)
                                      for i in range(layers)])
        self.upsamplers = nn.ModuleList([Upsample(n_out)] if upsample else [])

    def forward(self, x: Tensor) -> Tensor:
        for resnet in self.resnets:
            x = resnet(x, None)
        for up in self.upsamplers:
            x = up(x)
        return x


class Encoder(nn.Module):
    def __init__(self, c: VAEConfig):
        super().__init__()
        ch = list(c.block_out_channels)
        self.conv_in = conv(c.in_channels, ch[0])
        self.down_blocks = nn.ModuleList([VaeDownBlock(ch[max(i - 1, 0)], ch[i], c.layers_per_block,
                                                       i < len(ch) - 1, c.norm_groups) for i in range(len(ch))])
        self.mid_block = VaeMidBlock(ch[-1], c.norm_groups)
        self.conv_norm_out = group_norm(ch[-1], c.norm_groups, _EPS)
        self.conv_out = conv(ch[-1], 2 * c.latent_channels)

    def forward(self, x: Tensor) -> Tensor:
        x = self.conv_in(x)
        for block in self.down_blocks:
            x = block(x)
        x = self.mid_block(x)
        return self.conv_out(F.silu(self.conv_norm_out(x)))


class Decoder(nn.Module):
    def __init__(self, c: VAEConfig):
        super().__init__()
        rev = list(c.block_out_channels)[::-1]
        self.conv_in = conv(c.latent_channels, rev[0])
        self.mid_block = VaeMidBlock(rev[0], c.norm_groups)
        self.up_blocks = nn.ModuleList([VaeUpBlock(rev[max(i - 1, 0)], rev[i], c.layers_per_block + 1,
                                                   i < len(rev) - 1, c.norm_groups) for i in range(len(rev))])
        self.conv_norm_out = group_norm(rev[-1], c.norm_groups, _EPS)
        self.conv_out = conv(rev[-1], c.in_channels)

    def forward(self, z: Tensor) -> Tensor:
        x = self.mid_block(self.conv_in(z))
        for block in self.up_blocks:
            x = block(x)
        return self.conv_out(F.silu(self.conv_norm_out(x)))


class AutoencoderKL(nn.Module):
    """The checkpoint's layout, for loading. The img2img module uses VaeEncode / VaeDecode, which
    hold the same submodules."""

    def __init__(self, c: VAEConfig):
        super().__init__()
        self.encoder = Encoder(c)
        self.decoder = Decoder(c)
        self.quant_conv = conv(2 * c.latent_channels, 2 * c.latent_channels, 1)
        self.post_quant_conv = conv(c.latent_channels, c.latent_channels, 1)
        self.scaling_factor = c.scaling_factor
        self.latent_channels = c.latent_channels
        self.downscale = 2 ** (len(c.block_out_channels) - 1)


class VaeEncode(nn.Module):
    """image in [0, 1] -> the posterior mean, times the scaling factor (the UNet's latent space)."""

    def __init__(self, vae: AutoencoderKL):
        super().__init__()
        self.encoder = vae.encoder
        self.quant_conv = vae.quant_conv
        self.scaling_factor = vae.scaling_factor
        self.latent_channels = vae.latent_channels

    def forward(self, image: Tensor) -> Tensor:
        moments = self.quant_conv(self.encoder(image * 2.0 - 1.0))
        return moments[:, :self.latent_channels] * self.scaling_factor


class VaeDecode(nn.Module):
    """UNet latents -> image in [0, 1]."""

    def __init__(self, vae: AutoencoderKL):
        super().__init__()
        self.post_quant_conv = vae.post_quant_conv
        self.decoder = vae.decoder
        self.scaling_factor = vae.scaling_factor

    def forward(self, latents: Tensor) -> Tensor:
        image = self.decoder(self.post_quant_conv(latents / self.scaling_factor))
        return ((image + 1.0) * 0.5).clamp(0.0, 1.0)


def rename_legacy(name: str) -> str:
    """Checkpoints converted by diffusers before 0.14 name the mid-block attention
    query/key/value/proj_attn; map them to today's to_q/to_k/to_v/to_out.0."""
    for old, new in (("attentions.0.query.", "attentions.0.to_q."), ("attentions.0.key.", "attentions.0.to_k."),
                     ("attentions.0.value.", "attentions.0.to_v."), ("attentions.0.proj_attn.", "attentions.0.to_out.0.")):
        name = name.replace(old, new)
    return name

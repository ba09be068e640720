"""TAESD, the tiny autoencoder for Stable Diffusion latents (madebyollin/taesd), a drop-in for the
VAE at a fraction of the cost. Parameter names as diffusers' AutoencoderTiny
(encoder.layers.N..., decoder.layers.N...); the original taesd_encoder.pth / taesd_decoder.pth
state dicts ("N.conv.0.weight", ...) map onto them by `original_names`.

It works directly in the UNet's (scaled) latent space, with images in [0, 1].
"""

from typing import Dict, List

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from configs import TAESDConfig
from layers import conv


class Block(nn.Module):
    """conv-ReLU-conv-ReLU-conv plus a skip (1x1 conv when widths differ, which they never do in
    TAESD), then ReLU. `conv.N` indices are the checkpoint's names."""

    def __init__(self, n_in: int, n_out: int):
        super().__init__()
        self.conv = nn.Sequential(conv(n_in, n_out), nn.ReLU(), conv(n_out, n_out), nn.ReLU(), conv(n_out, n_out))
        self.skip = conv(n_in, n_out, 1, bias=False) if n_in != n_out else nn.Identity()
        self.fuse = nn.ReLU()

    def forward(self, x: Tensor) -> Tensor:
        return self.fuse(self.conv(x) + self.skip(x))


class Upsample2x(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return F.interpolate(x, scale_factor=2.0, mode="nearest")


class TinyEncoder(nn.Module):
    """image [0, 1] -> latents. diffusers' EncoderTiny layer order: per stage a conv (the first
    3->C, later stride 2 without bias), then the stage's blocks; a final conv to the latent."""

    def __init__(self, c: TAESDConfig):
        super().__init__()
        layers: List[nn.Module] = []
        for i, blocks in enumerate(c.encoder_blocks):
            layers.append(conv(3, c.channels) if i == 0 else conv(c.channels, c.channels, 3, stride=2, bias=False))
            layers += [Block(c.channels, c.channels) for _ in range(blocks)]
        layers.append(conv(c.channels, c.latent_channels))
        self.layers = nn.Sequential(*layers)

    def forward(self, image: Tensor) -> Tensor:
        return self.layers(image)


class TinyDecoder(nn.Module):
    """latents -> image [0, 1]. Soft clamp tanh(x/3)*3, conv, ReLU, then per stage the blocks,
    a 2x nearest upsample and a conv without bias (the last stage: no upsample, conv to RGB with
    bias)."""

    def __init__(self, c: TAESDConfig):
        super().__init__()
        layers: List[nn.Module] = [conv(c.latent_channels, c.channels), nn.ReLU()]
        for i, blocks in enumerate(c.decoder_blocks):
            last = i == len(c.decoder_blocks) - 1
            layers += [Block(c.channels, c.channels) for _ in range(blocks)]
            if not last:
                layers.append(Upsample2x())
            layers.append(conv(c.channels, 3 if last else c.channels, bias=last))
        self.layers = nn.Sequential(*layers)

    def forward(self, latents: Tensor) -> Tensor:
        return self.layers(torch.tanh(latents / 3.0) * 3.0)


class AutoencoderTiny(nn.Module):
    def __init__(self, c: TAESDConfig):
        super().__init__()
        self.encoder = TinyEncoder(c)
        self.decoder = TinyDecoder(c)
        self.downscale = 2 ** (len(c.encoder_blocks) - 1)


class TaesdEncode(nn.Module):
    def __init__(self, taesd: AutoencoderTiny):
        super().__init__()
        self.encoder = taesd.encoder

    def forward(self, image: Tensor) -> Tensor:
        return self.encoder(image)


class TaesdDecode(nn.Module):
    def __init__(self, taesd: AutoencoderTiny):
        super().__init__()
        self.decoder = taesd.decoder

    def forward(self, latents: Tensor) -> Tensor:
        return self.decoder(latents).clamp(0.0, 1.0)


def original_names(part: str, tensors: Dict[str, Tensor]) -> Dict[str, Tensor]:
    """Maps an original taesd_{encoder,decoder} state dict (an nn.Sequential: "N.weight") to
    AutoencoderTiny names. The original decoder's layer 0 is the parameterless Clamp, which diffusers
    moved into forward(), so its indices are one higher."""
    shift = 1 if part == "decoder" else 0
    out = {}
    for name, t in tensors.items():
        index, _, rest = name.partition(".")
        out["%s.layers.%d.%s" % (part, int(index) - shift, rest)] = t
    return out

"""The exported module: SD-Turbo image-to-image as docs/model-contract.md wants it.

    image [0,1] --encode--> latent x0 --noise to strength--> x_t --UNet, 1..4 steps--> x0' --decode--> image

The text encoder is not in here: the prompt embedding of every style was computed at export time
and is stored in the buffer `prompt_embeds` (row 0: the empty prompt, used for unknown styles; row
k: style k-1), so the runtime never tokenizes.

Sampling is what diffusers' StableDiffusionImg2ImgPipeline does for SD-Turbo (EulerDiscreteScheduler,
epsilon prediction, "trailing" timestep spacing, guidance scale 0): with `steps` denoising steps at
strength s the timesteps are

    t_k = round(1000 * s * (1 - k / steps)) - 1,   k = 0 .. steps-1

(1 step at s=0.5 -> [499]; 2 steps at s=1 -> [999, 499]; 2 steps at s=0.5 -> [499, 249]), i.e. the
pipeline's timesteps for num_inference_steps = steps / s. Euler's update with an epsilon-predicting
model is exactly deterministic DDIM written in sigma space, which is the form used here:

    x0' = (x_t - sqrt(1 - a_t) * eps) / sqrt(a_t),   x_next = sqrt(a_next) * x0' + sqrt(1 - a_next) * eps

and the last step returns x0'. Noise comes from a hash of (seed, element index) rather than a torch
generator: it is the same on every device and needs no global RNG state, which frames running on the
model's shared thread could disturb.
"""

from typing import List, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from configs import SchedulerConfig


def alphas_cumprod(c: SchedulerConfig) -> Tensor:
    """The "scaled_linear" DDPM schedule: prod(1 - beta), beta = linspace(sqrt(b0), sqrt(b1), T)^2."""
    betas = torch.linspace(c.beta_start ** 0.5, c.beta_end ** 0.5, c.train_timesteps, dtype=torch.float64) ** 2
    return torch.cumprod(1.0 - betas, 0).float()


class Img2Img(nn.Module):
    def __init__(self, unet: nn.Module, encode: nn.Module, decode: nn.Module, prompt_embeds: Tensor,
                 style_names: List[str], steps: int, scheduler: SchedulerConfig, default_size: Tuple[int, int],
                 multiple: int):
        super().__init__()
        self.unet = unet
        self.encode = encode  # image [0,1] -> scaled latents (VaeEncode or TaesdEncode)
        self.decode = decode  # scaled latents -> image [0,1] (VaeDecode or TaesdDecode)
        # The model's compute dtype (fp32 or fp16) is that of this buffer.
        self.register_buffer("prompt_embeds", prompt_embeds)
        # The schedule stays float32 whatever the precision.
        self.register_buffer("alphas_cumprod", alphas_cumprod(scheduler))
        self.style_names: List[str] = list(style_names)
        self.steps = steps
        self.train_timesteps = scheduler.train_timesteps
        self.width = default_size[0]
        self.height = default_size[1]
        # Frames are padded (edge pixels repeated) to a multiple of the VAE's and the UNet's combined
        # downscaling (64 for SD-Turbo), then cropped back: any frame size works, multiples of this
        # are the fast path.
        self.multiple = multiple

    @torch.jit.export
    def styles(self) -> List[str]:
        return self.style_names

    @torch.jit.export
    def default_size(self) -> Tuple[int, int]:
        return (self.width, self.height)

    def hash32(self, x: Tensor) -> Tensor:
        """An integer mixer (xor-shift-multiply) on int64 tensors holding 32-bit values."""
        x = x & 0xFFFFFFFF
        x = (((x >> 16) ^ x) * 0x45D9F3B) & 0xFFFFFFFF
        x = (((x >> 16) ^ x) * 0x45D9F3B) & 0xFFFFFFFF
        return (x >> 16) ^ x

    def noise(self, shape: List[int], seeds: Tensor) -> Tensor:
        """Standard normal noise of `shape` ([N, C, H, W]); item i a pure function of seeds[i] (Box-Muller
        on two hashed uniforms per element). Tensor maths only: the same values as hashing each seed on
        the host, since every step keeps the low 32 bits exact."""
        n = 1
        for d in shape[1:]:
            n *= d
        index = torch.arange(n, dtype=torch.int64, device=seeds.device).view(1, n)
        key = (((seeds & 0xFFFFFFFF) * 0x9E3779B1 + ((seeds >> 32) & 0xFFFFFFFF)) & 0xFFFFFFFF).view(-1, 1)
        u1 = (self.hash32(self.hash32(index * 2) ^ key).double() + 0.5) / 4294967296.0
        u2 = (self.hash32(self.hash32(index * 2 + 1) ^ key).double() + 0.5) / 4294967296.0
        z = torch.sqrt(-2.0 * torch.log(u1)) * torch.cos(6.283185307179586 * u2)
        return z.float().view(shape)

    def timesteps(self, strength: float) -> List[int]:
        """The `steps` timesteps for this strength (see the module comment); [] when strength is 0."""
        s = max(0.0, min(1.0, strength))
        span = float(self.train_timesteps) * s
        out: List[int] = []
        if int(span + 0.5) < 1:
            return out
        for k in range(self.steps):
            t = int(span * (1.0 - float(k) / float(self.steps)) + 0.5) - 1
            out.append(max(0, min(self.train_timesteps - 1, t)))
        return out

    def alphas(self, timesteps: Tensor) -> Tensor:
        return self.alphas_cumprod.index_select(0, timesteps).view(-1, 1, 1, 1)

    def denoise(self, x: Tensor, rows: Tensor, timesteps: Tensor, seeds: Tensor) -> Tensor:
        """The tensor-only core: x [N,3,h,w] in [0,1] (items with strength > 0), rows [N] the prompt
        row of each (int64), timesteps [N, steps] (int64), seeds [N] (int64). Nothing here moves a
        host value to the device, so it can be captured in a CUDA graph; torch.export takes it as it
        is (the AOTI package, --format aoti)."""
        dtype = self.prompt_embeds.dtype
        h, w = x.size(2), x.size(3)
        m = self.multiple
        # At least two multiples: the deepest UNet level must be wider than 1x1 for its GroupNorms.
        pad_h = max((h + m - 1) // m * m, 2 * m) - h
        pad_w = max((w + m - 1) // m * m, 2 * m) - w
        x = x.float().clamp(0.0, 1.0)
        if pad_h > 0 or pad_w > 0:
            x = F.pad(x, [0, pad_w, 0, pad_h], mode="replicate")

        x0 = self.encode(x.to(dtype)).float()
        noise = self.noise([x0.size(0), x0.size(1), x0.size(2), x0.size(3)], seeds)
        context = self.prompt_embeds.index_select(0, rows)

        a = self.alphas(timesteps[:, 0])
        latents = torch.sqrt(a) * x0 + torch.sqrt(1.0 - a) * noise
        pred = latents
        for k in range(self.steps):
            a_t = self.alphas(timesteps[:, k])
            t = timesteps[:, k].float()
            eps = self.unet(latents.to(dtype), t, context).float()
            pred = (latents - torch.sqrt(1.0 - a_t) * eps) / torch.sqrt(a_t)
            if k + 1 < self.steps:
                a_next = self.alphas(timesteps[:, k + 1])
                latents = torch.sqrt(a_next) * pred + torch.sqrt(1.0 - a_next) * eps

        return self.decode(pred.to(dtype)).float()[:, :, :h, :w]

    def device_ints(self, values: List[int], device: torch.device) -> Tensor:
        """A 1-D int64 tensor of |values| on |device|, made by fill kernels: torch.tensor(list,
        device=cuda) would copy from pageable host memory, which a CUDA graph cannot capture."""
        return torch.cat([torch.full([1], v, dtype=torch.int64, device=device) for v in values])

    @torch.jit.export
    def forward_batch(self, images: Tensor, styles: List[str], strengths: List[float], seeds: List[int]) -> Tensor:
        """Every item its own style, strength (so its own timesteps) and seed; the encoder, each UNet
        step and the decoder run once for the whole batch. Items at strength 0 are returned as they
        are (no VAE round trip)."""
        n = images.size(0)
        if len(styles) != n or len(strengths) != n or len(seeds) != n:
            raise ValueError("forward_batch: styles, strengths and seeds need one entry per image")
        device = images.device

        schedule: List[int] = []  # steps entries per item with strength > 0
        rows: List[int] = []  # prompt_embeds row per item with strength > 0
        work: List[int] = []  # items with strength > 0
        item_seeds: List[int] = []
        for i in range(n):
            ts = self.timesteps(strengths[i])
            if len(ts) == 0:
                continue
            row = 0
            for k in range(len(self.style_names)):
                if self.style_names[k] == styles[i]:
                    row = k + 1
            work.append(i)
            rows.append(row)
            item_seeds.append(seeds[i])
            schedule.extend(ts)
        if len(work) == 0:
            return images.clone()

        x = images
        if len(work) < n:
            x = images.index_select(0, self.device_ints(work, device))
        timesteps = self.device_ints(schedule, device).view(len(work), self.steps)
        out = self.denoise(x, self.device_ints(rows, device), timesteps, self.device_ints(item_seeds, device))
        if len(work) == n:
            return out
        result = images.float().clone()
        result.index_copy_(0, self.device_ints(work, device), out)
        return result

    def forward(self, image: Tensor, style: str, strength: float, seed: int) -> Tensor:
        return self.forward_batch(image, [style], [strength], [seed])

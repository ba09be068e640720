"""The two configurations the exporter knows: `sd-turbo` (stabilityai/sd-turbo, the SD 2.1
architecture) and `tiny` (the same architecture scaled down, for CI on a CPU in seconds).

The sd-turbo numbers are those of the checkpoint's config.json files (unet/config.json,
vae/config.json, text_encoder/config.json, scheduler/scheduler_config.json); the names follow
diffusers' so that a reader can compare them line by line.
"""

from dataclasses import dataclass, field
from typing import Tuple


@dataclass
class UNetConfig:
    in_channels: int = 4
    out_channels: int = 4
    block_out_channels: Tuple[int, ...] = (320, 640, 1280, 1280)
    # diffusers calls this `attention_head_dim`, but for SD 2.x it is the number of heads per block
    # (a naming slip diffusers keeps for compatibility): every head is 64 wide.
    attention_heads: Tuple[int, ...] = (5, 10, 20, 20)
    # CrossAttnDownBlock2D x3 + DownBlock2D, mirrored by UpBlock2D + CrossAttnUpBlock2D x3.
    cross_attention_blocks: Tuple[bool, ...] = (True, True, True, False)
    layers_per_block: int = 2
    cross_attention_dim: int = 1024
    norm_groups: int = 32
    norm_eps: float = 1e-5
    # Transformer2DModel with use_linear_projection=True (SD 2.x): proj_in/proj_out are Linear.
    use_linear_projection: bool = True


@dataclass
class VAEConfig:
    in_channels: int = 3
    latent_channels: int = 4
    block_out_channels: Tuple[int, ...] = (128, 256, 512, 512)
    layers_per_block: int = 2
    norm_groups: int = 32
    scaling_factor: float = 0.18215


@dataclass
class TAESDConfig:
    """madebyollin/taesd: 64 channels, 3 stride-2 stages (the same factor 8 as the VAE)."""
    channels: int = 64
    latent_channels: int = 4
    encoder_blocks: Tuple[int, ...] = (1, 3, 3, 3)
    decoder_blocks: Tuple[int, ...] = (3, 3, 3, 1)


@dataclass
class TextConfig:
    """The OpenCLIP ViT-H/14 text tower as transformers' CLIPTextModel; SD 2.x keeps 23 of its 24
    layers (it conditions on the penultimate layer, then the final layer norm)."""
    vocab_size: int = 49408
    max_length: int = 77
    hidden: int = 1024
    layers: int = 23
    heads: int = 16
    intermediate: int = 4096
    activation: str = "gelu"  # OpenAI's CLIP uses quick_gelu; OpenCLIP-H uses exact gelu
    eps: float = 1e-5
    bos_id: int = 49406
    eos_id: int = 49407


@dataclass
class SchedulerConfig:
    """DDPM training schedule ("scaled_linear"): betas = linspace(sqrt(b0), sqrt(b1), T)^2."""
    train_timesteps: int = 1000
    beta_start: float = 0.00085
    beta_end: float = 0.012


@dataclass
class ModelConfig:
    name: str
    unet: UNetConfig
    vae: VAEConfig
    taesd: TAESDConfig
    text: TextConfig
    scheduler: SchedulerConfig = field(default_factory=SchedulerConfig)
    default_size: Tuple[int, int] = (512, 512)  # (width, height)


def sd_turbo() -> ModelConfig:
    return ModelConfig("sd-turbo", UNetConfig(), VAEConfig(), TAESDConfig(), TextConfig())


def tiny() -> ModelConfig:
    """Every component kept, every size cut: two UNet levels (one with cross-attention), three VAE
    levels (a 64x64 frame is a 16x16 latent), a three-stage TAESD with the VAE's downsampling
    factor, a two-layer text encoder with the real vocabulary (so a real tokenizer still fits)."""
    return ModelConfig(
        "tiny",
        UNetConfig(block_out_channels=(32, 64), attention_heads=(2, 4), cross_attention_blocks=(True, False),
                   layers_per_block=1, cross_attention_dim=64),
        VAEConfig(block_out_channels=(32, 32, 64), layers_per_block=1),
        TAESDConfig(channels=32, encoder_blocks=(1, 1, 1), decoder_blocks=(1, 1, 1)),
        TextConfig(hidden=64, layers=2, heads=4, intermediate=256),
        default_size=(64, 64),
    )


CONFIGS = {"sd-turbo": sd_turbo, "tiny": tiny}

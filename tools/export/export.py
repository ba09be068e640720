#!/usr/bin/env python3
"""Exports SD-Turbo (or the same architecture with random weights) as a TorchScript img2img model
for diffusionfilter (docs/model-contract.md). See docs/export.md for the step-by-step guide.

    export.py --checkpoint ~/sd-turbo --out sd-turbo.pt                   # real weights, full VAE
    export.py --checkpoint ~/sd-turbo --taesd ~/taesd --decoder taesd --precision fp16 --out fast.pt
    export.py --random-weights --out bench.pt                             # the benchmark model
    export.py --config tiny --random-weights --out tiny.pt                # CI: seconds on a CPU
    export.py --random-weights --decoder taesd --precision fp16 --device cuda --format aoti --out fast.pt2

Plain PyTorch only (Debian's python3-torch 1.13 or PyTorch 2.x): the architecture is defined in
this folder, the checkpoint's safetensors files are read directly.
"""

import argparse
import os
import sys
import time
from typing import Dict, List, Tuple

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402
from torch import nn  # noqa: E402

import checkpoint  # noqa: E402
import clip_text  # noqa: E402
import taesd  # noqa: E402
import vae  # noqa: E402
from clip_tokenizer import ClipTokenizer, StandInTokenizer  # noqa: E402
from configs import CONFIGS, ModelConfig  # noqa: E402
from img2img import Img2Img  # noqa: E402
from layers import build_on  # noqa: E402
from unet import UNet  # noqa: E402

DEFAULT_STYLES = ";".join([
    "toon=a cartoon drawing, bold black outlines, flat bright colors, cel shading",
    "sketch=a pencil sketch on white paper, graphite lines, cross hatching",
    "watercolor=a watercolor painting, soft washes of color, paper texture",
    "neon=a neon-lit cyberpunk scene, glowing magenta and cyan lights, night",
    "oil=an oil painting, thick impasto brush strokes, rich colors",
    "anime=an anime still, clean line art, vibrant colors, studio lighting",
    "pixel=pixel art, 16-bit video game, limited palette",
    "mosaic=a stained glass mosaic, colorful glass pieces, lead lines",
])


def parse_styles(spec: str) -> List[Tuple[str, str]]:
    """"name=prompt;name=prompt" -> [(name, prompt)]. Names must be unique and non-empty."""
    styles: List[Tuple[str, str]] = []
    for item in spec.split(";"):
        if not item.strip():
            continue
        name, sep, prompt = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise SystemExit("--styles: '%s' is not name=prompt" % item.strip())
        if name in [n for n, _ in styles]:
            raise SystemExit("--styles: style '%s' is given twice" % name)
        styles.append((name, prompt.strip()))
    return styles


def parse_args(argv: List[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint", metavar="DIR", help="a downloaded stabilityai/sd-turbo folder (diffusers layout)")
    src.add_argument("--random-weights", action="store_true", help="seeded random weights, no download (benchmarks, CI)")
    p.add_argument("--config", choices=sorted(CONFIGS), default="sd-turbo", help="architecture size (default sd-turbo)")
    p.add_argument("--taesd", metavar="PATH", help="TAESD weights: a folder holding diffusers' AutoencoderTiny "
                   "(diffusion_pytorch_model.safetensors) or the original taesd_encoder/taesd_decoder .pth/.safetensors")
    p.add_argument("--decoder", choices=["vae", "taesd"], default="vae", help="latents to image (default vae)")
    p.add_argument("--encoder", choices=["vae", "taesd"], help="image to latents (default: the same as --decoder)")
    p.add_argument("--styles", default=DEFAULT_STYLES, help="'name=prompt;name=prompt' (default: %d styles)"
                   % len(parse_styles(DEFAULT_STYLES)))
    p.add_argument("--steps", type=int, default=1, help="denoising steps per frame, 1-4 (default 1)")
    p.add_argument("--precision", choices=["fp32", "fp16"], default="fp32", help="weights and compute (fp16: GPU)")
    p.add_argument("--device", default="cpu", help="where the export runs (text encoder, check); the file is "
                   "saved with CPU tensors and the element moves it to its own device")
    p.add_argument("--size", metavar="WxH", help="default_size() (default: 512x512, tiny: 64x64)")
    p.add_argument("--seed", type=int, default=0, help="seed of --random-weights (default 0)")
    p.add_argument("--no-check", action="store_true", help="skip loading the file back and running it once")
    p.add_argument("--format", choices=["torchscript", "aoti"], default="torchscript",
                   help="torchscript (.pt, any PyTorch) or aoti: an AOTInductor package (.pt2) compiled for "
                        "--device and the default size, batches of 1 to 8 (PyTorch 2.6 or newer; see docs/export.md)")
    p.add_argument("--out", required=True, metavar="MODEL.pt")
    args = p.parse_args(argv)
    args.encoder = args.encoder or args.decoder
    if not 1 <= args.steps <= 4:
        p.error("--steps must be between 1 and 4 (SD-Turbo is distilled for 1-4 steps)")
    if args.checkpoint and not os.path.isdir(args.checkpoint):
        p.error("--checkpoint %s: no such folder" % args.checkpoint)
    if args.taesd and not os.path.exists(args.taesd):
        p.error("--taesd %s: no such file or folder" % args.taesd)
    if args.checkpoint and "taesd" in (args.encoder, args.decoder) and not args.taesd:
        p.error("--decoder/--encoder taesd with --checkpoint needs --taesd PATH")
    if args.size:
        try:
            w, h = (int(v) for v in args.size.lower().split("x"))
        except ValueError:
            p.error("--size must be WxH, e.g. 512x512")
        args.size = (w, h)
    return args


def load_taesd(module: taesd.AutoencoderTiny, path: str, parts: List[str]) -> None:
    """Loads the `parts` ("encoder", "decoder") of TAESD from either layout (see --taesd)."""
    diffusers_file = os.path.join(path, "diffusion_pytorch_model.safetensors") if os.path.isdir(path) else path
    use_diffusers = os.path.isfile(diffusers_file) and diffusers_file.endswith(".safetensors") \
        and "taesd_" not in os.path.basename(diffusers_file)
    for part in parts:
        if use_diffusers:
            tensors, source = checkpoint.read_file(diffusers_file), diffusers_file
        else:
            found = [os.path.join(path, "taesd_%s%s" % (part, ext)) for ext in (".safetensors", ".pth")]
            found = [f for f in found if os.path.isfile(f)]
            if not found:
                raise checkpoint.CheckpointError("%s: no TAESD %s weights (diffusion_pytorch_model.safetensors or "
                                                 "taesd_%s.pth/.safetensors)" % (path, part, part))
            tensors, source = taesd.original_names(part, checkpoint.read_file(found[0])), found[0]
        prefix = part + ".layers."
        own = {n[len(part) + 1:]: t for n, t in tensors.items() if n.startswith(prefix)}
        print("loading taesd %s from %s" % (part, source))
        checkpoint.load_state(getattr(module, part), own, "%s (%s)" % (source, part))


def build_components(cfg: ModelConfig, args: argparse.Namespace) -> Dict[str, nn.Module]:
    """The components this export needs, weights loaded (or seeded random)."""
    wanted = {"unet", "text_encoder"} | {args.encoder, args.decoder}
    makers = {
        "unet": lambda: UNet(cfg.unet),
        "vae": lambda: vae.AutoencoderKL(cfg.vae),
        "taesd": lambda: taesd.AutoencoderTiny(cfg.taesd),
        "text_encoder": lambda: clip_text.CLIPTextModel(cfg.text),
    }
    parts: Dict[str, nn.Module] = {}
    if args.random_weights:
        torch.manual_seed(args.seed)
        for name in ["unet", "vae", "taesd", "text_encoder"]:  # fixed order: same seed, same weights
            if name in wanted:
                parts[name] = makers[name]()
        return parts
    for name in sorted(wanted):
        with build_on("meta"):
            module = makers[name]()
        module = checkpoint.materialize(module)
        if name == "taesd":
            load_taesd(module, args.taesd, [p for p, use in (("encoder", args.encoder), ("decoder", args.decoder))
                                            if use == "taesd"])
        else:
            path = checkpoint.component_file(args.checkpoint, name)
            print("loading %s from %s" % (name, path))
            checkpoint.load_file(module, path, rename=vae.rename_legacy if name == "vae" else None,
                                 ignore=clip_text.IGNORED)
        parts[name] = module
    return parts


def prompt_embeddings(text_encoder: nn.Module, tokenizer, prompts: List[str], device: str) -> torch.Tensor:
    """[len(prompts), 77, hidden] in float32, computed on `device`."""
    ids = torch.tensor([tokenizer.encode(p) for p in prompts], dtype=torch.int64, device=device)
    with torch.no_grad():
        return text_encoder.to(device).float()(ids).float().cpu()


def export(args: argparse.Namespace) -> str:
    started = time.time()
    cfg = CONFIGS[args.config]()
    size = args.size or cfg.default_size
    styles = parse_styles(args.styles)
    parts = build_components(cfg, args)

    if args.checkpoint:
        tokenizer = ClipTokenizer(os.path.join(args.checkpoint, "tokenizer"), cfg.text)
    else:
        tokenizer = StandInTokenizer(cfg.text)
    # Row 0 is the empty prompt: what unknown styles (and the empty style) get.
    embeds = prompt_embeddings(parts.pop("text_encoder"), tokenizer, [""] + [p for _, p in styles], args.device)

    dtype = torch.float16 if args.precision == "fp16" else torch.float32
    for module in parts.values():
        module.to(dtype).eval()
    unet = parts["unet"]
    encode = vae.VaeEncode(parts["vae"]) if args.encoder == "vae" else taesd.TaesdEncode(parts["taesd"])
    decode = vae.VaeDecode(parts["vae"]) if args.decoder == "vae" else taesd.TaesdDecode(parts["taesd"])
    latent_downscale = (parts["vae"] if args.encoder == "vae" else parts["taesd"]).downscale
    model = Img2Img(unet, encode, decode, embeds.to(dtype), [n for n, _ in styles], args.steps, cfg.scheduler,
                    size, latent_downscale * unet.downscale).eval()
    for p in model.parameters():
        p.requires_grad_(False)

    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    if args.format == "aoti":
        export_aoti(model, args, size)
    else:
        scripted = torch.jit.script(model)
        torch.jit.save(scripted, args.out)
    print("wrote %s: %s config, %s weights, %d step(s), encoder %s, decoder %s, %s, styles %s, default size %dx%d "
          "(%.1f s, %.1f MB)" % (args.out, cfg.name, "random" if args.random_weights else "checkpoint", args.steps,
                                 args.encoder, args.decoder, args.precision, ",".join(n for n, _ in styles),
                                 size[0], size[1], time.time() - started, os.path.getsize(args.out) / 1e6))
    if not args.no_check:
        if args.format == "aoti":
            check_aoti(args.out, args.device, size, model.steps)
        else:
            check(args.out, args.device, args.precision, model.multiple)
    return args.out


class TensorCore(nn.Module):
    """What an AOTI package holds: Img2Img.denoise, tensors in and out (no strings or lists). The
    loader (plugins/diffusion/core/aoti_model.cpp) does what forward_batch does around it: style
    names to prompt rows, strength to timesteps, strength-0 items passed through."""

    def __init__(self, model: Img2Img):
        super().__init__()
        self.model = model

    def forward(self, images, rows, timesteps, seeds):
        return self.model.denoise(images, rows, timesteps, seeds)


def export_aoti(model: Img2Img, args: argparse.Namespace, size: Tuple[int, int]) -> None:
    """Compiles the tensor core with AOTInductor for --device at the default size, batch 1 to 8."""
    inductor = getattr(torch, "_inductor", None)
    if not hasattr(torch, "export") or inductor is None or not hasattr(inductor, "aoti_compile_and_package"):
        raise SystemExit("--format aoti needs PyTorch 2.6 or newer (this is %s)" % torch.__version__)
    device = torch.device(args.device)
    core = TensorCore(model.to(device)).eval()
    n = 2
    example = (torch.rand(n, 3, size[1], size[0], device=device),
               torch.zeros(n, dtype=torch.int64, device=device),
               torch.full((n, model.steps), model.train_timesteps // 2 - 1, dtype=torch.int64, device=device),
               torch.arange(n, dtype=torch.int64, device=device))
    batch = torch.export.Dim("batch", min=1, max=8)
    with torch.no_grad():
        program = torch.export.export(core, example, dynamic_shapes=({0: batch}, {0: batch}, {0: batch}, {0: batch}))
    # What the loader needs to be forward_batch(): read back with AOTIModelPackageLoader::get_metadata().
    metadata = {
        "mirage.styles": "\n".join(model.style_names),
        "mirage.steps": str(model.steps),
        "mirage.train_timesteps": str(model.train_timesteps),
        "mirage.width": str(size[0]),
        "mirage.height": str(size[1]),
        "mirage.precision": args.precision,
        "mirage.device": device.type,
    }
    inductor.aoti_compile_and_package(program, package_path=args.out,
                                      inductor_configs={"aot_inductor.metadata": metadata})


def check_aoti(path: str, device: str, size: Tuple[int, int], steps: int) -> None:
    """Loads the package back and runs it once on a batch of one grey frame."""
    runner = torch._inductor.aoti_load_package(path)
    image = torch.full((1, 3, size[1], size[0]), 0.5, device=device)
    ints = lambda v: torch.tensor(v, dtype=torch.int64, device=device)  # noqa: E731
    out = runner(image, ints([0]), ints([[499] * steps]), ints([0]))
    if isinstance(out, (list, tuple)):
        out = out[0]
    if tuple(out.shape) != tuple(image.shape) or not bool(torch.isfinite(out).all()):
        raise SystemExit("check failed: the package gave shape %s" % list(out.shape))
    print("check: loaded the package back, a %dx%d grey frame gives %s on %s" % (size[0], size[1], list(out.shape), device))


def check(path: str, device: str, precision: str, multiple: int) -> None:
    """Loads the file back and runs forward() once on a small grey frame, as the element will."""
    if precision == "fp16" and torch.device(device).type == "cpu":
        print("check skipped: fp16 convolutions need a GPU (export with --device cuda to check)")
        return
    m = torch.jit.load(path, map_location=device)
    # Twice the padding multiple: the smallest frame whose deepest UNet level is wider than 1x1.
    side = 2 * multiple
    image = torch.full((1, 3, side, side), 0.5, device=device)
    with torch.no_grad():
        out = m.forward(image, m.styles()[0] if m.styles() else "", 0.5, 0)
    if tuple(out.shape) != tuple(image.shape) or not bool(torch.isfinite(out).all()):
        raise SystemExit("check failed: forward() gave shape %s, finite: %s" % (list(out.shape), bool(torch.isfinite(out).all())))
    print("check: loaded back, forward() on a %dx%d grey frame gives %s on %s" % (side, side, list(out.shape), device))


def main(argv: List[str] = None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    # Debian's torch starts with one thread; the export (the text encoder above all) is a one-off
    # batch job, so use the machine unless the user chose otherwise.
    if "OMP_NUM_THREADS" not in os.environ:
        torch.set_num_threads(os.cpu_count() or 1)
    try:
        export(args)
    except checkpoint.CheckpointError as e:
        print("error: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

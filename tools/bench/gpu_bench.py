#!/usr/bin/env python3
"""gpu-bench: model-only speed of the exporter's SD-Turbo-size img2img module.

    ./dev bench --gpu                       # on the GPU machine
    tools/bench/gpu_bench.py --device cpu --config tiny --size 64 --iters 3   # a smoke run anywhere
    tools/bench/gpu_bench.py --model m16.pt --compare m32.pt --json out.json  # one file (tools/gpu/device-run.sh)

For 1 and 2 steps, the full VAE and the tiny TAESD decoder, fp32 and fp16
(CUDA only), it exports the module with random weights (tools/export,
--random-weights: the same architecture and cost as the real weights), loads
it with torch.jit.load, and times forward() on a 512x512 frame: eager, and
replayed from a CUDA graph (CUDA only). Then forward_batch() of 4 frames
against 4 single calls, and the GPU memory each needed. Without CUDA it says
so and exits 0. The element's own throughput needs GStreamer, which the GPU
machine lacks; see docs/gpu.md.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

import torch

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXPORT_PY = os.path.join(ROOT, "tools", "export", "export.py")


def export(work, config, steps, decoder, precision, device):
    path = os.path.join(work, f"{config}-{steps}step-{decoder}-{precision}.pt")
    if not os.path.exists(path):
        subprocess.run([sys.executable, EXPORT_PY, "--random-weights", "--config", config, "--steps", str(steps),
                        "--decoder", decoder, "--precision", precision, "--device", device, "--no-check",
                        "--out", path], check=True, stdout=subprocess.DEVNULL)
    return path


def sync(device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def timed(fn, device, iters):
    for _ in range(3):
        fn()
    sync(device)
    start = time.perf_counter()
    for _ in range(iters):
        fn()
    sync(device)
    return (time.perf_counter() - start) / iters


def graph_fps(module, image, device, iters):
    """Replays one captured forward(); None and the reason when capture fails."""
    try:
        static = image.clone()
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(3):
                module(static, "toon", 0.5, 0)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            module(static, "toon", 0.5, 0)
        return 1.0 / timed(graph.replay, device, iters), ""
    except Exception as error:  # capture is optional: report why it did not work
        return None, str(error).splitlines()[0][:80]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--config", default="sd-turbo", choices=["sd-turbo", "tiny"])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--iters", type=int, default=50)
    parser.add_argument("--work", help="folder for the exported files (default: a temporary one)")
    parser.add_argument("--model", help="measure this exported file only (eager, CUDA-graph replay: the ceiling, "
                                        "batch of 4, memory) instead of exporting the variants")
    parser.add_argument("--compare", help="with --model: a file of the same module in another precision; prints "
                                          "the relative L2 between their outputs on the same inputs")
    parser.add_argument("--json", help="with --model: write the numbers here too")
    args = parser.parse_args()
    cuda = args.device.startswith("cuda")
    if args.model:
        return one_model(args, cuda)
    if cuda and not torch.cuda.is_available():
        print("gpu-bench: no CUDA device (torch %s sees none): skipped" % torch.__version__)
        return 0
    work = args.work or tempfile.mkdtemp(prefix="mirage-gpu-bench-")
    name = torch.cuda.get_device_name(0) if cuda else "CPU"
    print(f"\n## Model only: exporter's {args.config} img2img, random weights, {args.size}x{args.size}, "
          f"{name}, torch {torch.__version__}\n")
    print("| steps | decoder | precision | eager fps | CUDA graph fps | batch of 4: frames/s | peak memory MiB |")
    print("|---:|---|---|---:|---:|---:|---:|")
    with torch.inference_mode():
        for steps in (1, 2):
            for decoder in ("vae", "taesd"):
                for precision in (("fp32", "fp16") if cuda else ("fp32",)):
                    try:
                        row(args, work, steps, decoder, precision, cuda)
                    except Exception as error:  # one failing variant does not hide the others
                        reason = str(error).strip().splitlines()[-1][:100] if str(error).strip() else type(error).__name__
                        print(f"| {steps} | {decoder} | {precision} | failed: {reason} | | | |", flush=True)
    print("\nforward() takes a [1,3,H,W] float image in [0,1]; conversion to and from video frames is the "
          "element's and is not included.")
    return 0


def one_model(args, cuda):
    """The numbers of one exported file; the graph replay is the ceiling the element is compared with."""
    if cuda and not torch.cuda.is_available():
        print("gpu-bench: no CUDA device (torch %s sees none): skipped" % torch.__version__)
        return 0
    result = {"model": os.path.basename(args.model), "device": args.device, "torch": torch.__version__}
    with torch.inference_mode():
        module = torch.jit.load(args.model, map_location=args.device).eval()
        w, h = module.default_size()
        image = torch.rand(1, 3, h, w, generator=torch.Generator().manual_seed(1)).to(args.device)
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        result["eager_ms"] = 1000 * timed(lambda: module(image, "toon", 0.5, 0), args.device, args.iters)
        graph, why = graph_fps(module, image, args.device, args.iters) if cuda else (None, "CPU")
        result["graph_ms"] = 1000 / graph if graph else None
        result["graph_error"] = why
        four = image.repeat(4, 1, 1, 1)
        result["batch4_fps"] = 4.0 / timed(lambda: module.forward_batch(four, ["toon"] * 4, [0.5] * 4, [0, 1, 2, 3]),
                                           args.device, max(1, args.iters // 4))
        result["peak_mib"] = torch.cuda.max_memory_allocated() / 2**20 if cuda else None
        if args.compare:
            other = torch.jit.load(args.compare, map_location=args.device).eval()
            a = module(image, "toon", 0.6, 2).float()
            b = other(image, "toon", 0.6, 2).float()
            result["relative_l2"] = float((a - b).norm() / b.norm())
    name = torch.cuda.get_device_name(0) if cuda else "CPU"
    print(f"\n## Plain PyTorch: {result['model']} ({w}x{h}, {name}, torch {torch.__version__})\n")
    print("| eager ms | CUDA-graph replay ms (ceiling) | batch of 4: frames/s | peak MiB | relative L2 vs. --compare |")
    print("|---:|---:|---:|---:|---:|")
    graph_text = f"{result['graph_ms']:.2f}" if result["graph_ms"] else f"n/a ({why})"
    l2 = f"{result['relative_l2'] * 100:.2f} %" if "relative_l2" in result else "-"
    peak = f"{result['peak_mib']:.0f}" if result["peak_mib"] else "-"
    print(f"| {result['eager_ms']:.2f} | {graph_text} | {result['batch4_fps']:.1f} | {peak} | {l2} |", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f)
    return 0


def row(args, work, steps, decoder, precision, cuda):
    path = export(work, args.config, steps, decoder, precision, args.device)
    module = torch.jit.load(path, map_location=args.device).eval()
    image = torch.rand(1, 3, args.size, args.size, device=args.device)
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    eager = 1.0 / timed(lambda: module(image, "toon", 0.5, 0), args.device, args.iters)
    graph, why = graph_fps(module, image, args.device, args.iters) if cuda else (None, "CPU")
    four = image.repeat(4, 1, 1, 1)
    batch = 4.0 / timed(lambda: module.forward_batch(four, ["toon"] * 4, [0.5] * 4, [0, 1, 2, 3]),
                        args.device, max(1, args.iters // 4))
    memory = torch.cuda.max_memory_allocated() / 2**20 if cuda else float("nan")
    graph_text = f"{graph:.1f}" if graph else f"n/a ({why})"
    print(f"| {steps} | {decoder} | {precision} | {eager:.1f} | {graph_text} | {batch:.1f} | "
          f"{memory:.0f} |", flush=True)


if __name__ == "__main__":
    sys.exit(main())

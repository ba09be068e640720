"""Loading a component's weights from its checkpoint file by the original tensor names, and finding
those files in a downloaded stabilityai/sd-turbo folder.

Every problem names the file and the tensor: a missing tensor, a shape the architecture does not
expect, a truncated or corrupt file (from safetensors_io). Unexpected extra tensors are reported
but tolerated (checkpoints carry the odd buffer, e.g. CLIP's position_ids).
"""

import os
from typing import Callable, Dict, Iterable, List, Optional

import torch
from torch import nn

from safetensors_io import SafetensorsFile


class CheckpointError(ValueError):
    pass


# Where each component lives in a diffusers-layout checkpoint folder; the first file found is used
# (the fp16 variants are what `--variant fp16` downloads give).
COMPONENT_FILES = {
    "unet": ["unet/diffusion_pytorch_model.safetensors", "unet/diffusion_pytorch_model.fp16.safetensors"],
    "vae": ["vae/diffusion_pytorch_model.safetensors", "vae/diffusion_pytorch_model.fp16.safetensors"],
    "text_encoder": ["text_encoder/model.safetensors", "text_encoder/model.fp16.safetensors"],
}


def component_file(checkpoint: str, component: str) -> str:
    candidates = COMPONENT_FILES[component]
    for rel in candidates:
        path = os.path.join(checkpoint, rel)
        if os.path.isfile(path):
            return path
    raise CheckpointError("%s: no %s weights (looked for %s)" % (checkpoint, component, ", ".join(candidates)))


def load_state(module: nn.Module, tensors, source: str,
               ignore: Iterable[str] = ()) -> List[str]:
    """Copies `tensors` (a dict, or anything with get(name) and iteration over names) into
    `module`'s parameters and buffers by name, converting the dtype.
    Raises CheckpointError naming `source` and the tensors when any is missing or misshapen;
    returns the names of unexpected tensors."""
    expected = module.state_dict()
    problems = []
    for name, target in expected.items():
        t = tensors.get(name)
        if t is None:
            problems.append("missing tensor '%s' (expected shape %s)" % (name, list(target.shape)))
            continue
        if tuple(t.shape) != tuple(target.shape):
            # A 1x1 conv stored where we have a Linear (older VAE attention weights): same numbers.
            if t.dim() == 4 and t.shape[2:] == (1, 1) and tuple(t.shape[:2]) == tuple(target.shape):
                t = t[:, :, 0, 0]
            else:
                problems.append("tensor '%s' has shape %s, the architecture expects %s"
                                % (name, list(t.shape), list(target.shape)))
                continue
        with torch.no_grad():
            target.copy_(t.to(target.dtype))
    if problems:
        more = "" if len(problems) <= 10 else "\n  ... and %d more" % (len(problems) - 10)
        raise CheckpointError("%s: %d problem(s) loading %s:\n  %s%s" % (
            source, len(problems), type(module).__name__, "\n  ".join(problems[:10]), more))
    ignored = set(ignore)
    return sorted(n for n in tensors if n not in expected and n not in ignored)


class LazyTensors:
    """The tensors of an open SafetensorsFile by (possibly renamed) name, read one at a time when
    asked for: loading a 3.5 GB UNet then needs the module's memory plus one tensor, not twice the
    file."""

    def __init__(self, f: SafetensorsFile, rename: Optional[Callable[[str], str]] = None):
        self._file = f
        self._names = {(rename(n) if rename else n): n for n in f.names()}

    def get(self, name: str) -> Optional[torch.Tensor]:
        original = self._names.get(name)
        return None if original is None else self._file.get(original)

    def __iter__(self):
        return iter(self._names)


def read_file(path: str, rename: Optional[Callable[[str], str]] = None) -> Dict[str, torch.Tensor]:
    """All tensors of a .safetensors (or, for TAESD's original files, a .pth) file, in memory, names
    passed through `rename`."""
    if path.endswith(".safetensors"):
        with SafetensorsFile(path) as f:
            tensors = {n: f.get(n) for n in f.names()}
    else:
        try:
            tensors = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as e:  # pickle errors come in many types
            raise CheckpointError("%s: cannot read (%s)" % (path, e))
    if rename is not None:
        tensors = {rename(n): t for n, t in tensors.items()}
    return tensors


def load_file(module: nn.Module, path: str, rename: Optional[Callable[[str], str]] = None,
              ignore: Iterable[str] = ()) -> None:
    """Loads `module` from one file and prints what was left over."""
    with SafetensorsFile(path) as f:
        unexpected = load_state(module, LazyTensors(f, rename), path, ignore)
    if unexpected:
        print("note: %s: %d tensor(s) not used: %s" % (path, len(unexpected), ", ".join(unexpected[:5])
                                                       + (", ..." if len(unexpected) > 5 else "")))


def materialize(module: nn.Module, device: str = "cpu") -> nn.Module:
    """A module built on the meta device gets real (uninitialised) storage, to be loaded into: no
    time spent on random initialisation of weights that are about to be overwritten."""
    return module.to_empty(device=device)

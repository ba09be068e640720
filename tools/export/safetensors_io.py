"""Reading and writing .safetensors files with nothing but the standard library and torch.

The format (https://github.com/huggingface/safetensors, "Format"):

    8 bytes   N, the header length, unsigned little-endian
    N bytes   JSON: {"name": {"dtype": "F16", "shape": [..], "data_offsets": [begin, end]}, ...,
                     "__metadata__": {str: str}}   (optional)
    rest      the tensors' raw little-endian bytes; data_offsets count from the end of the header

We read through a memory map so that a 3.4 GB checkpoint is not copied into memory twice, and we
check every offset against the file: a truncated download must fail with the file and tensor named,
not with a crash or garbage weights.
"""

import json
import mmap
import os
import struct
import sys
from typing import Dict, Iterator, Tuple

import torch

# The dtypes a Stable Diffusion checkpoint uses. Others (integers, F64, F8) are rejected by name.
DTYPES = {
    "F32": torch.float32,
    "F16": torch.float16,
    "BF16": torch.bfloat16,
}
_NAMES = {v: k for k, v in DTYPES.items()}
_ITEMSIZE = {"F32": 4, "F16": 2, "BF16": 2}

# A header larger than this is not a checkpoint header (the format itself caps it at 100 MB).
_MAX_HEADER = 100 * 1024 * 1024


class SafetensorsError(ValueError):
    """A file that is not a valid safetensors file, or a tensor we cannot use."""


class SafetensorsFile:
    """An open .safetensors file: `names()`, `shape(name)`, `get(name)` (a torch tensor, copied out
    of the file). Use as a context manager, or call close()."""

    def __init__(self, path: str):
        if sys.byteorder != "little":
            raise SafetensorsError("safetensors data is little-endian; this reader supports little-endian hosts only")
        self.path = path
        self._file = open(path, "rb")
        try:
            self._size = os.fstat(self._file.fileno()).st_size
            self._entries, self._data_start = self._read_header()
            # ACCESS_COPY gives a writable (copy-on-write) view, which torch.frombuffer wants;
            # nothing is ever written back to the file.
            self._map = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_COPY) if self._size else None
        except Exception:
            self._file.close()
            raise

    def _fail(self, what: str) -> SafetensorsError:
        return SafetensorsError("%s: %s" % (self.path, what))

    def _read_header(self) -> Tuple[Dict[str, dict], int]:
        head = self._file.read(8)
        if len(head) < 8:
            raise self._fail("not a safetensors file: %d bytes, shorter than the 8-byte header length" % len(head))
        (n,) = struct.unpack("<Q", head)
        if n > _MAX_HEADER or 8 + n > self._size:
            raise self._fail("not a safetensors file or truncated: header length %d, file size %d" % (n, self._size))
        try:
            header = json.loads(self._file.read(n).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise self._fail("corrupt safetensors header (invalid JSON: %s)" % e)
        if not isinstance(header, dict):
            raise self._fail("corrupt safetensors header (not a JSON object)")
        header.pop("__metadata__", None)
        data_start = 8 + n
        data_size = self._size - data_start
        for name, e in header.items():
            if not isinstance(e, dict) or not {"dtype", "shape", "data_offsets"} <= set(e):
                raise self._fail("tensor '%s': header entry needs dtype, shape and data_offsets" % name)
            begin, end = e["data_offsets"]
            numel = 1
            for d in e["shape"]:
                numel *= int(d)
            if e["dtype"] in _ITEMSIZE and end - begin != numel * _ITEMSIZE[e["dtype"]]:
                raise self._fail("tensor '%s': %d bytes for shape %s of %s" % (name, end - begin, e["shape"], e["dtype"]))
            if not 0 <= begin <= end <= data_size:
                raise self._fail("tensor '%s': bytes [%d, %d) lie beyond the end of the data (%d bytes): "
                                 "is the file truncated?" % (name, begin, end, data_size))
        return header, data_start

    def names(self) -> Iterator[str]:
        return iter(self._entries)

    def __contains__(self, name: str) -> bool:
        return name in self._entries

    def shape(self, name: str) -> Tuple[int, ...]:
        return tuple(int(d) for d in self._entries[name]["shape"])

    def get(self, name: str) -> torch.Tensor:
        if name not in self._entries:
            raise self._fail("no tensor named '%s'" % name)
        e = self._entries[name]
        dtype = DTYPES.get(e["dtype"])
        if dtype is None:
            raise self._fail("tensor '%s' has dtype %s; supported: %s" % (name, e["dtype"], ", ".join(DTYPES)))
        begin, end = e["data_offsets"]
        shape = self.shape(name)
        if end == begin:
            return torch.empty(shape, dtype=dtype)
        flat = torch.frombuffer(self._map, dtype=dtype, count=(end - begin) // _ITEMSIZE[e["dtype"]],
                                offset=self._data_start + begin)
        return flat.clone().view(shape)  # clone: the tensor must outlive the map

    def close(self) -> None:
        if getattr(self, "_map", None) is not None:
            self._map.close()
            self._map = None
        self._file.close()

    def __enter__(self) -> "SafetensorsFile":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def read_safetensors(path: str) -> Dict[str, torch.Tensor]:
    """Every tensor of the file, by name."""
    with SafetensorsFile(path) as f:
        return {name: f.get(name) for name in f.names()}


def write_safetensors(path: str, tensors: Dict[str, torch.Tensor], metadata: Dict[str, str] = None) -> None:
    """Writes `tensors` (F32, F16 or BF16) in the safetensors format. Used by the tests to make
    synthetic checkpoints, and handy for saving a --random-weights checkpoint."""
    header = {}
    if metadata:
        header["__metadata__"] = dict(metadata)
    blobs = []
    offset = 0
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        if t.dtype not in _NAMES:
            raise SafetensorsError("%s: tensor '%s' has dtype %s; supported: %s" % (path, name, t.dtype, ", ".join(DTYPES)))
        # Through a byte view, so BF16 (which numpy lacks) needs no special case.
        data = t.view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b""
        header[name] = {"dtype": _NAMES[t.dtype], "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
    raw += b" " * (-len(raw) % 8)  # the format pads the header to 8 bytes with spaces
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for data in blobs:
            f.write(data)

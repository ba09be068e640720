"""CLIP's byte-level BPE tokenizer (the one Stable Diffusion uses), from the checkpoint's
tokenizer/vocab.json and tokenizer/merges.txt; and a stand-in for random-weight exports.

Differences from transformers' CLIPTokenizer, on purpose: no ftfy text repair (prompts are typed
by us, in the --styles option), and the pre-tokenizer's Unicode classes \\p{L} and \\p{N} are
approximated with Python's re ([^\\W\\d_] and \\d), identical for ASCII prompts.
"""

import hashlib
import json
import os
import re
from typing import Dict, List, Tuple

from configs import TextConfig

# CLIP's pre-tokenizer: special tokens, English contractions, runs of letters, single digits,
# runs of other non-space characters.
_PATTERN = re.compile(r"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[^\W\d_]+|\d|(?:[^\s\w]|_)+",
                      re.IGNORECASE)


def _bytes_to_unicode() -> Dict[int, str]:
    """GPT-2's reversible map from bytes to printable characters: printable Latin-1 bytes map to
    themselves, the others to code points from 256 up."""
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars = keep[:]
    extra = 0
    for b in range(256):
        if b not in keep:
            keep.append(b)
            chars.append(256 + extra)
            extra += 1
    return {b: chr(c) for b, c in zip(keep, chars)}


class ClipTokenizer:
    def __init__(self, folder: str, config: TextConfig):
        vocab_path = os.path.join(folder, "vocab.json")
        merges_path = os.path.join(folder, "merges.txt")
        for p in (vocab_path, merges_path):
            if not os.path.isfile(p):
                raise FileNotFoundError("tokenizer file %s is missing (from the checkpoint's tokenizer/ folder)" % p)
        with open(vocab_path, encoding="utf-8") as f:
            self.vocab: Dict[str, int] = json.load(f)
        with open(merges_path, encoding="utf-8") as f:
            lines = f.read().split("\n")
        # The first line is a version comment; CLIP uses the first 48894 merges (49152 - 256 - 2).
        merges = [tuple(line.split()) for line in lines[1:] if line.strip()][:49152 - 256 - 2]
        self.ranks: Dict[Tuple[str, str], int] = {m: i for i, m in enumerate(merges)}
        self.byte_map = _bytes_to_unicode()
        self.max_length = config.max_length
        self.bos = self.vocab.get("<|startoftext|>", config.bos_id)
        self.eos = self.vocab.get("<|endoftext|>", config.eos_id)
        self.pad = self.vocab[self._pad_token(folder)]
        self.cache: Dict[str, List[str]] = {}

    @staticmethod
    def _pad_token(folder: str) -> str:
        """SD 2.x pads with "!" (id 0), SD 1.x with <|endoftext|>: read it from the folder."""
        for name in ("special_tokens_map.json", "tokenizer_config.json"):
            path = os.path.join(folder, name)
            if os.path.isfile(path):
                with open(path, encoding="utf-8") as f:
                    pad = json.load(f).get("pad_token")
                if isinstance(pad, dict):
                    pad = pad.get("content")
                if isinstance(pad, str):
                    return pad
        return "<|endoftext|>"

    def _bpe(self, word: str) -> List[str]:
        """Merges the word's characters (the last one marked with </w>) pair by pair, lowest rank first."""
        if word in self.cache:
            return self.cache[word]
        parts = list(word[:-1]) + [word[-1] + "</w>"]
        while len(parts) > 1:
            best = min(zip(parts, parts[1:]), key=lambda pair: self.ranks.get(pair, 1 << 30))
            if best not in self.ranks:
                break
            # Merge every occurrence of the best pair, left to right.
            merged, i = [], 0
            while i < len(parts):
                if i + 1 < len(parts) and (parts[i], parts[i + 1]) == best:
                    merged.append(parts[i] + parts[i + 1])
                    i += 2
                else:
                    merged.append(parts[i])
                    i += 1
            parts = merged
        self.cache[word] = parts
        return parts

    def encode(self, text: str) -> List[int]:
        """text -> exactly max_length ids: <|startoftext|>, the tokens (truncated), <|endoftext|>, padding."""
        text = re.sub(r"\s+", " ", text).strip().lower()
        ids: List[int] = []
        for word in _PATTERN.findall(text):
            mapped = "".join(self.byte_map[b] for b in word.encode("utf-8"))
            ids += [self.vocab[piece] for piece in self._bpe(mapped)]
        ids = [self.bos] + ids[:self.max_length - 2] + [self.eos]
        return ids + [self.pad] * (self.max_length - len(ids))


class StandInTokenizer:
    """For --random-weights only, where no tokenizer files exist: each lower-cased word becomes an id
    from a hash of it (deterministic across runs and machines), framed and padded like CLIP's."""

    def __init__(self, config: TextConfig):
        self.c = config

    def encode(self, text: str) -> List[int]:
        ids = [self.c.bos_id]
        for word in re.findall(r"\w+|[^\w\s]", text.lower()):
            digest = hashlib.sha256(word.encode("utf-8")).digest()
            ids.append(int.from_bytes(digest[:4], "little") % (self.c.bos_id - 1) + 1)
        ids = ids[:self.c.max_length - 1] + [self.c.eos_id]
        return ids + [0] * (self.c.max_length - len(ids))

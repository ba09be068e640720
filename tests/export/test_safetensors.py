"""The checkpoint path on synthetic files: the safetensors reader and writer, loading by name with
clear errors, the CLIP BPE tokenizer, and a full `--checkpoint` export of the tiny configuration
from a folder laid out like stabilityai/sd-turbo."""

import json
import os
import struct
import subprocess
import sys
import tempfile
import unittest

import export_paths

import torch

import checkpoint
from clip_text import CLIPTextModel
from clip_tokenizer import ClipTokenizer
from configs import tiny
from safetensors_io import SafetensorsError, SafetensorsFile, read_safetensors, write_safetensors
from unet import UNet
from vae import AutoencoderKL


class SafetensorsRoundTrip(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.path = os.path.join(self.dir.name, "unet.safetensors")
        torch.manual_seed(1)
        self.unet = UNet(tiny().unet)
        self.state = {k: v.clone() for k, v in self.unet.state_dict().items()}

    def tearDown(self):
        self.dir.cleanup()

    def test_header_is_the_documented_format(self):
        write_safetensors(self.path, {"a": torch.ones(2, 3), "b": torch.zeros(4, dtype=torch.float16)}, {"k": "v"})
        with open(self.path, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(n))
        self.assertEqual(header["a"], {"dtype": "F32", "shape": [2, 3], "data_offsets": [0, 24]})
        self.assertEqual(header["b"], {"dtype": "F16", "shape": [4], "data_offsets": [24, 32]})
        self.assertEqual(header["__metadata__"], {"k": "v"})
        self.assertEqual(os.path.getsize(self.path), 8 + n + 32)

    def test_f32_f16_bf16_round_trip(self):
        tensors = {"f32": torch.randn(3, 5), "f16": torch.randn(7).half(), "bf16": torch.randn(2, 2, 2).bfloat16(),
                   "empty": torch.empty(0, 4)}
        write_safetensors(self.path, tensors)
        back = read_safetensors(self.path)
        self.assertEqual(set(back), set(tensors))
        for name, t in tensors.items():
            self.assertEqual(back[name].dtype, t.dtype, name)
            self.assertTrue(torch.equal(back[name], t), name)

    def test_weights_load_back_equal(self):
        write_safetensors(self.path, self.state)
        fresh = UNet(tiny().unet)  # another random init
        unexpected = checkpoint.load_state(fresh, read_safetensors(self.path), self.path)
        self.assertEqual(unexpected, [])
        for name, t in fresh.state_dict().items():
            self.assertTrue(torch.equal(t, self.state[name]), name)

    def test_f16_checkpoint_loads_into_f32_model(self):
        write_safetensors(self.path, {k: v.half() for k, v in self.state.items()})
        fresh = UNet(tiny().unet)
        checkpoint.load_state(fresh, read_safetensors(self.path), self.path)
        w = fresh.state_dict()["conv_in.weight"]
        self.assertEqual(w.dtype, torch.float32)
        self.assertTrue(torch.equal(w, self.state["conv_in.weight"].half().float()))

    def test_truncated_file_names_file_and_tensor(self):
        write_safetensors(self.path, self.state)
        size = os.path.getsize(self.path)
        with open(self.path, "r+b") as f:
            f.truncate(size - 100)
        with self.assertRaises(SafetensorsError) as e:
            SafetensorsFile(self.path)
        msg = str(e.exception)
        self.assertIn(self.path, msg)
        self.assertIn("truncated", msg)
        self.assertRegex(msg, r"tensor '[\w.]+'")

    def test_corrupt_header(self):
        with open(self.path, "wb") as f:
            f.write(struct.pack("<Q", 10) + b"{not json!" + b"\0" * 16)
        with self.assertRaisesRegex(SafetensorsError, "invalid JSON") as e:
            SafetensorsFile(self.path)
        self.assertIn(self.path, str(e.exception))
        with open(self.path, "wb") as f:
            f.write(b"\xff" * 64)  # an absurd header length
        with self.assertRaisesRegex(SafetensorsError, "not a safetensors file"):
            SafetensorsFile(self.path)
        with open(self.path, "wb") as f:
            f.write(b"abc")
        with self.assertRaisesRegex(SafetensorsError, "shorter than the 8-byte"):
            SafetensorsFile(self.path)

    def test_missing_tensor_is_named(self):
        del self.state["down_blocks.0.attentions.0.proj_in.weight"]
        write_safetensors(self.path, self.state)
        with self.assertRaises(checkpoint.CheckpointError) as e:
            checkpoint.load_state(UNet(tiny().unet), read_safetensors(self.path), self.path)
        msg = str(e.exception)
        self.assertIn(self.path, msg)
        self.assertIn("missing tensor 'down_blocks.0.attentions.0.proj_in.weight'", msg)

    def test_shape_mismatch_is_named(self):
        self.state["conv_out.weight"] = torch.zeros(4, 32, 1, 1)
        write_safetensors(self.path, self.state)
        with self.assertRaises(checkpoint.CheckpointError) as e:
            checkpoint.load_state(UNet(tiny().unet), read_safetensors(self.path), self.path)
        msg = str(e.exception)
        self.assertIn(self.path, msg)
        self.assertIn("tensor 'conv_out.weight' has shape [4, 32, 1, 1], the architecture expects [4, 32, 3, 3]", msg)

    def test_legacy_vae_attention_names_and_conv_shapes(self):
        """Older diffusers VAEs: query/key/value/proj_attn, sometimes stored as 1x1 convs."""
        torch.manual_seed(2)
        vae = AutoencoderKL(tiny().vae)
        legacy = {}
        for name, t in vae.state_dict().items():
            old = name.replace("attentions.0.to_q.", "attentions.0.query.").replace("attentions.0.to_out.0.", "attentions.0.proj_attn.")
            legacy[old] = t[:, :, None, None].clone() if old.endswith("query.weight") else t.clone()
        write_safetensors(self.path, legacy)
        fresh = AutoencoderKL(tiny().vae)
        checkpoint.load_file(fresh, self.path, rename=__import__("vae").rename_legacy)
        for name, t in fresh.state_dict().items():
            self.assertTrue(torch.equal(t, vae.state_dict()[name]), name)


class TaesdLayouts(unittest.TestCase):
    """TAESD from diffusers' AutoencoderTiny file or from the original taesd_{encoder,decoder}.pth,
    whose decoder indices are one higher (its layer 0 is the parameterless clamp)."""

    def test_both_layouts_load_the_same_weights(self):
        import export
        from taesd import AutoencoderTiny
        cfg = tiny().taesd
        torch.manual_seed(4)
        ref = AutoencoderTiny(cfg)
        with tempfile.TemporaryDirectory() as d:
            diffusers_dir = os.path.join(d, "diffusers")
            original_dir = os.path.join(d, "original")
            os.makedirs(diffusers_dir)
            os.makedirs(original_dir)
            write_safetensors(os.path.join(diffusers_dir, "diffusion_pytorch_model.safetensors"), ref.state_dict())
            for part, shift in (("encoder", 0), ("decoder", 1)):
                state = {"%d.%s" % (int(n.split(".")[1]) + shift, n.split(".", 2)[2]): t
                         for n, t in getattr(ref, part).state_dict().items()}
                torch.save(state, os.path.join(original_dir, "taesd_%s.pth" % part))
            for folder in (diffusers_dir, original_dir):
                fresh = AutoencoderTiny(cfg)
                export.load_taesd(fresh, folder, ["encoder", "decoder"])
                for name, t in fresh.state_dict().items():
                    self.assertTrue(torch.equal(t, ref.state_dict()[name]), "%s: %s" % (folder, name))
            os.remove(os.path.join(original_dir, "taesd_encoder.pth"))
            export.load_taesd(AutoencoderTiny(cfg), original_dir, ["decoder"])  # the decoder alone is enough
            with self.assertRaisesRegex(checkpoint.CheckpointError, "no TAESD encoder weights"):
                export.load_taesd(AutoencoderTiny(cfg), original_dir, ["encoder"])


def write_tokenizer(folder):
    """A miniature CLIP tokenizer: bytes-level single characters, a few merges."""
    os.makedirs(folder, exist_ok=True)
    letters = "abcdefghijklmnopqrstuvwxyz"
    vocab = {}
    for c in letters + ",!":
        vocab[c] = len(vocab)
        vocab[c + "</w>"] = len(vocab)
    merges = [("c", "a"), ("ca", "t</w>"), ("t", "o"), ("o", "o"), ("to", "on</w>"), ("o", "n</w>")]
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    vocab["<|startoftext|>"] = 49406
    vocab["<|endoftext|>"] = 49407
    with open(os.path.join(folder, "vocab.json"), "w") as f:
        json.dump(vocab, f)
    with open(os.path.join(folder, "merges.txt"), "w") as f:
        f.write("#version: 0.2\n" + "\n".join("%s %s" % m for m in merges) + "\n")
    with open(os.path.join(folder, "special_tokens_map.json"), "w") as f:
        json.dump({"pad_token": "!"}, f)
    return vocab


class Tokenizer(unittest.TestCase):
    def test_bpe_merges_and_framing(self):
        with tempfile.TemporaryDirectory() as d:
            vocab = write_tokenizer(d)
            tok = ClipTokenizer(d, tiny().text)
            ids = tok.encode("  A   Cat,toon ")
            self.assertEqual(len(ids), 77)
            expected = [49406, vocab["a</w>"], vocab["cat</w>"], vocab[",</w>"], vocab["toon</w>"], 49407]
            self.assertEqual(ids[:6], expected)
            self.assertEqual(set(ids[6:]), {vocab["!"]})  # SD 2.x pads with "!"
            # "a" alone: a single character with the end-of-word mark.
            self.assertEqual(tok.encode("a")[1], vocab["a</w>"])
            # Truncation keeps the end token.
            long = tok.encode("cat " * 200)
            self.assertEqual((len(long), long[-1], long[-2]), (77, 49407, vocab["cat</w>"]))


class CheckpointExport(unittest.TestCase):
    """A synthetic sd-turbo folder of the tiny config, exported with --checkpoint: the weights in the
    TorchScript file are the checkpoint's."""

    def test_export_from_checkpoint_folder(self):
        cfg = tiny()
        with tempfile.TemporaryDirectory() as d:
            torch.manual_seed(3)
            unet, vae, text = UNet(cfg.unet), AutoencoderKL(cfg.vae), CLIPTextModel(cfg.text)
            for sub, module, fname in (("unet", unet, "diffusion_pytorch_model.safetensors"),
                                       ("vae", vae, "diffusion_pytorch_model.safetensors"),
                                       ("text_encoder", text, "model.safetensors")):
                os.makedirs(os.path.join(d, sub))
                state = dict(module.state_dict())
                if sub == "text_encoder":  # as older transformers versions saved it
                    state["text_model.embeddings.position_ids"] = torch.arange(77, dtype=torch.float32)[None]
                if sub == "unet":
                    state = {k: v.bfloat16() for k, v in state.items()}
                write_safetensors(os.path.join(d, sub, fname), state)
            write_tokenizer(os.path.join(d, "tokenizer"))
            out = os.path.join(d, "model.pt")
            run = subprocess.run([sys.executable, export_paths.EXPORT_PY, "--checkpoint", d, "--config", "tiny",
                                  "--styles", "toon=a cat;plain=", "--out", out],
                                 capture_output=True, text=True, timeout=120)
            self.assertEqual(run.returncode, 0, run.stdout + run.stderr)
            # (the text encoder's extra position_ids tensor was tolerated)
            m = torch.jit.load(out)
            self.assertEqual(m.styles(), ["toon", "plain"])
            self.assertTrue(torch.equal(m.unet.conv_in.weight, unet.conv_in.weight.bfloat16().float()))
            self.assertTrue(torch.equal(m.decode.decoder.conv_out.weight, vae.decoder.conv_out.weight))
            # The stored embedding of "toon" is the text encoder's output for its tokens.
            tok = ClipTokenizer(os.path.join(d, "tokenizer"), cfg.text)
            with torch.no_grad():
                expected = text(torch.tensor([tok.encode("a cat")]))[0]
            self.assertTrue(torch.allclose(m.prompt_embeds[1], expected, atol=1e-5))

            # A missing component file fails with the folder and what was looked for.
            os.remove(os.path.join(d, "vae", "diffusion_pytorch_model.safetensors"))
            run = subprocess.run([sys.executable, export_paths.EXPORT_PY, "--checkpoint", d, "--config", "tiny",
                                  "--out", out], capture_output=True, text=True, timeout=120)
            self.assertEqual(run.returncode, 1)
            self.assertIn("no vae weights (looked for vae/diffusion_pytorch_model.safetensors", run.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)

"""`export.py --config tiny --random-weights` writes a file that meets docs/model-contract.md."""

import os
import subprocess
import sys
import tempfile
import unittest

import export_paths

import torch

STYLES = ["toon", "sketch", "watercolor", "neon", "oil", "anime", "pixel", "mosaic"]  # export.py's defaults


def export(out, *extra):
    run = subprocess.run([sys.executable, export_paths.EXPORT_PY, "--config", "tiny", "--random-weights",
                          "--out", out] + list(extra), capture_output=True, text=True, timeout=300)
    if run.returncode != 0:
        raise AssertionError("export.py failed:\n" + run.stdout + run.stderr)
    return torch.jit.load(out)


class Contract(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.dir = tempfile.TemporaryDirectory()
        # The default: full VAE, one step. And the fast variant: TAESD both ways, two steps.
        cls.vae = export(os.path.join(cls.dir.name, "tiny.pt"))
        cls.taesd = export(os.path.join(cls.dir.name, "tiny-taesd.pt"), "--decoder", "taesd", "--steps", "2",
                           "--styles", "a=first prompt;b=second prompt")
        torch.manual_seed(0)
        cls.image = torch.rand(1, 3, 64, 64)

    @classmethod
    def tearDownClass(cls):
        cls.dir.cleanup()

    def models(self):
        return [("vae", self.vae), ("taesd", self.taesd)]

    def test_signatures(self):
        for name, m in self.models():
            self.assertIn("Tensor image, str style, float strength, int seed) -> Tensor", str(m.forward.schema), name)
            self.assertIn("Tensor images, str[] styles, float[] strengths, int[] seeds) -> Tensor",
                          str(m.forward_batch.schema), name)

    def test_styles_and_default_size(self):
        self.assertEqual(self.vae.styles(), STYLES)
        self.assertEqual(self.taesd.styles(), ["a", "b"])
        for name, m in self.models():
            self.assertEqual(tuple(m.default_size()), (64, 64), name)

    def test_shape_and_range(self):
        for name, m in self.models():
            for h, w in ((64, 64), (50, 70), (8, 8)):  # any size: padded to the latent grid, cropped back
                out = m.forward(torch.rand(1, 3, h, w), m.styles()[0], 0.6, 1)
                self.assertEqual(tuple(out.shape), (1, 3, h, w), name)
                self.assertEqual(out.dtype, torch.float32)
                self.assertTrue(bool(torch.isfinite(out).all()), name)
                self.assertGreaterEqual(float(out.min()), 0.0, name)
                self.assertLessEqual(float(out.max()), 1.0, name)

    def test_deterministic_per_seed(self):
        for name, m in self.models():
            a = m.forward(self.image, "toon", 0.5, 42)
            self.assertTrue(torch.equal(a, m.forward(self.image, "toon", 0.5, 42)), name)
            self.assertFalse(torch.allclose(a, m.forward(self.image, "toon", 0.5, 43)), name)

    def test_strength(self):
        for name, m in self.models():
            self.assertTrue(torch.equal(m.forward(self.image, "toon", 0.0, 1), self.image), name)  # 0 keeps the input
            low = m.forward(self.image, "toon", 0.3, 1)
            high = m.forward(self.image, "toon", 0.9, 1)
            self.assertFalse(torch.allclose(low, high), name)

    def test_styles_condition_the_output(self):
        m = self.vae
        self.assertFalse(torch.allclose(m.forward(self.image, "toon", 0.7, 1), m.forward(self.image, "neon", 0.7, 1)))
        # Unknown styles get the empty prompt, as "" does.
        self.assertTrue(torch.equal(m.forward(self.image, "no-such-style", 0.7, 1), m.forward(self.image, "", 0.7, 1)))

    def test_forward_batch_equals_single_forwards(self):
        torch.manual_seed(1)
        images = torch.rand(3, 3, 64, 64)
        for name, m in self.models():
            styles, strengths, seeds = [m.styles()[0], m.styles()[1], "unknown"], [0.5, 0.9, 0.0], [7, 8, 9]
            batch = m.forward_batch(images, styles, strengths, seeds)
            self.assertEqual(tuple(batch.shape), (3, 3, 64, 64))
            for i in range(3):
                single = m.forward(images[i:i + 1], styles[i], strengths[i], seeds[i])
                self.assertLess(float((batch[i:i + 1] - single).abs().max()), 1e-4, "%s item %d" % (name, i))

    def test_timesteps_as_diffusers_img2img(self):
        self.assertEqual(self.vae.timesteps(0.5), [499])  # 1 step
        self.assertEqual(self.vae.timesteps(1.0), [999])
        self.assertEqual(self.vae.timesteps(0.0), [])
        self.assertEqual(self.taesd.timesteps(1.0), [999, 499])  # 2 steps
        self.assertEqual(self.taesd.timesteps(0.5), [499, 249])

    def test_noise_is_standard_normal_and_device_free(self):
        seeds = lambda *s: torch.tensor(list(s), dtype=torch.int64)  # noqa: E731
        z = self.vae.noise([1, 4, 64, 64], seeds(123))
        self.assertLess(abs(float(z.mean())), 0.05)
        self.assertLess(abs(float(z.std()) - 1.0), 0.05)
        self.assertTrue(torch.equal(z, self.vae.noise([1, 4, 64, 64], seeds(123))))
        self.assertTrue(bool(torch.isfinite(self.vae.noise([1, 4], seeds(-5))).all()))  # negative seeds
        # One item per seed, each what it would be alone: batching does not change the noise.
        both = self.vae.noise([3, 4, 8, 8], seeds(123, -5, 2 ** 40 + 7))
        self.assertTrue(torch.equal(both[1:2], self.vae.noise([1, 4, 8, 8], seeds(-5))))
        self.assertTrue(torch.equal(both[2:3], self.vae.noise([1, 4, 8, 8], seeds(2 ** 40 + 7))))

    def test_fp16_export(self):
        """fp16 weights for the GPU. CPU convolutions in fp16 are unsupported in PyTorch 1.13, so only
        the file is checked here, not a run."""
        m = export(os.path.join(self.dir.name, "tiny-fp16.pt"), "--precision", "fp16")
        self.assertEqual(m.prompt_embeds.dtype, torch.float16)
        self.assertEqual(m.unet.conv_in.weight.dtype, torch.float16)
        self.assertEqual(m.alphas_cumprod.dtype, torch.float32)  # the schedule stays fp32
        self.assertEqual(m.styles(), STYLES)


if __name__ == "__main__":
    unittest.main(verbosity=2)

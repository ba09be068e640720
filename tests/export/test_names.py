"""The sd-turbo configuration has the real checkpoint's tensors: names, shapes, counts.

The reference values below are written down from the layout of stabilityai/sd-turbo (diffusers
UNet2DConditionModel / AutoencoderKL, transformers CLIPTextModel) and madebyollin/taesd (diffusers
AutoencoderTiny), independently of the exporter's code. Built on the meta device: no 1.3 billion
parameters are allocated, the test takes about a second.
"""

import unittest

import export_paths  # noqa: F401  (puts tools/export on sys.path)

from clip_text import CLIPTextModel
from configs import sd_turbo
from layers import build_on, count_parameters
from taesd import AutoencoderTiny
from unet import UNet
from vae import AutoencoderKL

# Published totals: SD 2.x UNet 865,910,724; VAE 83,653,863; the 23-layer OpenCLIP-H text tower
# as CLIPTextModel 340,387,840.
KNOWN_PARAMETERS = {"unet": 865_910_724, "vae": 83_653_863, "text_encoder": 340_387_840}
# Tensors in each checkpoint file (without the optional CLIP position_ids buffer).
KNOWN_TENSORS = {"unet": 686, "vae": 248, "text_encoder": 372}

REFERENCE = {
    "unet": {
        "conv_in.weight": (320, 4, 3, 3),
        "time_embedding.linear_1.weight": (1280, 320),
        "time_embedding.linear_2.weight": (1280, 1280),
        "down_blocks.0.resnets.0.norm1.weight": (320,),
        "down_blocks.0.resnets.0.conv1.weight": (320, 320, 3, 3),
        "down_blocks.0.resnets.0.time_emb_proj.weight": (320, 1280),
        "down_blocks.0.attentions.0.norm.weight": (320,),
        "down_blocks.0.attentions.0.proj_in.weight": (320, 320),  # Linear: use_linear_projection
        "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.weight": (320, 320),
        "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_out.0.bias": (320,),
        "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight": (320, 1024),
        "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_v.weight": (320, 1024),
        "down_blocks.0.attentions.0.transformer_blocks.0.ff.net.0.proj.weight": (2560, 320),
        "down_blocks.0.attentions.0.transformer_blocks.0.ff.net.2.weight": (320, 1280),
        "down_blocks.0.attentions.0.proj_out.weight": (320, 320),
        "down_blocks.0.downsamplers.0.conv.weight": (320, 320, 3, 3),
        "down_blocks.1.resnets.0.conv_shortcut.weight": (640, 320, 1, 1),
        "down_blocks.1.attentions.1.transformer_blocks.0.norm2.weight": (640,),
        "down_blocks.2.attentions.1.transformer_blocks.0.attn2.to_k.weight": (1280, 1024),
        "down_blocks.2.downsamplers.0.conv.bias": (1280,),
        "down_blocks.3.resnets.1.conv2.weight": (1280, 1280, 3, 3),
        "mid_block.resnets.0.norm1.weight": (1280,),
        "mid_block.attentions.0.proj_out.weight": (1280, 1280),
        "mid_block.resnets.1.time_emb_proj.weight": (1280, 1280),
        "up_blocks.0.resnets.0.conv1.weight": (1280, 2560, 3, 3),
        "up_blocks.0.resnets.2.conv_shortcut.weight": (1280, 2560, 1, 1),
        "up_blocks.0.upsamplers.0.conv.weight": (1280, 1280, 3, 3),
        "up_blocks.1.resnets.2.conv1.weight": (1280, 1920, 3, 3),
        "up_blocks.1.attentions.2.transformer_blocks.0.attn1.to_v.weight": (1280, 1280),
        "up_blocks.2.resnets.0.conv1.weight": (640, 1920, 3, 3),
        "up_blocks.2.resnets.2.conv_shortcut.weight": (640, 960, 1, 1),
        "up_blocks.3.resnets.0.conv1.weight": (320, 960, 3, 3),
        "up_blocks.3.resnets.1.conv_shortcut.weight": (320, 640, 1, 1),
        "up_blocks.3.attentions.2.transformer_blocks.0.norm3.weight": (320,),
        "conv_norm_out.weight": (320,),
        "conv_out.weight": (4, 320, 3, 3),
    },
    "vae": {
        "encoder.conv_in.weight": (128, 3, 3, 3),
        "encoder.down_blocks.0.resnets.1.norm2.weight": (128,),
        "encoder.down_blocks.0.downsamplers.0.conv.weight": (128, 128, 3, 3),
        "encoder.down_blocks.1.resnets.0.conv_shortcut.weight": (256, 128, 1, 1),
        "encoder.down_blocks.2.resnets.0.conv1.weight": (512, 256, 3, 3),
        "encoder.down_blocks.3.resnets.1.conv2.weight": (512, 512, 3, 3),
        "encoder.mid_block.attentions.0.group_norm.weight": (512,),
        "encoder.mid_block.attentions.0.to_q.weight": (512, 512),
        "encoder.mid_block.attentions.0.to_out.0.bias": (512,),
        "encoder.conv_out.weight": (8, 512, 3, 3),
        "quant_conv.weight": (8, 8, 1, 1),
        "post_quant_conv.weight": (4, 4, 1, 1),
        "decoder.conv_in.weight": (512, 4, 3, 3),
        "decoder.mid_block.resnets.1.conv1.weight": (512, 512, 3, 3),
        "decoder.up_blocks.0.resnets.2.conv2.weight": (512, 512, 3, 3),
        "decoder.up_blocks.1.upsamplers.0.conv.weight": (512, 512, 3, 3),
        "decoder.up_blocks.2.resnets.0.conv_shortcut.weight": (256, 512, 1, 1),
        "decoder.up_blocks.2.upsamplers.0.conv.weight": (256, 256, 3, 3),
        "decoder.up_blocks.3.resnets.0.conv1.weight": (128, 256, 3, 3),
        "decoder.conv_norm_out.bias": (128,),
        "decoder.conv_out.weight": (3, 128, 3, 3),
    },
    "text_encoder": {
        "text_model.embeddings.token_embedding.weight": (49408, 1024),
        "text_model.embeddings.position_embedding.weight": (77, 1024),
        "text_model.encoder.layers.0.layer_norm1.weight": (1024,),
        "text_model.encoder.layers.0.self_attn.q_proj.weight": (1024, 1024),
        "text_model.encoder.layers.0.self_attn.k_proj.bias": (1024,),
        "text_model.encoder.layers.11.self_attn.out_proj.weight": (1024, 1024),
        "text_model.encoder.layers.22.mlp.fc1.weight": (4096, 1024),
        "text_model.encoder.layers.22.mlp.fc2.weight": (1024, 4096),
        "text_model.encoder.layers.22.layer_norm2.bias": (1024,),
        "text_model.final_layer_norm.weight": (1024,),
    },
    "taesd": {
        "encoder.layers.0.weight": (64, 3, 3, 3),
        "encoder.layers.1.conv.0.weight": (64, 64, 3, 3),
        "encoder.layers.2.weight": (64, 64, 3, 3),
        "encoder.layers.13.conv.4.bias": (64,),
        "encoder.layers.14.weight": (4, 64, 3, 3),
        "decoder.layers.0.weight": (64, 4, 3, 3),
        "decoder.layers.2.conv.2.weight": (64, 64, 3, 3),
        "decoder.layers.6.weight": (64, 64, 3, 3),
        "decoder.layers.17.conv.4.weight": (64, 64, 3, 3),
        "decoder.layers.18.weight": (3, 64, 3, 3),
        "decoder.layers.18.bias": (3,),
    },
}

# Names that must NOT exist: the last down block has no attention and no downsampler, the last up
# block no upsampler, the text encoder stops after 23 layers, TAESD's stride/upsample convs have no bias.
ABSENT = {
    "unet": ["down_blocks.3.attentions.0.norm.weight", "down_blocks.3.downsamplers.0.conv.weight",
             "up_blocks.0.attentions.0.norm.weight", "up_blocks.3.upsamplers.0.conv.weight",
             "down_blocks.0.resnets.0.conv_shortcut.weight",
             "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.bias"],
    "vae": ["encoder.down_blocks.3.downsamplers.0.conv.weight", "decoder.up_blocks.3.upsamplers.0.conv.weight"],
    "text_encoder": ["text_model.encoder.layers.23.mlp.fc1.weight"],
    "taesd": ["encoder.layers.2.bias", "decoder.layers.6.bias"],
}


class SdTurboLayout(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        c = sd_turbo()
        with build_on("meta"):
            cls.modules = {"unet": UNet(c.unet), "vae": AutoencoderKL(c.vae),
                           "text_encoder": CLIPTextModel(c.text), "taesd": AutoencoderTiny(c.taesd)}

    def test_on_meta_device(self):
        for name, m in self.modules.items():
            self.assertTrue(all(p.is_meta for p in m.parameters()), name)

    def test_parameter_totals_within_one_percent(self):
        for name, known in KNOWN_PARAMETERS.items():
            n = count_parameters(self.modules[name])
            print("%s: %d parameters (known %d)" % (name, n, known))
            self.assertLess(abs(n - known) / known, 0.01, name)

    def test_tensor_counts(self):
        for name, known in KNOWN_TENSORS.items():
            self.assertEqual(len(self.modules[name].state_dict()), known, name)

    def test_reference_names_and_shapes(self):
        checked = 0
        for name, expected in REFERENCE.items():
            state = self.modules[name].state_dict()
            for tensor, shape in expected.items():
                self.assertIn(tensor, state, "%s: missing %s" % (name, tensor))
                self.assertEqual(tuple(state[tensor].shape), shape, "%s: %s" % (name, tensor))
                checked += 1
            for tensor in ABSENT[name]:
                self.assertNotIn(tensor, state, "%s: unexpected %s" % (name, tensor))
        print("%d reference tensors checked" % checked)
        self.assertGreaterEqual(checked, 20)

    def test_every_attention_is_64_wide(self):
        """SD 2.x: heads (5, 10, 20, 20) on widths (320, 640, 1280, 1280): 64 channels a head."""
        attentions = [m for m in self.modules["unet"].modules() if hasattr(m, "heads") and hasattr(m, "to_q")]
        self.assertEqual(len(attentions), 32)  # 16 transformers, self- and cross-attention each
        for m in attentions:
            self.assertEqual(m.to_q.out_features // m.heads, 64)


if __name__ == "__main__":
    unittest.main(verbosity=2)

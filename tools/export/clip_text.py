"""The CLIP text encoder as transformers' CLIPTextModel, names as in text_encoder/model.safetensors:

    text_model.embeddings.{token_embedding, position_embedding}
    text_model.encoder.layers.N.{layer_norm1, self_attn.{q,k,v,out}_proj, layer_norm2, mlp.fc1, mlp.fc2}
    text_model.final_layer_norm

It runs at export time only (in eager mode): the exported module stores the result for each style.
"""

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from configs import TextConfig
from layers import embedding, layer_norm, linear


class Embeddings(nn.Module):
    def __init__(self, c: TextConfig):
        super().__init__()
        self.token_embedding = embedding(c.vocab_size, c.hidden)
        self.position_embedding = embedding(c.max_length, c.hidden)

    def forward(self, ids: Tensor) -> Tensor:
        positions = torch.arange(ids.size(1), device=ids.device)
        return self.token_embedding(ids) + self.position_embedding(positions)[None]


class SelfAttention(nn.Module):
    def __init__(self, c: TextConfig):
        super().__init__()
        self.heads = c.heads
        self.q_proj = linear(c.hidden, c.hidden)
        self.k_proj = linear(c.hidden, c.hidden)
        self.v_proj = linear(c.hidden, c.hidden)
        self.out_proj = linear(c.hidden, c.hidden)

    def forward(self, x: Tensor) -> Tensor:
        b, n, d = x.shape
        heads = self.heads

        def split(t: Tensor) -> Tensor:
            return t.view(b, n, heads, d // heads).transpose(1, 2)

        q, k, v = split(self.q_proj(x)), split(self.k_proj(x)), split(self.v_proj(x))
        scores = torch.matmul(q.float(), k.float().transpose(-1, -2)) / (d // heads) ** 0.5
        # Causal: a token sees itself and the tokens before it.
        causal = torch.ones(n, n, dtype=torch.bool, device=x.device).triu(1)
        scores = scores.masked_fill(causal, float("-inf"))
        out = torch.matmul(scores.softmax(-1).to(v.dtype), v)
        return self.out_proj(out.transpose(1, 2).reshape(b, n, d))


class MLP(nn.Module):
    def __init__(self, c: TextConfig):
        super().__init__()
        self.fc1 = linear(c.hidden, c.intermediate)
        self.fc2 = linear(c.intermediate, c.hidden)
        self.quick_gelu = c.activation == "quick_gelu"

    def forward(self, x: Tensor) -> Tensor:
        h = self.fc1(x)
        h = h * torch.sigmoid(1.702 * h) if self.quick_gelu else F.gelu(h)
        return self.fc2(h)


class EncoderLayer(nn.Module):
    def __init__(self, c: TextConfig):
        super().__init__()
        self.layer_norm1 = layer_norm(c.hidden, c.eps)
        self.self_attn = SelfAttention(c)
        self.layer_norm2 = layer_norm(c.hidden, c.eps)
        self.mlp = MLP(c)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.self_attn(self.layer_norm1(x))
        return x + self.mlp(self.layer_norm2(x))


class Encoder(nn.Module):
    def __init__(self, c: TextConfig):
        super().__init__()
        self.layers = nn.ModuleList([EncoderLayer(c) for _ in range(c.layers)])

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


class TextTransformer(nn.Module):
    def __init__(self, c: TextConfig):
        super().__init__()
        self.embeddings = Embeddings(c)
        self.encoder = Encoder(c)
        self.final_layer_norm = layer_norm(c.hidden, c.eps)

    def forward(self, ids: Tensor) -> Tensor:
        return self.final_layer_norm(self.encoder(self.embeddings(ids)))


class CLIPTextModel(nn.Module):
    def __init__(self, c: TextConfig):
        super().__init__()
        self.text_model = TextTransformer(c)

    def forward(self, ids: Tensor) -> Tensor:
        """ids: [N, 77] token ids -> [N, 77, hidden], the last hidden state after the final layer
        norm: what diffusers' StableDiffusionPipeline passes to the UNet as encoder_hidden_states."""
        return self.text_model(ids)


# Tensors a CLIPTextModel checkpoint may hold that are not parameters: older transformers versions
# saved the position-id buffer. Ignored when loading.
IGNORED = ("text_model.embeddings.position_ids",)

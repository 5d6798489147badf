"""A Llama-architecture decoder in PyTorch, matching Hugging Face's LlamaForCausalLM exactly
(RMSNorm, rotate_half rotary embeddings, grouped-query attention, SwiGLU MLP, tied embeddings),
so that its state dict exports under HF tensor names and dsd's Java runtime can load it.
torch 1.13 (Debian) has no scaled_dot_product_attention, hence the explicit causal softmax."""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F


class Config:
    def __init__(self, vocab_size, hidden_size, intermediate_size, num_layers, num_heads, num_kv_heads,
                 max_position_embeddings=512, rope_theta=10000.0, rms_norm_eps=1e-5, tie_word_embeddings=True):
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.intermediate_size = intermediate_size
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.num_kv_heads = num_kv_heads
        self.head_dim = hidden_size // num_heads
        self.max_position_embeddings = max_position_embeddings
        self.rope_theta = rope_theta
        self.rms_norm_eps = rms_norm_eps
        self.tie_word_embeddings = tie_word_embeddings

    def to_hf(self, bos=0, eos=0):
        return {
            "architectures": ["LlamaForCausalLM"],
            "model_type": "llama",
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "num_hidden_layers": self.num_layers,
            "num_attention_heads": self.num_heads,
            "num_key_value_heads": self.num_kv_heads,
            "head_dim": self.head_dim,
            "hidden_act": "silu",
            "max_position_embeddings": self.max_position_embeddings,
            "rms_norm_eps": self.rms_norm_eps,
            "rope_theta": self.rope_theta,
            "rope_scaling": None,
            "attention_bias": False,
            "tie_word_embeddings": self.tie_word_embeddings,
            "vocab_size": self.vocab_size,
            "bos_token_id": bos,
            "eos_token_id": eos,
            "torch_dtype": "float16",
        }

    @staticmethod
    def from_dict(d):
        return Config(**d)

    def to_dict(self):
        return {k: v for k, v in self.__dict__.items() if k != "head_dim"}


class RMSNorm(nn.Module):
    def __init__(self, n, eps):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n))
        self.eps = eps

    def forward(self, x):
        return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps))


def rotary(head_dim, positions, theta):
    inv = 1.0 / (theta ** (torch.arange(0, head_dim, 2, dtype=torch.float32) / head_dim))
    freqs = positions.float()[:, None] * inv[None, :]
    emb = torch.cat([freqs, freqs], dim=-1)
    return emb.cos(), emb.sin()


def rotate_half(x):
    h = x.shape[-1] // 2
    return torch.cat([-x[..., h:], x[..., :h]], dim=-1)


class Attention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.q_proj = nn.Linear(c.hidden_size, c.num_heads * c.head_dim, bias=False)
        self.k_proj = nn.Linear(c.hidden_size, c.num_kv_heads * c.head_dim, bias=False)
        self.v_proj = nn.Linear(c.hidden_size, c.num_kv_heads * c.head_dim, bias=False)
        self.o_proj = nn.Linear(c.num_heads * c.head_dim, c.hidden_size, bias=False)

    def forward(self, x, cos, sin, mask):
        b, t, _ = x.shape
        c = self.c
        q = self.q_proj(x).view(b, t, c.num_heads, c.head_dim).transpose(1, 2)
        k = self.k_proj(x).view(b, t, c.num_kv_heads, c.head_dim).transpose(1, 2)
        v = self.v_proj(x).view(b, t, c.num_kv_heads, c.head_dim).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        rep = c.num_heads // c.num_kv_heads
        k = k.repeat_interleave(rep, dim=1)
        v = v.repeat_interleave(rep, dim=1)
        att = (q @ k.transpose(-1, -2)) / math.sqrt(c.head_dim) + mask
        y = att.softmax(-1) @ v
        return self.o_proj(y.transpose(1, 2).reshape(b, t, -1))


class MLP(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.gate_proj = nn.Linear(c.hidden_size, c.intermediate_size, bias=False)
        self.up_proj = nn.Linear(c.hidden_size, c.intermediate_size, bias=False)
        self.down_proj = nn.Linear(c.intermediate_size, c.hidden_size, bias=False)

    def forward(self, x):
        return self.down_proj(F.silu(self.gate_proj(x)) * self.up_proj(x))


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.input_layernorm = RMSNorm(c.hidden_size, c.rms_norm_eps)
        self.self_attn = Attention(c)
        self.post_attention_layernorm = RMSNorm(c.hidden_size, c.rms_norm_eps)
        self.mlp = MLP(c)

    def forward(self, x, cos, sin, mask):
        x = x + self.self_attn(self.input_layernorm(x), cos, sin, mask)
        return x + self.mlp(self.post_attention_layernorm(x))


class Llama(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.c = c
        self.embed_tokens = nn.Embedding(c.vocab_size, c.hidden_size)
        self.layers = nn.ModuleList([Block(c) for _ in range(c.num_layers)])
        self.norm = RMSNorm(c.hidden_size, c.rms_norm_eps)
        self.lm_head = nn.Linear(c.hidden_size, c.vocab_size, bias=False)
        if c.tie_word_embeddings:
            self.lm_head.weight = self.embed_tokens.weight
        self.apply(self._init)
        for name, p in self.named_parameters():
            if name.endswith("o_proj.weight") or name.endswith("down_proj.weight"):
                nn.init.normal_(p, std=0.02 / math.sqrt(2 * c.num_layers))

    @staticmethod
    def _init(m):
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02)

    def forward(self, ids):
        t = ids.shape[1]
        cos, sin = rotary(self.c.head_dim, torch.arange(t), self.c.rope_theta)
        mask = torch.full((t, t), float("-inf")).triu(1)
        x = self.embed_tokens(ids)
        for layer in self.layers:
            x = layer(x, cos, sin, mask)
        return self.lm_head(self.norm(x))

    def hf_state_dict(self):
        """Tensors under Hugging Face names (model.*, lm_head.weight unless tied)."""
        out = {}
        for k, v in self.state_dict().items():
            if k.startswith("lm_head."):
                if not self.c.tie_word_embeddings:
                    out[k] = v
            else:
                out["model." + k] = v
        return out

    @torch.no_grad()
    def generate(self, ids, n, temperature=0.0, generator=None):
        """Plain (no KV cache) generation, for distillation data and samples; ids: [B, T]."""
        for _ in range(n):
            ctx = ids[:, -self.c.max_position_embeddings:]
            logits = self(ctx)[:, -1, :]
            if temperature <= 0:
                nxt = logits.argmax(-1, keepdim=True)
            else:
                nxt = torch.multinomial((logits / temperature).softmax(-1), 1, generator=generator)
            ids = torch.cat([ids, nxt], dim=1)
        return ids


class Cache:
    """Per-layer keys/values [B, kvH, T, hd] for incremental decoding; truncate() drops rejected drafts."""

    def __init__(self, n_layers):
        self.k = [None] * n_layers
        self.v = [None] * n_layers

    def length(self):
        return 0 if self.k[0] is None else self.k[0].shape[2]

    def truncate(self, n):
        self.k = [None if k is None else k[:, :, :n] for k in self.k]
        self.v = [None if v is None else v[:, :, :n] for v in self.v]


@torch.no_grad()
def forward_cached(model, ids, cache):
    """Logits for new tokens ids [B, T] appended after the cache's contents."""
    c = model.c
    b, t = ids.shape
    p = cache.length()
    cos, sin = rotary(c.head_dim, torch.arange(p, p + t), c.rope_theta)
    mask = torch.full((t, p + t), float("-inf")).triu(p + 1)
    x = model.embed_tokens(ids)
    rep = c.num_heads // c.num_kv_heads
    for i, layer in enumerate(model.layers):
        a = layer.self_attn
        h = layer.input_layernorm(x)
        q = a.q_proj(h).view(b, t, c.num_heads, c.head_dim).transpose(1, 2)
        k = a.k_proj(h).view(b, t, c.num_kv_heads, c.head_dim).transpose(1, 2)
        v = a.v_proj(h).view(b, t, c.num_kv_heads, c.head_dim).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        if cache.k[i] is not None:
            k = torch.cat([cache.k[i], k], dim=2)
            v = torch.cat([cache.v[i], v], dim=2)
        cache.k[i], cache.v[i] = k, v
        kk, vv = k.repeat_interleave(rep, dim=1), v.repeat_interleave(rep, dim=1)
        att = (q @ kk.transpose(-1, -2)) / math.sqrt(c.head_dim) + mask
        y = (att.softmax(-1) @ vv).transpose(1, 2).reshape(b, t, -1)
        x = x + a.o_proj(y)
        x = x + layer.mlp(layer.post_attention_layernorm(x))
    return model.lm_head(model.norm(x))


@torch.no_grad()
def generate_cached(model, ids, n, temperature=0.0, generator=None):
    cache = Cache(model.c.num_layers)
    logits = forward_cached(model, ids, cache)[:, -1, :]
    out = [ids]
    for _ in range(n):
        if temperature <= 0:
            nxt = logits.argmax(-1, keepdim=True)
        else:
            nxt = torch.multinomial((logits / temperature).softmax(-1), 1, generator=generator)
        out.append(nxt)
        logits = forward_cached(model, nxt, cache)[:, -1, :]
    return torch.cat(out, dim=1)


def processed_probs(logits, temperature, top_p=1.0):
    """The distribution a sampler draws from: softmax(logits / temperature) restricted to the smallest
    set of most likely tokens whose mass reaches top_p (the token crossing top_p is kept), renormalised.
    temperature <= 0 means greedy: all mass on the argmax."""
    if temperature <= 0:
        return F.one_hot(logits.argmax(-1), logits.shape[-1]).to(torch.float32)
    p = (logits.float() / temperature).softmax(-1)
    if top_p < 1.0:
        sp, si = p.sort(-1, descending=True)
        before = sp.cumsum(-1) - sp  # mass of strictly more likely tokens
        sp = sp.masked_fill(before >= top_p, 0.0)
        p = torch.zeros_like(p).scatter(-1, si, sp)
        p = p / p.sum(-1, keepdim=True)
    return p


def sample_next(logits, temperature, top_p=1.0, generator=None):
    """Next token ids [B, 1] from logits [B, V]."""
    if temperature <= 0:
        return logits.argmax(-1, keepdim=True)
    return torch.multinomial(processed_probs(logits, temperature, top_p), 1, generator=generator)

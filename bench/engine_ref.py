"""PyTorch reference for `npm run bench:engine`: the same Llama-style block
stack as bench/llama_stack.ts (HF eager LlamaDecoderLayer math), timed for
forward + backward + AdamW step. Prints one JSON line.

usage: engine_ref.py THREADS LAYERS STEPS WARMUP
"""
import json
import math
import sys
import time

import torch

threads, layers, steps, warmup = (int(a) for a in sys.argv[1:5])
torch.set_num_threads(threads)
torch.manual_seed(0)
C, H, KV, MLP, T, B, THETA, EPS = 576, 9, 3, 1536, 256, 4, 100000.0, 1e-5
D = C // H


def param(*shape, std=0.02):
    return (torch.randn(*shape) * std).requires_grad_(True)


blocks = [
    dict(inorm=torch.ones(C, requires_grad=True), q=param(C, C), k=param(KV * D, C), v=param(KV * D, C), o=param(C, C),
         pnorm=torch.ones(C, requires_grad=True), gate=param(MLP, C), up=param(MLP, C), down=param(C, MLP))
    for _ in range(layers)
]
final_norm = torch.ones(C, requires_grad=True)
params = [p for b in blocks for p in b.values()] + [final_norm]
inv = THETA ** (-torch.arange(0, D, 2, dtype=torch.float32) / D)
ang = torch.outer(torch.arange(T, dtype=torch.float32), inv)
ang = torch.cat([ang, ang], -1)
cos, sin = ang.cos(), ang.sin()


def rms(x, w):
    return w * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + EPS))


def rope(x):
    x1, x2 = x.split(D // 2, -1)
    return x * cos + torch.cat([-x2, x1], -1) * sin


def attention(q, k, v):
    if hasattr(torch.nn.functional, "scaled_dot_product_attention"):
        return torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
    scores = q @ k.transpose(-2, -1) * (1.0 / math.sqrt(D))
    allowed = torch.ones(T, T, dtype=torch.bool).tril()
    scores = scores.masked_fill(~allowed, float("-inf"))
    return torch.softmax(scores, -1) @ v


def block(x, b):
    F = torch.nn.functional
    h = rms(x, b["inorm"])
    q = rope(F.linear(h, b["q"]).view(B, T, H, D).transpose(1, 2))
    k = rope(F.linear(h, b["k"]).view(B, T, KV, D).transpose(1, 2))
    v = F.linear(h, b["v"]).view(B, T, KV, D).transpose(1, 2)
    k = k[:, :, None].expand(B, KV, H // KV, T, D).reshape(B, H, T, D)
    v = v[:, :, None].expand(B, KV, H // KV, T, D).reshape(B, H, T, D)
    a = attention(q, k, v)
    x1 = x + F.linear(a.transpose(1, 2).reshape(B, T, C), b["o"])
    h2 = rms(x1, b["pnorm"])
    return x1 + F.linear(F.silu(F.linear(h2, b["gate"])) * F.linear(h2, b["up"]), b["down"])


opt = torch.optim.AdamW(params, lr=1e-4, weight_decay=0.01)
x = torch.randn(B, T, C)
times = []
for i in range(warmup + steps):
    t0 = time.perf_counter()
    h = x
    for b in blocks:
        h = block(h, b)
    loss = rms(h, final_norm).pow(2).mean()
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    dt = time.perf_counter() - t0
    if i >= warmup:
        times.append(dt)
ms = [t * 1000 for t in times]
s = sorted(ms)
print(json.dumps({"median_ms": s[len(s) // 2], "min_ms": s[0], "times_ms": ms, "torch": torch.__version__, "threads": torch.get_num_threads()}))

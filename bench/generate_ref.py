"""PyTorch reference for `npm run bench:generate`: a straightforward,
Hugging Face-style generation loop for Idefics3 / SmolVLM on the same weights
as the TypeScript side.

What "straightforward" means here (what transformers' generate() does for
num_return_sequences=n on a VLM):
  * the prompt and its image are repeated n times up front
    (_expand_inputs_for_generation), so the vision tower and the prompt's
    prefill run once per completion;
  * the prefill keeps logits for the last position only (logits_to_keep=1);
  * a KV cache that grows by torch.cat every step (DynamicCache);
  * eager grouped-query attention: keys/values repeated to every query head
    (repeat_kv), fp32 softmax;
  * each step: logits / temperature -> softmax -> torch.multinomial (or argmax).
No stop token: every completion has exactly NEW tokens.

The vision tower, connector, RMSNorm and rotary helpers come from
scripts/fixtures/idefics3_reference.py (the project's plain PyTorch forward,
checked against the TypeScript model by the test fixtures); the cached
decoder loop is written here.

usage: generate_ref.py FOLDER THREADS
FOLDER holds config.json, model.safetensors (written by savePretrained) and
inputs.safetensors (input_ids [1, T] int64, pixel_values [1, 3, H, W] float32).
Runs as a server: one command per stdin line, one JSON line per reply.
  sample N NEW SEED  N completions of NEW tokens, multinomial at temperature 1
                     -> {"ms", "vision_ms", "prefill_ms", "decode_forward_ms", "sampling_ms", "tokens"}
  greedy NEW         one completion, argmax -> {"tokens", "margins"} (top1 - top2 logit per step)
  quit
The first line written is {"ready": true, "torch": ..., "threads": ...}.
"""
import json
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "scripts", "fixtures"))
from idefics3_reference import (  # noqa: E402
    ACT,
    idefics3_image_features,
    lm_head_weight,
    llama_config,
    load_checkpoint,
    read_safetensors,
    rms_norm,
    rope_inv_freq,
    rotate_half,
)

folder, threads = sys.argv[1], int(sys.argv[2])
torch.set_num_threads(threads)
sd, cfg = load_checkpoint(folder)
inputs = read_safetensors(os.path.join(folder, "inputs.safetensors"))
tc = llama_config(cfg["text_config"])
EMBED = sd["model.text_model.embed_tokens.weight"]
HEAD = lm_head_weight(sd, "model.text_model.embed_tokens.weight", cfg.get("tie_word_embeddings", False))
INV_FREQ = rope_inv_freq(tc)
NH, NKV, HD = tc["num_attention_heads"], tc["num_key_value_heads"], tc["head_dim"]
ACTF = ACT[tc["hidden_act"]]
EPS = tc["rms_norm_eps"]
PREFIX = "model.text_model."


def lin(x, name):
    return F.linear(x, sd[name + ".weight"], sd.get(name + ".bias"))


def repeat_kv(x, rep):
    b, h, s, d = x.shape
    return x if rep == 1 else x[:, :, None].expand(b, h, rep, s, d).reshape(b, h * rep, s, d)


def decoder(embeds, position_ids, cache):
    """embeds (B, T, C), position_ids (B, T); cache: list of (k, v) per layer or None.
    Returns float32 logits of the last position (B, V) and the grown cache."""
    b, t, _ = embeds.shape
    freqs = position_ids[:, :, None].float() * INV_FREQ[None, None, :]
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos()[:, None], emb.sin()[:, None]
    mask = None
    if t > 1:  # prefill of an unpadded prompt: causal; a single new token sees everything
        mask = torch.triu(torch.full((t, t), torch.finfo(embeds.dtype).min), diagonal=1)[None, None]
    new_cache = []
    h = embeds
    for i in range(tc["num_hidden_layers"]):
        p = f"{PREFIX}layers.{i}."
        x = rms_norm(h, sd[p + "input_layernorm.weight"], EPS)
        q = lin(x, p + "self_attn.q_proj").view(b, t, NH, HD).transpose(1, 2)
        k = lin(x, p + "self_attn.k_proj").view(b, t, NKV, HD).transpose(1, 2)
        v = lin(x, p + "self_attn.v_proj").view(b, t, NKV, HD).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        if cache is not None:
            k = torch.cat([cache[i][0], k], dim=2)
            v = torch.cat([cache[i][1], v], dim=2)
        new_cache.append((k, v))
        kr, vr = repeat_kv(k, NH // NKV), repeat_kv(v, NH // NKV)
        w = torch.matmul(q, kr.transpose(2, 3)) * HD ** -0.5
        if mask is not None:
            w = w + mask
        w = F.softmax(w, dim=-1, dtype=torch.float32).to(q.dtype)
        o = torch.matmul(w, vr).transpose(1, 2).reshape(b, t, NH * HD)
        h = h + lin(o, p + "self_attn.o_proj")
        x = rms_norm(h, sd[p + "post_attention_layernorm.weight"], EPS)
        h = h + lin(ACTF(lin(x, p + "mlp.gate_proj")) * lin(x, p + "mlp.up_proj"), p + "mlp.down_proj")
    h = rms_norm(h[:, -1:], sd[PREFIX + "norm.weight"], EPS)  # logits_to_keep = 1
    return F.linear(h, HEAD).float()[:, -1], new_cache


def generate(n, new_tokens, sample, seed):
    gen = torch.Generator().manual_seed(seed)
    times = {"vision_ms": 0.0, "prefill_ms": 0.0, "decode_forward_ms": 0.0, "sampling_ms": 0.0}
    t_start = time.perf_counter()
    # No group sharing: prompt and image repeated n times, as HF's generate expands them.
    ids = inputs["input_ids"].repeat_interleave(n, 0)
    pixels = inputs["pixel_values"].repeat_interleave(n, 0)
    t0 = time.perf_counter()
    feats = idefics3_image_features(sd, cfg, pixels)
    embeds = F.embedding(ids, EMBED)
    embeds[ids == cfg["image_token_id"]] = feats.reshape(-1, feats.shape[-1])
    t1 = time.perf_counter()
    times["vision_ms"] += (t1 - t0) * 1000
    b, t = ids.shape
    logits, cache = decoder(embeds, torch.arange(t)[None].expand(b, t), None)
    times["prefill_ms"] += (time.perf_counter() - t1) * 1000
    out, margins = [], []
    for step in range(new_tokens):
        t0 = time.perf_counter()
        if sample:
            probs = F.softmax(logits, dim=-1)  # temperature 1
            nxt = torch.multinomial(probs, 1, generator=gen).squeeze(1)
        else:
            top = logits.topk(2, dim=-1).values
            margins.append(float(top[0, 0] - top[0, 1]))
            nxt = logits.argmax(-1)
        out.append(nxt)
        t1 = time.perf_counter()
        times["sampling_ms"] += (t1 - t0) * 1000
        if step == new_tokens - 1:
            break
        logits, cache = decoder(F.embedding(nxt[:, None], EMBED), torch.full((b, 1), t + step, dtype=torch.long), cache)
        times["decode_forward_ms"] += (time.perf_counter() - t1) * 1000
    times["ms"] = (time.perf_counter() - t_start) * 1000
    tokens = torch.stack(out, 1).tolist()
    return times, tokens, margins


def main():
    print(json.dumps({"ready": True, "torch": torch.__version__, "threads": torch.get_num_threads()}), flush=True)
    with torch.no_grad():
        for line in sys.stdin:
            cmd = line.split()
            if not cmd or cmd[0] == "quit":
                break
            if cmd[0] == "sample":
                times, tokens, _ = generate(int(cmd[1]), int(cmd[2]), True, int(cmd[3]))
                print(json.dumps({**times, "tokens": tokens}), flush=True)
            elif cmd[0] == "greedy":
                times, tokens, margins = generate(1, int(cmd[1]), False, 0)
                print(json.dumps({**times, "tokens": tokens[0], "margins": margins}), flush=True)
            else:
                print(json.dumps({"error": f"unknown command {cmd[0]}"}), flush=True)


if __name__ == "__main__":
    main()

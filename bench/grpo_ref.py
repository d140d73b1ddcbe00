"""PyTorch reference for `npm run bench:grpo`: one GRPO step written the way
TRL's GRPOTrainer runs it on a Hugging Face model, straightforwardly, without
group sharing:

  * each prompt is repeated G times up front (TRL's RepeatSampler), so the
    vision tower and the prompt prefill run once per completion;
  * generation: HF-style sampling loop with a KV cache that grows by
    concatenation (DynamicCache), a 4D additive mask built every step (eager
    attention), suppressed ids set to -inf, multinomial sampling;
  * scoring: forward over the full prompt + completion rows, pixel values
    again per row, logits for the last L + 1 positions (logits_to_keep),
    divided by the temperature, selective log-softmax (gather - logsumexp per
    row), entropy under no_grad; with beta > 0 first a no-grad reference pass
    with the LoRA adapters off;
  * loss: dapo (sum over completion tokens / number of completion tokens of
    the step), clipped ratio with old = logp.detach(), + beta * k3 KL;
  * backward, clip_grad_norm_(max_grad_norm), torch.optim.AdamW step, zero_grad.

LoRA (PEFT's form): y = x W^T + (x A^T) B^T * alpha / r on the frozen base
linear. The model math (SigLIP tower, connector, Llama blocks) comes from
scripts/fixtures/idefics3_reference.py; the decoder is re-written here because
it needs a KV cache and LoRA.

usage: grpo_ref.py DIR/spec.json [--serve]
DIR/spec.json is written by bench/grpo.ts beside the weights (model.safetensors,
config.json, adapter.safetensors for LoRA) and the inputs (inputs.safetensors).
Without --serve: spec["warmup"] + spec["runs"] steps, then one JSON line with the
timings. With --serve: a {"ready": ...} line, then one step per "step" line read
from stdin, answered by one JSON line each; any other line ends it.
"""
import json
import os
import statistics
import sys
import time

import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "scripts", "fixtures"))
from idefics3_reference import (  # noqa: E402
    ACT,
    idefics3_image_features,
    llama_config,
    load_checkpoint,
    read_safetensors,
    rms_norm,
    rope_inv_freq,
    rotate_half,
)

with open(sys.argv[1]) as f:
    spec = json.load(f)
model_dir = os.path.dirname(os.path.abspath(sys.argv[1]))
torch.set_num_threads(spec["threads"])
torch.manual_seed(0)
G, L, beta, temperature = spec["G"], spec["length"], spec["beta"], spec["temperature"]

sd, cfg = load_checkpoint(model_dir)
tc = llama_config(cfg["text_config"])
inputs = read_safetensors(os.path.join(model_dir, "inputs.safetensors"))
prompt_ids, prompt_mask, pixel_values = inputs["input_ids"], inputs["attention_mask"], inputs["pixel_values"]
P, TP = prompt_ids.shape
image_token = cfg["image_token_id"]
pad_id = spec["pad_token_id"]
embed_key = "model.text_model.embed_tokens.weight"
head_key = "lm_head.weight" if "lm_head.weight" in sd else embed_key

# ---- trainable parameters ---------------------------------------------------------
lora = {}
lora_spec = spec["lora"]
if lora_spec:
    scaling = lora_spec["alpha"] / lora_spec["rank"]
    adapter = read_safetensors(os.path.join(model_dir, "adapter.safetensors"))
    for k, v in adapter.items():
        if k.endswith(".lora_A.weight"):
            base = k[: -len(".lora_A.weight")]
            lora[base] = (v.requires_grad_(True), adapter[base + ".lora_B.weight"].requires_grad_(True))
    params = [t for ab in lora.values() for t in ab]
else:
    # Full fine-tuning with the vision tower frozen (as the TypeScript trainer's freezeVision).
    params = [v.requires_grad_(True) for k, v in sd.items() if not k.startswith("model.vision_model.")]
lora_on = True
opt = torch.optim.AdamW(params, lr=spec["lr"], weight_decay=0.0)


def lin(x, name):
    y = F.linear(x, sd[name + ".weight"], sd.get(name + ".bias"))
    ab = lora.get(name) if lora_on else None
    if ab is not None:
        y = y + F.linear(F.linear(x, ab[0]), ab[1]) * scaling
    return y


# ---- decoder with a KV cache ----------------------------------------------------------
NH, NKV, HD = tc["num_attention_heads"], tc["num_key_value_heads"], tc["head_dim"]
EPS = tc["rms_norm_eps"]
MLP_ACT = ACT[tc["hidden_act"]]
INV_FREQ = rope_inv_freq(tc)
SDPA = getattr(F, "scaled_dot_product_attention", None)


def decoder(embeds, attention_mask, position_ids, cache, logits_to_keep):
    """embeds (B, T, C); attention_mask (B, past + T); cache: list of (k, v) per layer or None.
    Returns float32 logits of the last logits_to_keep positions and the new cache."""
    b, t, _ = embeds.shape
    past = cache[0][0].shape[2] if cache else 0
    s = past + t
    freqs = (INV_FREQ[None, :, None] @ position_ids[:, None, :].float()).transpose(1, 2)
    emb = torch.cat((freqs, freqs), dim=-1)
    cos, sin = emb.cos()[:, None], emb.sin()[:, None]
    # HF eager: an additive (B, 1, T, S) causal + padding mask, rebuilt every forward.
    neg = torch.finfo(embeds.dtype).min
    qpos = torch.arange(past, s)[:, None]
    kpos = torch.arange(s)[None, :]
    allowed = (kpos <= qpos)[None, None] & (attention_mask[:, None, None, :] != 0)
    mask = torch.zeros(b, 1, t, s, dtype=embeds.dtype).masked_fill(~allowed, neg)
    new_cache = []
    h = embeds
    for i in range(tc["num_hidden_layers"]):
        p = f"model.text_model.layers.{i}."
        x = rms_norm(h, sd[p + "input_layernorm.weight"], EPS)
        q = lin(x, p + "self_attn.q_proj").view(b, t, NH, HD).transpose(1, 2)
        k = lin(x, p + "self_attn.k_proj").view(b, t, NKV, HD).transpose(1, 2)
        v = lin(x, p + "self_attn.v_proj").view(b, t, NKV, HD).transpose(1, 2)
        q = q * cos + rotate_half(q) * sin
        k = k * cos + rotate_half(k) * sin
        if cache:
            k = torch.cat([cache[i][0], k], dim=2)
            v = torch.cat([cache[i][1], v], dim=2)
        new_cache.append((k, v))
        rep = NH // NKV
        kk = k[:, :, None].expand(b, NKV, rep, s, HD).reshape(b, NH, s, HD)
        vv = v[:, :, None].expand(b, NKV, rep, s, HD).reshape(b, NH, s, HD)
        if SDPA is not None:
            o = SDPA(q, kk, vv, attn_mask=mask)
        else:
            w = torch.matmul(q, kk.transpose(2, 3)) * HD ** -0.5 + mask
            o = torch.matmul(F.softmax(w, dim=-1, dtype=torch.float32).to(q.dtype), vv)
        h = h + lin(o.transpose(1, 2).reshape(b, t, NH * HD), p + "self_attn.o_proj")
        x = rms_norm(h, sd[p + "post_attention_layernorm.weight"], EPS)
        h = h + lin(MLP_ACT(lin(x, p + "mlp.gate_proj")) * lin(x, p + "mlp.up_proj"), p + "mlp.down_proj")
    h = rms_norm(h, sd["model.text_model.norm.weight"], EPS)[:, -logits_to_keep:]
    return F.linear(h, sd[head_key]).float(), new_cache


def embed(ids, pixels):
    """Token embeddings with the image features (vision tower + connector, per image row) over the <image> tokens."""
    e = F.embedding(ids, sd[embed_key], padding_idx=pad_id)
    if pixels is None:
        return e
    feats = idefics3_image_features(sd, cfg, pixels)
    e = e.clone()
    e[ids == image_token] = feats.reshape(-1, feats.shape[-1]).to(e.dtype)
    return e


def positions(mask):
    pos = mask.long().cumsum(-1) - 1
    return pos.masked_fill(mask == 0, 1)


# ---- one step -------------------------------------------------------------------------------
suppress = torch.tensor(spec["suppress"], dtype=torch.long)
rewards = torch.tensor(spec["rewards"], dtype=torch.float32).view(P, G)
advantages = ((rewards - rewards.mean(1, keepdim=True)) / (rewards.std(1, keepdim=True) + 1e-4)).view(-1)
eps = spec["epsilon"]


def generate_completions():
    ids = prompt_ids.repeat_interleave(G, 0)
    mask = prompt_mask.repeat_interleave(G, 0)
    pixels = pixel_values.repeat_interleave(G, 0)
    rows = ids.shape[0]
    out = []
    with torch.no_grad():
        logits, cache = decoder(embed(ids, pixels), mask, positions(mask), None, 1)
        for step in range(L):
            scores = logits[:, -1] / temperature
            scores[:, suppress] = float("-inf")
            nxt = torch.multinomial(F.softmax(scores, -1), 1)
            out.append(nxt)
            if step == L - 1:
                break
            mask = torch.cat([mask, torch.ones(rows, 1, dtype=mask.dtype)], 1)
            logits, cache = decoder(embed(nxt, None), mask, mask.sum(-1, keepdim=True) - 1, cache, 1)
    return ids, torch.cat(out, 1)


def selective_log_softmax(logits, index):
    picked = torch.gather(logits, -1, index.unsqueeze(-1)).squeeze(-1)
    return picked - torch.stack([torch.logsumexp(row, dim=-1) for row in logits])


def entropy_from_logits(logits, chunk=128):
    flat = logits.reshape(-1, logits.shape[-1])
    parts = []
    for c in flat.split(chunk, 0):
        lp = F.log_softmax(c, -1)
        parts.append(-(lp.exp() * lp).sum(-1))
    return torch.cat(parts).reshape(logits.shape[:-1])


def completion_logps(ids, mask, pixels, completion, compute_entropy):
    c = completion.shape[1]
    logits, _ = decoder(embed(ids, pixels), mask, positions(mask), None, c + 1)
    logits = logits[:, :-1] / temperature
    logps = selective_log_softmax(logits, completion)
    if compute_entropy:
        with torch.no_grad():
            entropy_from_logits(logits)
    return logps


stats = {}


def step():
    global lora_on
    t0 = time.perf_counter()
    prompt_rows, completion = generate_completions()
    t1 = time.perf_counter()
    ids = torch.cat([prompt_rows, completion], 1)
    mask = torch.cat([prompt_mask.repeat_interleave(G, 0), torch.ones_like(completion)], 1)
    pixels = pixel_values.repeat_interleave(G, 0)
    cmask = torch.ones_like(completion, dtype=torch.float32)
    num_items = cmask.sum()
    for g in range(P):
        rs = slice(g * G, (g + 1) * G)
        ref = None
        if beta > 0:
            with torch.no_grad():
                lora_on = False
                ref = completion_logps(ids[rs], mask[rs], pixels[rs], completion[rs], False)
                lora_on = True
        logps = completion_logps(ids[rs], mask[rs], pixels[rs], completion[rs], True)
        coef1 = torch.exp(logps - logps.detach())
        coef2 = torch.clamp(coef1, 1 - eps, 1 + eps)
        adv = advantages[rs].unsqueeze(1)
        per_token = -torch.min(coef1 * adv, coef2 * adv)
        if ref is not None:
            d = ref - logps
            per_token = per_token + beta * (torch.exp(d) - d - 1)
        loss = (per_token * cmask[rs]).sum() / num_items
        loss.backward()
    stats["grad_norm"] = float(torch.nn.utils.clip_grad_norm_(params, spec["max_grad_norm"]))
    stats["loss"] = float(loss)
    opt.step()
    opt.zero_grad()
    t2 = time.perf_counter()
    return (t1 - t0) * 1000, (t2 - t1) * 1000


def info():
    return {
        "torch": torch.__version__, "threads": torch.get_num_threads(), "params_trained": sum(p.numel() for p in params),
        "lora_adapters": len(lora), "loss": stats.get("loss"), "grad_norm": stats.get("grad_norm"),
    }


if "--serve" in sys.argv:
    # Step by step on request, so that the caller can interleave its own steps
    # with these (both sides then see the same machine load).
    print(json.dumps({"ready": True, **info()}), flush=True)
    for line in sys.stdin:
        if line.strip() != "step":
            break
        a, b = step()
        print(json.dumps({"gen_ms": a, "train_ms": b, **info()}), flush=True)
    sys.exit(0)

gen_ms, train_ms, times = [], [], []
for i in range(spec["warmup"] + spec["runs"]):
    a, b = step()
    if i >= spec["warmup"]:
        gen_ms.append(a)
        train_ms.append(b)
        times.append(a + b)
print(
    f"pytorch {torch.__version__}, {torch.get_num_threads()} threads, {len(lora)} LoRA adapters, {sum(p.numel() for p in params)} trained params: "
    f"median {statistics.median(times):.1f} ms/step; last loss {stats['loss']:.4g}, grad norm {stats['grad_norm']:.4g}",
    file=sys.stderr,
)
print(json.dumps({"times_ms": times, "gen_ms": gen_ms, "train_ms": train_ms, **info()}))

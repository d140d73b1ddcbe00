"""transformers -> ours: tiny random Idefics3 (SmolVLM) checkpoints built and
saved by transformers itself, with transformers' own outputs on them.

Request: {"tokenizer_dir": dir with tokenizer/processor files (our init-model
          tiny preset), "out": dir, "variants": [names] (default all)}
Writes, per variant, <out>/<variant>/ (save_pretrained of the model and of
the processor) and <out>/<variant>.<scenario>.safetensors holding the inputs
in our layout (input_ids, attention_mask, position_ids, pixel_values [N, 3, H, W],
pixel_attention_mask [N, H, W]: the real images of the batch in order, as
Idefics3Model.inputs_merger consumes them) and transformers' outputs:
logits_eager, logits_sdpa (float32, attn_implementation "eager" / "sdpa"),
logits_eager_default_pos (no position_ids given), greedy_ids (16 new tokens,
no EOS stop, generate() with the same inputs).
Response: {"variants": {name: {"dir", "dtype", "scenarios": {...}, "load_warnings": [...]}}}
"""
import json
import logging
import os
import warnings

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file
from transformers import AutoProcessor, Idefics3Config, Idefics3ForConditionalGeneration

from peer_io import main

NEW_TOKENS = 16


def base_config(tok_dir):
    with open(os.path.join(tok_dir, "config.json"), encoding="utf8") as f:
        raw = json.load(f)
    text = dict(raw["text_config"])
    vision = dict(raw["vision_config"])
    # Larger than HF's 0.02 so that logits are O(1) and a wrong term shows.
    text["initializer_range"] = 0.1
    vision["initializer_range"] = 0.1
    return raw, text, vision


def make_config(tok_dir, variant):
    raw, text, vision = base_config(tok_dir)
    tie = variant in ("fp32-tied",)
    if variant == "llama3-rope":
        text["rope_scaling"] = {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                                "original_max_position_embeddings": 64}
    if variant == "partial-patch":
        vision["image_size"] = 36  # 4 full patches of 8 per side and 4 pixels left over
    text["tie_word_embeddings"] = tie
    return Idefics3Config(text_config=text, vision_config=vision, image_token_id=raw["image_token_id"],
                          scale_factor=raw["scale_factor"], pad_token_id=raw["pad_token_id"], tie_word_embeddings=tie)


def build_model(config, seed):
    torch.manual_seed(seed)
    model = Idefics3ForConditionalGeneration(config).eval()
    # Norm weights and biases start at 1 / 0: move them so that a missed or
    # misplaced norm parameter shows in the logits.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "norm" in name:
                p.add_(torch.randn_like(p) * 0.2)
    return model


def images(seed, sizes):
    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "RGB") for (w, h) in sizes]


def chat(processor, text, n_images):
    content = [{"type": "image"} for _ in range(n_images)] + [{"type": "text", "text": text}]
    return processor.apply_chat_template([{"role": "user", "content": content}], add_generation_prompt=True)


SCENARIOS = {
    # name: [(prompt text, image sizes (w, h))] per sample
    "text": [("Describe nothing at all, please.", [])],
    "one_image": [("What is in the picture?", [(48, 48)])],
    "two_images": [("Compare these two pictures.", [(40, 40), (24, 24)])],
    "padded_batch": [("Short?", [(32, 32)]), ("A much longer question about this picture, with many more words.", [(48, 48)])],
}


def real_images(pixel_values, pixel_attention_mask):
    """[B, n, 3, H, W] with all-zero padding images -> the real ones [N, 3, H, W] (+ masks [N, H, W])."""
    b, n = pixel_values.shape[:2]
    flat = pixel_values.reshape(b * n, *pixel_values.shape[2:])
    per = flat[0].numel()
    real = (flat == 0.0).sum(dim=(-1, -2, -3)) != per  # Idefics3Model.get_image_features' rule
    mask = pixel_attention_mask.reshape(b * n, *pixel_attention_mask.shape[2:])
    return flat[real].contiguous(), mask[real].contiguous()


def generation_positions(attention_mask):
    """generate()'s position ids: cumsum of the mask - 1, padded slots 1."""
    pos = attention_mask.long().cumsum(-1) - 1
    return pos.masked_fill(attention_mask == 0, 1)


def run_variant(req, variant, out):
    tok_dir = req["tokenizer_dir"]
    vdir = os.path.join(out, variant)
    config = make_config(tok_dir, variant)
    model = build_model(config, seed=sum(map(ord, variant)))
    processor = AutoProcessor.from_pretrained(tok_dir)
    ip = processor.image_processor
    if variant == "split":
        ip.do_image_splitting = True
        ip.size = {"longest_edge": 64}
    if variant == "partial-patch":
        ip.max_image_size = {"longest_edge": 36}
        ip.size = {"longest_edge": 36}
    kwargs = {}
    if variant == "sharded":
        kwargs["max_shard_size"] = "300KB"
    if variant == "bf16":
        model = model.to(torch.bfloat16)
    model.save_pretrained(vdir, **kwargs)
    processor.save_pretrained(vdir)
    if variant.startswith("lm_head-"):
        edit_lm_head_variant(vdir, variant)

    # transformers' own load of what it saved (its tie / untie decisions included).
    logs = []
    handler = logging.Handler()
    handler.emit = lambda record: logs.append(record.getMessage())
    tlog = logging.getLogger("transformers")
    tlog.addHandler(handler)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        eager, info = Idefics3ForConditionalGeneration.from_pretrained(
            vdir, dtype=torch.float32, attn_implementation="eager", output_loading_info=True)
    tlog.removeHandler(handler)
    sdpa = Idefics3ForConditionalGeneration.from_pretrained(vdir, dtype=torch.float32, attn_implementation="sdpa")
    eager.eval()
    sdpa.eval()
    processor = AutoProcessor.from_pretrained(vdir)
    processor.tokenizer.padding_side = "left"

    scenarios = {}
    for si, (name, samples) in enumerate(SCENARIOS.items()):
        texts = [chat(processor, t, len(s)) for t, s in samples]
        imgs = [images(1000 * si + j, s) for j, (_, s) in enumerate(samples)]
        has_images = any(len(x) for x in imgs)
        batch = processor(text=texts, images=imgs if has_images else None, padding=True, return_tensors="pt")
        scenarios[name] = run_scenario(eager, sdpa, batch, has_images, os.path.join(out, f"{variant}.{name}.safetensors"))
    # A tile whose lower rows are padding (pixel_attention_mask 0), as a
    # processor that pads tiles would build it (ours never pads).
    scenarios["padded_tile"] = padded_tile(eager, sdpa, processor, os.path.join(out, f"{variant}.padded_tile.safetensors"))
    return {"dir": vdir, "dtype": str(next(iter(model.parameters())).dtype).replace("torch.", ""),
            "files": sorted(os.listdir(vdir)), "scenarios": scenarios,
            "loading_info": {k: sorted(v) if isinstance(v, (set, list)) else v for k, v in info.items()},
            "load_messages": logs + [str(w.message) for w in caught],
            "tied": eager.lm_head.weight.data_ptr() == eager.model.text_model.embed_tokens.weight.data_ptr()}


def edit_lm_head_variant(vdir, variant):
    """Known discrepancy (b): configs whose lm_head tying transformers 5.x and ours read differently."""
    path = os.path.join(vdir, "config.json")
    with open(path, encoding="utf8") as f:
        cfg = json.load(f)
    if variant == "lm_head-text-config-tie":
        # Top-level key absent, text_config says tied, lm_head stored (and different).
        cfg.pop("tie_word_embeddings", None)
        cfg["text_config"]["tie_word_embeddings"] = True
    elif variant == "lm_head-stored-differs":
        # Top-level says tied, but a different lm_head.weight is stored.
        cfg["tie_word_embeddings"] = True
    with open(path, "w", encoding="utf8") as f:
        json.dump(cfg, f, indent=2)


@torch.no_grad()
def run_scenario(eager, sdpa, batch, has_images, file):
    ids, am = batch["input_ids"], batch["attention_mask"]
    pos = generation_positions(am)
    kw = {}
    tensors = {"input_ids": ids.contiguous(), "attention_mask": am.contiguous(), "position_ids": pos.contiguous()}
    if has_images:
        kw = {"pixel_values": batch["pixel_values"], "pixel_attention_mask": batch["pixel_attention_mask"]}
        pv, pm = real_images(batch["pixel_values"], batch["pixel_attention_mask"])
        tensors["pixel_values"] = pv
        tensors["pixel_attention_mask"] = pm.to(torch.uint8)
    tensors["logits_eager"] = eager(input_ids=ids, attention_mask=am, position_ids=pos, **kw).logits.float().contiguous()
    tensors["logits_sdpa"] = sdpa(input_ids=ids, attention_mask=am, position_ids=pos, **kw).logits.float().contiguous()
    tensors["logits_eager_default_pos"] = eager(input_ids=ids, attention_mask=am, **kw).logits.float().contiguous()
    eager.generation_config.eos_token_id = None  # exactly NEW_TOKENS tokens
    gen = eager.generate(input_ids=ids, attention_mask=am, **kw, max_new_tokens=NEW_TOKENS,
                         do_sample=False, pad_token_id=eager.config.pad_token_id)
    tensors["greedy_ids"] = gen[:, ids.shape[1]:].contiguous()
    save_file(tensors, file)
    return {"file": file, "batch": int(ids.shape[0]), "images": int(tensors.get("pixel_values", torch.zeros(0)).shape[0]),
            "pixel_mask_all_ones": bool(tensors["pixel_attention_mask"].all()) if has_images else True,
            "sdpa_vs_eager_max_abs": float((tensors["logits_sdpa"] - tensors["logits_eager"])[am.bool()].abs().max()),
            "logits_max_abs": float(tensors["logits_eager"][am.bool()].abs().max())}


@torch.no_grad()
def padded_tile(eager, sdpa, processor, file):
    img = images(77, [(48, 48)])[0]
    texts = [chat(processor, "What is in the padded picture?", 1)]
    batch = processor(text=texts, images=[[img]], return_tensors="pt")
    pv, pm = batch["pixel_values"].clone(), batch["pixel_attention_mask"].clone()
    s = pv.shape[-1]
    keep = s - s // 4  # the lower quarter becomes padding
    pv[..., keep:, :] = 0
    pm[..., keep:, :] = 0
    batch["pixel_values"], batch["pixel_attention_mask"] = pv, pm
    return run_scenario(eager, sdpa, batch, True, file)


def handle(req, work):
    out = req["out"]
    os.makedirs(out, exist_ok=True)
    variants = req.get("variants") or ["fp32-untied", "fp32-tied", "bf16", "sharded", "split", "llama3-rope",
                                       "partial-patch", "lm_head-text-config-tie", "lm_head-stored-differs"]
    return {"variants": {v: run_variant(req, v, out) for v in variants}}


if __name__ == "__main__":
    main(handle)

"""Qwen2-VL / Qwen2.5-VL against transformers 5.18 and PEFT, both directions.

transformers -> ours: for each family, a random tiny checkpoint built and saved
by transformers (save_pretrained), from the config and tokenizer of our
init-model tiny preset (the request's "tokenizer_dirs"); the processor's
outputs on PNG files this script draws; transformers' eager float32 logits
and greedy ids on those inputs.

ours -> transformers / PEFT: folders our CLI wrote ("models") load with
from_pretrained (loading info and messages recorded) and give their logits on
a left-padded batch of two prompts with one image each; LoRA adapter folders
("adapters") load with PeftModel.from_pretrained on their base.

Request: {"tokenizer_dirs": {family: dir}, "models": [{"name", "dir"}],
          "adapters": [{"name", "dir"}], "out": dir}
Writes <out>/img_*.png, <out>/<family>/ (the checkpoint), <out>/<family>.<scenario>.safetensors
(input_ids, attention_mask, pixel_values, image_grid_thw, logits, greedy_ids) and
<out>/<name>.safetensors for our folders (inputs and logits).
Also two tying edge cases on copies of those checkpoints (TIE_VARIANTS), with
transformers' tie decision, loading messages and logits.
Response: {"images": {name: file}, "hf": {family: {...}}, "tie_variants": {...}, "models": {...}, "adapters": {...}}

The Qwen processors want a video processor, and transformers' needs
torchvision (not in the peer venv): a bare BaseVideoProcessor stands in, as in
scripts/fixtures/make_qwen_fixtures.py; only images are used.
"""
import json
import math
import os
import shutil
import sys

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file
from transformers import AutoConfig, AutoModelForImageTextToText, AutoTokenizer, Qwen2_5_VLProcessor, Qwen2VLProcessor
from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil
from transformers.video_processing_utils import BaseVideoProcessor

from hf_capture import adapter_report, capture
from peer_io import main

NEW_TOKENS = 16
PROCESSORS = {"qwen2_vl": Qwen2VLProcessor, "qwen2_5_vl": Qwen2_5_VLProcessor}
SEEDS = {"qwen2_vl": 11, "qwen2_5_vl": 12}
# (name, width, height): different sizes and aspect ratios, one below min_pixels (upscaled).
IMAGES = [("a", 84, 56), ("b", 60, 100), ("c", 40, 30), ("d", 112, 84)]
SCENARIOS = {
    # name: [(prompt text, image names)] per sample
    "text": [("Describe nothing at all, please.", [])],
    "one_image": [("What is in the picture?", ["a"])],
    "two_images": [("Compare these two pictures.", ["b", "c"])],
    "padded_batch": [("Short?", ["d"]), ("A much longer question about these pictures, with many more words.", ["a", "b"])],
}


class VideoStub(BaseVideoProcessor):
    merge_size = 2
    temporal_patch_size = 2


def processor_of(family, folder):
    sys.modules["transformers"].BaseVideoProcessor = BaseVideoProcessor
    tok = AutoTokenizer.from_pretrained(folder)
    ip = Qwen2VLImageProcessorPil.from_pretrained(folder)
    proc = PROCESSORS[family](image_processor=ip, tokenizer=tok, video_processor=VideoStub(), chat_template=tok.chat_template)
    return proc


def chat(processor, text, n_images):
    content = [{"type": "image"} for _ in range(n_images)] + [{"type": "text", "text": text}]
    return processor.apply_chat_template([{"role": "user", "content": content}], tokenize=False, add_generation_prompt=True)


def draw_images(out):
    rng = np.random.default_rng(3)
    files = {}
    for name, w, h in IMAGES:
        y, x = np.mgrid[0:h, 0:w]
        base = np.stack([x * 255.0 / w, y * 255.0 / h, ((x // 7 + y // 7) % 2) * 200.0], axis=-1)
        img = np.clip(base + rng.uniform(-30, 30, (h, w, 3)), 0, 255).astype(np.uint8)
        files[name] = os.path.join(out, f"img_{name}.png")
        Image.fromarray(img, "RGB").save(files[name])
    return files


def build_model(family, tok_dir):
    """A random model of our tiny preset's config, with a wider spread than HF's init so logits are O(1)."""
    config = AutoConfig.from_pretrained(tok_dir)
    # Our tiny presets are untied: make Qwen2.5-VL's tied, so that both kinds are checked.
    config.tie_word_embeddings = family == "qwen2_5_vl"
    torch.manual_seed(SEEDS[family])
    model = AutoModelForImageTextToText.from_config(config, dtype=torch.float32).eval()
    g = torch.Generator().manual_seed(SEEDS[family])
    with torch.no_grad():
        for name, p in model.named_parameters():
            if p.ndim == 1 and ("norm" in name or "ln_q" in name) and name.endswith("weight"):
                p.copy_(1 + 0.2 * torch.randn(p.shape, generator=g))
            elif p.ndim == 1:
                p.copy_(0.2 * torch.randn(p.shape, generator=g))
            elif "embed_tokens" in name:
                # Tied: a small spread, or a token's own row dominates its logits and greedy decoding repeats
                # one token (measured: std 0.1-0.5 gives 1-2 distinct ids in 16; 0.03 gives 4-19, logits ~0.9).
                p.copy_(torch.randn(p.shape, generator=g) * (0.03 if config.tie_word_embeddings else 1.0))
            else:
                p.copy_(torch.randn(p.shape, generator=g) / math.sqrt(p[0].numel()))
    return model


def encode(processor, samples, files):
    texts = [chat(processor, t, len(names)) for t, names in samples]
    imgs = [Image.open(files[n]).convert("RGB") for _, names in samples for n in names]
    batch = processor(text=texts, images=imgs or None, padding=True, padding_side="left", return_tensors="pt")
    return texts, batch


@torch.no_grad()
def run_family(family, tok_dir, files, out):
    vdir = os.path.join(out, family)
    model = build_model(family, tok_dir)
    model.save_pretrained(vdir)
    processor = processor_of(family, tok_dir)
    processor.tokenizer.save_pretrained(vdir)
    processor.image_processor.save_pretrained(vdir)
    with capture() as messages:
        eager, info = AutoModelForImageTextToText.from_pretrained(vdir, dtype=torch.float32, attn_implementation="eager", output_loading_info=True)
    sdpa = AutoModelForImageTextToText.from_pretrained(vdir, dtype=torch.float32, attn_implementation="sdpa")
    eager.eval()
    sdpa.eval()
    eager.generation_config.eos_token_id = None  # exactly NEW_TOKENS tokens
    scenarios = {}
    for name, samples in SCENARIOS.items():
        texts, batch = encode(processor, samples, files)
        ids, am = batch["input_ids"], batch["attention_mask"]
        logits = eager(**batch).logits.float()
        logits_sdpa = sdpa(**batch).logits.float()
        gen = eager.generate(**batch, max_new_tokens=NEW_TOKENS, do_sample=False, pad_token_id=processor.tokenizer.pad_token_id)
        tensors = {"input_ids": ids.contiguous(), "attention_mask": am.contiguous(), "logits": logits.contiguous(),
                   "greedy_ids": gen[:, ids.shape[1]:].contiguous()}
        if "pixel_values" in batch:
            tensors["pixel_values"] = batch["pixel_values"].float().contiguous()
            tensors["image_grid_thw"] = batch["image_grid_thw"].contiguous()
        file = os.path.join(out, f"{family}.{name}.safetensors")
        save_file(tensors, file)
        real = am.bool()
        scenarios[name] = {"file": file, "texts": texts, "images": [[files[n] for n in names] for _, names in samples],
                           "sdpa_vs_eager_max_abs": float((logits_sdpa - logits)[real].abs().max()),
                           "logits_max_abs": float(logits[real].abs().max())}
    return {"dir": vdir, "class": type(eager).__name__, "pad_token_id": processor.tokenizer.pad_token_id, "files": sorted(os.listdir(vdir)), "scenarios": scenarios,
            "loading_info": {k: sorted(map(str, v)) for k, v in info.items()}, "load_messages": messages,
            "tied": eager.lm_head.weight.data_ptr() == eager.model.language_model.embed_tokens.weight.data_ptr()}


@torch.no_grad()
def logits_file(model, processor, files, file):
    """A left-padded batch of two chat prompts with one image each (different sizes): inputs and float32 logits."""
    texts, batch = encode(processor, [("Is anything offensive here?", ["a"]), ("Describe the picture in a few words, please.", ["b"])], files)
    logits = model(**batch).logits.float()
    save_file({"input_ids": batch["input_ids"].contiguous(), "attention_mask": batch["attention_mask"].contiguous(),
               "pixel_values": batch["pixel_values"].float().contiguous(), "image_grid_thw": batch["image_grid_thw"].contiguous(),
               "logits": logits.contiguous()}, file)
    return file


def check_model(m, files, out):
    with capture() as load_messages:
        model, info = AutoModelForImageTextToText.from_pretrained(m["dir"], dtype=torch.float32, attn_implementation="eager", output_loading_info=True)
    model.eval()
    family = model.config.model_type
    return {"class": type(model).__name__, "loading_info": {k: sorted(map(str, v)) for k, v in info.items()}, "load_messages": load_messages,
            "tied": model.lm_head.weight.data_ptr() == model.model.language_model.embed_tokens.weight.data_ptr(),
            "file": logits_file(model, processor_of(family, m["dir"]), files, os.path.join(out, f"{m['name']}.safetensors"))}


def check_adapter(a, files, out):
    from peft import PeftConfig, PeftModel

    cfg = PeftConfig.from_pretrained(a["dir"])
    base = AutoModelForImageTextToText.from_pretrained(cfg.base_model_name_or_path, dtype=torch.float32, attn_implementation="eager")
    with capture() as messages:
        model = PeftModel.from_pretrained(base, a["dir"])
    model.eval()
    processor = processor_of(base.config.model_type, cfg.base_model_name_or_path)
    return {**adapter_report(model, a["dir"], cfg), "load_messages": messages,
            "file": logits_file(model, processor, files, os.path.join(out, f"{a['name']}.safetensors"))}


# Tying edge cases (transformers 5.x's rules, judged on copies of the saved checkpoints):
#   lm_head-stored-differs: Qwen2-VL's untied save with a config that says tied: transformers
#     warns and does NOT tie (the stored lm_head differs from the embeddings);
#   text-config-tie: Qwen2.5-VL's tied save (no lm_head stored) with the top-level flag false and
#     text_config's true: Qwen2-VL's config forwards text_config's flag (pre-v5 layout), so it ties.
TIE_VARIANTS = {"lm_head-stored-differs": ("qwen2_vl", {"tie_word_embeddings": True}, None),
                "text-config-tie": ("qwen2_5_vl", {"tie_word_embeddings": False}, {"tie_word_embeddings": True})}


@torch.no_grad()
def run_tie_variant(name, hf, files, out):
    family, top, text = TIE_VARIANTS[name]
    vdir = os.path.join(out, f"{family}-{name}")
    shutil.copytree(hf[family]["dir"], vdir)
    with open(os.path.join(vdir, "config.json"), encoding="utf8") as f:
        cfg = json.load(f)
    cfg.update(top)
    if text is not None:
        cfg["text_config"].update(text)
    with open(os.path.join(vdir, "config.json"), "w", encoding="utf8") as f:
        json.dump(cfg, f, indent=2)
    with capture() as messages:
        model, info = AutoModelForImageTextToText.from_pretrained(vdir, dtype=torch.float32, attn_implementation="eager", output_loading_info=True)
    model.eval()
    _, batch = encode(processor_of(family, vdir), SCENARIOS["one_image"], files)
    file = os.path.join(out, f"{family}-{name}.safetensors")
    save_file({"input_ids": batch["input_ids"].contiguous(), "attention_mask": batch["attention_mask"].contiguous(),
               "pixel_values": batch["pixel_values"].float().contiguous(), "image_grid_thw": batch["image_grid_thw"].contiguous(),
               "logits": model(**batch).logits.float().contiguous()}, file)
    return {"dir": vdir, "family": family, "file": file, "load_messages": messages,
            "loading_info": {k: sorted(map(str, v)) for k, v in info.items()},
            "tied": model.lm_head.weight.data_ptr() == model.model.language_model.embed_tokens.weight.data_ptr()}


def handle(req, work):
    out = req["out"]
    os.makedirs(out, exist_ok=True)
    files = draw_images(out)
    hf = {f: run_family(f, d, files, out) for f, d in req.get("tokenizer_dirs", {}).items()}
    return {"images": files, "hf": hf,
            "tie_variants": {v: run_tie_variant(v, hf, files, out) for v in TIE_VARIANTS if TIE_VARIANTS[v][0] in hf},
            "models": {m["name"]: check_model(m, files, out) for m in req.get("models", [])},
            "adapters": {a["name"]: check_adapter(a, files, out) for a in req.get("adapters", [])}}


if __name__ == "__main__":
    main(handle)

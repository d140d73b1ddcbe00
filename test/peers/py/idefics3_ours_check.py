"""ours -> transformers / PEFT: load folders we wrote (init-model, savePretrained
shards, SFT and GRPO outputs) and our LoRA adapters with the real libraries,
and compute their logits on inputs made by transformers' processor.

Request: {"models": [{"name", "dir"}], "adapters": [{"name", "dir"}], "out": dir}
Writes <out>/<name>.safetensors: input_ids, attention_mask, pixel_values
[N, 3, H, W], pixel_attention_mask [N, H, W] (the real images, our layout) and
logits (float32, eager attention).
Response: {"models": {name: {...}}, "adapters": {name: {...}}} with transformers'
loading_info, every message logged or warned while loading, and (adapters) how
PEFT's loaded LoRA weights compare with the adapter file.
"""
import logging
import os
import warnings

import numpy as np
import torch
from PIL import Image
from safetensors.torch import save_file
from transformers import AutoConfig, AutoModelForImageTextToText, AutoProcessor, Idefics3Config

from hf_capture import adapter_report, capture
from peer_io import main

# transformers logs a pad_token_id warning (once per process) whenever it
# prints any Idefics3 config, from a default-constructed Idefics3Config
# (pad 128002, vocab 32000) in to_diff_dict, whatever the folder holds. Trigger
# it here so that it is not taken for a message about our folders.
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    logging.getLogger("transformers").setLevel(logging.ERROR)
    Idefics3Config().to_diff_dict()
    logging.getLogger("transformers").setLevel(logging.WARNING)


def inputs_for(processor):
    """A left-padded batch of two chat prompts with one image each."""
    rng = np.random.default_rng(5)
    imgs = [[Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "RGB")] for (w, h) in [(40, 40), (56, 40)]]
    texts = [
        processor.apply_chat_template([{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": q}]}], add_generation_prompt=True)
        for q in ["Is anything offensive here?", "Describe the picture in a few words, please."]
    ]
    processor.tokenizer.padding_side = "left"
    return processor(text=texts, images=imgs, padding=True, return_tensors="pt")


def real_images(pixel_values, pixel_attention_mask):
    b, n = pixel_values.shape[:2]
    flat = pixel_values.reshape(b * n, *pixel_values.shape[2:])
    real = (flat == 0.0).sum(dim=(-1, -2, -3)) != flat[0].numel()
    mask = pixel_attention_mask.reshape(b * n, *pixel_attention_mask.shape[2:])
    return flat[real].contiguous(), mask[real].to(torch.uint8).contiguous()


@torch.no_grad()
def logits_file(model, processor, file):
    batch = inputs_for(processor)
    logits = model(**batch).logits.float()
    pv, pm = real_images(batch["pixel_values"], batch["pixel_attention_mask"])
    save_file({"input_ids": batch["input_ids"].contiguous(), "attention_mask": batch["attention_mask"].contiguous(),
               "pixel_values": pv, "pixel_attention_mask": pm, "logits": logits.contiguous()}, file)
    return file


def check_model(m, out):
    with capture() as load_messages:
        model, info = AutoModelForImageTextToText.from_pretrained(m["dir"], dtype=torch.float32, attn_implementation="eager",
                                                                  output_loading_info=True)
    with capture() as processor_messages:
        processor = AutoProcessor.from_pretrained(m["dir"])
    model.eval()
    return {"class": type(model).__name__, "processor_class": type(processor).__name__,
            "image_processor_class": type(processor.image_processor).__name__,
            "loading_info": {k: sorted(map(str, v)) for k, v in info.items()},
            "load_messages": load_messages, "processor_messages": processor_messages,
            "tied": model.lm_head.weight.data_ptr() == model.model.text_model.embed_tokens.weight.data_ptr(),
            # The dtype transformers reads from config.json (5.x writes "dtype", we write the older "torch_dtype").
            "config_dtype": str(AutoConfig.from_pretrained(m["dir"]).dtype).replace("torch.", ""),
            "file": logits_file(model, processor, os.path.join(out, f"{m['name']}.safetensors"))}


def check_adapter(a, out):
    from peft import PeftConfig, PeftModel

    cfg = PeftConfig.from_pretrained(a["dir"])
    base = AutoModelForImageTextToText.from_pretrained(cfg.base_model_name_or_path, dtype=torch.float32, attn_implementation="eager")
    with capture() as messages:
        model = PeftModel.from_pretrained(base, a["dir"])
    model.eval()
    processor = AutoProcessor.from_pretrained(cfg.base_model_name_or_path)
    return {**adapter_report(model, a["dir"], cfg), "load_messages": messages,
            "file": logits_file(model, processor, os.path.join(out, f"{a['name']}.safetensors"))}


def handle(req, work):
    out = req["out"]
    os.makedirs(out, exist_ok=True)
    return {"models": {m["name"]: check_model(m, out) for m in req.get("models", [])},
            "adapters": {a["name"]: check_adapter(a, out) for a in req.get("adapters", [])}}


if __name__ == "__main__":
    main(handle)

"""The transformers side of bench:generate: `model.generate()` of
AutoModelForImageTextToText on the folder ours wrote (and, with an adapter
folder, PeftModel.from_pretrained on top, adapters unmerged as ours runs them).

    python bench/hf_generate.py <model_dir> <work_dir> <threads> <width> <height> [adapter_dir]

At start: builds the one-image prompt with the folder's processor, writes it to
<work_dir>/inputs.safetensors for ours, and replies
{"ready": true, versions, "attn": ..., "prompt_ids": [...]}.
Requests (one JSON object per line):
  {"cmd": "sample", "G": n, "L": n, "seed": s}  sampled, num_return_sequences=G,
      temperature 1, top_k 0, top_p 1, exactly L new tokens (min_new_tokens = L
      keeps EOS out, as ours runs with no EOS id) ->
      {"ms", "vision_ms", "vision_calls", "new_tokens"}
  {"cmd": "greedy", "L": n} -> {"ids": [...]} (do_sample False, L tokens)
transformers' generate expands the inputs num_return_sequences times before the
prefill, so the vision tower and the prompt prefill run G times; vision_ms is
the summed time of the vision module's forward calls (forward hooks).
"""
import sys
import time

import torch

from peer_common import (Stopwatch, bench_image, env_offline, load_processor, processor_inputs, reply,
                         save_inputs_for_ours, serve, set_threads, time_module, versions, vision_module)


def main():
    env_offline()
    model_dir, work, threads, width, height = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
    adapter = sys.argv[6] if len(sys.argv) > 6 else None
    set_threads(threads)
    from transformers import AutoModelForImageTextToText

    model = AutoModelForImageTextToText.from_pretrained(model_dir, dtype=torch.float32)
    if adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter)
    model.eval()
    processor = load_processor(model_dir)
    inputs = processor_inputs(processor, bench_image(width, height))
    save_inputs_for_ours(inputs, f"{work}/inputs.safetensors")
    vision = Stopwatch()
    time_module(vision_module(model), vision)
    prompt_len = inputs["input_ids"].shape[1]
    common = dict(temperature=1.0, top_k=0, top_p=1.0, min_p=None, repetition_penalty=1.0, use_cache=True)

    def sample(req):
        G, L = req["G"], req["L"]
        torch.manual_seed(req["seed"])
        vision.take()
        t0 = time.perf_counter()
        with torch.no_grad():
            out = model.generate(**inputs, do_sample=True, num_return_sequences=G, max_new_tokens=L, min_new_tokens=L, **common)
        ms = (time.perf_counter() - t0) * 1000
        calls = vision.calls
        return {"ms": ms, "vision_ms": vision.take(), "vision_calls": calls, "rows": out.shape[0], "new_tokens": out.shape[1] - prompt_len}

    def greedy(req):
        with torch.no_grad():
            out = model.generate(**inputs, do_sample=False, max_new_tokens=req["L"], min_new_tokens=req["L"], **common)
        return {"ids": out[0, prompt_len:].tolist()}

    attn = getattr(model.config, "_attn_implementation", None)
    reply({"ready": True, **versions(), "attn": attn, "prompt_ids": inputs["input_ids"][0].tolist()})
    serve({"sample": sample, "greedy": greedy})


if __name__ == "__main__":
    main()

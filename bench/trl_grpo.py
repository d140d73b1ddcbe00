"""The TRL side of bench:grpo: GRPO steps of TRL's GRPOTrainer (trainer.train()
itself, nothing of the step replaced) on the folder ours wrote, with ours'
initial LoRA adapter loaded through PEFT, so both sides start from the same
weights.

    python bench/trl_grpo.py <spec.json>

spec: model_dir, work, adapter_dir, threads, G, L, steps, lr, epsilon, beta,
temperature, max_grad_norm, rewards (G floats), suppress (token ids), image
[w, h], seed.

The dataset is one in-memory row (the one-image prompt of peer_common.py as a
string user turn plus an "image" column: TRL puts the image before the text,
as the prompt ours reads); the reward function returns the fixed rewards (its
cost is not what is measured). Settings that make TRL do what ours does:
per_device_train_batch_size = num_generations = G (one prompt per step),
gradient_accumulation_steps 1, num_iterations 1, loss_type dapo, beta 0,
scale_rewards group, gradient_checkpointing False (TRL's default is True; ours
does not recompute), fp32 (bf16 False), AdamW lr constant with no weight decay,
max_grad_norm 1, exactly L completion tokens (generation_kwargs
min_new_tokens = L: EOS is never sampled, as ours runs with no EOS id) and
the image placeholder ids suppressed (suppress_tokens, as ours' trainer does).

Timing: the training loop calls back on_step_begin, which waits for a
{"cmd": "step"} line, and on_step_end, which replies with the step's phases
(wall ms): generation (_generate_single_turn: transformers' generate over the
G repeated prompts), prepare (_prepare_inputs: generation, reward, advantages,
TRL's bookkeeping), forward (compute_loss: the forward over the G rows with
pixel values per row, log-probs, entropy, loss), backward (the rest of
training_step), optimizer (the rest of the step: grad clipping, AdamW,
scheduler, Trainer bookkeeping), vision_ms (the vision tower's forward calls,
sampling and scoring), grad_norm (before clipping), and on the first step the
prompt ids TRL built.
"""
import json
import os
import sys
import time

import torch

from peer_common import (PROMPT_TEXT, Stopwatch, bench_image, env_offline, load_processor, processor_inputs, read_request,
                         reply, save_inputs_for_ours, set_threads, time_module, versions, vision_module)


def main():
    env_offline()
    spec = json.load(open(sys.argv[1], encoding="utf8"))
    set_threads(spec["threads"])
    from datasets import Dataset
    from peft import PeftModel
    from transformers import AutoModelForImageTextToText, TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    G, L = spec["G"], spec["L"]
    image = bench_image(*spec["image"])
    processor = load_processor(spec["model_dir"])
    save_inputs_for_ours(processor_inputs(processor, image), os.path.join(spec["work"], "inputs.safetensors"))

    model = AutoModelForImageTextToText.from_pretrained(spec["model_dir"], dtype=torch.float32)
    model = PeftModel.from_pretrained(model, spec["adapter_dir"], is_trainable=True)
    dataset = Dataset.from_list([{"prompt": [{"role": "user", "content": PROMPT_TEXT}], "image": image}])
    rewards = list(spec["rewards"])

    def fixed_reward(prompts, completions, **kwargs):
        return rewards[: len(completions)]

    args = GRPOConfig(
        output_dir=os.path.join(spec["work"], "trl-out"), report_to=[], use_cpu=True, bf16=False, fp16=False,
        per_device_train_batch_size=G, num_generations=G, gradient_accumulation_steps=1, num_iterations=1,
        max_steps=spec["steps"], max_completion_length=L, temperature=spec["temperature"], top_k=0, top_p=1.0,
        beta=spec["beta"], epsilon=spec["epsilon"], loss_type="dapo", scale_rewards="group",
        learning_rate=spec["lr"], lr_scheduler_type="constant", warmup_steps=0, weight_decay=0.0,
        max_grad_norm=spec["max_grad_norm"], gradient_checkpointing=False, disable_dropout=True,
        generation_kwargs={"min_new_tokens": L, "suppress_tokens": spec["suppress"]},
        save_strategy="no", logging_steps=1, seed=spec["seed"], dataloader_num_workers=0, shuffle_dataset=False,
    )
    trainer = GRPOTrainer(model=model, reward_funcs=fixed_reward, args=args, train_dataset=dataset, processing_class=processor)

    w = {k: Stopwatch() for k in ("generation", "prepare", "forward", "training_step", "clip", "vision")}
    seen = {"prompt_ids": None, "completion_lengths": None, "grad_norm": None}
    gen = trainer._generate_single_turn

    def generation(prompt_ids, *a, **k):
        if seen["prompt_ids"] is None:
            seen["prompt_ids"] = [list(map(int, p)) for p in prompt_ids]
        out = gen(prompt_ids, *a, **k)
        seen["completion_lengths"] = [len(c) for c in out[0]]
        return out

    trainer._generate_single_turn = w["generation"].wrap(generation)
    trainer._prepare_inputs = w["prepare"].wrap(trainer._prepare_inputs)
    trainer.compute_loss = w["forward"].wrap(trainer.compute_loss)
    trainer.training_step = w["training_step"].wrap(trainer.training_step)
    clip = trainer.accelerator.clip_grad_norm_

    def clip_and_keep(*a, **k):
        norm = clip(*a, **k)
        seen["grad_norm"] = float(norm)
        return norm

    trainer.accelerator.clip_grad_norm_ = w["clip"].wrap(clip_and_keep)
    time_module(vision_module(trainer.model), w["vision"])
    state = {"t0": 0.0, "step": 0}

    class Lockstep(TrainerCallback):
        def on_step_begin(self, args, st, control, **kwargs):
            req = read_request()
            if req is None or req.get("cmd") != "step":
                raise SystemExit(0)
            for x in w.values():
                x.take()
            state["t0"] = time.perf_counter()

        def on_step_end(self, args, st, control, **kwargs):
            total = (time.perf_counter() - state["t0"]) * 1000
            ts, prep, fwd = w["training_step"].take(), w["prepare"].take(), w["forward"].take()
            out = {
                "ms": total, "generation_ms": w["generation"].take(), "prepare_ms": prep, "forward_ms": fwd,
                "backward_ms": ts - prep - fwd, "optimizer_ms": total - ts, "clip_ms": w["clip"].take(),
                "vision_ms": w["vision"].ms, "vision_calls": w["vision"].calls, "grad_norm": seen["grad_norm"],
                "completion_lengths": seen["completion_lengths"],
            }
            w["vision"].take()
            if state["step"] == 0:
                out["prompt_ids"] = seen["prompt_ids"]
            state["step"] += 1
            reply(out)

    trainer.add_callback(Lockstep())
    trained = sum(p.numel() for p in trainer.model.parameters() if p.requires_grad)
    reply({"ready": True, **versions(), "attn": getattr(model.config, "_attn_implementation", None), "params_trained": trained})
    trainer.train()
    read_request()  # the final quit


if __name__ == "__main__":
    main()

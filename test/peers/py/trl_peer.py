"""TRL peer: GRPOTrainer's own code on a tiny Idefics3 model (a folder our
init-model wrote), with fixed completions and fixed rewards.

A real GRPOTrainer is built (the advantages are computed inline in
_generate_and_score_completions, so there is no function to call on its own);
only generation is replaced: `_generate_single_turn` returns the given
completion ids instead of sampling. Everything else is TRL's: prompt
tokenization through the processor and chat template, padding, rewards ->
advantages for each `scale_rewards`, old / reference per-token log-probs
through `_get_per_token_logps_and_entropies` (num_iterations > 1, beta > 0),
and `_compute_loss` for each loss type.

Request: {"model_dir", "prompts": [text], "images": [[w, h]], "num_generations": G,
          "completions": [[ids]] (B = prompts x G, prompt-major), "rewards": [float | null],
          "temperature", "beta", "epsilon", "epsilon_high", "num_iterations", "grad_accum",
          "max_completion_length", "loss_cases": [{"name", "loss_type", "importance_sampling_level", "bias_correction_kl"}],
          "out": dir}
Writes <out>/trl.safetensors: prompt_ids, prompt_mask, completion_ids, completion_mask,
pixel_values [N, 3, H, W], pixel_attention_mask [N, H, W] (real images, our layout),
old_per_token_logps, ref_per_token_logps (TRL's), old_perturbed, ref_perturbed (what
the loss cases use, so that ratios leave the clip range), advantages_<mode>.
Response: {"advantages": {mode: [..]}, "losses": {case: value}, "num_items_in_batch", ...}
"""
import os

import numpy as np
import torch
from datasets import Dataset
from PIL import Image
from safetensors.torch import save_file
from transformers import AutoModelForImageTextToText, AutoProcessor
from trl import GRPOConfig, GRPOTrainer

from peer_io import main


def real_images(pixel_values, pixel_attention_mask):
    if pixel_values.dim() == 4:  # already [N, 3, H, W]
        return pixel_values.contiguous(), pixel_attention_mask.to(torch.uint8).contiguous()
    b, n = pixel_values.shape[:2]
    flat = pixel_values.reshape(b * n, *pixel_values.shape[2:])
    real = (flat == 0.0).sum(dim=(-1, -2, -3)) != flat[0].numel()
    mask = pixel_attention_mask.reshape(b * n, *pixel_attention_mask.shape[2:])
    return flat[real].contiguous(), mask[real].to(torch.uint8).contiguous()


def handle(req, work):
    torch.manual_seed(0)
    G = req["num_generations"]
    rewards = req["rewards"]
    completions = req["completions"]
    rng = np.random.default_rng(1)
    images = [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), "RGB") for (w, h) in req["images"]]
    rows = [{"prompt": [{"role": "user", "content": p}], "image": img} for p, img in zip(req["prompts"], images)]
    dataset = Dataset.from_list(rows)

    calls = {"n": 0}

    def fixed_reward(prompts, completions, **kwargs):
        calls["n"] += 1
        assert len(completions) == len(rewards), f"{len(completions)} completions, {len(rewards)} rewards"
        return list(rewards)

    model = AutoModelForImageTextToText.from_pretrained(req["model_dir"], dtype=torch.float32, attn_implementation="eager")
    processor = AutoProcessor.from_pretrained(req["model_dir"])
    args = GRPOConfig(
        output_dir=os.path.join(work, "trl-out"), report_to=[], use_cpu=True, bf16=False, fp16=False,
        per_device_train_batch_size=G, gradient_accumulation_steps=req["grad_accum"], num_generations=G,
        max_completion_length=req["max_completion_length"], temperature=req["temperature"], beta=req["beta"],
        epsilon=req["epsilon"], epsilon_high=req["epsilon_high"], num_iterations=req["num_iterations"],
        model_init_kwargs={"dtype": torch.float32, "attn_implementation": "eager"}, logging_steps=1, seed=0,
    )
    trainer = GRPOTrainer(model=model, reward_funcs=fixed_reward, args=args, train_dataset=dataset, processing_class=processor)
    trainer.model.train()

    def fixed_generation(prompt_ids, images, multimodal_fields):
        assert len(prompt_ids) == len(completions)
        return [list(c) for c in completions], None

    trainer._generate_single_turn = fixed_generation
    inputs = [rows[i // G] for i in range(len(completions))]  # each prompt G times, prompt-major

    out = {}
    advantages = {}
    tensors = {}
    for mode in ["group", "batch", "none"]:
        trainer.scale_rewards = mode
        batch = trainer._generate_and_score_completions(inputs)
        advantages[mode] = batch["advantages"].tolist()
        tensors[f"advantages_{mode}"] = batch["advantages"].float().contiguous()
    # The batch of the last call carries everything the loss needs.
    for k in ["prompt_ids", "prompt_mask", "completion_ids", "completion_mask", "old_per_token_logps", "ref_per_token_logps"]:
        tensors[k] = batch[k].contiguous()
    pv, pm = real_images(batch["pixel_values"], batch["pixel_attention_mask"])
    tensors["pixel_values"], tensors["pixel_attention_mask"] = pv, pm

    # Perturbed old / reference log-probs (fixed noise), so that the ratios
    # exp(logp - old) spread over both sides of the clip range and the KL is
    # not zero; TRL's loss and ours both receive exactly these.
    g = torch.Generator().manual_seed(7)
    old = batch["old_per_token_logps"] + torch.randn(batch["old_per_token_logps"].shape, generator=g) * 0.3
    ref = batch["ref_per_token_logps"] + torch.randn(batch["ref_per_token_logps"].shape, generator=g) * 0.3
    tensors["old_perturbed"], tensors["ref_perturbed"] = old.contiguous(), ref.contiguous()
    losses = {}
    trainer.scale_rewards = "group"
    # Set by Trainer's training loop for each optimizer step; the loss divides by it.
    trainer.current_gradient_accumulation_steps = req["grad_accum"]
    for case in req["loss_cases"]:
        trainer.loss_type = case["loss_type"]
        trainer.importance_sampling_level = case["importance_sampling_level"]
        # TRL 1.13 defaults to True: the KL term is multiplied by the importance ratio.
        trainer.args.use_bias_correction_kl = case["bias_correction_kl"]
        b = dict(batch)
        b["advantages"] = tensors["advantages_group"].clone()
        b["old_per_token_logps"] = old.clone()
        b["ref_per_token_logps"] = ref.clone()
        with torch.no_grad():
            losses[case["name"]] = float(trainer._compute_loss(trainer.model, b))
    out.update({
        "advantages": advantages, "losses": losses, "num_items_in_batch": float(batch["num_items_in_batch"]),
        "current_gradient_accumulation_steps": int(trainer.current_gradient_accumulation_steps),
        "steps_per_generation": int(trainer.args.steps_per_generation), "num_processes": int(trainer.accelerator.num_processes),
        "max_completion_length": int(trainer.max_completion_length), "temperature": float(trainer.temperature),
        "reward_calls": calls["n"], "num_images": batch.get("num_images"),
        "default_use_bias_correction_kl": GRPOConfig.__dataclass_fields__["use_bias_correction_kl"].default,
    })
    save_file(tensors, os.path.join(req["out"], "trl.safetensors"))
    return out


if __name__ == "__main__":
    main(handle)

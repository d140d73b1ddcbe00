// Shared by the peer tests that compare our model folders with the Python
// peers' logits (any model family) and that train small runs through our CLI.
import assert from "node:assert/strict";
import fs from "node:fs";
import path from "node:path";

import { loadSafetensors } from "../../../src/io/safetensors.js";
import { loadPretrained } from "../../../src/models/index.js";
import { type Tensor, tidy } from "../../../src/torch/index.js";

/** Loading messages that would mean transformers / PEFT did not take every key as we wrote it. */
export const KEY_MESSAGE = /missing|unexpected|newly initialized|not initialized|not used|mismatch|were not|ignored|did not|random/i;

/** Max |a - b| over the positions where mask [B, T] is nonzero; a, b [B, T, V]. */
export function maxAbsAtRealPositions(a: Tensor, b: Tensor, mask: Tensor): number {
  return tidy(() => {
    assert.deepEqual(a.shape, b.shape, "logits shape");
    return a.sub(b).abs().maskedFill(mask.eq(0).unsqueeze(-1), 0).max().item() as number;
  });
}

/**
 * max |ours - theirs| over real positions: the folder's model (float32) on a
 * peer file's inputs (input_ids, attention_mask and whichever image tensors
 * the family takes: pixel_values, pixel_attention_mask, image_grid_thw)
 * against the file's `logitsKey`.
 */
export async function compareFolderLogits(dir: string, file: string, logitsKey = "logits"): Promise<number> {
  const { model } = await loadPretrained(dir, { dtype: "float32" });
  const t = loadSafetensors(file);
  try {
    return tidy(() => {
      const mask = t.get("attention_mask")!;
      const { logits } = model.forward({
        inputIds: t.get("input_ids")!,
        attentionMask: mask,
        pixelValues: t.get("pixel_values"),
        pixelAttentionMask: t.get("pixel_attention_mask"),
        imageGridThw: t.get("image_grid_thw"),
      });
      return maxAbsAtRealPositions(logits, t.get(logitsKey)!, mask);
    });
  } finally {
    for (const x of t.values()) x.dispose();
    model.dispose();
  }
}

/** A run config in `workDir` (YAML is a superset of JSON): tiny steps, LoRA (rank 4, alpha 8) or full fine-tuning. */
export function writeRunConfig(workDir: string, name: string, model: string, data: string, lora: boolean, extra: Record<string, unknown>): string {
  const cfg = {
    model,
    output_dir: path.join(workDir, name),
    seed: 3,
    data: { path: data },
    prompt: { system_prompt: "", user_prompt: "Categories: {categories}?" },
    lora: { enabled: lora, rank: 4, alpha: 8, dropout: 0 },
    ...extra,
  };
  const file = path.join(workDir, `${name}.yaml`);
  fs.writeFileSync(file, JSON.stringify(cfg, null, 2));
  return file;
}

/** The SFT section of the peer runs: 2 steps of 4 examples at a high learning rate, so that LoRA's B moves. */
export const TINY_SFT = { max_steps: 2, micro_batch_size: 4, grad_accum: 1, lr: 1e-2, log_every: 1, eval_examples: 4 };

/** What the Python half reports about one of our LoRA adapter folders loaded with PeftModel.from_pretrained. */
export interface PeftAdapterCheck {
  peft_type: string;
  r: number;
  lora_alpha: number;
  load_messages: string[];
  stored_keys_missing_in_peft: string[];
  peft_keys_missing_in_file: string[];
  max_abs_diff_loaded_vs_file: number;
  lora_B_max_abs: number;
  lora_modules: number;
  file: string;
}

/** PEFT took the adapter whole (rank 4, alpha 8, every stored tensor bit for bit, no key complaints) and it had trained. */
export function assertPeftAdapterLoaded(a: PeftAdapterCheck): void {
  assert.equal(a.peft_type, "PeftType.LORA");
  assert.equal(a.r, 4);
  assert.equal(a.lora_alpha, 8);
  assert.ok(a.lora_modules > 0, "PEFT wrapped some modules");
  assert.deepEqual(a.stored_keys_missing_in_peft, [], "adapter file keys PEFT did not take");
  assert.deepEqual(a.peft_keys_missing_in_file, [], "PEFT keys the file lacks");
  assert.equal(a.max_abs_diff_loaded_vs_file, 0, "PEFT's LoRA tensors are the file's");
  // lora_B starts at 0: a trained adapter must have moved it, else base + adapter = base trivially.
  assert.ok(a.lora_B_max_abs > 1e-4, `lora_B max |value| ${a.lora_B_max_abs}: the adapter did not train`);
  assert.deepEqual(a.load_messages.filter((x) => KEY_MESSAGE.test(x)), [], "PEFT loading messages");
}

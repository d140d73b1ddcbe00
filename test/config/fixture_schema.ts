// The example schema shared by the config tests.
import { type Infer, s } from "../../src/config/schema.js";

export const schema = s.object({
  run_name: s.string({ default: "run", doc: "Name of the run." }),
  model: s.string({ nonEmpty: true, doc: "Path to a local model snapshot." }),
  seed: s.optional(s.number({ int: true })),
  categories: s.array(s.string({ nonEmpty: true }), { default: ["nudity", "weapons"], minItems: 1 }),
  eval_every: s.union([s.number({ int: true, min: 1 }), s.string({ enum: ["epoch"] })], { default: "epoch" }),
  prompts: s.record(s.string(), { default: {} }),
  sft: s.object({
    lr: s.number({ min: 0, default: 1e-4 }),
    lora: s.object({
      rank: s.number({ int: true, min: 1, default: 16, doc: "LoRA rank." }),
      alpha: s.number({ default: 32 }),
      targets: s.array(s.string(), { default: ["q_proj", "v_proj"] }),
    }),
  }),
  grpo: s.object(
    {
      beta: s.number({ min: 0, default: 0.04, doc: "KL coefficient." }),
      loss_type: s.string({ enum: ["grpo", "bnpo", "dr_grpo", "dapo"], default: "dapo" }),
      num_generations: s.number({ int: true, min: 2, max: 64, default: 8 }),
      scale_rewards: s.boolean({ default: true }),
      temperature: s.nullable(s.number({ min: 0 }), { default: null }),
    },
    { doc: "GRPO stage." },
  ),
});
export type Config = Infer<typeof schema>;

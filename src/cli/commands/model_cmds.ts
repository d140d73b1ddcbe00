// `vlm-grpo init-model` and `vlm-grpo generate`.
import { policyOptions } from "../../config/policy_options.js";
import { runConfigSchema } from "../../config/run_config.js";
import { validate } from "../../config/schema.js";
import { initModel } from "../../models/init_model.js";
import { familyByName, modelFamilies } from "../../models/registry.js";
import { collatePrompts, disposePromptBatch } from "../../policy/collate.js";
import { disposeEncoded } from "../../policy/encoder.js";
import { loadPolicy } from "../../policy/policy.js";
import { LocalRollout } from "../../policy/rollout.js";
import { Generator } from "../../torch/index.js";
import { flag, has, numberFlag, parseArgs, UsageError } from "../args.js";

function archHelp(): string {
  return modelFamilies()
    .map((f) => `  ${f.name.padEnd(12)} ${f.description}\n  ${"".padEnd(12)} presets: ${f.presets.join(", ")}`)
    .join("\n");
}

export async function initModelCommand(argv: readonly string[]): Promise<number> {
  const p = parseArgs(argv, { arch: { value: true }, preset: { value: true }, out: { value: true }, seed: { value: true }, dtype: { value: true }, "vision-init": { value: true }, "init-std": { value: true }, help: { value: false } });
  if (has(p, "help")) {
    console.log(`usage: vlm-grpo init-model --arch ARCH --preset PRESET --out DIR [--seed S] [--dtype float32|bfloat16] [--vision-init initializer_range|siglip] [--init-std X]
writes a randomly initialized model folder in Hugging Face format (config, safetensors, tokenizer, chat template, processor config)
architectures (--arch, default idefics3):
${archHelp()}
  --vision-init  initializer_range (default): every weight ~ N(0, std^2) as HF's init;
                 siglip: the vision tower as SigLIP initializes itself (learns from images faster when trained from scratch)
  --init-std     std of the normal init (config initializer_range; default the preset's, 0.02)`);
    return 0;
  }
  const arch = flag(p, "arch") ?? "idefics3";
  let family;
  try {
    family = familyByName(arch);
  } catch (e) {
    throw new UsageError(`--arch: ${(e as Error).message}`);
  }
  const preset = flag(p, "preset") ?? "tiny";
  if (!family.presets.includes(preset)) throw new UsageError(`--preset: ${arch} has presets ${family.presets.join(", ")}; got '${preset}'`);
  const out = flag(p, "out");
  if (!out) throw new UsageError("init-model: --out DIR is required");
  const dtype = flag(p, "dtype") ?? "float32";
  if (dtype !== "float32" && dtype !== "bfloat16") throw new UsageError(`--dtype: expected float32 or bfloat16, got '${dtype}'`);
  const visionInit = flag(p, "vision-init") ?? "initializer_range";
  if (visionInit !== "initializer_range" && visionInit !== "siglip") throw new UsageError(`--vision-init: expected initializer_range or siglip, got '${visionInit}'`);
  const r = await initModel({ arch, preset, outDir: out, seed: numberFlag(p, "seed", 0, { int: true }), dtype, visionInit, ...(has(p, "init-std") ? { initializerRange: numberFlag(p, "init-std", 0.02, { min: 1e-6 }) } : {}) });
  console.log(`wrote ${arch} preset '${preset}' (${r.numParameters.toLocaleString("en-US")} parameters, vocab ${r.vocabSize}) to ${r.dir}`);
  return 0;
}

export async function generateCommand(argv: readonly string[]): Promise<number> {
  const p = parseArgs(argv, {
    model: { value: true },
    image: { value: true },
    prompt: { value: true },
    lora: { value: true },
    "max-new-tokens": { value: true },
    temperature: { value: true },
    "top-p": { value: true },
    seed: { value: true },
    help: { value: false },
  });
  if (has(p, "help")) {
    console.log("usage: vlm-grpo generate --model DIR --image FILE --prompt TEXT [--lora DIR] [--max-new-tokens N] [--temperature T] [--top-p P] [--seed S]\n(temperature 0 = greedy)");
    return 0;
  }
  const model = flag(p, "model");
  const image = flag(p, "image");
  const prompt = flag(p, "prompt");
  if (!model || !image || prompt === undefined) throw new UsageError("generate: --model, --image and --prompt are required");
  const temperature = numberFlag(p, "temperature", 0, { min: 0 });
  const cfg = validate(runConfigSchema, { model }, { file: "generate options" });
  const policy = await loadPolicy(policyOptions(cfg, { train: false, adapterDir: flag(p, "lora") }));
  try {
    const encoded = await policy.encoder.encodeChat([{ role: "user", content: [{ type: "image" }, { type: "text", text: prompt }] }], [image], image);
    const batch = collatePrompts([encoded], policy.padTokenId);
    try {
      const [c] = await new LocalRollout(policy).rollout({
        batch,
        numGenerations: 1,
        maxNewTokens: numberFlag(p, "max-new-tokens", 64, { int: true, min: 1 }),
        doSample: temperature > 0,
        temperature: temperature > 0 ? temperature : 1,
        topP: numberFlag(p, "top-p", 1, { min: 0, max: 1 }),
        generator: new Generator(numberFlag(p, "seed", 0, { int: true })),
      });
      console.log(c.text);
    } finally {
      disposePromptBatch(batch);
      disposeEncoded([encoded]);
    }
  } finally {
    policy.dispose();
  }
  return 0;
}

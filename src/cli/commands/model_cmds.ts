// `vlm-grpo init-model` and `vlm-grpo generate`.
import { validate } from "../../config/schema.js";
import { Idefics3Processor } from "../../io/idefics3_processor.js";
import { generate } from "../../generate/generate.js";
import { initModel } from "../../models/init_model.js";
import { loadAdapter } from "../../models/peft.js";
import { PRESET_NAMES, type PresetName } from "../../models/presets.js";
import { dispose, tidy } from "../../torch/index.js";
import { runConfigSchema } from "../../train/configs.js";
import { loadPolicy } from "../../train/session.js";
import { flag, has, numberFlag, parseArgs, UsageError } from "../args.js";

export async function initModelCommand(argv: readonly string[]): Promise<number> {
  const p = parseArgs(argv, { arch: { value: true }, preset: { value: true }, out: { value: true }, seed: { value: true }, dtype: { value: true }, "vision-init": { value: true }, "init-std": { value: true }, help: { value: false } });
  if (has(p, "help")) {
    console.log(`usage: vlm-grpo init-model --arch idefics3|llama --preset ${PRESET_NAMES.join("|")} --out DIR [--seed S] [--dtype float32|bfloat16] [--vision-init initializer_range|siglip] [--init-std X]
writes a randomly initialized model folder in Hugging Face format (config, safetensors, tokenizer, chat template, processor config)
  --vision-init  initializer_range (default): every weight ~ N(0, 0.02^2) as HF's Idefics3 init;
                 siglip: the vision tower as SigLIP initializes itself (learns from images faster when trained from scratch)
  --init-std     std of the normal init (config initializer_range; default the preset's, 0.02)`);
    return 0;
  }
  const arch = flag(p, "arch") ?? "idefics3";
  if (arch !== "idefics3" && arch !== "llama") throw new UsageError(`--arch: expected idefics3 or llama, got '${arch}'`);
  const preset = flag(p, "preset") ?? "tiny";
  if (!PRESET_NAMES.includes(preset as PresetName)) throw new UsageError(`--preset: expected one of ${PRESET_NAMES.join(", ")}, got '${preset}'`);
  const out = flag(p, "out");
  if (!out) throw new UsageError("init-model: --out DIR is required");
  const dtype = flag(p, "dtype") ?? "float32";
  if (dtype !== "float32" && dtype !== "bfloat16") throw new UsageError(`--dtype: expected float32 or bfloat16, got '${dtype}'`);
  const visionInit = flag(p, "vision-init") ?? "initializer_range";
  if (visionInit !== "initializer_range" && visionInit !== "siglip") throw new UsageError(`--vision-init: expected initializer_range or siglip, got '${visionInit}'`);
  const r = await initModel({ arch, preset: preset as PresetName, outDir: out, seed: numberFlag(p, "seed", 0, { int: true }), dtype, visionInit, ...(has(p, "init-std") ? { initializerRange: numberFlag(p, "init-std", 0.02, { min: 1e-6 }) } : {}) });
  console.log(`wrote ${arch} preset '${preset}' (${r.numParameters.toLocaleString("en-US")} parameters, vocab ${r.tokenizer.vocabSize}) to ${r.dir}`);
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
  const policy = await loadPolicy(cfg, model, { train: false });
  try {
    if (flag(p, "lora")) loadAdapter(policy.model, flag(p, "lora")!);
    policy.model.eval();
    const text = policy.tokenizer.applyChatTemplate([{ role: "user", content: [{ type: "image" }, { type: "text", text: prompt }] }], { addGenerationPrompt: true });
    const processor = await Idefics3Processor.fromDir(model, policy.tokenizer);
    const batch = await processor.prepare([{ text, images: [image] }]);
    const out = tidy(() =>
      generate(
        policy.model,
        { inputIds: batch.inputIds, attentionMask: batch.attentionMask, pixelValues: batch.pixelValues },
        {
          doSample: temperature > 0,
          temperature: temperature > 0 ? temperature : 1,
          topP: numberFlag(p, "top-p", 1, { min: 0, max: 1 }),
          maxNewTokens: numberFlag(p, "max-new-tokens", 64, { int: true, min: 1 }),
          seed: numberFlag(p, "seed", 0, { int: true }),
          eosTokenIds: policy.encoder.eosTokenIds,
          padTokenId: policy.padTokenId,
          suppressTokenIds: policy.encoder.suppressTokenIds,
          decode: (x) => policy.tokenizer.decode(x, { skipSpecialTokens: true }),
        },
      ),
    );
    dispose([batch.inputIds, batch.attentionMask, batch.pixelValues]);
    console.log(out.completions[0].text);
  } finally {
    policy.dispose();
  }
  return 0;
}

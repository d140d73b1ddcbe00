// The model side of the server: one loaded policy, the decision rule, and the
// two things requests ask of it: classify a batch of images (the same
// classifyExamples + decide() that predict runs) and generate a chat answer
// (the policy's encodeChat + LocalRollout, as `vlm-grpo generate`). Model
// work is serialized: one batch or chat generation at a time.
import path from "node:path";
import type { ChatMessage } from "../data/prompt.js";
import { type Classification, classifyExamples } from "../policy/classify.js";
import { collatePrompts, disposePromptBatch } from "../policy/collate.js";
import type { DecisionRule } from "../policy/decide.js";
import { disposeEncoded } from "../policy/encoder.js";
import { MODEL_CARD_FILE, readPolicyCard } from "../policy/model_card.js";
import { loadPolicy, type Policy } from "../policy/policy.js";
import { LocalRollout } from "../policy/rollout.js";
import { Generator } from "../torch/index.js";
import { resolveRule, type ThresholdRequest } from "./threshold_source.js";

export interface EngineOptions {
  modelDir: string;
  adapterDir?: string;
  device?: string;
  dtype?: "float32" | "bfloat16";
  maxPixels: number;
  maxNewTokens: number;
  maxBatch: number;
  threshold: ThresholdRequest;
}

export interface ChatRequest {
  messages: ChatMessage[];
  images: Uint8Array[];
  maxTokens: number;
  temperature: number;
  topP: number;
  seed: number;
}

export interface ChatResult {
  text: string;
  promptTokens: number;
  completionTokens: number;
  finishReason: "stop" | "length";
}

export class Engine {
  private chain: Promise<unknown> = Promise.resolve();

  private constructor(
    readonly policy: Policy,
    readonly rule: DecisionRule,
    /** The name answers carry (the model folder's name, with the adapter's). */
    readonly modelName: string,
    private readonly opts: EngineOptions,
  ) {}

  static async load(opts: EngineOptions): Promise<Engine> {
    const cardDir = readPolicyCard(opts.modelDir, opts.adapterDir).dir;
    const policy = await loadPolicy({ modelDir: opts.modelDir, adapterDir: opts.adapterDir, prompt: {}, device: opts.device, dtype: opts.dtype, imageCache: false, maxPixels: opts.maxPixels });
    try {
      const rule = resolveRule(policy.card, policy.prompt.categories, opts.threshold, path.join(cardDir, MODEL_CARD_FILE));
      const name = path.basename(path.resolve(opts.modelDir)) + (opts.adapterDir ? `+${path.basename(path.resolve(opts.adapterDir))}` : "");
      return new Engine(policy, rule, name, opts);
    } catch (e) {
      policy.dispose();
      throw e;
    }
  }

  get categories(): readonly string[] {
    return this.policy.prompt.categories;
  }

  /** Where the threshold came from, as answers say it. */
  get thresholdSource(): string {
    return this.rule.kind === "answer" ? "answer (no threshold: the model's answer decides)" : this.rule.source;
  }

  private exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.chain.then(fn, fn);
    this.chain = run.catch(() => {});
    return run;
  }

  /** Classifies images in one classifyExamples call; result i is images[i]'s (an unreadable image gets `error`). */
  classify(images: { id: string; bytes: Uint8Array }[]): Promise<Classification[]> {
    return this.exclusive(() =>
      classifyExamples(
        this.policy,
        images.map((x) => ({ id: x.id, image: { bytes: x.bytes, name: x.id }, labels: [], source: { file: x.id } })),
        { batchSize: Math.max(images.length, 1), maxNewTokens: this.opts.maxNewTokens, onImageError: "report" },
      ),
    );
  }

  /** One generated answer for a chat with images (greedy at temperature 0). */
  chat(req: ChatRequest): Promise<ChatResult> {
    return this.exclusive(async () => {
      const p = this.policy;
      const encoded = await p.encoder.encodeChat(req.messages, req.images, "chat");
      try {
        const batch = collatePrompts([encoded], p.padTokenId);
        try {
          const [c] = await new LocalRollout(p).rollout({
            batch,
            numGenerations: 1,
            maxNewTokens: req.maxTokens,
            doSample: req.temperature > 0,
            temperature: req.temperature > 0 ? req.temperature : 1,
            topP: req.topP,
            generator: new Generator(req.seed),
          });
          return { text: c.text, promptTokens: encoded.ids.length, completionTokens: c.tokenIds.length, finishReason: c.finishReason === "length" ? "length" : "stop" };
        } finally {
          disposePromptBatch(batch);
        }
      } finally {
        disposeEncoded([encoded]);
      }
    });
  }

  dispose(): void {
    this.policy.dispose();
  }
}

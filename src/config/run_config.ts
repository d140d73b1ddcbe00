// The run config: one schema for every command (sft, grpo, eval, demo), in
// sections, so one YAML file can describe a whole pipeline and the CLI can
// override any key with a dotted flag (--grpo.beta 0.04). Names follow TRL's
// GRPOConfig where a concept is shared (num_generations, epsilon_high,
// scale_rewards, loss_type, mask_truncated_completions, ...).
//
// This schema is the single source of truth for every key's default:
// configs/*.yaml may only set keys it declares (test/config/run_configs.test.ts
// validates them), `vlm-grpo <command> --help` prints its defaults, and
// configs/defaults.yaml is generated from it (a test checks it is current).
import { DEFAULT_SYSTEM_PROMPT, DEFAULT_USER_PROMPT } from "../data/prompt.js";
import { SYNTH_DEFAULTS } from "../data/synth/writer.js";
import { type Infer, s } from "./schema.js";

const schedule = (dflt: "constant" | "constant_with_warmup" | "linear" | "cosine") =>
  s.string({ enum: ["constant", "constant_with_warmup", "linear", "cosine"] as const, default: dflt, doc: "learning-rate schedule (HF transformers' multipliers), with warmup_ratio warmup" });

const rewardOptionValue = s.union([s.number(), s.string(), s.boolean()]);

export const rewardSpecSchema = s.object({
  name: s.optional(s.string({ doc: "built-in reward: recall, format or category_bonus (or a name for a user module's reward)" })),
  module: s.optional(s.string({ doc: "user reward: a .js/.mjs module path, relative to the config file" })),
  export: s.optional(s.string({ doc: "the module's export to call (default: default)" })),
  weight: s.optional(s.number({ doc: "weight in the total reward" })),
  options: s.optional(s.record(rewardOptionValue, { doc: "options of the reward, e.g. {truePositive: 1, falseNegative: -1}" })),
});

export const runConfigSchema = s.object({
  model: s.string({ default: "", doc: "model folder (HF format: config.json, safetensors, tokenizer, processor files)" }),
  output_dir: s.string({ default: "runs/run", doc: "where checkpoints, logs and the final model go" }),
  seed: s.number({ int: true, default: 0, doc: "seed of data order, sampling, dropout and LoRA init" }),
  device: s.string({ default: "cpu", doc: "cpu, cuda or cuda:N" }),
  dtype: s.string({ enum: ["float32", "bfloat16"] as const, default: "float32", doc: "weights' compute dtype; bfloat16 halves memory (CPU with AVX-512 bf16, or CUDA)" }),
  threads: s.optional(s.number({ int: true, min: 1, doc: "intra-op threads (default: available cores, or VLM_NUM_THREADS)" })),
  stop_timeout_s: s.number({
    min: 1,
    max: 2_000_000,
    default: 60,
    doc: "after a first SIGINT/SIGTERM the run finishes its step and saves a checkpoint, then exits 130/143; if that takes longer than this many seconds it exits anyway (a second signal exits at once)",
  }),
  image_cache: s.object(
    {
      max_mb: s.union([s.number({ min: 0 }), s.string({ enum: ["auto"] as const })], {
        default: "auto",
        doc: "byte budget of the processed-image cache in MiB (least recently used images are evicted); 0 = no cache; auto = 20% of the memory this process may use (cgroup limit or physical RAM), at most 16 GiB",
      }),
      compact: s.boolean({
        default: true,
        doc: "store cached pixels as 8-bit (at most 256 distinct values) or 16-bit (at most 32768) indices into the image's own palette of float values; exact, every value comes back bit for bit; 4x smaller for SmolVLM's processor",
      }),
    },
    { doc: "the prompt encoder's cache of processed images (decoded, resized, normalized), per example" },
  ),
  data: s.object({
    path: s.string({ default: "", doc: "manifest (.jsonl/.csv), image folder, or parquet file/folder" }),
    format: s.string({ enum: ["auto", "jsonl", "csv", "folder", "parquet"] as const, default: "auto", doc: "dataset format (auto: from the path)" }),
    categories: s.array(s.string({ nonEmpty: true }), { minItems: 1, default: ["nudity", "weapons"], doc: "offensive categories labels may use" }),
    label_map: s.record(s.string(), {
      default: {},
      doc: "dataset label -> category or safe, applied in every format before labels are checked, e.g. {neutral: safe, porn: nudity, weapon: weapons} (integer class labels by their text, e.g. {'0': safe})",
    }),
    on_bad_row: s.string({ enum: ["fail", "skip"] as const, default: "fail", doc: "bad rows: fail with a list, or skip and report them" }),
    split_seed: s.number({ int: true, default: 0, doc: "seed of the stratified train/val/test split (rows with a split keep it)" }),
    val_fraction: s.number({ min: 0, max: 1, default: 0.1, doc: "share of rows without a split that go to val" }),
    test_fraction: s.number({ min: 0, max: 1, default: 0.1, doc: "share of rows without a split that go to test" }),
  }),
  prompt: s.object({
    system_prompt: s.string({ default: DEFAULT_SYSTEM_PROMPT, doc: "system message ({categories} substituted); empty for none" }),
    user_prompt: s.string({ default: DEFAULT_USER_PROMPT, doc: "user text after the image; must contain {categories}" }),
    allow_think: s.boolean({ default: false, doc: "invite a <think>...</think> block before the answer" }),
  }),
  lora: s.object({
    enabled: s.boolean({ default: true, doc: "train LoRA adapters (false: full fine-tuning)" }),
    rank: s.number({ int: true, min: 1, default: 8, doc: "adapter rank r" }),
    alpha: s.number({ min: 0, default: 16, doc: "scaling numerator (scaling = alpha / r)" }),
    dropout: s.number({ min: 0, max: 0.99, default: 0.05, doc: "dropout on the adapter input" }),
    target_modules: s.optional(s.array(s.string(), { minItems: 1, doc: "decoder Linear layer names to adapt (default: the model family's usual targets, e.g. q/k/v/o/gate/up/down_proj)" })),
    include_vision: s.boolean({ default: false, doc: "also adapt the vision tower" }),
    include_connector: s.boolean({ default: false, doc: "also adapt the connector's projection" }),
  }),
  sft: s.object({
    epochs: s.number({ min: 0, default: 1, doc: "passes over the train split (fractions allowed)" }),
    max_steps: s.number({ int: true, min: 0, default: 0, doc: "optimizer steps; 0 = from epochs" }),
    micro_batch_size: s.number({ int: true, min: 1, default: 4, doc: "examples per forward/backward" }),
    grad_accum: s.number({ int: true, min: 1, default: 1, doc: "micro-batches per optimizer step" }),
    lr: s.number({ min: 0, default: 2e-4, doc: "peak learning rate (AdamW)" }),
    weight_decay: s.number({ min: 0, default: 0, doc: "AdamW decoupled weight decay" }),
    schedule: schedule("cosine"),
    warmup_ratio: s.number({ min: 0, max: 1, default: 0.05, doc: "share of steps spent warming up" }),
    max_grad_norm: s.number({ min: 0, default: 1, doc: "global-norm gradient clipping (0 = off)" }),
    augment: s.string({ enum: ["none", "hflip"] as const, default: "none", doc: "image augmentation: hflip mirrors each training image with probability 1/2, drawn per step from the seed" }),
    freeze_vision: s.boolean({ default: true, doc: "full fine-tuning: keep the vision tower frozen" }),
    eval_every: s.number({ int: true, min: 0, default: 0, doc: "validate every N steps (0 = at the end only)" }),
    eval_examples: s.number({ int: true, min: 0, default: 64, doc: "val examples per validation (0 = all)" }),
    save_every: s.number({ int: true, min: 0, default: 0, doc: "checkpoint every N steps (0 = at the end only)" }),
    keep_last: s.number({ int: true, min: 0, default: 2, doc: "checkpoints kept (0 = all)" }),
    log_every: s.number({ int: true, min: 1, default: 10, doc: "log metrics every N steps" }),
  }),
  grpo: s.object({
    steps: s.number({ int: true, min: 1, default: 100, doc: "optimizer steps" }),
    prompts_per_step: s.number({ int: true, min: 1, default: 4, doc: "prompts (images) per step; each gets num_generations completions" }),
    num_generations: s.number({ int: true, min: 2, default: 8, doc: "G: completions sampled per prompt" }),
    temperature: s.number({ min: 0, default: 1, doc: "sampling temperature" }),
    top_p: s.number({ min: 0, max: 1, default: 1, doc: "nucleus sampling" }),
    top_k: s.number({ int: true, min: 0, default: 0, doc: "top-k sampling (0 = off)" }),
    max_completion_length: s.number({ int: true, min: 1, default: 24, doc: "maximum completion tokens" }),
    lr: s.number({ min: 0, default: 5e-5, doc: "peak learning rate (AdamW)" }),
    weight_decay: s.number({ min: 0, default: 0, doc: "AdamW decoupled weight decay" }),
    schedule: schedule("constant"),
    warmup_ratio: s.number({ min: 0, max: 1, default: 0, doc: "share of steps spent warming up" }),
    max_grad_norm: s.number({ min: 0, default: 1, doc: "global-norm gradient clipping (0 = off)" }),
    freeze_vision: s.boolean({ default: true, doc: "full fine-tuning: keep the vision tower frozen (false: the policy gradient reaches the image features too)" }),
    beta: s.number({ min: 0, default: 0, doc: "KL coefficient to the reference (base weights, LoRA off); 0 = no KL" }),
    use_bias_correction_kl: s.boolean({
      default: true,
      doc: "multiply the per-token KL by the importance ratio exp(logp - old) (TRL's use_bias_correction_kl, default on there too): an unbiased reverse-KL gradient; changes the KL gradient even on-policy, where the ratio is 1; no effect when beta is 0",
    }),
    epsilon: s.number({ min: 0, default: 0.2, doc: "lower clip range of the ratio" }),
    epsilon_high: s.optional(s.number({ min: 0, doc: "upper clip range (default: epsilon)" })),
    loss_type: s.string({ enum: ["grpo", "bnpo", "dr_grpo", "dapo"] as const, default: "dapo", doc: "loss aggregation (TRL's loss_type)" }),
    scale_rewards: s.string({
      enum: ["group", "batch", "none"] as const,
      default: "batch",
      doc: "advantage scaling: by the group's reward std (TRL's default), the batch's, or none. Default batch: within a group every completion shares one label, so group scaling maps TP/FN and TN/FP alike to +-1 and erases the reward's asymmetry",
    }),
    num_iterations: s.number({ int: true, min: 1, default: 1, doc: "optimizer passes per generation batch (old log-probs when > 1)" }),
    mask_truncated_completions: s.boolean({ default: false, doc: "drop completions that hit max_completion_length from the loss" }),
    stratify: s.boolean({ default: true, doc: "label-stratified prompt batches (offensive and safe in each step)" }),
    zero_variance: s.string({ enum: ["keep", "drop", "resample"] as const, default: "keep", doc: "groups whose rewards all agree: keep (no signal), drop from the loss, or resample new prompts" }),
    resample_attempts: s.number({ int: true, min: 0, default: 2, doc: "zero_variance=resample: extra prompt draws per step" }),
    group_sharing: s.boolean({ default: true, doc: "compute vision features and the prompt's KV cache once per group" }),
    sampling_streams: s.string({
      enum: ["rank", "prompt"] as const,
      default: "rank",
      doc: "random streams of the rollouts: rank = one per process, all its prompts sampled in one batch (fastest); prompt = one per prompt, seeded by (seed, step, prompt), each group sampled on its own, so completions do not depend on the number of processes",
    }),
    save_every: s.number({ int: true, min: 0, default: 0, doc: "checkpoint every N steps (0 = at the end only)" }),
    keep_last: s.number({ int: true, min: 0, default: 2, doc: "checkpoints kept (0 = all)" }),
    log_every: s.number({ int: true, min: 1, default: 1, doc: "log metrics every N steps" }),
    on_stall: s.string({
      enum: ["stop", "warn"] as const,
      default: "stop",
      doc: "when GRPO is not learning for stall_steps steps in a row (every completion unparseable, every group's rewards equal, or a zero gradient): stop with an error (exit code 3, no final model) or warn and go on",
    }),
    stall_steps: s.number({ int: true, min: 1, default: 10, doc: "consecutive steps without a learning signal that count as a stall (see on_stall)" }),
    eval_every: s.number({
      int: true,
      min: 0,
      default: 0,
      doc: "held-out eval (recall, FPR, unparseable rate; greedy, with eval.batch_size, eval.max_new_tokens, eval.unparseable_as) on the val split every N steps, logged as eval/*; 0 = only at the end (final_eval)",
    }),
    eval_examples: s.number({ int: true, min: 0, default: 64, doc: "val examples per held-out eval: the same seeded sample each time (0 = the whole val split)" }),
    final_eval: s.boolean({ default: true, doc: "run the held-out eval after the last step too" }),
    select_best: s.boolean({
      default: false,
      doc: "the final model is the held-out eval's best instead of the last step's: the highest val recall with val FPR <= select_max_fpr (none within: the lowest FPR); needs eval_every > 0",
    }),
    select_max_fpr: s.number({ min: 0, max: 1, default: 0.15, doc: "select_best's false-positive budget on the val split" }),
    log_completions_every: s.number({
      int: true,
      min: 0,
      default: 10,
      doc: "every N steps, write a few sampled completions (prompt id, label, text, reward per function, advantage) to completions.jsonl and TensorBoard text (0 = off)",
    }),
    log_completions_count: s.number({ int: true, min: 1, default: 4, doc: "completions written per logged step (one per prompt first, then further ones)" }),
    reward_timeout_s: s.number({
      min: 0.001,
      max: 2_000_000,
      default: 60,
      doc: "time limit of each call of a user reward module (each runs in its own worker thread); a call that does not return in time stops the run with an error naming the module",
    }),
    rewards: s.array(rewardSpecSchema, {
      default: [{ name: "recall" }, { name: "format" }],
      doc: "reward functions (weighted sum); built-in recall, format, category_bonus, or {module: ./my_reward.js}",
    }),
  }),
  eval: s.object({
    split: s.string({ enum: ["train", "val", "test"] as const, default: "test", doc: "split to evaluate" }),
    batch_size: s.number({ int: true, min: 1, default: 8, doc: "prompts per generation batch" }),
    max_new_tokens: s.number({ int: true, min: 1, default: 24, doc: "maximum answer tokens" }),
    max_examples: s.number({ int: true, min: 0, default: 0, doc: "evaluate at most N examples (0 = all)" }),
    target_recall: s.number({ min: 0, max: 1, default: 0.95, doc: "report the score threshold reaching this recall; the default threshold set saved with --save-thresholds" }),
    threshold_recalls: s.array(s.number({ min: 0, max: 1 }), { default: [0.9, 0.95, 0.99], doc: "other target recalls to choose threshold sets for (predict --target-recall picks one)" }),
    threshold_split: s.string({ enum: ["train", "val", "test", "none"] as const, default: "val", doc: "split the calibration is fitted and the thresholds are chosen on (then checked on eval.split); none: skip both" }),
    calibrate: s.boolean({ default: true, doc: "fit Platt scaling of the offensive score's logit on threshold_split (ECE and reliability diagram in the report)" }),
    min_support: s.number({ int: true, min: 1, default: 30, doc: "warn when a recall or FPR rests on fewer offensive or safe images than this" }),
    save_thresholds: s.boolean({ default: false, doc: "save the chosen thresholds and calibration into the evaluated model's vlm_grpo.json (also --save-thresholds)" }),
    unparseable_as: s.string({ enum: ["wrong", "safe", "offensive"] as const, default: "wrong", doc: "how unparseable answers count" }),
    report: s.boolean({ default: true, doc: "write report.html" }),
    unblur: s.boolean({ default: false, doc: "show thumbnails of offensive images unblurred in the report" }),
  }),
  distributed: s.object(
    {
      backend: s.string({ enum: ["auto", "gloo", "nccl"] as const, default: "auto", doc: "c10d backend: auto = nccl on CUDA, gloo on CPU" }),
      timeout_s: s.number({ min: 1, default: 600, doc: "rendezvous and per-collective timeout: a rank that hangs this long stops the others (PyTorch's default is 1800)" }),
      bucket_mb: s.number({ min: 0.001, default: 25, doc: "gradient all-reduce bucket size in MiB (DDP's bucket_cap_mb)" }),
      check_weights_every: s.number({ int: true, min: 0, default: 0, doc: "compare a checksum of the trainable weights across ranks every N steps, stopping on a mismatch (0 = off)" }),
    },
    { doc: "multi-process runs (torchrun, or --nproc N); ignored in one process" },
  ),
  serve: s.object(
    {
      host: s.string({ default: "127.0.0.1", doc: "address `vlm-grpo serve` listens on (0.0.0.0 for every interface)" }),
      port: s.number({ int: true, min: 0, max: 65535, default: 8080, doc: "its TCP port (0 = any free port)" }),
      max_batch: s.number({ int: true, min: 1, default: 8, doc: "images classified together in one forward; 1 = no batching" }),
      batch_wait_ms: s.number({ min: 0, default: 5, doc: "how long the first queued image waits for others to fill a batch" }),
      queue_max: s.number({ int: true, min: 1, default: 256, doc: "images waiting for the model; beyond this a request gets 429 with Retry-After" }),
      body_limit_mb: s.number({ min: 0.001, default: 20, doc: "largest request body in MiB (413 beyond)" }),
      max_pixels: s.number({ int: true, min: 1, default: 40_000_000, doc: "largest image (width x height from its header, checked before decoding; 413 beyond)" }),
      decode_timeout_ms: s.number({ min: 1, default: 2000, doc: "time allowed to read an image's header and decode it (422 beyond)" }),
      max_images: s.number({ int: true, min: 1, default: 32, doc: "images in one /v1/moderate request" }),
      cache_entries: s.number({ int: true, min: 0, default: 1024, doc: "classification results kept per sha256 of the image bytes (0 = no cache)" }),
      cache_ttl_s: s.number({ min: 0, default: 600, doc: "how long a cached classification stays valid" }),
      max_new_tokens: s.number({ int: true, min: 1, default: 24, doc: "answer tokens per moderation (as predict --max-new-tokens)" }),
      drain_timeout_s: s.number({ min: 0, default: 30, doc: "on SIGTERM, how long in-flight requests may finish before the process exits" }),
    },
    { doc: "`vlm-grpo serve`: the moderation HTTP server" },
  ),
  demo: s.object(
    {
      images: s.number({ int: true, min: 40, default: SYNTH_DEFAULTS.n, doc: "synthetic images drawn (as `data synth --n`)" }),
      image_size: s.number({ int: true, min: 16, default: SYNTH_DEFAULTS.imageSize, doc: "their width = height in pixels" }),
      offensive_rate: s.number({ min: 0, max: 1, default: SYNTH_DEFAULTS.offensiveRate, doc: "share of images with a category" }),
      hard_fraction: s.number({ min: 0, max: 1, default: SYNTH_DEFAULTS.hardFraction, doc: "share of each label group drawn as hard examples (look-alikes, small or partly hidden objects)" }),
      arch: s.string({ default: "idefics3", doc: "model family of the randomly initialized model (init-model --arch)" }),
      preset: s.string({ default: "tiny", doc: "its preset (init-model --preset)" }),
      vision_init: s.string({ enum: ["initializer_range", "siglip"] as const, default: "initializer_range", doc: "vision tower init (init-model --vision-init)" }),
      init_std: s.optional(s.number({ min: 1e-6, doc: "std of the normal init (init-model --init-std; default: the preset's)" })),
    },
    { doc: "`vlm-grpo demo` only: the synthetic data set and the model it starts from" },
  ),
});

export type RunConfig = Infer<typeof runConfigSchema>;
export type RewardSpecConfig = Infer<typeof rewardSpecSchema>;

// The demo's whole-run progress: which stage it is in and how long the rest
// will take, shown in each stage's header line and in front of the per-stage
// progress lines that SFT, GRPO and evaluation draw (through
// setProgressContext).
//
// Each stage has an expected cost in seconds, measured on the development
// machine (a quiet 2-core CPU) and given per unit of work (per SFT example
// pass, per GRPO step, per evaluated image). The tracker learns this
// machine's speed as it goes: speed = actual seconds / expected seconds over
// everything done so far (finished stages plus the finished share of the
// current one), and the time left = the current stage's remainder + the
// later stages' expected seconds x speed. The current stage's remainder
// comes from the share of it done: a stage made of several progress runs
// (evaluation: one per model) counts each run as an equal part.
import { formatDuration, type ProgressSnapshot } from "../io/progress.js";

export interface DemoStage {
  /** Short id, e.g. "sft". */
  key: string;
  /** Header text, e.g. "SFT warm-up". */
  title: string;
  /** Expected seconds on the reference machine (> 0). */
  expectedSeconds: number;
  /** Progress runs the stage draws (e.g. one per evaluated model); default 1. */
  parts?: number;
}

interface StageState {
  stage: DemoStage;
  started: number | null;
  finished: number | null;
  labels: string[];
  /** Fraction of the current part done (last snapshot). */
  partFraction: number;
}

export class DemoEta {
  private readonly stages: StageState[];
  private current = -1;
  private readonly t0: number;

  constructor(
    stages: DemoStage[],
    private readonly now: () => number = () => performance.now(),
  ) {
    if (stages.length === 0) throw new Error("DemoEta: no stages");
    for (const s of stages) {
      if (!(s.expectedSeconds > 0 && Number.isFinite(s.expectedSeconds))) throw new Error(`DemoEta: stage '${s.key}' needs expectedSeconds > 0, got ${s.expectedSeconds}`);
    }
    this.stages = stages.map((stage) => ({ stage, started: null, finished: null, labels: [], partFraction: 0 }));
    this.t0 = now();
  }

  /** Seconds since the tracker was made. */
  elapsed(): number {
    return (this.now() - this.t0) / 1000;
  }

  /** Ends the current stage (if any) and starts stage `key`; returns its header line. */
  begin(key: string): string {
    const i = this.stages.findIndex((s) => s.stage.key === key);
    if (i < 0) throw new Error(`DemoEta: unknown stage '${key}'`);
    const t = this.now();
    if (this.current >= 0 && this.stages[this.current].finished === null) this.stages[this.current].finished = t;
    this.current = i;
    this.stages[i].started = t;
    return `[${formatDuration(this.elapsed())} elapsed, ${this.leftText()}] demo ${i + 1}/${this.stages.length}: ${this.stages[i].stage.title}`;
  }

  /** Ends the last stage. */
  finish(): void {
    if (this.current >= 0 && this.stages[this.current].finished === null) this.stages[this.current].finished = this.now();
    this.current = -1;
  }

  /** Share of the current stage done, from the latest progress snapshot. */
  private stageFraction(s: StageState): number {
    const parts = s.stage.parts ?? 1;
    const done = Math.max(0, s.labels.length - 1) + s.partFraction;
    return Math.min(1, done / parts);
  }

  /** Seconds left for the whole demo; null before anything measurable happened. */
  secondsLeft(): number | null {
    const t = this.now();
    let actual = 0;
    let expectedDone = 0;
    for (const s of this.stages) {
      if (s.started === null) continue;
      const end = s.finished ?? t;
      const frac = s.finished !== null ? 1 : this.stageFraction(s);
      actual += (end - s.started) / 1000;
      expectedDone += s.stage.expectedSeconds * frac;
    }
    // Until a tenth of a second of expected work is done the speed is a guess: take the reference machine's.
    const speed = expectedDone > 0.1 ? actual / expectedDone : 1;
    let left = 0;
    this.stages.forEach((s, i) => {
      if (s.finished !== null) return;
      if (i === this.current) left += s.stage.expectedSeconds * (1 - this.stageFraction(s)) * speed;
      else if (s.started === null) left += s.stage.expectedSeconds * speed;
    });
    return left;
  }

  private leftText(): string {
    const left = this.secondsLeft();
    return left === null ? "time left unknown" : `about ${formatDuration(left)} left`;
  }

  /** For setProgressContext: records the snapshot as the current stage's progress; returns "demo 3/6 sft, about 2:10 left". */
  context(p: ProgressSnapshot): string {
    if (this.current < 0) return "";
    const s = this.stages[this.current];
    if (!s.labels.includes(p.label)) {
      s.labels.push(p.label);
      s.partFraction = 0;
    }
    if (s.labels[s.labels.length - 1] === p.label) s.partFraction = p.total > 0 ? Math.min(1, p.count / p.total) : 0;
    return `demo ${this.current + 1}/${this.stages.length} ${s.stage.key}, ${this.leftText()}`;
  }
}

/** The work the demo is asked to do. */
export interface DemoWork {
  /** Synthetic images. */
  n: number;
  /** Of them in the train and test splits. */
  train: number;
  test: number;
  sftEpochs: number;
  grpoSteps: number;
  /** Images GRPO's held-out evaluations answer over the run (every evaluation's val images summed); default 0. */
  grpoEvalImages?: number;
  /** The symmetric-reward GRPO run is added. */
  ablation: boolean;
  /** The model, in words (e.g. "'demo' idefics3"); the costs below are the demo's default model's, others are scaled by the speed the run measures. */
  model: string;
}

/**
 * Seconds per unit of work for the demo's default model ('demo' preset, 120 px
 * images), from the CPU time of demo runs on the 2-core development machine
 * with one intra-op thread (the machine was shared, so wall times were
 * longer; the tracker rescales these by the speed it measures as it goes):
 * synthesis per image, SFT per example pass, GRPO per step (prompts_per_step
 * x num_generations completions), evaluation per test image and model
 * (greedy answer + score), plus fixed start-up costs.
 */
export const DEMO_COSTS = {
  synthPerImage: 0.003,
  initSeconds: 1.5,
  sftPerExample: 0.011,
  grpoPerStep: 0.6,
  evalPerImage: 0.02,
  /** Loading a model folder, writing a checkpoint or the report (per stage). */
  stageOverhead: 1,
};

/** The demo's stages with their expected seconds. */
export function demoStages(w: DemoWork, costs = DEMO_COSTS): DemoStage[] {
  const { train, test } = w;
  const models = w.ablation ? 4 : 3;
  const grpoSeconds = costs.stageOverhead + w.grpoSteps * costs.grpoPerStep + (w.grpoEvalImages ?? 0) * costs.evalPerImage;
  const stages: DemoStage[] = [
    { key: "data", title: `synthesizing the stand-in dataset (${w.n.toLocaleString("en-US")} images)`, expectedSeconds: costs.stageOverhead + w.n * costs.synthPerImage },
    { key: "init", title: `initializing a ${w.model} model`, expectedSeconds: costs.initSeconds },
    { key: "sft", title: `SFT warm-up (${w.sftEpochs} epochs over ${train.toLocaleString("en-US")} images)`, expectedSeconds: costs.stageOverhead + train * w.sftEpochs * costs.sftPerExample },
    { key: "grpo", title: "GRPO with the recall-first reward (TP +1, FN -1, FP -0.2, TN +0.1)", expectedSeconds: grpoSeconds },
  ];
  if (w.ablation) stages.push({ key: "grpo_symmetric", title: "ablation: GRPO with a symmetric reward (+1/-1 both ways)", expectedSeconds: grpoSeconds });
  stages.push({ key: "eval", title: `evaluating ${models} models on the held-out test split`, expectedSeconds: costs.stageOverhead * models + test * models * costs.evalPerImage, parts: models });
  return stages;
}

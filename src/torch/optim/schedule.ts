// Learning-rate schedules with Hugging Face transformers' multipliers
// (transformers/optimization.py: get_constant_schedule, ..._with_warmup,
// get_linear_schedule_with_warmup, get_cosine_schedule_with_warmup), applied
// like torch's LambdaLR: lr = baseLr * multiplier(step), where step counts
// scheduler.step() calls (0 at construction).

export type ScheduleKind = "constant" | "constant_with_warmup" | "linear" | "cosine";
export const SCHEDULE_KINDS: readonly ScheduleKind[] = ["constant", "constant_with_warmup", "linear", "cosine"];

export interface ScheduleOptions {
  /** Steps of linear warmup from 0 to the base lr (ignored by "constant"). Default 0. */
  warmupSteps?: number;
  /** Steps at which "linear" reaches 0 and "cosine" ends its cycles (required by both). */
  totalSteps?: number;
  /** Cosine waves over the decay; 0.5 (the default) is a half wave from 1 down to 0. */
  numCycles?: number;
}

function checkOptions(kind: ScheduleKind, o: ScheduleOptions, where: string): { warmup: number; total: number; cycles: number } {
  if (!SCHEDULE_KINDS.includes(kind)) throw new Error(`${where}: unknown schedule '${kind}'; expected one of ${SCHEDULE_KINDS.join(", ")}`);
  const warmup = o.warmupSteps ?? 0;
  if (!Number.isInteger(warmup) || warmup < 0) throw new Error(`${where}: warmupSteps must be an integer >= 0, got ${o.warmupSteps}`);
  const needsTotal = kind === "linear" || kind === "cosine";
  if (needsTotal && (o.totalSteps === undefined || !Number.isInteger(o.totalSteps) || o.totalSteps <= 0)) {
    throw new Error(`${where}: schedule '${kind}' needs totalSteps, an integer > 0; got ${o.totalSteps}`);
  }
  const cycles = o.numCycles ?? 0.5;
  if (!Number.isFinite(cycles)) throw new Error(`${where}: numCycles must be a finite number, got ${o.numCycles}`);
  return { warmup, total: o.totalSteps ?? 0, cycles };
}

/**
 * The multiplier of the base learning rate at `step` (0-based), as the
 * transformers schedule of the same name computes it:
 *   warmup (step < warmupSteps): step / max(1, warmupSteps)
 *   constant: 1;  linear: max(0, (total - step) / max(1, total - warmup))
 *   cosine: max(0, 0.5 * (1 + cos(pi * numCycles * 2 * progress))),
 *           progress = (step - warmup) / max(1, total - warmup)
 */
export function lrMultiplier(kind: ScheduleKind, step: number, opts: ScheduleOptions = {}): number {
  const { warmup, total, cycles } = checkOptions(kind, opts, "lrMultiplier");
  if (!Number.isInteger(step) || step < 0) throw new Error(`lrMultiplier: step must be an integer >= 0, got ${step}`);
  if (kind === "constant") return 1;
  if (step < warmup) return step / Math.max(1, warmup);
  switch (kind) {
    case "constant_with_warmup":
      return 1;
    case "linear":
      return Math.max(0, (total - step) / Math.max(1, total - warmup));
    case "cosine": {
      const progress = (step - warmup) / Math.max(1, total - warmup);
      return Math.max(0, 0.5 * (1 + Math.cos(Math.PI * cycles * 2 * progress)));
    }
  }
}

/** The groups a scheduler drives: anything with a mutable `lr` per group. */
export interface HasParamGroups {
  readonly paramGroups: readonly { lr: number }[];
}

export interface LRSchedulerOptions extends ScheduleOptions {
  kind: ScheduleKind;
}

export interface LRSchedulerState {
  kind: ScheduleKind;
  warmupSteps: number;
  totalSteps: number | null;
  numCycles: number;
  /** scheduler.step() calls so far. */
  step: number;
  /** Each group's learning rate before scaling. */
  baseLrs: number[];
}

/**
 * Sets each group's lr to its base lr (the lr it had when the scheduler was
 * made) times the multiplier: at construction for step 0, then after each
 * step(). Call step() once after each optimizer.step(), as with torch's schedulers.
 */
export class LRScheduler {
  private readonly opts: LRSchedulerOptions;
  private baseLrs: number[];
  private stepCount = 0;

  constructor(
    private readonly optimizer: HasParamGroups,
    options: LRSchedulerOptions,
  ) {
    checkOptions(options.kind, options, "LRScheduler");
    this.opts = { ...options };
    this.baseLrs = optimizer.paramGroups.map((g) => g.lr);
    this.apply();
  }

  /** The multiplier at the current step. */
  multiplier(): number {
    return lrMultiplier(this.opts.kind, this.stepCount, this.opts);
  }

  /** Advances one step and updates the groups' learning rates. */
  step(): void {
    this.stepCount++;
    this.apply();
  }

  /** Steps taken so far. */
  get currentStep(): number {
    return this.stepCount;
  }

  /** Each group's learning rate as last set. */
  lastLr(): number[] {
    return this.optimizer.paramGroups.map((g) => g.lr);
  }

  stateDict(): LRSchedulerState {
    return {
      kind: this.opts.kind,
      warmupSteps: this.opts.warmupSteps ?? 0,
      totalSteps: this.opts.totalSteps ?? null,
      numCycles: this.opts.numCycles ?? 0.5,
      step: this.stepCount,
      baseLrs: [...this.baseLrs],
    };
  }

  /** Restores a saved state (schedule included) and sets the groups' learning rates for it. */
  loadStateDict(s: LRSchedulerState): void {
    const where = "LRScheduler.loadStateDict";
    const opts: LRSchedulerOptions = { kind: s.kind, warmupSteps: s.warmupSteps, totalSteps: s.totalSteps ?? undefined, numCycles: s.numCycles };
    checkOptions(s.kind, opts, where);
    if (!Number.isInteger(s.step) || s.step < 0) throw new Error(`${where}: step must be an integer >= 0, got ${s.step}`);
    const groups = this.optimizer.paramGroups.length;
    if (!Array.isArray(s.baseLrs) || s.baseLrs.length !== groups || s.baseLrs.some((x) => typeof x !== "number" || !Number.isFinite(x))) {
      throw new Error(`${where}: baseLrs must hold ${groups} finite numbers (one per parameter group), got ${JSON.stringify(s.baseLrs)}`);
    }
    Object.assign(this.opts, opts);
    this.baseLrs = [...s.baseLrs];
    this.stepCount = s.step;
    this.apply();
  }

  private apply(): void {
    const m = this.multiplier();
    this.optimizer.paramGroups.forEach((g, i) => {
      g.lr = this.baseLrs[i] * m;
    });
  }
}

// A GRPO run that is not learning, detected: for `stall_steps` consecutive
// steps
//   - every sampled completion was unparseable (batch/unparseable_rate = 1),
//   - every group's completions got the same reward, so every advantage is 0
//     (the zero-variance fraction of the round trained on = 1), or
//   - the gradient norm was 0 although the loss had groups to learn from.
// Any of them means the update cannot move the model toward the reward: a
// run that went on would print "done" and save its input model unchanged
// (with beta = 0) or merely pulled toward the reference. grpo.on_stall says
// whether that stops the run (TrainingStalledError, exit code 3, no final
// model) or is a warning.

/** The figures of one optimizer step that the detector reads. */
export interface StallSignals {
  step: number;
  /** Share of the trained round's groups whose rewards were all equal. */
  zeroVarianceFraction: number;
  /** Share of the round's completions the answer parser could not read. */
  unparseableRate: number;
  gradNorm: number;
  /** Groups that entered the loss. */
  lossGroups: number;
}

export type StallKind = "unparseable" | "zero_variance" | "zero_gradient";

export interface Stall {
  /** The conditions that held for `steps` consecutive steps, ending at `step`. */
  kinds: StallKind[];
  step: number;
  steps: number;
}

const KINDS: StallKind[] = ["unparseable", "zero_variance", "zero_gradient"];

/** Counts consecutive steps of each condition; reports when one reaches the limit. */
export class StallDetector {
  private readonly streak: Record<StallKind, number> = { unparseable: 0, zero_variance: 0, zero_gradient: 0 };
  constructor(readonly limit: number) {
    if (!Number.isInteger(limit) || limit < 1) throw new Error(`StallDetector: limit must be an integer >= 1, got ${limit}`);
  }

  /**
   * Records one step. Returns a Stall at the step where a condition's streak
   * reaches the limit (once per streak: it reports again only after the
   * condition broke and held for `limit` steps anew), else null.
   */
  observe(s: StallSignals): Stall | null {
    const holds: Record<StallKind, boolean> = {
      unparseable: s.unparseableRate >= 1,
      zero_variance: s.zeroVarianceFraction >= 1,
      zero_gradient: s.gradNorm === 0 && s.lossGroups > 0,
    };
    for (const k of KINDS) this.streak[k] = holds[k] ? this.streak[k] + 1 : 0;
    const reached = KINDS.filter((k) => this.streak[k] === this.limit);
    if (reached.length === 0) return null;
    // Name every condition that holds at least as long, so the message tells the whole story.
    return { kinds: KINDS.filter((k) => this.streak[k] >= this.limit), step: s.step, steps: this.limit };
  }
}

/** Thrown when GRPO stalls with grpo.on_stall: stop. The CLI exits with `exitCode`. */
export class TrainingStalledError extends Error {
  /** The `vlm-grpo grpo` exit code of a stalled run. */
  static readonly EXIT_CODE = 3;
  readonly exitCode = TrainingStalledError.EXIT_CODE;
  constructor(
    message: string,
    readonly stall: Stall,
  ) {
    super(message);
    this.name = "TrainingStalledError";
  }
}

/** What the user reads: which conditions held, what they mean, what to change. */
export interface StallContext {
  /** An example of what the model answered. */
  example?: string;
  meanReward: number;
  truncatedFraction: number;
  maxCompletionLength: number;
  temperature: number;
  numGenerations: number;
  zeroVarianceMode: string;
}

export function describeStall(stall: Stall, c: StallContext): string {
  const first = stall.step - stall.steps + 1;
  const span = stall.steps === 1 ? `at step ${stall.step}` : `for ${stall.steps} steps in a row (steps ${first}-${stall.step})`;
  const lines = [`GRPO is not learning: ${span}`];
  const ex = c.example !== undefined ? ` (e.g. ${JSON.stringify(c.example.length > 80 ? c.example.slice(0, 77) + "..." : c.example)})` : "";
  if (stall.kinds.includes("unparseable")) {
    lines.push(
      `- every sampled completion was unparseable${ex}: the model does not give an answer the parser reads. Warm it up with \`vlm-grpo sft\` first, check prompt.user_prompt` +
        (c.truncatedFraction > 0 ? `, or raise grpo.max_completion_length (now ${c.maxCompletionLength}; ${(100 * c.truncatedFraction).toFixed(0)}% of completions hit it)` : ""),
    );
  }
  if (stall.kinds.includes("zero_variance")) {
    const base = `- every group's completions got the same reward (mean ${c.meanReward.toFixed(3)}), so every advantage was 0 and the loss has nothing to learn from`;
    lines.push(
      stall.kinds.includes("unparseable")
        ? `${base} (a consequence of the above)`
        : `${base}. Raise grpo.temperature (now ${c.temperature}) or grpo.num_generations (now ${c.numGenerations})` +
            (c.zeroVarianceMode !== "resample" ? ", set grpo.zero_variance: resample" : "") +
            ", or add a reward that tells completions apart; if the model already answers these prompts correctly, it has converged on this data",
    );
  }
  if (stall.kinds.includes("zero_gradient")) lines.push("- the gradient norm was 0 although the loss had groups to learn from: the updates did not change the model");
  return lines.join("\n");
}

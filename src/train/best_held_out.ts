// grpo.select_best: keep the weights of the held-out evaluation that best
// fits a false-positive budget, and make them the final model (as
// transformers' load_best_model_at_end with a metric of our own). The
// criterion is a moderation team's: the highest val recall among the
// evaluations whose val FPR is within grpo.select_max_fpr (ties: the lower
// FPR); when none is, the lowest FPR (ties: the higher recall), with a
// warning. The best weights live in <runDir>/best/ (written atomically,
// with held_out.json naming their step and figures), so a resumed run
// still knows them.
import fs from "node:fs";
import path from "node:path";
import type { RunConfig } from "../config/run_config.js";
import { writeFolderAtomic } from "../io/atomic.js";
import type { Policy } from "../policy/policy.js";
import { readJson } from "./checkpoint.js";
import { readTrainedWeights, writeTrainedWeights } from "./session.js";

export const BEST_DIR = "best";
const FIGURES = "held_out.json";

/** One held-out evaluation's figures. */
export interface HeldOutFigures {
  step: number;
  recall: number;
  fpr: number;
}

/** Whether `cand` beats `best` under the FPR budget `maxFpr` (see the file header). */
export function beatsBest(cand: HeldOutFigures, best: HeldOutFigures | null, maxFpr: number): boolean {
  if (best === null) return true;
  const inBudget = (x: HeldOutFigures) => x.fpr <= maxFpr;
  if (inBudget(cand) !== inBudget(best)) return inBudget(cand);
  if (inBudget(cand)) return cand.recall > best.recall || (cand.recall === best.recall && cand.fpr < best.fpr);
  return cand.fpr < best.fpr || (cand.fpr === best.fpr && cand.recall > best.recall);
}

export class BestHeldOut {
  private current: HeldOutFigures | null = null;
  private readonly dir: string;

  /** `write`: this process saves the weights (rank 0 of a data-parallel run). */
  constructor(
    runDir: string,
    private readonly maxFpr: number,
    private readonly write: boolean,
  ) {
    this.dir = path.join(runDir, BEST_DIR);
    const file = path.join(this.dir, FIGURES);
    if (fs.existsSync(file)) {
      const kept = readJson<HeldOutFigures>(file);
      this.current = { step: kept.step, recall: kept.recall, fpr: kept.fpr };
    }
  }

  /** The best evaluation so far (including those before a resume), or null. */
  get best(): HeldOutFigures | null {
    return this.current;
  }

  /** Whether the best so far is within the FPR budget. */
  get inBudget(): boolean {
    return this.current !== null && this.current.fpr <= this.maxFpr;
  }

  /** Takes an evaluation's figures; saves the policy's weights when they beat the best. Returns whether they did. */
  consider(figures: HeldOutFigures, policy: Policy): boolean {
    if (!beatsBest(figures, this.current, this.maxFpr)) return false;
    if (this.write) {
      writeFolderAtomic(this.dir, (tmp) => {
        writeTrainedWeights(policy, tmp);
        fs.writeFileSync(path.join(tmp, FIGURES), JSON.stringify({ ...figures, max_fpr: this.maxFpr }) + "\n");
      });
    }
    this.current = figures;
    return true;
  }

  /** Loads the best weights into the policy (nothing when there is no best). */
  restoreInto(policy: Policy, cfg: RunConfig): HeldOutFigures | null {
    if (this.current === null) return null;
    readTrainedWeights(this.dir, policy, cfg, `grpo.select_best: the best held-out weights in ${this.dir}`);
    return this.current;
  }
}

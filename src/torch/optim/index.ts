// Optimizers, gradient clipping and learning-rate schedules over the tensor
// engine: torch.optim semantics, updates as libtorch ops.
// The torch barrel loads every op family that attaches methods to Tensor.
import "../index.js";

export {
  Optimizer,
  type ParamGroup,
  type ParamGroupInput,
  type OptimizerStateMeta,
  type OptimizerStateDict,
  type StateTensorDict,
  STATE_FORMAT,
  stateTensorName,
} from "./optimizer.js";
export { AdamW, type AdamWOptions, ADAMW_DEFAULTS } from "./adamw.js";
export { SGD, type SGDOptions, SGD_DEFAULTS } from "./sgd.js";
export { clipGradNorm, type ClipGradNormOptions } from "./clip.js";
export { LRScheduler, type LRSchedulerOptions, type LRSchedulerState, lrMultiplier, SCHEDULE_KINDS, type ScheduleKind, type ScheduleOptions, type HasParamGroups } from "./schedule.js";

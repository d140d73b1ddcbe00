// Memory accounting for tests and long runs.
import { native } from "./native.js";

/** Number of tensor handles that are live (made and not released). */
export function liveTensors(): number {
  return native.liveTensors();
}

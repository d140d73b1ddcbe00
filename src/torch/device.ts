// Devices: "cpu" always; "cuda" / "cuda:N" when the libtorch in use has CUDA.
import { native } from "./native.js";

export type Device = "cpu" | "cuda" | `cuda:${number}`;

/** Number of CUDA devices libtorch sees (0 with a CPU-only libtorch). */
export function cudaDeviceCount(): number {
  return native.cudaDeviceCount();
}

export function cudaAvailable(): boolean {
  return cudaDeviceCount() > 0;
}

/** Validates a device string and checks that it exists. */
export function parseDevice(device: string): Device {
  if (device === "cpu") return "cpu";
  const m = /^cuda(?::(\d+))?$/.exec(device);
  if (!m) throw new Error(`invalid device '${device}': expected 'cpu', 'cuda' or 'cuda:N'`);
  const count = cudaDeviceCount();
  const index = m[1] === undefined ? 0 : Number(m[1]);
  if (index >= count) {
    throw new Error(
      count === 0
        ? `device '${device}' requested but this libtorch has no CUDA devices (build against a CUDA libtorch: LIBTORCH_USE_PYTORCH=1)`
        : `device '${device}' requested but only ${count} CUDA device(s) exist`,
    );
  }
  return device as Device;
}

/** Devices to run device-parametrized tests on: cpu, plus cuda when present. */
export function availableDevices(): Device[] {
  return cudaAvailable() ? ["cpu", "cuda"] : ["cpu"];
}

/** Waits for queued kernels on a device (a no-op on CPU); for timings. */
export function synchronize(device: Device = "cpu"): void {
  native.synchronize(device);
}

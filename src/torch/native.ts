// The whole native surface, declared once. Nothing above src/torch touches
// these types; everything else goes through Tensor and the functions here.
import fs from "node:fs";
import { createRequire } from "node:module";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

/** An opaque tensor handle owned by the addon (a tagged N-API External). */
export type TensorHandle = { readonly __tensorHandle: unique symbol };
/** An opaque RNG generator handle. */
export type GeneratorHandle = { readonly __generatorHandle: unique symbol };
/** An opaque c10d process-group handle. */
export type ProcessGroupHandle = { readonly __processGroupHandle: unique symbol };
/** An opaque handle of an async collective in flight (pgAllReduceAsync). */
export type WorkHandle = { readonly __workHandle: unique symbol };

export interface NativeVersion {
  torch: string;
  major: number;
  minor: number;
  patch: number;
  gloo: boolean;
  nccl: boolean;
  cxx11Abi: boolean;
  parallelInfo: string;
}

/** Any value an op argument may carry across the boundary. */
export type NativeArg =
  | TensorHandle
  | GeneratorHandle
  | number
  | boolean
  | string
  | null
  | undefined
  | { float: number }
  | ReadonlyArray<number | boolean | TensorHandle | null>;

/** Options of pgInit, every field resolved (see src/torch/distributed.ts). */
export interface NativePgOptions {
  backend: string;
  rank: number;
  worldSize: number;
  masterAddr: string;
  masterPort: number;
  timeoutMs: number;
  /** This process runs the TCPStore server. */
  hostStore: boolean;
  /** Prefix of every store key ("" for none). */
  storePrefix: string;
}

export interface NativeBinding {
  // tensor.cpp
  fromBuffer(data: ArrayBufferView | ArrayBuffer, dtype: number, shape: readonly number[], device?: string): TensorHandle;
  toBuffer(h: TensorHandle): ArrayBuffer;
  release(h: TensorHandle): void;
  isReleased(h: TensorHandle): boolean;
  liveTensors(): number;
  meta(h: TensorHandle): [number[], number, string, boolean];
  item(h: TensorHandle): number | boolean;
  scalarTensor(value: number | bigint | boolean, dtype: number, device?: string): TensorHandle;
  sameTensor(a: TensorHandle, b: TensorHandle): boolean;
  dataPtr(h: TensorHandle): number;
  // dispatch.cpp
  findOp(name: string, overload: string): number | null;
  opSchema(id: number): string;
  callOp(id: number, mode: 0 | 1, ...args: NativeArg[]): unknown;
  // autograd.cpp
  setRequiresGrad(h: TensorHandle, on: boolean): void;
  grad(h: TensorHandle): TensorHandle | null;
  setGrad(h: TensorHandle, g: TensorHandle | null): void;
  backward(outputs: TensorHandle[], grads: (TensorHandle | null)[] | null, retainGraph: boolean, createGraph: boolean): void;
  isLeaf(h: TensorHandle): boolean;
  gradFnName(h: TensorHandle): string | null;
  isGradEnabled(): boolean;
  setGradEnabled(on: boolean): void;
  getAutocast(deviceType: "cpu" | "cuda"): [boolean, number];
  setAutocast(deviceType: "cpu" | "cuda", enabled: boolean, dtype: number): void;
  // allocator.cpp
  allocatorInfo(): { glibc: boolean; mmapThreshold: number | null; trimThreshold: number | null };
  mallocTrim(): boolean;
  cloneOutsideHeap(t: TensorHandle): TensorHandle;
  // attention.cpp
  /** softmax(q k^T * scale) v per (batch, head), CPU float32/float64, no mask; differentiable in q, k, v. */
  fusedCpuAttention(q: TensorHandle, k: TensorHandle, v: TensorHandle, scale: number): TensorHandle;
  // runtime.cpp
  version(): NativeVersion;
  getNumThreads(): number;
  setNumThreads(n: number): void;
  /** OpenBLAS's own thread pool; false when the loaded BLAS has no openblas_set_num_threads. */
  setBlasThreads(n: number): boolean;
  /** null when the loaded BLAS has no openblas_get_num_threads. */
  getBlasThreads(): number | null;
  cudaDeviceCount(): number;
  synchronize(device: string): void;
  manualSeed(seed: number): void;
  createGenerator(seed: number, device?: string): GeneratorHandle;
  generatorGetState(g: GeneratorHandle | null): TensorHandle;
  generatorSetState(g: GeneratorHandle | null, state: TensorHandle): void;
  generatorSeed(g: GeneratorHandle | null): number;
  // fileio.cpp
  readIntoTensor(path: string, offset: number, dtype: number, shape: readonly number[]): TensorHandle;
  writeTensor(fd: number, h: TensorHandle): number;
  // distributed.cpp (always registered; pgInit rejects a backend that was not compiled in)
  /** Connects off the JS thread; rank 0 hosts the TCPStore. */
  pgInit(options: NativePgOptions): Promise<ProcessGroupHandle>;
  /** In place; blocks until every rank took part. */
  pgAllReduce(pg: ProcessGroupHandle, tensor: TensorHandle, op: "sum" | "avg" | "max" | "min" | "product"): void;
  pgBroadcast(pg: ProcessGroupHandle, tensor: TensorHandle, src: number): void;
  /** One new tensor per rank, in rank order. */
  pgAllGather(pg: ProcessGroupHandle, tensor: TensorHandle): TensorHandle[];
  pgBarrier(pg: ProcessGroupHandle): void;
  /** Starts an all-reduce on the backend's threads; the handle owns the tensors until pgWorkWait. */
  pgAllReduceAsync(pg: ProcessGroupHandle, tensor: TensorHandle, op: "sum" | "avg" | "max" | "min" | "product"): WorkHandle;
  /** Blocks until the all-reduce is done (throws if it failed or timed out), then writes the result back. Once per handle. */
  pgWorkWait(work: WorkHandle): void;
  pgWorkDone(work: WorkHandle): boolean;
  /** The rendezvous store (strings); pgStoreGet does not wait for a missing key (null). */
  pgStoreSet(pg: ProcessGroupHandle, key: string, value: string): void;
  pgStoreGet(pg: ProcessGroupHandle, key: string): string | null;
  pgStoreAdd(pg: ProcessGroupHandle, key: string, n: number): number;
  pgInfo(pg: ProcessGroupHandle): { backend: string; rank: number; worldSize: number; address: string; destroyed: boolean };
  /** Idempotent; later collectives on the handle throw. */
  pgDestroy(pg: ProcessGroupHandle): void;
}

/**
 * The addon to load: VLM_TORCH_ADDON (a .node file), else vlm_torch.node in
 * VLM_NATIVE_BUILD (a build folder, relative to the project root; default
 * native/build), the variable native/build.mjs builds into.
 */
function addonPath(): string {
  if (process.env.VLM_TORCH_ADDON) return process.env.VLM_TORCH_ADDON;
  // dist/src/torch/native.js -> <root>
  const root = fileURLToPath(new URL("../../../", import.meta.url));
  return path.resolve(root, process.env.VLM_NATIVE_BUILD || "native/build", "vlm_torch.node");
}

function load(): NativeBinding {
  const file = addonPath();
  if (!fs.existsSync(file)) {
    const how = process.env.VLM_NATIVE_BUILD ? `VLM_NATIVE_BUILD=${process.env.VLM_NATIVE_BUILD} node native/build.mjs (with the LIBTORCH / LIBTORCH_USE_PYTORCH it was meant for)` : "'npm run build:native' (or 'npm ci')";
    throw new Error(`vlm-grpo: the native addon ${file} is not built; run ${how}`);
  }
  const require = createRequire(import.meta.url);
  const binding = require(file) as NativeBinding;
  // Debian's libtorch starts with one intra-op thread; use the available
  // cores unless the user says otherwise (VLM_NUM_THREADS or setNumThreads).
  const threads = Number(process.env.VLM_NUM_THREADS) || os.availableParallelism();
  binding.setNumThreads(threads);
  // OpenBLAS keeps its own pool (default: the cores); VLM_BLAS_THREADS sets it (see setBlasThreads).
  const blas = Number(process.env.VLM_BLAS_THREADS);
  if (blas >= 1) binding.setBlasThreads(blas);
  return binding;
}

export const native: NativeBinding = load();

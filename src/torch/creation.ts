// Factory functions: tensors from JS data, constants, ranges and random draws.
import { type Device } from "./device.js";
import { type AnyTypedArray, type DType, dtypeCode, ELEMENT_SIZE } from "./dtype.js";
import { native, type GeneratorHandle } from "./native.js";
import { callT, type NestedArray, Tensor, wrapHandle } from "./tensor.js";

export interface TensorOptions {
  /** Element type; factory functions default to float32. */
  dtype?: DType;
  /** Device; default "cpu". */
  device?: Device;
  /** Track gradients for this (leaf) tensor; default false. */
  requiresGrad?: boolean;
}

function finish(t: Tensor, opts: TensorOptions): Tensor {
  if (opts.requiresGrad) t.requiresGrad_(true);
  return t;
}

const dev = (opts: TensorOptions): string => opts.device ?? "cpu";

function inferTypedDType(data: ArrayBufferView): DType {
  if (data instanceof Float32Array) return "float32";
  if (data instanceof Float64Array) return "float64";
  if (data instanceof BigInt64Array) return "int64";
  if (data instanceof Int32Array) return "int32";
  if (data instanceof Int16Array) return "int16";
  if (data instanceof Int8Array) return "int8";
  if (data instanceof Uint8Array) return "uint8";
  if (data instanceof Uint16Array) {
    throw new TypeError("tensor: Uint16Array data holds bfloat16 or float16 bit patterns; pass dtype 'bfloat16' or 'float16'");
  }
  throw new TypeError(
    `tensor: unsupported typed array ${data.constructor.name}; expected Float32Array, Float64Array, BigInt64Array, Int32Array, Int16Array, Int8Array, Uint8Array or Uint16Array (bfloat16/float16 bits)`,
  );
}

function flatten(data: NestedArray<number | boolean | bigint>, shape: number[], out: (number | boolean | bigint)[], depth: number): void {
  if (Array.isArray(data)) {
    if (shape.length <= depth) shape.push(data.length);
    else if (shape[depth] !== data.length) {
      throw new Error(`tensor: ragged nested array: expected length ${shape[depth]} at depth ${depth}, got ${data.length}`);
    }
    for (const x of data) flatten(x as NestedArray<number | boolean | bigint>, shape, out, depth + 1);
  } else {
    if (shape.length > depth) throw new Error(`tensor: ragged nested array: a number where an array of length ${shape[depth]} was expected`);
    const kind = typeof data;
    if (kind !== "number" && kind !== "boolean" && kind !== "bigint") {
      throw new TypeError(`tensor: expected numbers, booleans or bigints in nested arrays, got ${data === null ? "null" : kind} at element ${out.length}`);
    }
    out.push(data);
  }
}

function typedArrayFor(dtype: DType, n: number): AnyTypedArray {
  switch (dtype) {
    case "float64":
      return new Float64Array(n);
    case "int64":
      return new BigInt64Array(n);
    case "int32":
      return new Int32Array(n);
    case "int16":
      return new Int16Array(n);
    case "int8":
      return new Int8Array(n);
    case "uint8":
    case "bool":
      return new Uint8Array(n);
    default:
      return new Float32Array(n);
  }
}

/**
 * Makes a tensor from a scalar, nested arrays or a typed array.
 * Numbers default to float32, booleans to bool, bigints to int64; typed
 * arrays keep their own type. `shape` reshapes flat typed-array data.
 */
export function tensor(
  data: NestedArray<number | boolean | bigint> | AnyTypedArray,
  opts: TensorOptions & { shape?: readonly number[] } = {},
): Tensor {
  if (ArrayBuffer.isView(data)) {
    const src = data as AnyTypedArray;
    const shape = opts.shape ?? [src.length];
    const n = shape.reduce((a, b) => a * b, 1);
    if (n !== src.length) throw new RangeError(`tensor: shape [${shape.join(", ")}] has ${n} elements but the data has ${src.length}`);
    // Uint16Array carries raw half-precision bits; every other array is read
    // as its own type and then converted (so Float32Array -> bool means != 0).
    const isHalfBits = src instanceof Uint16Array && (opts.dtype === "bfloat16" || opts.dtype === "float16");
    const srcDType = isHalfBits ? opts.dtype! : inferTypedDType(src);
    let t = wrapHandle(native.fromBuffer(src, dtypeCode(srcDType), shape, dev(opts)));
    if (opts.dtype && opts.dtype !== srcDType) {
      const c = t.to(opts.dtype);
      t.dispose();
      t = c;
    }
    return finish(t, opts);
  }
  if (opts.shape) throw new Error("tensor: the shape option applies to typed-array data only; nested arrays carry their own shape");
  const shape: number[] = [];
  const flat: (number | boolean | bigint)[] = [];
  flatten(data, shape, flat, 0);
  const first = flat[0];
  const dtype: DType = opts.dtype ?? (typeof first === "boolean" ? "bool" : typeof first === "bigint" ? "int64" : "float32");
  const buf = typedArrayFor(dtype === "bfloat16" || dtype === "float16" ? "float32" : dtype, flat.length);
  if (buf instanceof BigInt64Array) {
    // Fractional numbers truncate toward zero, as torch.tensor([1.5], dtype=torch.int64) does.
    flat.forEach((v, i) => {
      if (typeof v === "bigint") buf[i] = v;
      else if (Number.isFinite(Number(v))) buf[i] = BigInt(Math.trunc(Number(v)));
      else throw new RangeError(`tensor: ${v} at element ${i} cannot be stored as int64`);
    });
  } else if (dtype === "bool") {
    // A bool byte must be 0 or 1; any other bit pattern is undefined in libtorch.
    flat.forEach((v, i) => (buf[i] = Number(v) !== 0 ? 1 : 0));
  } else {
    flat.forEach((v, i) => ((buf as Float32Array)[i] = Number(v)));
  }
  let t = wrapHandle(native.fromBuffer(buf, dtypeCode(buf instanceof Float32Array ? "float32" : dtype), shape, dev(opts)));
  if (t.dtype !== dtype) {
    const c = t.to(dtype);
    t.dispose();
    t = c;
  }
  return finish(t, opts);
}

/** A 0-d tensor holding one value. */
export function scalar(value: number | boolean | bigint, opts: TensorOptions = {}): Tensor {
  const dtype = opts.dtype ?? (typeof value === "boolean" ? "bool" : typeof value === "bigint" ? "int64" : "float32");
  return finish(wrapHandle(native.scalarTensor(value, dtypeCode(dtype), dev(opts))), opts);
}

/** Wraps raw little-endian bytes as a tensor (one copy). */
export function fromBytes(bytes: Uint8Array, dtype: DType, shape: readonly number[], opts: TensorOptions = {}): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  if (bytes.byteLength !== n * ELEMENT_SIZE[dtype]) {
    throw new RangeError(`fromBytes: shape [${shape.join(", ")}] of ${dtype} needs ${n * ELEMENT_SIZE[dtype]} bytes, got ${bytes.byteLength}`);
  }
  return finish(wrapHandle(native.fromBuffer(bytes, dtypeCode(dtype), shape, dev(opts))), opts);
}

const factoryArgs = (opts: TensorOptions) => [dtypeCode(opts.dtype ?? "float32"), null, dev(opts), null] as const;

export function zeros(shape: readonly number[], opts: TensorOptions = {}): Tensor {
  return finish(callT("aten::zeros", shape, ...factoryArgs(opts)), opts);
}
export function ones(shape: readonly number[], opts: TensorOptions = {}): Tensor {
  return finish(callT("aten::ones", shape, ...factoryArgs(opts)), opts);
}
export function empty(shape: readonly number[], opts: TensorOptions = {}): Tensor {
  return finish(callT("aten::empty.memory_format", shape, ...factoryArgs(opts)), opts);
}
export function full(shape: readonly number[], value: number | boolean, opts: TensorOptions = {}): Tensor {
  const dtype = opts.dtype ?? (typeof value === "boolean" ? "bool" : "float32");
  return finish(callT("aten::full", shape, typeof value === "number" ? { float: value } : value, ...factoryArgs({ ...opts, dtype })), opts);
}
export function eye(n: number, opts: TensorOptions = {}): Tensor {
  return finish(callT("aten::eye", n, ...factoryArgs(opts)), opts);
}
export function zerosLike(t: Tensor, opts: TensorOptions = {}): Tensor {
  return zeros(t.shape, { dtype: opts.dtype ?? t.dtype, device: opts.device ?? t.device, requiresGrad: opts.requiresGrad });
}
export function onesLike(t: Tensor, opts: TensorOptions = {}): Tensor {
  return ones(t.shape, { dtype: opts.dtype ?? t.dtype, device: opts.device ?? t.device, requiresGrad: opts.requiresGrad });
}
export function fullLike(t: Tensor, value: number, opts: TensorOptions = {}): Tensor {
  return full(t.shape, value, { dtype: opts.dtype ?? t.dtype, device: opts.device ?? t.device, requiresGrad: opts.requiresGrad });
}

/** Values start, start+step, ... below end. Integer arguments give int64 unless dtype is set. */
export function arange(end: number, opts?: TensorOptions): Tensor;
export function arange(start: number, end: number, step?: number, opts?: TensorOptions): Tensor;
export function arange(a: number, b?: number | TensorOptions, c?: number, d?: TensorOptions): Tensor {
  let start = 0,
    end: number,
    step = 1,
    opts: TensorOptions = {};
  if (typeof b === "number") {
    start = a;
    end = b;
    step = c ?? 1;
    opts = d ?? {};
  } else {
    end = a;
    opts = b ?? {};
  }
  if (step === 0) throw new RangeError("arange: step must be non-zero");
  const allInt = Number.isInteger(start) && Number.isInteger(end) && Number.isInteger(step);
  const dtype = opts.dtype ?? (allInt ? "int64" : "float32");
  const f = (x: number) => (allInt ? x : { float: x });
  return finish(callT("aten::arange.start_step", f(start), f(end), f(step), dtypeCode(dtype), null, dev(opts), null), opts);
}

/** `steps` evenly spaced values from start to end inclusive. */
export function linspace(start: number, end: number, steps: number, opts: TensorOptions = {}): Tensor {
  return finish(callT("aten::linspace", { float: start }, { float: end }, steps, ...factoryArgs(opts)), opts);
}

/** A seeded random stream, independent of the global one (see manualSeed). */
export class Generator {
  /** @internal */
  readonly _g: GeneratorHandle;
  constructor(seed: number, device: Device = "cpu") {
    this._g = native.createGenerator(seed, device);
  }
  get initialSeed(): number {
    return native.generatorSeed(this._g);
  }
  /** The full RNG state, as a uint8 tensor (for checkpoints). */
  getState(): Tensor {
    return wrapHandle(native.generatorGetState(this._g));
  }
  setState(state: Tensor): void {
    native.generatorSetState(this._g, state._h);
  }
}

export interface RandomOptions extends TensorOptions {
  /** Draw from this generator instead of the global one. */
  generator?: Generator;
}

/** Seeds the global CPU generator and every CUDA one (torch.manual_seed). */
export function manualSeed(seed: number): void {
  native.manualSeed(seed);
}
/** The global CPU generator's state (uint8 tensor), for exact resume. */
export function getRngState(): Tensor {
  return wrapHandle(native.generatorGetState(null));
}
export function setRngState(state: Tensor): void {
  native.generatorSetState(null, state._h);
}

// The generator-taking overloads draw on CPU (or the generator's device) and
// match torch.randn(..., generator=g) streams for the same seed.
export function randn(shape: readonly number[], opts: RandomOptions = {}): Tensor {
  return finish(callT("aten::randn.generator", shape, (opts.generator?._g ?? null) as never, ...factoryArgs(opts)), opts);
}
export function rand(shape: readonly number[], opts: RandomOptions = {}): Tensor {
  return finish(callT("aten::rand.generator", shape, (opts.generator?._g ?? null) as never, ...factoryArgs(opts)), opts);
}
/** Integers uniformly in [low, high). Default dtype int64. */
export function randint(low: number, high: number, shape: readonly number[], opts: RandomOptions = {}): Tensor {
  const o = { ...opts, dtype: opts.dtype ?? "int64" };
  return finish(callT("aten::randint.low_generator", low, high, shape, (opts.generator?._g ?? null) as never, ...factoryArgs(o)), opts);
}
/** A random permutation of 0..n-1 (int64). */
export function randperm(n: number, opts: RandomOptions = {}): Tensor {
  const o = { ...opts, dtype: opts.dtype ?? "int64" };
  return finish(callT("aten::randperm.generator", n, (opts.generator?._g ?? null) as never, ...factoryArgs(o)), opts);
}

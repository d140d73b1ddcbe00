// The Tensor class: a handle to a libtorch tensor plus metadata, data
// access, release and autograd. Op methods are attached by the files in
// ops/ (one family each) and declared there by module augmentation; import
// the package through src/torch/index.ts so that all of them are present.
import { type Device } from "./device.js";
import { type AnyTypedArray, type DType, DTYPE_CODE, dtypeCode, dtypeFromCode, isFloatingDType } from "./dtype.js";
import { native, type TensorHandle } from "./native.js";
import { type Scope, TENSOR_BRAND, track } from "./scope.js";

export type Shape = readonly number[];

/** Nested JS arrays of numbers or booleans. */
export type NestedArray<T> = T | NestedArray<T>[];

export class Tensor {
  /** @internal the native handle; use ops instead. */
  readonly _h: TensorHandle;
  /** @internal owning scope (see scope.ts). */
  _scope: Scope | null = null;
  private _shape: number[] | undefined;
  private _dtype: DType | undefined;
  private _device: Device | undefined;
  private _disposed = false;

  /** @internal Tensors are made by ops and factory functions, not by `new`. */
  constructor(handle: TensorHandle) {
    this._h = handle;
    track(this);
  }

  private loadMeta(getter: string): void {
    this.assertLive(getter);
    const [shape, code, device] = native.meta(this._h);
    this._shape = shape;
    this._dtype = dtypeFromCode(code);
    this._device = device as Device;
  }

  /**
   * Metadata is cached on first use, so without this check a disposed tensor
   * would keep answering shape/dtype/device from the cache and the mistake
   * would surface far away (or never).
   */
  private assertLive(getter: string): void {
    if (this._disposed) throw new Error(`Tensor.${getter}: tensor used after dispose (a released tensor: it was disposed, or the scope that made it ended)`);
  }

  get shape(): number[] {
    if (this._shape === undefined || this._disposed) this.loadMeta("shape");
    return this._shape!.slice();
  }
  get dtype(): DType {
    if (this._dtype === undefined || this._disposed) this.loadMeta("dtype");
    return this._dtype!;
  }
  get device(): Device {
    if (this._device === undefined || this._disposed) this.loadMeta("device");
    return this._device!;
  }
  get ndim(): number {
    if (this._shape === undefined || this._disposed) this.loadMeta("ndim");
    return this._shape!.length;
  }
  /** Size of one dimension (negative counts from the end). */
  size(dim: number): number {
    if (this._shape === undefined || this._disposed) this.loadMeta("size");
    const n = this._shape!.length;
    const d = dim < 0 ? dim + n : dim;
    if (d < 0 || d >= n) throw new RangeError(`size: dimension ${dim} out of range for a ${n}-d tensor`);
    return this._shape![d];
  }
  get numel(): number {
    if (this._shape === undefined || this._disposed) this.loadMeta("numel");
    return this._shape!.reduce((a, b) => a * b, 1);
  }
  get isFloatingPoint(): boolean {
    return isFloatingDType(this.dtype);
  }

  // ---- release ----------------------------------------------------------

  /** Frees the tensor's memory now. Using it afterwards is an error. */
  dispose(): void {
    if (this._disposed) return;
    this._disposed = true;
    if (this._scope) {
      this._scope.tensors.delete(this);
      this._scope = null;
    }
    native.release(this._h);
  }
  get isDisposed(): boolean {
    return this._disposed;
  }
  [Symbol.dispose](): void {
    this.dispose();
  }

  // ---- data -------------------------------------------------------------

  /**
   * The single element, as PyTorch's item() gives it: a boolean for a bool
   * tensor, a number for every other dtype (int64 beyond 2^53 loses
   * precision). Use itemNumber() where a number is needed whatever the dtype.
   */
  item(): number | boolean {
    return native.item(this._h);
  }

  /** The single element as a number; a bool tensor gives 1 or 0 (as toFlatArray does). */
  itemNumber(): number {
    return Number(native.item(this._h));
  }

  /**
   * Copies the elements back as a typed array (row-major). float16 and
   * bfloat16 come back widened to Float32Array, int64 as BigInt64Array,
   * bool as Uint8Array.
   */
  toTypedArray(): AnyTypedArray {
    this.assertLive("toTypedArray");
    const dtype = this.dtype;
    if (dtype === "bfloat16" || dtype === "float16") {
      const h = native.callOp(opIdOf("aten::_to_copy"), 0, this._h, DTYPE_CODE.float32) as TensorHandle;
      try {
        return new Float32Array(native.toBuffer(h));
      } finally {
        native.release(h);
      }
    }
    const buf = native.toBuffer(this._h);
    switch (dtype) {
      case "float32":
        return new Float32Array(buf);
      case "float64":
        return new Float64Array(buf);
      case "int64":
        return new BigInt64Array(buf);
      case "int32":
        return new Int32Array(buf);
      case "int16":
        return new Int16Array(buf);
      case "int8":
        return new Int8Array(buf);
      default:
        return new Uint8Array(buf);
    }
  }

  /** The raw bytes (little-endian, row-major) of the elements. */
  toBytes(): Uint8Array {
    this.assertLive("toBytes");
    return new Uint8Array(native.toBuffer(this._h));
  }

  /** Elements as a flat array of JS numbers (int64 converted to number). */
  toFlatArray(): number[] {
    const ta = this.toTypedArray();
    if (ta instanceof BigInt64Array) return Array.from(ta, (v) => Number(v));
    return Array.from(ta as ArrayLike<number>);
  }

  /** Elements as nested JS arrays (numbers, or booleans for bool tensors). */
  toList(): NestedArray<number | boolean> {
    const flat: (number | boolean)[] = this.dtype === "bool" ? this.toFlatArray().map((v) => v !== 0) : this.toFlatArray();
    const shape = this.shape;
    if (shape.length === 0) return flat[0];
    let pos = 0;
    const build = (d: number): NestedArray<number | boolean> => {
      const out: NestedArray<number | boolean>[] = [];
      for (let i = 0; i < shape[d]; i++) out.push(d === shape.length - 1 ? flat[pos++] : build(d + 1));
      return out;
    };
    return build(0);
  }

  toString(): string {
    if (this._disposed) return "Tensor(<disposed>)";
    return `Tensor(shape=[${this.shape.join(", ")}], dtype=${this.dtype}, device=${this.device})`;
  }

  // ---- autograd ---------------------------------------------------------

  get requiresGrad(): boolean {
    return native.meta(this._h)[3];
  }
  set requiresGrad(on: boolean) {
    native.setRequiresGrad(this._h, on);
  }
  /** Sets requiresGrad in place and returns this tensor. */
  requiresGrad_(on = true): this {
    native.setRequiresGrad(this._h, on);
    return this;
  }
  /** The accumulated gradient, as a new handle (null when none). */
  get grad(): Tensor | null {
    const g = native.grad(this._h);
    return g === null ? null : new Tensor(g);
  }
  set grad(g: Tensor | null) {
    native.setGrad(this._h, g === null ? null : g._h);
  }
  /** Computes gradients of this tensor with respect to the graph's leaves. */
  backward(gradient?: Tensor, options: { retainGraph?: boolean; createGraph?: boolean } = {}): void {
    native.backward([this._h], gradient ? [gradient._h] : null, options.retainGraph ?? false, options.createGraph ?? false);
  }
  get isLeaf(): boolean {
    return native.isLeaf(this._h);
  }
  /** Name of the autograd node that made this tensor (null for leaves). */
  get gradFn(): string | null {
    return native.gradFnName(this._h);
  }
  /** Whether two tensors are the same libtorch tensor (same TensorImpl). */
  isSameTensor(other: Tensor): boolean {
    return native.sameTensor(this._h, other._h);
  }
}

Object.defineProperty(Tensor.prototype, TENSOR_BRAND, { value: true });

// ---- op calls ------------------------------------------------------------

const opIds = new Map<string, number>();

/** Resolves "aten::name.overload" to a dispatcher id (cached). Throws if absent. */
export function opIdOf(qualified: string): number {
  let id = opIds.get(qualified);
  if (id === undefined) {
    const dot = qualified.indexOf(".", qualified.indexOf("::") + 2);
    const name = dot < 0 ? qualified : qualified.slice(0, dot);
    const overload = dot < 0 ? "" : qualified.slice(dot + 1);
    const found = native.findOp(name, overload);
    if (found === null) {
      throw new Error(`${qualified} is not available in libtorch ${native.version().torch}`);
    }
    id = found;
    opIds.set(qualified, id);
  }
  return id;
}

/** Whether libtorch has an operator (feature detection; see features.ts). */
export function hasOp(qualified: string): boolean {
  try {
    opIdOf(qualified);
    return true;
  } catch {
    return false;
  }
}

/** One argument of an op call: tensors are passed as handles. */
export type OpArg = Tensor | number | boolean | string | null | undefined | { float: number } | readonly (number | boolean)[] | readonly (Tensor | null)[];

function toNative(a: OpArg): unknown {
  if (a instanceof Tensor) return a._h;
  if (Array.isArray(a) && a.length > 0 && (a[0] instanceof Tensor || a[0] === null)) {
    return a.map((x) => (x === null ? null : (x as Tensor)._h));
  }
  return a;
}

function callNative(qualified: string, mode: 0 | 1, args: OpArg[]): unknown {
  const id = opIdOf(qualified);
  switch (args.length) {
    case 1:
      return native.callOp(id, mode, toNative(args[0]) as never);
    case 2:
      return native.callOp(id, mode, toNative(args[0]) as never, toNative(args[1]) as never);
    case 3:
      return native.callOp(id, mode, toNative(args[0]) as never, toNative(args[1]) as never, toNative(args[2]) as never);
    default:
      return native.callOp(id, mode, ...(args.map(toNative) as never[]));
  }
}

/** Calls an op that returns one tensor. */
export function callT(qualified: string, ...args: OpArg[]): Tensor {
  return new Tensor(callNative(qualified, 0, args) as TensorHandle);
}

/** Calls an op that returns several tensors (or a tensor list). */
export function callTs(qualified: string, ...args: OpArg[]): Tensor[] {
  const out = callNative(qualified, 0, args) as (TensorHandle | null)[];
  return out.map((h) => new Tensor(h as TensorHandle));
}

/** Calls an op for its side effect (in-place ops), discarding the result. */
export function callInPlace(qualified: string, ...args: OpArg[]): void {
  callNative(qualified, 1, args);
}

/** Calls an op returning a non-tensor value. */
export function callValue(qualified: string, ...args: OpArg[]): unknown {
  return callNative(qualified, 0, args);
}

/** Wraps a raw native handle (for the few helpers that call the addon directly). */
export function wrapHandle(h: TensorHandle): Tensor {
  return new Tensor(h);
}

export { dtypeCode, DTYPE_CODE };

// Data types and their c10::ScalarType codes (stable across libtorch versions).

export type DType =
  | "float32"
  | "float64"
  | "bfloat16"
  | "float16"
  | "int64"
  | "int32"
  | "int16"
  | "int8"
  | "uint8"
  | "bool";

export const DTYPE_CODE: Readonly<Record<DType, number>> = {
  uint8: 0,
  int8: 1,
  int16: 2,
  int32: 3,
  int64: 4,
  float16: 5,
  float32: 6,
  float64: 7,
  bool: 11,
  bfloat16: 15,
};

const CODE_DTYPE = new Map<number, DType>(Object.entries(DTYPE_CODE).map(([k, v]) => [v, k as DType]));

export function dtypeFromCode(code: number): DType {
  const d = CODE_DTYPE.get(code);
  if (!d) throw new Error(`unsupported libtorch dtype code ${code}`);
  return d;
}

export function dtypeCode(dtype: DType): number {
  const c = DTYPE_CODE[dtype];
  if (c === undefined) throw new Error(`unknown dtype '${String(dtype)}'; expected one of ${Object.keys(DTYPE_CODE).join(", ")}`);
  return c;
}

export const ELEMENT_SIZE: Readonly<Record<DType, number>> = {
  float32: 4,
  float64: 8,
  bfloat16: 2,
  float16: 2,
  int64: 8,
  int32: 4,
  int16: 2,
  int8: 1,
  uint8: 1,
  bool: 1,
};

export function isFloatingDType(dtype: DType): boolean {
  return dtype === "float32" || dtype === "float64" || dtype === "bfloat16" || dtype === "float16";
}

/** The JS typed array a dtype's elements come back as (bf16/f16 come back widened to float32). */
export type TypedArrayFor<D extends DType> = D extends "float64"
  ? Float64Array
  : D extends "int64"
    ? BigInt64Array
    : D extends "int32"
      ? Int32Array
      : D extends "int16"
        ? Int16Array
        : D extends "int8"
          ? Int8Array
          : D extends "uint8" | "bool"
            ? Uint8Array
            : Float32Array;

export type AnyTypedArray =
  | Float32Array
  | Float64Array
  | BigInt64Array
  | Int32Array
  | Int16Array
  | Int8Array
  | Uint8Array
  | Uint16Array;

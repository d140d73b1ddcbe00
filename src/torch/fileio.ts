// Raw tensor I/O for the checkpoint formats in src/io: bytes go straight
// between files and libtorch storage, with no JS buffer in between.
import { type DType, dtypeCode } from "./dtype.js";
import { native } from "./native.js";
import { type Tensor, wrapHandle } from "./tensor.js";

/** Reads `shape` elements of `dtype` at `byteOffset` of a file into a new CPU tensor (one copy). */
export function readTensorFromFile(path: string, byteOffset: number, dtype: DType, shape: readonly number[]): Tensor {
  return wrapHandle(native.readIntoTensor(path, byteOffset, dtypeCode(dtype), shape));
}

/** Writes a tensor's elements (row-major, little-endian) at an open fd's position; returns bytes written. */
export function writeTensorToFd(fd: number, t: Tensor): number {
  return native.writeTensor(fd, t._h);
}

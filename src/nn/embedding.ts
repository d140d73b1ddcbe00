// Embedding: rows of a (num, dim) table picked by integer ids.
import { type Device, type DType, empty, F, type Tensor } from "../torch/index.js";
import { Module } from "./module.js";

export interface EmbeddingOptions {
  /**
   * Row that receives no gradient (torch.nn.Embedding's padding_idx; HF's
   * LlamaModel passes pad_token_id). Default null.
   */
  paddingIdx?: number | null;
  dtype?: DType;
  device?: Device;
}

export class Embedding extends Module {
  readonly numEmbeddings: number;
  readonly embeddingDim: number;
  readonly paddingIdx: number | null;

  constructor(numEmbeddings: number, embeddingDim: number, opts: EmbeddingOptions = {}) {
    super();
    this.numEmbeddings = numEmbeddings;
    this.embeddingDim = embeddingDim;
    const p = opts.paddingIdx ?? null;
    this.paddingIdx = p !== null && p >= 0 && p < numEmbeddings ? p : null;
    this.addParameter("weight", empty([numEmbeddings, embeddingDim], { dtype: opts.dtype ?? "float32", device: opts.device ?? "cpu" }));
  }

  /** (num, dim) */
  get weight(): Tensor {
    return this.param("weight");
  }

  /** ids (...) int64 -> (..., dim) */
  forward(ids: Tensor): Tensor {
    return F.embedding(ids, this.weight, this.paddingIdx);
  }
}

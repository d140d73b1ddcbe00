"""safetensors peer: Python's `safetensors` reads what we wrote, and writes
files (every dtype torch can store in safetensors, a sharded folder written by
huggingface_hub.save_torch_state_dict as transformers' save_pretrained does)
for us to read.

Request: {"read_files": [paths], "read_folders": [dirs], "write_dir": dir | null}
Response: {"files": {path: {"metadata": {...}, "tensors": {name: {dtype, shape, hex}}}},
           "folders": {dir: {"index_metadata": {...}, "weight_map": {...}, "shard_metadata": {...}, "tensors": {...}}},
           "written": {"file": path, "folder": dir, "tensors": {...}, "metadata": {...}}}
"""
import json
import os

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from peer_io import main, tensor_hex

DTYPE_NAMES = {
    torch.bool: "bool", torch.uint8: "uint8", torch.int8: "int8", torch.int16: "int16", torch.int32: "int32",
    torch.int64: "int64", torch.float16: "float16", torch.bfloat16: "bfloat16", torch.float32: "float32",
    torch.float64: "float64", torch.uint16: "uint16", torch.uint32: "uint32", torch.uint64: "uint64",
    torch.float8_e4m3fn: "float8_e4m3fn", torch.float8_e5m2: "float8_e5m2",
}


def describe(t):
    return {"dtype": DTYPE_NAMES[t.dtype], "shape": list(t.shape), "hex": tensor_hex(t)}


def read_file(path):
    with safe_open(path, framework="pt") as f:
        return {"metadata": f.metadata(), "tensors": {k: describe(f.get_tensor(k)) for k in f.keys()}}


def read_folder(folder):
    with open(os.path.join(folder, "model.safetensors.index.json"), encoding="utf8") as f:
        index = json.load(f)
    weight_map = index["weight_map"]
    tensors, shard_metadata, stored = {}, {}, set()
    total = 0
    for shard in sorted(set(weight_map.values())):
        with safe_open(os.path.join(folder, shard), framework="pt") as f:
            shard_metadata[shard] = f.metadata()
            for k in f.keys():
                stored.add(k)
                if weight_map.get(k) != shard:
                    raise SystemExit(f"{folder}: tensor {k} is in {shard} but the index maps it to {weight_map.get(k)}")
                t = f.get_tensor(k)
                total += t.numel() * t.element_size()
                tensors[k] = describe(t)
    missing = sorted(set(weight_map) - stored)
    if missing:
        raise SystemExit(f"{folder}: the index names tensors no shard holds: {missing}")
    return {"index_metadata": index.get("metadata", {}), "weight_map": weight_map, "shard_metadata": shard_metadata,
            "tensors": tensors, "data_bytes": total}


def specials(dtype, n):
    """n values in a float dtype, with -0, +-inf, NaN, a subnormal and the largest finite value."""
    info = torch.finfo(dtype)
    base = torch.tensor([0.0, -0.0, 1.0, -2.5, float("inf"), float("-inf"), float("nan"), info.tiny / 2, info.max, info.min],
                        dtype=torch.float64)
    g = torch.Generator().manual_seed(n)
    rest = torch.randn(n, generator=g, dtype=torch.float64) * 3
    return torch.cat([base, rest]).to(dtype)


def write(out):
    os.makedirs(out, exist_ok=True)
    g = torch.Generator().manual_seed(0)
    ints = lambda dt, lo, hi, shape: torch.randint(lo, hi, shape, generator=g, dtype=torch.int64).to(dt)
    tensors = {
        "f32": specials(torch.float32, 14).reshape(4, 6),
        "f64": specials(torch.float64, 6),
        "bf16": specials(torch.bfloat16, 22).reshape(2, 4, 4),
        "f16": specials(torch.float16, 10).reshape(5, 4),
        "i64": torch.tensor([-(2**63), 2**63 - 1, 0, -1, 2**53 + 1], dtype=torch.int64),
        "i32": ints(torch.int32, -(2**31), 2**31, (3, 3)),
        "i16": ints(torch.int16, -(2**15), 2**15, (7,)),
        "i8": torch.tensor([-128, 127, 0, -1], dtype=torch.int8),
        "u8": torch.arange(0, 256, 17, dtype=torch.uint8),
        "bool": torch.tensor([[True, False, True], [False, False, True]]),
        "u16": torch.tensor([0, 1, 65535], dtype=torch.uint16),
        "u32": torch.tensor([0, 1, 2**32 - 1], dtype=torch.uint32),
        "u64": torch.tensor([0, 1, 2**63], dtype=torch.uint64),
        "f8_e4m3": torch.tensor([0.0, 1.0, -2.0, 448.0], dtype=torch.float32).to(torch.float8_e4m3fn),
        "f8_e5m2": torch.tensor([0.0, 1.0, -2.0, 57344.0], dtype=torch.float32).to(torch.float8_e5m2),
        "scalar": torch.tensor(3.25),
        "empty": torch.zeros(0, 3),
        "model.layers.0.ünï": torch.arange(6, dtype=torch.float32).reshape(2, 3).t().contiguous(),
    }
    metadata = {"format": "pt", "source": "safetensors_peer.py", "ünï": "✓ ½"}
    file = os.path.join(out, "python_all.safetensors")
    save_file(tensors, file, metadata=metadata)

    # A sharded folder the way transformers' save_pretrained writes one.
    from huggingface_hub import save_torch_state_dict

    sharded = {f"model.layers.{i}.weight": torch.randn(16, 16, generator=g) for i in range(5)}
    sharded["model.norm.weight"] = torch.ones(16, dtype=torch.bfloat16)
    sharded["model.position_ids"] = torch.arange(32, dtype=torch.int64)
    folder = os.path.join(out, "python_sharded")
    os.makedirs(folder, exist_ok=True)
    save_torch_state_dict(sharded, folder, max_shard_size=2500, metadata={"format": "pt"})
    return {"file": file, "folder": folder, "metadata": metadata,
            "tensors": {k: describe(v) for k, v in tensors.items()},
            "sharded": {k: describe(v) for k, v in sharded.items()},
            "folder_files": sorted(os.listdir(folder))}


def handle(req, work):
    out = {"files": {p: read_file(p) for p in req.get("read_files", [])},
           "folders": {d: read_folder(d) for d in req.get("read_folders", [])}}
    if req.get("write_dir"):
        out["written"] = write(req["write_dir"])
    return out


if __name__ == "__main__":
    main(handle)

"""The Python side of test/peers/helpers/bridge.ts.

A peer script is run as `python <script> <dir>`: it reads <dir>/request.json,
does its work with the real library (transformers, PEFT, TRL, TensorBoard,
safetensors) and writes <dir>/response.json. Tensors go through safetensors
files in <dir>. JSON has no NaN/Infinity, so non-finite floats are written as
the strings "NaN", "Infinity", "-Infinity".
"""
import json
import math
import os
import sys


def _clean(x):
    if isinstance(x, float) and not math.isfinite(x):
        return "NaN" if math.isnan(x) else ("Infinity" if x > 0 else "-Infinity")
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    return x


def main(handler):
    """Runs handler(request, dir) -> response (a JSON-able object)."""
    work = sys.argv[1]
    with open(os.path.join(work, "request.json"), encoding="utf8") as f:
        request = json.load(f)
    response = handler(request, work)
    tmp = os.path.join(work, "response.json.tmp")
    with open(tmp, "w", encoding="utf8") as f:
        json.dump(_clean(response), f, allow_nan=False)
    os.replace(tmp, os.path.join(work, "response.json"))


def tensor_hex(t):
    """The tensor's bytes (contiguous, little-endian, as safetensors stores them) in hex."""
    import torch

    t = t.detach().contiguous().cpu()
    if t.numel() == 0:
        return ""
    return t.reshape(-1).view(torch.uint8).numpy().tobytes().hex()

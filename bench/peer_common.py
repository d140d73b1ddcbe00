"""Shared pieces of the Python peers of bench:generate and bench:grpo.

The peers run in the peer venv (scripts/setup-peers.sh) as servers: one JSON
request per stdin line, one JSON reply per stdout line (bench/peers.ts is the
other end). The first reply is the peer's `ready` line. Tensors go through
safetensors files in the work folder.

Prompt and image: one user turn holding one image and a fixed text, through
the processor's own chat template (processor.apply_chat_template with
tokenize=True, the call TRL's GRPOTrainer makes), so the prompt ids and the
pixel tensors both sides use come from transformers' processor.
"""
import json
import os
import sys
import time
import traceback

import numpy as np
import torch
from PIL import Image

# Replies go to the original stdout; anything else a library prints (Trainer's
# log lines, progress bars) goes to stderr and cannot break the protocol.
_PROTOCOL = os.fdopen(os.dup(1), "w")
sys.stdout = sys.stderr

PROMPT_TEXT = (
    "Look at the image and decide whether it shows offensive content. "
    "Answer offensive or safe, then give one sentence of reasons."
)


def set_threads(n):
    torch.set_num_threads(int(n))


def bench_image(width, height, seed=0):
    """A reproducible random RGB image (content does not matter for timing)."""
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8), "RGB")


def load_processor(model_dir):
    """The folder's processor. Qwen2-VL / Qwen2.5-VL: AutoProcessor also builds the
    video processor, which needs torchvision (not in the peer venv: its wheel in the
    store pins a CUDA torch), so the processor is assembled from the PIL image
    processor, the tokenizer, the folder's chat template and a video processor
    that refuses videos (the benchmarks have none); images go through the same
    code either way."""
    import json

    from transformers import AutoProcessor, AutoTokenizer

    with open(os.path.join(model_dir, "config.json"), encoding="utf8") as f:
        model_type = json.load(f).get("model_type")
    if model_type in ("qwen2_vl", "qwen2_5_vl"):
        from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

        class NoVideos:
            def __call__(self, *args, **kwargs):
                raise RuntimeError("bench peers process no videos")

        if model_type == "qwen2_vl":
            from transformers import Qwen2VLProcessor as Base
        else:
            from transformers import Qwen2_5_VLProcessor as Base

        class Processor(Base):
            # transformers checks video_processor against BaseVideoProcessor, which is a
            # torchvision placeholder in this venv; NoVideos is never called.
            def check_argument_for_proper_class(self, argument_name, argument):
                if argument_name == "video_processor":
                    return type(argument)
                return super().check_argument_for_proper_class(argument_name, argument)
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        template = None
        for name in ("chat_template.jinja", "chat_template.json"):
            path = os.path.join(model_dir, name)
            if os.path.exists(path):
                with open(path, encoding="utf8") as f:
                    template = f.read() if name.endswith(".jinja") else json.load(f)["chat_template"]
                break
        template = template or tokenizer.chat_template
        return Processor(image_processor=Qwen2VLImageProcessorPil.from_pretrained(model_dir), tokenizer=tokenizer, video_processor=NoVideos(), chat_template=template)
    processor = AutoProcessor.from_pretrained(model_dir)
    ip = processor.image_processor
    # Idefics3 / SmolVLM: one tile per image (no image splitting), as ours is benchmarked.
    if hasattr(ip, "do_image_splitting"):
        ip.do_image_splitting = False
    return processor


def conversation(image):
    return [{"role": "user", "content": [{"type": "image", "image": image}, {"type": "text", "text": PROMPT_TEXT}]}]


def processor_inputs(processor, image):
    """input_ids, attention_mask and the image tensors of the one-image prompt (batch 1)."""
    out = processor.apply_chat_template(
        conversation(image), add_generation_prompt=True, tokenize=True, return_dict=True, return_tensors="pt"
    )
    return {k: v for k, v in out.items() if isinstance(v, torch.Tensor)}


def save_inputs_for_ours(inputs, path):
    """The processor's tensors in our ImageInputs layout (Idefics3 tiles [N, 3, S, S])."""
    from safetensors.torch import save_file

    t = {"input_ids": inputs["input_ids"].long(), "attention_mask": inputs["attention_mask"].long()}
    pv = inputs["pixel_values"]
    if pv.dim() == 5:  # Idefics3: [B, N, 3, S, S]
        t["pixel_values"] = pv.reshape(-1, *pv.shape[2:]).float()
        if "pixel_attention_mask" in inputs:
            m = inputs["pixel_attention_mask"]
            t["pixel_attention_mask"] = m.reshape(-1, *m.shape[2:]).to(torch.uint8)
    else:  # Qwen2-VL: patches [P, C*T*p*p] and the grid
        t["pixel_values"] = pv.float()
    if "image_grid_thw" in inputs:
        t["image_grid_thw"] = inputs["image_grid_thw"].long()
    save_file({k: v.contiguous() for k, v in t.items()}, path)


def versions():
    import transformers

    out = {"torch": torch.__version__, "transformers": transformers.__version__, "threads": torch.get_num_threads()}
    try:
        import peft

        out["peft"] = peft.__version__
    except ImportError:
        pass
    try:
        import trl

        out["trl"] = trl.__version__
    except ImportError:
        pass
    return out


def reply(obj):
    _PROTOCOL.write(json.dumps(obj) + "\n")
    _PROTOCOL.flush()


def read_request():
    """The next request object, or None at end of input / on {"cmd": "quit"}."""
    line = sys.stdin.readline()
    if not line:
        return None
    req = json.loads(line)
    return None if req.get("cmd") == "quit" else req


def serve(handlers):
    """Answers requests until quit: handlers[cmd](request) -> reply object."""
    while True:
        req = read_request()
        if req is None:
            return
        try:
            reply(handlers[req["cmd"]](req))
        except Exception:  # the TS side raises it with the traceback
            reply({"error": traceback.format_exc()})


class Stopwatch:
    """Sums the wall time of the calls it wraps (perf_counter, ms)."""

    def __init__(self):
        self.ms = 0.0
        self.calls = 0

    def wrap(self, fn):
        def timed(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.ms += (time.perf_counter() - t0) * 1000
                self.calls += 1

        return timed

    def take(self):
        ms, self.ms, self.calls = self.ms, 0.0, 0
        return ms


def time_module(module, watch):
    """Adds a module's forward time to `watch` (forward pre/post hooks)."""
    state = {}

    def pre(_m, _args):
        state["t0"] = time.perf_counter()

    def post(_m, _args, _out):
        watch.ms += (time.perf_counter() - state.pop("t0")) * 1000
        watch.calls += 1

    module.register_forward_pre_hook(pre)
    module.register_forward_hook(post)


def vision_module(model):
    """The vision tower + connector module of an Idefics3 or Qwen-VL model (PEFT-wrapped or not)."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    inner = getattr(base, "model", base)
    for name in ("visual", "vision_model"):
        if hasattr(inner, name):
            return getattr(inner, name)
    raise RuntimeError(f"no vision tower found on {type(base).__name__}")


def env_offline():
    for k in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        os.environ.setdefault(k, "1")

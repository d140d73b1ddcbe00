"""Shared by the peer scripts that load folders with transformers / PEFT:
collecting every message those libraries log or warn while loading."""
import contextlib
import logging
import warnings


@contextlib.contextmanager
def capture():
    """Every message of the transformers / peft loggers and every Python warning raised inside."""
    messages = []

    class Handler(logging.Handler):
        def emit(self, record):
            messages.append(f"{record.name}: {record.getMessage()}")

    h = Handler(level=logging.DEBUG)
    loggers = [logging.getLogger("transformers"), logging.getLogger("peft")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.addHandler(h)
        lg.setLevel(logging.WARNING)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield messages
    for lg, lv in zip(loggers, levels):
        lg.removeHandler(h)
        lg.setLevel(lv)
    messages.extend(f"warning: {w.message}" for w in caught)


def adapter_report(model, adapter_dir, cfg):
    """How PEFT's loaded LoRA tensors compare with the adapter file (keys both ways, max |difference|, lora_B scale)."""
    import os

    from peft.utils import get_peft_model_state_dict
    from safetensors.torch import load_file

    stored = load_file(os.path.join(adapter_dir, "adapter_model.safetensors"))
    loaded = get_peft_model_state_dict(model)
    max_diff = max((float((loaded[k].float() - v.float()).abs().max()) for k, v in stored.items() if k in loaded), default=0.0)
    return {"peft_type": str(cfg.peft_type), "base": cfg.base_model_name_or_path,
            "target_modules": cfg.target_modules if isinstance(cfg.target_modules, str) else sorted(cfg.target_modules),
            "r": cfg.r, "lora_alpha": cfg.lora_alpha,
            "stored_keys_missing_in_peft": sorted(set(stored) - set(loaded)),
            "peft_keys_missing_in_file": sorted(set(loaded) - set(stored)),
            "max_abs_diff_loaded_vs_file": max_diff,
            "lora_B_max_abs": max(float(v.float().abs().max()) for k, v in stored.items() if "lora_B" in k),
            "lora_modules": sum(1 for n, _ in model.named_modules() if n.endswith("lora_A"))}

"""Image processor and chat template peer: transformers' Idefics3 processor
(PIL backend, Idefics3ImageProcessorPil) on a corpus of image files this
script draws with Pillow, and the processor's apply_chat_template.

Request: {"corpus_dir": dir, "configs": [{"name", "dir"}], "prompt": text with one <image>,
          "chats": [{"name", "messages", "add_generation_prompt", "images": [file]}]}
Writes <corpus_dir>/<config>.safetensors with "<image>.pixel_values" [n, 3, S, S] and
"<image>.pixel_attention_mask" [n, S, S] (uint8) per corpus image, the tiles of
one image as the processor makes them (images passed as file paths, so
transformers' load_image applies the EXIF orientation and convert("RGB")).
Response: {"corpus": [{"name", "file", "mode", "size", "format"}],
           "configs": {name: {"image_processor": class, "images": {image: {"rows", "cols", "input_ids", "text"}}}},
           "chats": {config: {chat: {"text", "input_ids"}}}}
"""
import os
import struct
import zlib

import numpy as np
import torch
from PIL import Image, ImageDraw
from safetensors.torch import save_file
from transformers import AutoProcessor

from peer_io import main

EXIF_ORIENTATION = 0x0112


def scene(w, h, seed):
    """A smooth colour field with a few shapes: resampling differences show, JPEG stays sane."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    img = np.stack([
        127 + 100 * np.sin(x / max(w, 1) * 6.3 * rng.uniform(0.5, 2)),
        127 + 100 * np.cos(y / max(h, 1) * 6.3 * rng.uniform(0.5, 2)),
        127 + 100 * np.sin((x + y) / max(w + h, 1) * 9.0),
    ], axis=-1)
    img += rng.normal(0, 12, img.shape)
    im = Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")
    d = ImageDraw.Draw(im)
    for _ in range(3):
        x0, y0 = int(rng.integers(0, max(w, 1))), int(rng.integers(0, max(h, 1)))
        d.rectangle([x0, y0, x0 + w // 4, y0 + h // 4], fill=tuple(int(v) for v in rng.integers(0, 256, 3)))
    return im


def write_png16(path, arr):
    """A 16-bit PNG of uint16 [H, W, C] (C = 3: RGB), written by hand: Pillow cannot write 16-bit colour."""
    h, w, c = arr.shape
    raw = b"".join(b"\x00" + arr[y].astype(">u2").tobytes() for y in range(h))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    color_type = {1: 0, 2: 4, 3: 2, 4: 6}[c]
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, color_type, 0, 0, 0))
                + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def make_corpus(out):
    os.makedirs(out, exist_ok=True)
    items = []

    def add(name, im, fmt="PNG", **save_kw):
        path = os.path.join(out, f"{name}.{'jpg' if fmt == 'JPEG' else 'png'}")
        im.save(path, fmt, **save_kw)
        with Image.open(path) as re:
            items.append({"name": name, "file": path, "mode": re.mode, "size": list(re.size), "format": fmt})

    # Sizes and aspect ratios (w, h): square, wide, tall, odd, upscaled, large, 1-pixel wide / high.
    for (w, h) in [(32, 32), (48, 48), (100, 37), (37, 100), (200, 64), (64, 200), (33, 33), (17, 9), (9, 17), (300, 180), (1, 50), (50, 1), (1, 1)]:
        add(f"rgb_{w}x{h}", scene(w, h, w * 1000 + h))
    base = scene(60, 40, 7)
    add("gray_L", base.convert("L"))
    add("bilevel_1", base.convert("1"))
    add("palette_P", base.convert("P", palette=Image.Palette.ADAPTIVE, colors=64))
    pal = base.convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    pal.info["transparency"] = 3
    add("palette_P_transparent", pal, transparency=3)
    rgba = base.convert("RGBA")
    a = np.array(rgba)
    a[..., 3] = np.linspace(0, 255, a.shape[1], dtype=np.uint8)[None, :]
    add("rgba_gradient_alpha", Image.fromarray(a, "RGBA"))
    a[..., 3] = 255
    add("rgba_opaque", Image.fromarray(a, "RGBA"))
    la = base.convert("LA")
    b = np.array(la)
    b[..., 1] = np.linspace(255, 0, b.shape[0], dtype=np.uint8)[:, None]
    add("la_alpha", Image.fromarray(b, "LA"))
    g16 = (np.array(base.convert("L")).astype(np.uint16) * 257)
    g16[0, :] = np.arange(g16.shape[1], dtype=np.uint16) * 1000  # values that are not multiples of 257
    add("gray16_I16", Image.fromarray(g16))  # uint16 -> mode I;16
    rgb16 = np.array(scene(50, 30, 13)).astype(np.uint16) * 257 + np.random.default_rng(3).integers(0, 257, (30, 50, 3)).astype(np.uint16)
    path16 = os.path.join(out, "rgb16.png")
    write_png16(path16, rgb16)
    with Image.open(path16) as re:
        items.append({"name": "rgb16", "file": path16, "mode": re.mode, "size": list(re.size), "format": "PNG"})
    add("rgb_jpeg", scene(64, 48, 11), "JPEG", quality=92)
    add("cmyk_jpeg", scene(64, 48, 12).convert("CMYK"), "JPEG", quality=92)
    for k in range(1, 9):
        exif = Image.Exif()
        exif[EXIF_ORIENTATION] = k
        add(f"exif_orientation_{k}", scene(60, 36, 100 + k), "JPEG", quality=95, exif=exif.tobytes())
    return items


def handle(req, work):
    corpus = make_corpus(req["corpus_dir"])
    configs = {}
    chats = {}
    for c in req["configs"]:
        processor = AutoProcessor.from_pretrained(c["dir"])
        ip = processor.image_processor
        tensors, images = {}, {}
        for item in corpus:
            out = ip(images=[[item["file"]]], return_row_col_info=True, return_tensors="pt")
            pv = out["pixel_values"][0].float().contiguous()
            pm = out["pixel_attention_mask"][0].to(torch.uint8).contiguous()
            tensors[f"{item['name']}.pixel_values"] = pv
            tensors[f"{item['name']}.pixel_attention_mask"] = pm
            enc = processor(text=[req["prompt"]], images=[[item["file"]]], return_tensors="pt")
            ids = enc["input_ids"][0].tolist()
            images[item["name"]] = {"rows": int(out["rows"][0][0]), "cols": int(out["cols"][0][0]), "input_ids": ids,
                                    "text": processor.tokenizer.decode(ids), "tiles": int(pv.shape[0])}
        save_file(tensors, os.path.join(req["corpus_dir"], f"{c['name']}.safetensors"))
        configs[c["name"]] = {"image_processor": type(ip).__name__, "images": images}
        chats[c["name"]] = {}
        for chat in req.get("chats", []):
            messages = chat["messages"]
            text = processor.apply_chat_template(messages, add_generation_prompt=chat["add_generation_prompt"], tokenize=False)
            with_paths = with_image_paths(messages, chat["images"])
            enc = processor.apply_chat_template(with_paths, add_generation_prompt=chat["add_generation_prompt"], tokenize=True,
                                                return_dict=True)
            ids = enc["input_ids"]
            ids = ids[0] if ids and isinstance(ids[0], list) else ids
            chats[c["name"]][chat["name"]] = {"text": text, "input_ids": [int(i) for i in (ids.tolist() if hasattr(ids, "tolist") else ids)]}
    return {"corpus": corpus, "configs": configs, "chats": chats}


def with_image_paths(messages, files):
    """The messages with each {"type": "image"} part given the next file as its "path", in order."""
    it = iter(files)
    out = []
    for m in messages:
        if isinstance(m["content"], list):
            m = dict(m, content=[dict(p, path=next(it)) if p.get("type") == "image" else p for p in m["content"]])
        out.append(m)
    return out


if __name__ == "__main__":
    main(handle)

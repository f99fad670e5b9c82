"""Read and write attn's model format (docs/model-format.md: config keys and tensor names) from Python.

A model is a folder with config.json, a safetensors file and, for the word
tokenizer, a vocabulary (one token per line, line number = id).

Used by the training and conversion tools and by the reference tests. Needs
only numpy; run with /usr/bin/python3.
"""
import json
import os
import struct
import tempfile

import numpy as np

_DTYPES = {"F32": (np.float32, 4), "F16": (np.float16, 2), "F64": (np.float64, 8)}


def write_safetensors(path, tensors, metadata=None):
    """Writes {name: array} as F32 safetensors, in the dict's order, atomically."""
    header = {}
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    blobs = []
    offset = 0
    for name, value in tensors.items():
        arr = np.ascontiguousarray(np.asarray(value, dtype=np.float32))
        data = arr.astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    hjson = json.dumps(header, separators=(",", ":")).encode()
    hjson += b" " * ((8 - len(hjson) % 8) % 8)
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".safetensors")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(struct.pack("<Q", len(hjson)))
            f.write(hjson)
            for b in blobs:
                f.write(b)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read_safetensors(path):
    """Returns {name: float64 array} in file order (F32/F16/F64 only)."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    base = 8 + n
    out = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        dt, size = _DTYPES[info["dtype"]]
        b, e = info["data_offsets"]
        arr = np.frombuffer(raw[base + b:base + e], dtype=np.dtype(dt).newbyteorder("<"))
        out[name] = arr.reshape(info["shape"]).astype(np.float64)
    return out


def write_vocab(path, tokens):
    with open(path, "w", encoding="utf-8") as f:
        for t in tokens:
            if not t or any(c.isspace() for c in t):
                raise ValueError("bad vocabulary token %r" % t)
            f.write(t + "\n")


def write_model(folder, config, tensors, vocab=None, weights_name="model.safetensors"):
    """Writes folder/config.json, folder/<weights_name> and (if given) folder/vocab.txt.

    `config` is the dict of docs/model-format.md without "format" and "weights"
    (they are filled in). When vocab is given and the config has no tokenizer,
    a word tokenizer reading vocab.txt is configured with unk "<unk>".
    """
    os.makedirs(folder, exist_ok=True)
    cfg = {"format": "attn/1"}
    cfg.update(config)
    cfg["weights"] = weights_name
    if vocab is not None:
        write_vocab(os.path.join(folder, "vocab.txt"), vocab)
        cfg.setdefault("tokenizer", {"type": "word", "vocab": "vocab.txt", "lowercase": True,
                                     "unk": "<unk>", "bos": None, "eos": None})
    write_safetensors(os.path.join(folder, weights_name), tensors)
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    return os.path.join(folder, "config.json")


def load_model(config_path):
    """Returns (config dict with defaults filled, {name: float64 array}, vocab list or None)."""
    folder = os.path.dirname(os.path.abspath(config_path))
    with open(config_path) as f:
        cfg = json.load(f)
    c = dict(cfg)
    c.setdefault("n_kv_heads", c["n_heads"])
    c.setdefault("head_dim", c["d_model"] // c["n_heads"])
    c.setdefault("rope_theta", 10000.0)
    c.setdefault("embed_scale", 1.0)
    c.setdefault("norm_eps", 1e-5)
    c.setdefault("final_norm", c["norm_position"] == "pre")
    tensors = read_safetensors(os.path.join(folder, c["weights"]))
    vocab = None
    tok = c.get("tokenizer")
    if tok and tok.get("type") == "word":
        with open(os.path.join(folder, tok["vocab"]), encoding="utf-8") as f:
            vocab = [line.rstrip("\r\n") for line in f]
    return c, tensors, vocab

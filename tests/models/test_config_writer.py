#!/usr/bin/python3
"""tools/train.py's writer writes the committed models/*/config.json, byte for byte.

    /usr/bin/python3 tests/models/test_config_writer.py

A config key written by hand into models/NAME/config.json (say the
translator's "eos" and "add_eos") would be lost by the next rebuild
(tools/check_models_reproducible.sh would then report DIFFERENT). So for each
trained model this calls train.export() -- the function the training ends
with -- on the committed weights and vocabulary, with the tokenizer keys
train.py's trainer returns (train.TOKENIZERS), into a temporary folder, and
compares the written config.json, vocab.txt and model.safetensors with the
committed files. No training is run.

Exit status: 0 pass, 1 fail, 77 skip (no torch or numpy for this Python).
"""
import collections
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tools"))

try:
    import torch
    import train  # noqa: E402  (needs torch and numpy)
    import attn_format  # noqa: E402
except ImportError as e:
    print("skip: %s (tools/train.py needs torch and numpy; run with /usr/bin/python3)" % e)
    sys.exit(77)


class Weights:
    """What export() reads from a trained module: its state dict."""

    def __init__(self, tensors):
        self.tensors = tensors

    def state_dict(self):
        return collections.OrderedDict((k, torch.tensor(v, dtype=torch.float32))
                                       for k, v in self.tensors.items())


def main():
    failures = 0
    for name in sorted(train.TRAINERS):
        folder = os.path.join(ROOT, "models", name)
        with open(os.path.join(folder, "vocab.txt"), encoding="utf-8") as f:
            vocab = f.read().split("\n")[:-1]
        tensors = attn_format.read_safetensors(os.path.join(folder, "model.safetensors"))
        with tempfile.TemporaryDirectory() as out:
            train.export(name, Weights(tensors), vocab, train.TOKENIZERS[name], out)
            for fn in ("config.json", "vocab.txt", "model.safetensors"):
                with open(os.path.join(folder, fn), "rb") as f:
                    want = f.read()
                with open(os.path.join(out, fn), "rb") as f:
                    got = f.read()
                ok = got == want
                failures += not ok
                print("%s  %s/%s: train.export writes %s" % ("ok  " if ok else "FAIL", name, fn,
                      "the committed file" if ok else "another file:\n" + got.decode("utf-8", "replace")
                      if fn.endswith(".json") else "other bytes"))
    if failures:
        print("%d file(s) differ: make tools/train.py write what models/ holds" % failures)
        return 1
    print("all written files equal the committed ones")
    return 0


if __name__ == "__main__":
    sys.exit(main())

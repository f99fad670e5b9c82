"""Reads `attn explain` output back into numbers (use it with --full, so no
row or column is abbreviated).

The layout (src/view/explain.c): a part per explained head, headed
"== STACK layer L, head H: KIND-attention ... ==". In a part, each matrix
is a title line "   NAME [rows, cols]  ..." (or "   NAME [n]" for a vector),
then header lines whose first 14 characters are blank, then one line per
row: a 14-character label, then the numbers (a '*' may follow a number; a
weights matrix has one more number per row, the row's sum).

    parts = explain_parse.parse(text)
    parts[0]["title"]            'encoder layer 0, head 0: self-attention'
    parts[0]["m"]["weights"]     numpy [rows, cols]
    parts[0]["sums"]["weights"]  numpy [rows] (the printed row sums)
    parts[0]["labels"]["weights"]  the row labels, e.g. ['0 the', '1 sun', ...]
"""
import re

import numpy as np

LW = 14
_TITLE = re.compile(r"^   (\S+) \[(\d+)(?:, (\d+))?\]")
_PART = re.compile(r"^== (.*) ==$")


def _numbers(s):
    out = []
    for tok in s.replace("*", " ").split():
        out.append(float(tok))
    return out


def parse(text):
    lines = text.split("\n")
    parts = []
    i = 0
    while i < len(lines):
        line = lines[i]
        m = _PART.match(line)
        if m:
            parts.append({"title": m.group(1), "m": {}, "sums": {}, "labels": {}})
            i += 1
            continue
        m = _TITLE.match(line)
        if m and parts:
            name = m.group(1)
            if m.group(3) is None:
                rows, cols = 1, int(m.group(2))
            else:
                rows, cols = int(m.group(2)), int(m.group(3))
            data, sums, labels = [], [], []
            i += 1
            while i < len(lines) and lines[i] != "":
                row = lines[i]
                i += 1
                if row[:LW].strip() == "":
                    continue  # a header line
                nums = _numbers(row[LW:])
                if len(nums) not in (cols, cols + 1):
                    raise ValueError("%s: %d numbers in row %r, expected %d"
                                     % (name, len(nums), row, cols))
                data.append(nums[:cols])
                if len(nums) == cols + 1:
                    sums.append(nums[cols])
                labels.append(row[:LW].strip())
            if len(data) != rows:
                raise ValueError("%s: %d rows, expected %d" % (name, len(data), rows))
            part = parts[-1]
            if name in part["m"]:
                raise ValueError("%s printed twice in one part" % name)
            part["m"][name] = np.array(data, dtype=np.float64).reshape(rows, cols)
            part["labels"][name] = labels
            if sums:
                part["sums"][name] = np.array(sums)
            continue
        i += 1
    return parts

#!/usr/bin/python3
"""Independent reference of llama2.c's tokenizer encode (karpathy/llama2.c run.c).

Written from the algorithm's description, not from attn's C code, and kept
deliberately naive (it rescans every pair after each merge, as llama2.c does)
so that it checks attn's heap-based merging.

Usage:
  llama2c_encode.py --write FIXTURE [TOKENIZER]   regenerate the fixture
  llama2c_encode.py --check FIXTURE [TOKENIZER]   recompute; exit 1 on any difference
  llama2c_encode.py --encode TEXT   [TOKENIZER]   print the ids of TEXT

TOKENIZER defaults to ../shared/models/stories260K/tok512.bin relative to the
repository root. Exits 77 (skip) when it is absent.

Fixture format (tests/data/llama2c_prompts.tsv): lines starting with '#' are
comments; every other line is a prompt written as an ASCII JSON string, a tab,
and the ids (BOS included) separated by commas. Prompt bytes that are not valid
UTF-8 are written with Python's surrogateescape convention: byte 0xXY (0x80..0xff)
becomes the lone surrogate \\udcXY.

The algorithm (llama2.c encode with bos=1, eos=0):
  1. tokenizer.bin: int32 max_token_length, then {float32 score, int32 len,
     len bytes} per id until the end of the file.
  2. ids = [1] (BOS); if the text is non-empty, append the id of the piece " "
     (skipped when the vocabulary has none).
  3. Cut the text into groups: a byte plus the continuation bytes (0b10xxxxxx)
     right after it, at most 4 bytes in all. A group that is a piece becomes its
     id, else each of its bytes b becomes id b + 3.
  4. Repeat: over every adjacent pair (BOS included), look up the concatenation
     of the two pieces; among the pairs found, take the one whose score is
     strictly greater than the best so far, starting from -1e10 (so the leftmost
     on ties, and never a score <= -1e10); merge it; stop when none is found.
  When two ids share a piece text, the lowest id is used.
"""
import json
import os
import struct
import sys

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT_TOKENIZER = os.path.join(REPO_ROOT, "..", "shared", "models", "stories260K", "tok512.bin")

PROMPTS = [
    b"Once upon a time",
    b"",
    b"a",
    b" leading space",
    b"trailing space ",
    b"Hello, World!",
    b"The cat sat on the mat.",
    b"In 2023, 42 cats ate 3.14 pies; why? (Nobody knows!) #1 @home 100%",
    b"multiple   spaces    here",
    b"line one\nline two\n\nline four",
    b"tabs\tand\r\nCRLF",
    "café naïve".encode(),
    "日本語".encode(),
    "emoji 🙂".encode(),
    "Ünïcödé and ASCII mixed: 你好, world".encode(),
    b"\xff\xfe",
    b"ok \x80 stray continuation, cut \xc3",
    b"\xf0\x9f\x99\x82\x80\x80\x80 five continuation bytes",
    b"nul\x00byte",
    b"Once upon a time, there was a little girl named Lily. She loved to play outside "
    b"in the park with her friends, and one day she found a shiny red ball under a big "
    b"tree. \"Mom, look!\" she said. Her mom smiled and said, \"That's very nice, Lily.\"",
]


def load(path):
    with open(path, "rb") as f:
        data = f.read()
    (max_len,) = struct.unpack_from("<i", data, 0)
    pieces, scores = [], []
    off = 4
    while off < len(data):
        score, n = struct.unpack_from("<fi", data, off)
        off += 8
        piece = data[off:off + n]
        if n < 1 or n > max_len or len(piece) != n:
            raise SystemExit("%s: bad entry %d at offset %d" % (path, len(pieces), off - 8))
        pieces.append(piece)
        scores.append(score)
        off += n
    lookup = {}
    for i, p in enumerate(pieces):
        lookup.setdefault(p, i)  # lowest id wins
    return pieces, scores, lookup


def encode(tok, text):
    pieces, scores, lookup = tok
    ids = [1]
    if text:
        if b" " in lookup:
            ids.append(lookup[b" "])
    i = 0
    while i < len(text):
        j = i + 1
        while j < len(text) and j - i < 4 and (text[j] & 0xC0) == 0x80:
            j += 1
        group = text[i:j]
        if group in lookup:
            ids.append(lookup[group])
        else:
            ids.extend(b + 3 for b in group)
        i = j
    while True:
        best_score, best_id, best_idx = -1e10, -1, -1
        for k in range(len(ids) - 1):
            cand = lookup.get(pieces[ids[k]] + pieces[ids[k + 1]])
            if cand is not None and scores[cand] > best_score:
                best_score, best_id, best_idx = scores[cand], cand, k
        if best_idx < 0:
            break
        ids[best_idx:best_idx + 2] = [best_id]
    return ids


def prompt_to_json(p):
    return json.dumps(p.decode("utf-8", "surrogateescape"), ensure_ascii=True)


def json_to_prompt(s):
    return json.loads(s).encode("utf-8", "surrogateescape")


HEADER = ("# llama2.c encode of these prompts with stories260K/tok512.bin, by "
          "tests/reference/llama2c_encode.py --write (do not edit by hand).\n"
          "# prompt as an ASCII JSON string (\\udc80..\\udcff = raw bytes 0x80..0xff)"
          " <TAB> ids, BOS first\n")


def fixture_text(tok):
    lines = [HEADER]
    for p in PROMPTS:
        lines.append("%s\t%s\n" % (prompt_to_json(p), ",".join(str(i) for i in encode(tok, p))))
    return "".join(lines)


def check(tok, path):
    with open(path, encoding="ascii") as f:
        lines = [l for l in f.read().split("\n") if l and not l.startswith("#")]
    bad = 0
    if len(lines) != len(PROMPTS):
        print("%s: %d prompts, the reference has %d" % (path, len(lines), len(PROMPTS)))
        bad += 1
    for n, line in enumerate(lines):
        prompt_json, ids_text = line.split("\t")
        prompt = json_to_prompt(prompt_json)
        want = [int(x) for x in ids_text.split(",")]
        got = encode(tok, prompt)
        if n < len(PROMPTS) and PROMPTS[n] != prompt:
            print("%s: prompt %d is %s, the reference list has %s"
                  % (path, n + 1, prompt_json, prompt_to_json(PROMPTS[n])))
            bad += 1
        if got != want:
            print("%s: prompt %d %s: fixture ids %s, reference ids %s"
                  % (path, n + 1, prompt_json, want, got))
            bad += 1
    if bad:
        return 1
    print("%s: %d prompts match the reference" % (path, len(lines)))
    return 0


def main(argv):
    if len(argv) < 3 or argv[1] not in ("--write", "--check", "--encode"):
        print(__doc__)
        return 2
    tok_path = argv[3] if len(argv) > 3 else DEFAULT_TOKENIZER
    if not os.path.exists(tok_path):
        print("skip: tokenizer %s is absent" % tok_path)
        return 77
    tok = load(tok_path)
    if argv[1] == "--encode":
        print(",".join(str(i) for i in encode(tok, argv[2].encode("utf-8", "surrogateescape"))))
        return 0
    if argv[1] == "--write":
        with open(argv[2], "w", encoding="ascii") as f:
            f.write(fixture_text(tok))
        return 0
    return check(tok, argv[2])


if __name__ == "__main__":
    sys.exit(main(sys.argv))

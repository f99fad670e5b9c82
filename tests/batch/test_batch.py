"""Batch mode (`attn run` reading one input per line of standard input)
against single runs of the same inputs (issue 9, point 5).

  test_batch.py ATTN_EXE SOURCE_ROOT

For every bundled model and every output (maps, context, predictions, the
readable view, several at once, to files and to '-'), one batch holds good
lines and bad lines (no tokens, too many tokens, an unknown or malformed
token id, a missing tab, a NUL byte, a line over 1 MiB) mixed together. The
batch's output must be, record for record, what single runs (--text /
--ids / --source ... of the same line, a separate code path) give, with the
`input` column (and the view's "input N") set to the line's 0-based index in
standard input, bad lines counted (CONTRACT.md, README "Other inputs"). The
bad lines give no output, exit status 1 at the end and one message each,
"attn: standard input line N: ..." with N the 1-based line number and the
message of the single run of that input.
"""
import json
import os
import random
import re
import subprocess
import sys
import tempfile

ATTN, ROOT = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
LINE_MAX = 1048576  # README: a batch line may be 1 MiB long
failures = []
checks = 0


def check(name, ok, detail=""):
    global checks
    checks += 1
    if not ok:
        print("FAIL " + name + (": " + detail if detail else ""))
        failures.append(name)
    return ok


class Model:
    def __init__(self, name):
        self.name = name
        self.config = os.path.join(ROOT, "models", name, "config.json")
        with open(self.config) as f:
            cfg = json.load(f)
        with open(os.path.join(ROOT, "models", name, cfg["tokenizer"]["vocab"])) as f:
            self.vocab = [w for w in f.read().split("\n") if w]
        self.pair = cfg["architecture"] == "encoder-decoder"
        self.lm_head = cfg.get("lm_head", "none") != "none"
        self.vocab_size = cfg["vocab_size"]
        tok = cfg["tokenizer"]
        self.bos = 1 if tok.get("bos") else 0
        self.max_seq_len = cfg["max_seq_len"]
        self.d_model = cfg["d_model"]
        special = {tok.get("unk"), tok.get("bos"), tok.get("eos")}
        self.words = [w for w in self.vocab if w not in special]


# -- the lines of a batch -----------------------------------------------------
# A line is (bytes of the line as written to standard input, the single-run
# arguments of the same input or None for a bad line, what its message must
# contain for a bad line that no single run can give).

def good_lines(m, rng, ids, pair):
    """Random good inputs of 1 to max_seq_len tokens, plus edge cases."""
    def words(n):
        return [rng.choice(m.words) for _ in range(n)]

    def text_side(n):
        return " ".join(words(n))

    def ids_side(n):
        return ",".join(str(rng.randrange(m.vocab_size)) for _ in range(n))

    side = ids_side if ids else text_side
    longest = m.max_seq_len - (0 if ids else m.bos)
    sizes = [1, 2, 3, 5, longest, rng.randint(2, longest)]
    out = []
    for n in sizes:
        if pair:
            out.append((side(rng.randint(1, longest)), side(n)))
        else:
            out.append(side(n))
    if not ids:  # the tokenizer's cases: case, an unknown word, invalid UTF-8 (bytes ff fe)
        extra = ["The " + " ".join(words(2)).upper(), "zzqx " + text_side(2),
                 "the \udcff\udcfe " + text_side(1)]
        out += [(text_side(3), e) for e in extra] + [(extra[2], text_side(2))] if pair else extra
    return out


def bad_lines(m, rng, ids, pair):
    """(line text, the single-run input that fails the same way or None,
    what the message must say)."""
    def text(n):
        return " ".join(rng.choice(m.words) for _ in range(n))

    def idl(n):
        return ",".join(str(rng.randrange(m.vocab_size)) for _ in range(n))

    side = idl if ids else text
    too_many = m.max_seq_len + 1 - (0 if ids else m.bos)
    out = []
    if ids:
        bad_sides = ["%s,%d" % (idl(2), m.vocab_size), "-1", "3,x,4", "1,,2", "2,", ""]
    else:
        bad_sides = [] if m.bos else ["", "   "]  # with a BOS even an empty text is one token
    bad_sides.append(side(too_many))
    for s in bad_sides:
        if pair:  # the bad side as the target, then as the source
            other = side(2)
            out.append((other + "\t" + s, (other, s), None))
            out.append((s + "\t" + other, (s, other), None))
        else:
            out.append((s, s, None))
    if pair:
        out.append((side(3), None, "expected SOURCE<TAB>TARGET"))
        out.append(("", None, "expected SOURCE<TAB>TARGET"))
    out.append((side(2) + "\0" + side(1), None, "NUL byte"))
    return out


def mix(good, bad, rng):
    """The batch: good and bad lines interleaved, bad ones first, in the
    middle and last."""
    lines = [("g", g) for g in good]
    for i, b in enumerate(bad):
        pos = 0 if i == 0 else len(lines) if i == 1 else rng.randrange(1, len(lines))
        lines.insert(pos, ("b", b))
    return lines


def encode(s):
    # a lone surrogate \udcNN stands for the byte NN (invalid UTF-8)
    return s.encode("utf-8", "surrogateescape")


def line_bytes(kind, item):
    if kind == "g":
        return encode("\t".join(item) if isinstance(item, tuple) else item)
    return encode(item[0])


def single_input_args(item, ids):
    """The input flags of a single run of one line."""
    flag = "--ids" if ids else "--text"
    if isinstance(item, tuple):
        return ["--source-ids" if ids else "--source", encode(item[0]), flag, encode(item[1])]
    return [flag, encode(item)]


# -- outputs ------------------------------------------------------------------
# An output set: (name, flags with FILE placeholders {maps} {context} {pred},
# the sections of standard output in order: 'csv' or 'view').

OUTPUTS = [
    ("maps", ["--maps", "{maps}"], []),
    ("context", ["--context", "{context}"], []),
    ("predictions", ["--top-k", "3", "--predictions", "{pred}"], []),
    ("predictions --last", ["--top-k", "2", "--last", "--predictions", "{pred}"], []),
    ("view", [], ["view"]),
    ("view with predictions", ["--top-k", "3"], ["view"]),
    ("all three to files", ["--maps", "{maps}", "--context", "{context}", "--top-k", "3",
                            "--predictions", "{pred}"], []),
    ("all three to -", ["--maps", "-", "--context", "-", "--top-k", "3", "--predictions", "-"],
     ["csv", "csv", "csv"]),
    ("maps and context to -", ["--maps", "-", "--context", "-"], ["csv", "csv"]),
    ("maps to -, predictions listed", ["--maps", "-", "--top-k", "2"], ["csv", "view"]),
    ("context to -, others to files", ["--maps", "{maps}", "--context", "-", "--top-k", "2",
                                       "--predictions", "{pred}"], ["csv"]),
]
FEW = {"all three to files", "all three to -", "view with predictions", "view"}


def sections(out, kinds):
    """Standard output cut into its sections: a CSV ends at the blank line
    that precedes the next output."""
    parts = []
    for k in kinds[:-1]:
        i = out.find(b"\n\n")
        if i < 0:
            return None
        parts.append(out[:i + 1])
        out = out[i + 2:]
    if kinds:
        parts.append(out)
    return parts


def renumber_csv(data, index):
    """The records of a single run (header dropped) with input `index`."""
    lines = data.split(b"\n")
    assert lines[-1] == b"", "a CSV ends with a line break"
    rows = lines[1:-1]
    bad = [r for r in rows if not r.startswith(b"0,")]
    if bad:
        raise ValueError("single run: a record whose input is not 0: %r" % bad[0][:60])
    return lines[0], b"".join(b"%d,%s\n" % (index, r[2:]) for r in rows)


VIEW_INPUT = re.compile(rb"(?m)^(input |(?:next-)?token predictions for input )0\b")


def renumber_view(data, index):
    n = len(VIEW_INPUT.findall(data))
    if n == 0:
        raise ValueError("single run: the view names no input 0")
    return VIEW_INPUT.sub(lambda mo: mo.group(1) + b"%d" % index, data)


def run(args, stdin=None, cwd=None):
    return subprocess.run([ATTN, "run"] + args, input=stdin, capture_output=True, cwd=cwd)


def outputs_of(d, flags, kinds, r):
    """{'maps': bytes, ..., 'stdout': [section, ...]} of one run."""
    got = {}
    for key in ("maps", "context", "pred"):
        if "{%s}" % key in flags:
            with open(os.path.join(d, key + ".csv"), "rb") as f:
                got[key] = f.read()
    got["stdout"] = sections(r.stdout, kinds) if kinds else r.stdout
    return got


def fill(flags, d):
    return [os.path.join(d, f[1:-1] + ".csv") if f.startswith("{") else f for f in flags]


def compare_batch(m, label, lines, ids, src_flags, outputs):
    """One batch per output set against single runs of its good lines;
    src_flags: the encoder input from flags, for both."""
    stdin = b"".join(line_bytes(k, it) + b"\n" for k, it in lines)
    nbad = sum(k == "b" for k, _ in lines)
    base = ["--config", m.config] + (["--ids-input"] if ids else []) + src_flags
    for name, flags, kinds in outputs:
        if "--top-k" in flags and not m.lm_head:
            continue
        what = "%s %s, %s" % (m.name, label, name)
        with tempfile.TemporaryDirectory() as d:
            r = run(base + fill(flags, d), stdin=stdin, cwd=d)
            err = r.stderr.decode("utf-8", "replace").splitlines()
            check(what + ": exit status", r.returncode == (1 if nbad else 0),
                  "%d, %s" % (r.returncode, err[:2]))
            if not check(what + ": one message per bad line", len(err) == nbad,
                         "%d messages for %d bad lines: %s" % (len(err), nbad, err[:4])):
                continue
            batch = outputs_of(d, flags, kinds, r)
        if not kinds:
            check(what + ": nothing on standard output", batch["stdout"] == b"",
                  repr(batch["stdout"][:80]))
        expect = {k: [None, b""] for k in batch if k != "stdout"}
        expect_stdout = [[None, b""] for _ in kinds]
        msgs = iter(err)
        for index, (kind, item) in enumerate(lines):
            if kind == "b":
                text, single, needle = item
                msg = next(msgs)
                prefix = "attn: standard input line %d" % (index + 1)
                if not check(what + ": message names line %d" % (index + 1),
                             re.match(re.escape(prefix) + r"( \(source\))?: ", msg), msg):
                    continue
                if single is None:
                    check(what + ": message of line %d" % (index + 1), needle in msg, msg)
                    continue
                ref = run(["--config", m.config] + src_flags +
                          single_input_args(single, ids) + ["--maps", "-"])
                rmsg = ref.stderr.decode("utf-8", "replace").rstrip("\n")
                # the single run names its flag (--source for the encoder's
                # side) where the batch names the line (and its side)
                want = re.sub(r"^attn: --[a-z-]+", "", rmsg)
                got = re.sub(r"^ \(source\)", "", msg[len(prefix):])
                check(what + ": message of line %d as a single run" % (index + 1),
                      ref.returncode != 0 and got == want,
                      "batch %r, single %r" % (msg, rmsg))
                continue
            with tempfile.TemporaryDirectory() as d:
                ref = run(["--config", m.config] + src_flags + single_input_args(item, ids) +
                          fill(flags, d), cwd=d)
                if not check(what + ": single run of line %d" % (index + 1),
                             ref.returncode == 0 and not ref.stderr, ref.stderr.decode()):
                    return
                single = outputs_of(d, flags, kinds, ref)
            try:
                for key, acc in expect.items():
                    header, rows = renumber_csv(single[key], index)
                    acc[0] = acc[0] or header
                    acc[1] += rows
                for j, kind_j in enumerate(kinds):
                    part = single["stdout"][j]
                    if kind_j == "csv":
                        header, rows = renumber_csv(part, index)
                        expect_stdout[j][0] = expect_stdout[j][0] or header
                        expect_stdout[j][1] += rows
                    else:
                        expect_stdout[j][1] += renumber_view(part, index)
            except (ValueError, TypeError, AssertionError) as e:
                check(what + ": single run of line %d" % (index + 1), False, str(e))
                return
        for key, (header, rows) in expect.items():
            want = (header or batch[key].split(b"\n")[0]) + b"\n" + rows
            check(what + ": " + key + " file", batch[key] == want, first_diff(batch[key], want))
        if kinds:
            if not check(what + ": standard output sections", batch["stdout"] is not None and
                         len(batch["stdout"]) == len(kinds), repr(r.stdout[:200])):
                continue
            for j, (kind_j, (header, rows)) in enumerate(zip(kinds, expect_stdout)):
                got = batch["stdout"][j]
                want = rows if kind_j == "view" else \
                    (header or got.split(b"\n")[0]) + b"\n" + rows
                check(what + ": standard output part %d (%s)" % (j + 1, kind_j), got == want,
                      first_diff(got, want))


def first_diff(a, b):
    if a is None or b is None:
        return "missing"
    al, bl = a.split(b"\n"), b.split(b"\n")
    for i, (x, y) in enumerate(zip(al, bl)):
        if x != y:
            return "line %d: batch %r, single runs %r" % (i + 1, x[:120], y[:120])
    return "batch %d lines, single runs %d lines" % (len(al), len(bl))


def source_embeddings(m, d, rng):
    """A CSV of 3 random source vectors (d_model numbers a row)."""
    path = os.path.join(d, "source.csv")
    with open(path, "w") as f:
        for _ in range(3):
            f.write(",".join("%.6f" % rng.uniform(-2, 2) for _ in range(m.d_model)) + "\n")
    return path


def main():
    rng = random.Random(9)
    few = [o for o in OUTPUTS if o[0] in FEW]
    with tempfile.TemporaryDirectory() as keep:
        for name in ("tiny-decoder", "tiny-encoder", "tiny-translator", "seed-attention"):
            m = Model(name)
            # (label, id lines, encoder input from flags or None, outputs)
            if m.pair:
                modes = [("SOURCE<TAB>TARGET lines", False, None, OUTPUTS),
                         ("SOURCE<TAB>TARGET id lines", True, None, few),
                         ("target lines with --source", False,
                          ["--source", "the cat sees the dog ."], few),
                         ("target id lines with --source-ids", True,
                          ["--source-ids", "1,20,30,40"], few),
                         ("target lines with --source-embeddings", False,
                          ["--source-embeddings", source_embeddings(m, keep, rng)], few)]
            else:
                modes = [("text lines", False, None, OUTPUTS), ("id lines", True, None, few)]
            for label, ids, src_flags, outputs in modes:
                pair = m.pair and src_flags is None  # else a line is the target only
                lines = mix(good_lines(m, rng, ids, pair), bad_lines(m, rng, ids, pair), rng)
                compare_batch(m, label, lines, ids, src_flags or [], outputs)
                # the same batch without its bad lines: exit 0, nothing on stderr
                compare_batch(m, label + " (no bad lines)", [l for l in lines if l[0] == "g"],
                              ids, src_flags or [],
                              [o for o in OUTPUTS if o[0] in ("all three to -",
                                                              "maps and context to -")])
    long_lines()
    crlf_and_last_line()
    source_messages()
    print("%d of %d batch checks failed" % (len(failures), checks) if failures else
          "all %d batch checks passed" % checks)
    return 1 if failures else 0


def long_lines():
    """A line over 1 MiB (refused as it is read) and one of exactly 1 MiB
    (read whole, then refused by the tokenizer's length check) in the middle
    of a batch: the lines after them keep their numbers."""
    m = Model("tiny-decoder")
    over = b"cat " * (LINE_MAX // 4) + b"x"          # LINE_MAX + 1 bytes
    at = b"cat " * (LINE_MAX // 4 - 1) + b"cat."     # LINE_MAX bytes
    stdin = b"the cat\n" + over + b"\nthe dog\n" + at + b"\na bird\n"
    r = run(["--config", m.config, "--context", "-"], stdin=stdin)
    err = r.stderr.decode().splitlines()
    check("line over 1 MiB: exit 1", r.returncode == 1, str(r.returncode))
    check("line over 1 MiB: two messages", len(err) == 2, str(err))
    check("line over 1 MiB: named", len(err) == 2 and
          err[0] == "attn: standard input line 2: longer than %d bytes" % LINE_MAX, str(err))
    check("line of 1 MiB: named", len(err) == 2 and
          err[1].startswith("attn: standard input line 4: "), str(err))
    inputs = [l.split(b",", 1)[0] for l in r.stdout.split(b"\n")[1:] if l]
    check("long lines: later lines keep their numbers",
          sorted(set(inputs)) == [b"0", b"2", b"4"], str(sorted(set(inputs))))


def crlf_and_last_line():
    """CRLF line ends are cut; a last line without a line break is read; its
    input number counts every line before it."""
    m = Model("tiny-decoder")
    stdin = b"the cat\r\n\r\nthe dog sees\r\na bird"
    r = run(["--config", m.config, "--maps", "-"], stdin=stdin)
    want = b""
    for index, text in ((0, "the cat"), (2, "the dog sees"), (3, "a bird")):
        ref = run(["--config", m.config, "--text", text, "--maps", "-"])
        header, rows = renumber_csv(ref.stdout, index)
        want = want or header + b"\n"
        want += rows
    check("CRLF and last line: output", r.stdout == want, first_diff(r.stdout, want))
    check("CRLF and last line: the empty line 2 is named",
          r.returncode == 1 and r.stderr.decode().startswith("attn: standard input line 2: "),
          r.stderr.decode())


def source_messages():
    """A source longer than max_seq_len is named by the flag or the line side
    that gave it, not by the target's flag."""
    m = Model("tiny-translator")
    long = " ".join(["the"] * (m.max_seq_len + 1))
    # the count of a text includes the tokens the tokenizer adds
    tail = r": sequence of \d+ positions is longer than max_seq_len %d" % m.max_seq_len
    cases = [(["--source", long, "--text", "the"], None, "attn: --source"),
             (["--source-ids", ",".join(["5"] * (m.max_seq_len + 1)), "--text", "the"], None,
              "attn: --source-ids"),
             ([], (long + "\tthe\n").encode(), "attn: standard input line 1 (source)"),
             (["--source", long], b"the\n", "attn: --source")]
    for flags, stdin, prefix in cases:
        r = run(["--config", m.config, "--maps", "-"] + flags, stdin=stdin)
        err = r.stderr.decode().splitlines()
        check("source message " + prefix, r.returncode in (1, 2) and len(err) == 1 and
              re.fullmatch(re.escape(prefix) + tail, err[0]) is not None, str(err))


if __name__ == "__main__":
    sys.exit(main())

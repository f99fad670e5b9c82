#!/usr/bin/python3
"""The readable view of `attn run` fits the line and summarises what does not.

    /usr/bin/python3 test_view.py ATTN_EXE SOURCE_ROOT bundled|stories260k

bundled: the models in models/ (and tiny-encoder under a copy of its config
that allows 64 positions), each on an input long enough that its keys do
not fit in one line:
  1. with COLUMNS=80, 60 and 50, and with --width 80 under COLUMNS=200,
     every line of the view (ANSI escapes stripped, --color=always) is at
     most that many characters (UTF-8 code points);
  2. each map lists every query's strongest keys; read back and checked
     against the same run's `--maps -` CSV (an independent path through the
     library's CSV writer): the keys shown are the query's largest weights
     (every weight shown >= every weight left out), in order, with the CSV's
     weight to 3 decimals; "… N more keys, Σ=S" counts and sums the others;
  3. a map of more than 32 queries shows queries 0..15 and the last 16, and
     one line names the others; every map has fewer than 40 lines;
  4. a short input whose keys fit keeps the grid (a header of key positions,
     one '*' per query); --width 0 puts every key on one line; --full shows
     the grid in bands of key columns and every query;
  5. --width: 0 and 20..100000 are accepted by run and explain; 19, 100001,
     -1, '', 'x' are usage errors (exit 2, one line naming --width);
     explain --width 0 and --width 100000 cut no column;
  6. on a pseudo-terminal (COLUMNS unset) the view fits the terminal's
     width (TIOCGWINSZ); --color=auto shades it, unless TERM=dumb or
     NO_COLOR is set.
stories260k: ../shared/models/stories260K imported with `attn import`, a
45-token prompt: checks 1 to 3 at 80 columns (exit 77 when the model is
absent).

Exit status: 0 pass, 1 fail, 77 skip.
"""
import csv
import fcntl
import io
import os
import pty
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import termios

ANSI = re.compile(r"\x1b\[[0-9;]*m")
TITLE = re.compile(r"^(encoder|decoder) layer (\d+), (self|cross)-attention, head (\d+)$")
LIST_NOTE = ("  each query's strongest keys", "  strongest keys (all: --full)")
TAIL_LONG = re.compile(r"  … (\d+) more keys?, Σ=(\d\.\d{3})$")
TAIL_SHORT = re.compile(r"  …\+(\d+)$")
ITEM = re.compile(r"  (\d+)(?::(.{0,8}?))? ([01]\.\d{3})(?=  |$)")
LABEL = 13          # the query label column of the view
MAX_ROWS = 32       # queries shown per map without --full: the first and last 16
STORY_PROMPT = ("Once upon a time, there was a little girl named Lily. She loved to play "
                "outside in the park with her friends every day. One day, she saw a")
STORY_TOKENS = 45


class Failures:
    def __init__(self):
        self.msgs = []

    def check(self, ok, what):
        if not ok:
            print("FAIL: " + what)
            self.msgs.append(what)
        return ok


def run(exe, args, env=None, stdin=None):
    e = dict(os.environ)
    e.pop("COLUMNS", None)
    e.pop("NO_COLOR", None)
    e.update(env or {})
    return subprocess.run([exe] + args, capture_output=True, env=e, input=stdin, timeout=600)


def text(p):
    return p.stdout.decode("utf-8")


def maps_csv(out):
    """{(stack, layer, kind, head): {query_pos: {key_pos: weight}}} from `--maps -`."""
    rows = list(csv.reader(io.StringIO(out)))
    col = {c: i for i, c in enumerate(rows[0])}
    maps = {}
    for r in rows[1:]:
        if not r:
            continue
        key = (r[col["stack"]], int(r[col["layer"]]), r[col["kind"]], int(r[col["head"]]))
        q = maps.setdefault(key, {}).setdefault(int(r[col["query_pos"]]), {})
        q[int(r[col["key_pos"]])] = float(r[col["weight"]])
    return maps


def split_heads(lines):
    """[(key, [lines of the map after its title])] in order."""
    heads, cur = [], None
    for line in lines:
        m = TITLE.match(line)
        if m:
            cur = ((m.group(1), int(m.group(2)), m.group(3), int(m.group(4))), [])
            heads.append(cur)
        elif line.startswith("context vectors"):
            cur = None
        elif cur is not None:
            cur[1].append(line)
    return heads


def check_width(f, out, width, what):
    lines = ANSI.sub("", out).split("\n")
    long = [l for l in lines if len(l) > width]
    f.check(not long, "%s: %d line(s) wider than %d, e.g. %r"
            % (what, len(long), width, long[0] if long else ""))
    return lines


def check_list_row(f, what, q, rest, weights):
    """One query's list of strongest keys against the CSV weights {key: w}."""
    tail = TAIL_LONG.search(rest) or TAIL_SHORT.search(rest)
    items_text = rest[:tail.start()] if tail else rest
    items = ITEM.findall(items_text)
    if not f.check(items and ITEM.sub("", items_text) == "",
                   "%s query %d: cannot read the keys in %r" % (what, q, rest)):
        return
    shown = [int(k) for k, _, _ in items]
    printed = [float(w) for _, _, w in items]
    if not f.check(len(set(shown)) == len(shown) and all(k in weights for k in shown),
                   "%s query %d: keys shown %s are not distinct keys it sees" % (what, q, shown)):
        return
    for k, w in zip(shown, printed):
        f.check(abs(w - weights[k]) <= 0.0005 + 1e-6,
                "%s query %d key %d: view %.3f, CSV %.9g" % (what, q, k, w, weights[k]))
    f.check(printed == sorted(printed, reverse=True),
            "%s query %d: keys not strongest first: %s" % (what, q, printed))
    left = [w for k, w in weights.items() if k not in shown]
    if left:
        f.check(min(weights[k] for k in shown) >= max(left),
                "%s query %d: a key left out (%.9g) outweighs one shown (%.9g)"
                % (what, q, max(left), min(weights[k] for k in shown)))
    n_more = int(tail.group(1)) if tail else 0
    f.check(n_more == len(left), "%s query %d: '%d more keys', the CSV leaves out %d"
            % (what, q, n_more, len(left)))
    if tail and tail.re is TAIL_LONG:
        f.check(abs(float(tail.group(2)) - sum(left)) <= 0.0015,
                "%s query %d: Σ=%s, the CSV's keys left out sum to %.6f"
                % (what, q, tail.group(2), sum(left)))


def check_view(f, view, csv_maps, width, what, listed=True):
    """The maps of a view laid out to `width` against the CSV of the same run."""
    lines = check_width(f, view, width, what)
    heads = split_heads(lines)
    f.check(sorted(h for h, _ in heads) == sorted(csv_maps),
            "%s: the view's maps %s are not the CSV's %s"
            % (what, sorted(h for h, _ in heads)[:4], sorted(csv_maps)[:4]))
    most = 0
    for key, body in heads:
        name = "%s %s" % (what, key)
        most = max(most, len(body) + 1)
        f.check(len(body) + 1 < 40, "%s: %d lines" % (name, len(body) + 1))
        queries = csv_maps.get(key, {})
        T = len(queries)
        if listed:
            f.check(body and body[0].startswith(LIST_NOTE),
                    "%s: no note on the strongest keys: %r" % (name, body[:1]))
        rows = [l for l in body if re.match(r"^[ \d]{3}\d ", l) and len(l) > LABEL]
        got = [int(l[:4]) for l in rows]
        want = sorted(queries)
        if T > MAX_ROWS:
            want = want[:MAX_ROWS // 2] + want[-(MAX_ROWS // 2):]
            note = "  … %d more queries (%d..%d)" % (T - MAX_ROWS, MAX_ROWS // 2,
                                                     T - MAX_ROWS // 2 - 1)
            f.check(any(l.startswith(note) for l in body), "%s: no line %r" % (name, note))
        if not f.check(got == want, "%s: queries shown %s, expected %s" % (name, got, want)):
            continue
        if listed:
            for line, q in zip(rows, got):
                check_list_row(f, name, q, line[LABEL:], queries[q])
    return most


def words(n):
    base = "the cat sits on the mat . the dog runs in the park . a bird sings in a tree .".split()
    return " ".join(base[i % len(base)] for i in range(n))


def encoder_copy(root, tmp):
    """models/tiny-encoder under a config that allows 64 positions (sinusoidal)."""
    src = os.path.join(root, "models", "tiny-encoder")
    d = os.path.join(tmp, "enc64")
    os.makedirs(d)
    cfg = open(os.path.join(src, "config.json")).read()
    cfg = re.sub(r'"max_seq_len":\s*\d+', '"max_seq_len": 64', cfg)
    open(os.path.join(d, "config.json"), "w").write(cfg)
    for name in os.listdir(src):
        if name != "config.json":
            os.symlink(os.path.join(src, name), os.path.join(d, name))
    return os.path.join(d, "config.json")


def check_case(f, exe, args, width, what, env_extra=None, listed=True):
    """The view (--color=always) and `--maps -` of the same args."""
    env = {"COLUMNS": str(width)}
    env.update(env_extra or {})
    v = run(exe, ["run"] + args + ["--color=always"], env)
    m = run(exe, ["run"] + args + ["--maps", "-"])
    if not f.check(v.returncode == 0 and m.returncode == 0, "%s: exit %d/%d: %s%s"
                   % (what, v.returncode, m.returncode, v.stderr[-300:], m.stderr[-300:])):
        return 0, ""
    return check_view(f, text(v), maps_csv(text(m)), width, what, listed), text(v)


def on_pty(exe, args, cols, env_extra):
    """attn with standard output on a pseudo-terminal of `cols` columns."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, cols, 0, 0))
    env = dict(os.environ)
    for k in ("COLUMNS", "NO_COLOR", "TERM"):
        env.pop(k, None)
    env.update(env_extra)
    p = subprocess.Popen([exe] + args, stdin=subprocess.DEVNULL, stdout=slave,
                         stderr=subprocess.DEVNULL, env=env)
    os.close(slave)
    chunks = []
    while True:
        try:
            b = os.read(master, 65536)
        except OSError:  # EIO once the child has closed the terminal
            break
        if not b:
            break
        chunks.append(b)
    os.close(master)
    rc = p.wait()
    return rc, b"".join(chunks).decode("utf-8").replace("\r\n", "\n")


def bundled(f, exe, root, tmp):
    dec = os.path.join(root, "models", "tiny-decoder", "config.json")
    enc = encoder_copy(root, tmp)
    tr = os.path.join(root, "models", "tiny-translator", "config.json")
    cases = [
        ("tiny-decoder 25 words", [ "--config", dec, "--text", words(25)]),
        ("tiny-encoder 40 words", ["--config", enc, "--text", words(40)]),
        ("tiny-translator 20+18 words", ["--config", tr, "--source", words(20),
                                         "--text", words(18)]),
    ]
    # vectors as input: labels are the positions
    import random
    rnd = random.Random(7)
    emb = os.path.join(tmp, "x.csv")
    with open(emb, "w") as fh:
        for _ in range(36):
            fh.write(",".join("%.6f" % rnd.gauss(0, 1) for _ in range(64)) + "\n")
    cases.append(("tiny-encoder 36 vectors", ["--config", enc, "--embeddings", emb]))
    for what, args in cases:
        for width in (80, 60, 50):
            check_case(f, exe, args, width, "%s at %d" % (what, width))
    # --width wins over COLUMNS
    check_case(f, exe, cases[0][1] + ["--width", "80"], 80, "tiny-decoder --width 80",
               {"COLUMNS": "200"})

    # 4. a short input keeps the grid
    short = ["--config", dec, "--text", "the cat sits on the mat"]
    most, v = check_case(f, exe, short, 80, "tiny-decoder short", listed=False)
    f.check("strongest keys" not in v and "keys 0.." not in v,
            "short input: not one grid per map: %s" % v[:600])
    for key, body in split_heads(v.split("\n")):
        rows = [l for l in body if re.match(r"^[ \d]{3}\d ", l) and len(l) > LABEL]
        f.check(body[0].split() == [str(i) for i in range(len(rows))] and
                all(l.count("*") == 1 for l in rows),
                "short input %s: no grid header or not one '*' per query" % (key,))
    p = run(exe, ["run"] + cases[1][1] + ["--width", "0"])
    lines = text(p).split("\n")
    f.check(p.returncode == 0 and "strongest keys" not in text(p) and
            max(len(l) for l in lines) >= LABEL + 40 * 7,
            "--width 0: not every key on one line (longest %d)" % max(len(l) for l in lines))
    p = run(exe, ["run"] + cases[1][1] + ["--full"], {"COLUMNS": "80"})
    v = text(p)
    heads = split_heads(v.split("\n"))
    f.check(p.returncode == 0 and "strongest keys" not in v and "keys 36..39 of 40" in v and
            "more queries" not in v and all(
                sum(1 for l in b if l.startswith("  39 ")) == 5 for _, b in heads),
            "--full: not every key in bands and every query in each band")

    # 5. --width values
    for cmd in (["run", "--config", dec, "--text", "the cat"],
                ["explain", "--config", dec, "--text", "the cat"]):
        for ok in ("0", "20", "100000"):
            p = run(exe, cmd + ["--width", ok])
            f.check(p.returncode == 0, "%s --width %s: exit %d %s"
                    % (cmd[0], ok, p.returncode, p.stderr))
        for bad in ("19", "100001", "-1", "", "x", "80x"):
            p = run(exe, cmd + ["--width", bad])
            err = p.stderr.decode()
            f.check(p.returncode == 2 and err.count("\n") == 1 and "--width" in err and
                    "0 (no limit)" in err and p.stdout == b"",
                    "%s --width %r: exit %d, stderr %r" % (cmd[0], bad, p.returncode, err))
    ex = ["explain", "--config", dec, "--text", "the cat sits"]
    a, b = run(exe, ex + ["--width", "0"]), run(exe, ex + ["--width", "100000"])
    f.check(a.returncode == 0 and "…" not in text(a) and "d63" in text(a) and a.stdout == b.stdout,
            "explain --width 0 and --width 100000: every column, the same layout")
    c = run(exe, ex + ["--width", "80"])
    f.check("…" in text(c), "explain --width 80 cuts the 64 columns")

    # 6. a terminal: its width, colour unless TERM=dumb or NO_COLOR
    args = ["run"] + cases[0][1]
    for env, colour in (({"TERM": "xterm"}, True), ({}, True), ({"TERM": "dumb"}, False),
                        ({"TERM": "xterm", "NO_COLOR": "1"}, False)):
        rc, out = on_pty(exe, args, 64, env)
        f.check(rc == 0, "on a terminal %s: exit %d" % (env, rc))
        f.check(("\x1b[48;5;" in out) == colour, "on a terminal %s: colour %s expected"
                % (env, "on" if colour else "off"))
        check_width(f, out, 64, "on a 64-column terminal %s" % env)
    rc, out = on_pty(exe, args + ["--color=always"], 64, {"TERM": "dumb"})
    f.check("\x1b[48;5;" in out, "--color=always shades even with TERM=dumb")
    return 0


def stories(f, exe, root, tmp):
    d = os.path.join(root, "..", "shared", "models", "stories260K")
    ckpt, tok = os.path.join(d, "stories260K.bin"), os.path.join(d, "tok512.bin")
    if not (os.path.exists(ckpt) and os.path.exists(tok)):
        print("SKIP: %s not found (the real model lives beside the repository)" % d)
        return 77
    out = os.path.join(tmp, "stories260K")
    p = run(exe, ["import", "llama2c", "--checkpoint", ckpt, "--tokenizer", tok, "--out", out])
    if not f.check(p.returncode == 0, "attn import: %s" % p.stderr):
        return 0
    cfg = os.path.join(out, "config.json")
    args = ["--config", cfg, "--text", STORY_PROMPT]
    m = run(exe, ["run"] + args + ["--maps", "-"])
    maps = maps_csv(text(m))
    T = max(len(q) for q in maps.values())
    f.check(T == STORY_TOKENS, "the prompt is %d tokens, expected %d" % (T, STORY_TOKENS))
    most, v = check_case(f, exe, args, 80, "stories260K %d tokens at 80" % T)
    n = v.count("\n")
    print("stories260K, %d tokens, 80 columns: %d lines of view, at most %d per map"
          % (T, n, most))
    f.check(n < 40 * 40 + 200, "%d lines for 40 maps" % n)
    return 0


def main():
    exe, root, mode = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2]), sys.argv[3]
    if not os.access(exe, os.X_OK):
        print("SKIP: no attn executable at %s" % exe)
        return 77
    f = Failures()
    tmp = tempfile.mkdtemp(prefix="attn-view-")
    try:
        rc = (bundled if mode == "bundled" else stories)(f, exe, root, tmp)
    finally:
        shutil.rmtree(tmp)
    if rc == 77:
        return 77
    if f.msgs:
        print("%d check(s) failed" % len(f.msgs))
        return 1
    print("all view checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())

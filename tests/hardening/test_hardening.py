"""Hostile outputs, signals and messages, against the real binary (issue 9).

  test_hardening.py ATTN_EXE SOURCE_ROOT

Each case runs attn in a fresh temporary folder and checks its exit status,
its message and the files it leaves. Devices are stand-ins made with mknod in
that folder (never the real /dev/null); the mknod cases skip when not root.
"""
import itertools
import json
import os
import shutil
import signal
import stat
import struct
import subprocess
import sys
import tempfile
import time

ATTN, ROOT = sys.argv[1], sys.argv[2]
CFG = os.path.join(ROOT, "models", "tiny-decoder", "config.json")
failures = []


def check(name, ok, detail=""):
    print(("ok   " if ok else "FAIL ") + name + ("" if ok else ": " + detail))
    if not ok:
        failures.append(name)


def run(args, cwd, **kw):
    return subprocess.run([ATTN] + args, cwd=cwd, capture_output=True, **kw)


def leftovers(d):
    return [f for f in os.listdir(d) if ".tmp." in f]


def write_llama2c(d, dim, hidden, layers, heads, vocab, seq, seed, poison=None):
    """A legacy llama2.c checkpoint of random float32 (rope tables included)
    and a tokenizer.bin of `vocab` pieces, in d; returns their paths.
    poison = (float index after the header, value) puts one value in."""
    import numpy as np
    rng = np.random.default_rng(seed)
    hd = dim // heads
    n = (vocab * dim + 2 * layers * dim + dim + 4 * layers * dim * dim
         + 3 * layers * hidden * dim + 2 * seq * (hd // 2))
    w = rng.uniform(-0.1, 0.1, n).astype("<f4")
    if poison:
        w[poison[0]] = poison[1]
    ckpt, tok = os.path.join(d, "model.bin"), os.path.join(d, "tok.bin")
    with open(ckpt, "wb") as f:
        f.write(struct.pack("<7i", dim, hidden, layers, heads, heads, vocab, seq))
        f.write(w.tobytes())
    with open(tok, "wb") as f:
        f.write(struct.pack("<i", 8))
        for i in range(vocab):
            piece = b"p%d" % i
            f.write(struct.pack("<fi", -float(i), len(piece)) + piece)
    return ckpt, tok


def no_core():
    import resource
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def import_args(ckpt, tok, out):
    return [ATTN, "import", "llama2c", "--checkpoint", ckpt, "--tokenizer", tok, "--out", out]


def tmp_folders(d):
    return [f for f in os.listdir(d) if ".tmp." in f and os.path.isdir(os.path.join(d, f))]


def stop_with_tmp_folder(args, d):
    """Starts args in d and stops it (SIGSTOP) at a moment its temporary
    folder exists: returns the stopped process, or None if it finished
    first every time."""
    for _ in range(10):
        p = subprocess.Popen(args, cwd=d, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             preexec_fn=no_core)
        while p.poll() is None and not tmp_folders(d):
            time.sleep(0.001)
        if p.poll() is None:
            os.kill(p.pid, signal.SIGSTOP)
            os.waitpid(p.pid, os.WUNTRACED)
            if tmp_folders(d):
                return p
            os.kill(p.pid, signal.SIGCONT)
        p.wait(timeout=120)
        shutil.rmtree(os.path.join(d, "out"), ignore_errors=True)
    return None


def main():
    # 1. a character device is written straight through, never replaced
    with tempfile.TemporaryDirectory() as d:
        dev = os.path.join(d, "null")
        if os.geteuid() == 0:
            os.mknod(dev, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
            r = run(["run", "--config", CFG, "--text", "the cat", "--maps", dev], d)
            check("device: exit 0", r.returncode == 0, r.stderr.decode())
            check("device: still a character device", stat.S_ISCHR(os.stat(dev).st_mode))
            check("device: no temporary left", not leftovers(d), str(leftovers(d)))
        else:
            print("skip device stand-in: mknod needs root")

    # 2. a FIFO's reader gets the whole CSV
    with tempfile.TemporaryDirectory() as d:
        fifo = os.path.join(d, "fifo")
        os.mkfifo(fifo)
        reader = subprocess.Popen(["cat", fifo], stdout=subprocess.PIPE)
        r = run(["run", "--config", CFG, "--text", "the cat", "--maps", fifo], d)
        got = reader.communicate(timeout=30)[0].decode()
        ref = run(["run", "--config", CFG, "--text", "the cat", "--maps", "-"], d).stdout.decode()
        check("fifo: exit 0", r.returncode == 0, r.stderr.decode())
        check("fifo: the reader got the maps", got == ref and got.count("\n") > 2,
              "%d vs %d bytes" % (len(got), len(ref)))
        check("fifo: still a FIFO", stat.S_ISFIFO(os.stat(fifo).st_mode))

    # 3. /dev/full: exit 1 and a message, no temporary (written straight through)
    with tempfile.TemporaryDirectory() as d:
        if os.path.exists("/dev/full"):
            r = run(["run", "--config", CFG, "--text", "the cat", "--maps", "/dev/full"], d)
            err = r.stderr.decode()
            check("/dev/full: exit 1", r.returncode == 1, str(r.returncode))
            check("/dev/full: no space left", "No space left" in err and err.count("\n") == 1, err)

    # 4. an empty output path is a usage error, and nothing is written
    with tempfile.TemporaryDirectory() as d:
        r = run(["run", "--config", CFG, "--text", "the cat", "--context", "c.csv", "--maps", ""], d)
        check("empty path: exit 2", r.returncode == 2, str(r.returncode))
        check("empty path: says so", b"empty" in r.stderr, r.stderr.decode())
        check("empty path: no file left", os.listdir(d) == [], str(os.listdir(d)))

    # 5. terminal escapes from a file never reach standard error raw
    with tempfile.TemporaryDirectory() as d:
        cfg = os.path.join(d, "c.json")
        with open(cfg, "w") as f:
            f.write('{"format": "attn/1", "\x1b]0;pwned\x07": 1}')
        r = run(["run", "--config", cfg, "--text", "x"], d)
        check("escapes: a usage or format error", r.returncode in (1, 2), str(r.returncode))
        check("escapes: no ESC or BEL in the message",
              b"\x1b" not in r.stderr and b"\x07" not in r.stderr and b"\\x1b" in r.stderr,
              repr(r.stderr))

    # 6. SIGPIPE on standard output with a file output open: the file's
    #    temporary is removed, the process dies of SIGPIPE as before
    with tempfile.TemporaryDirectory() as d:
        inp = os.path.join(d, "in.txt")
        with open(inp, "w") as f:
            f.write("the cat sat on the mat\n" * 4000)
        with open(inp) as stdin:
            p = subprocess.Popen([ATTN, "run", "--config", CFG, "--maps", "-", "--context",
                                  "ctx.csv"], cwd=d, stdin=stdin, stdout=subprocess.PIPE,
                                 stderr=subprocess.DEVNULL)
            p.stdout.readline()
            p.stdout.close()  # the reader goes away
            p.wait(timeout=120)
        check("sigpipe: died of SIGPIPE", p.returncode == -signal.SIGPIPE, str(p.returncode))
        check("sigpipe: no temporary left", sorted(os.listdir(d)) == ["in.txt"],
              str(os.listdir(d)))

    # 7. SIGTERM during a batch removes the temporaries; an ignored SIGHUP
    #    (nohup) stays ignored
    for sig, ignored in ((signal.SIGTERM, False), (signal.SIGHUP, True), (signal.SIGINT, True)):
        with tempfile.TemporaryDirectory() as d:
            pre = (lambda: signal.signal(sig, signal.SIG_IGN)) if ignored else None
            p = subprocess.Popen([ATTN, "run", "--config", CFG, "--maps", "m.csv"], cwd=d,
                                 stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, preexec_fn=pre)
            p.stdin.write(b"the cat\n" * 50)
            p.stdin.flush()
            for _ in range(200):  # wait until the temporary exists
                if leftovers(d):
                    break
                time.sleep(0.02)
            p.send_signal(sig)
            time.sleep(0.2)
            name = signal.Signals(sig).name
            if ignored:
                p.stdin.close()
                p.wait(timeout=120)
                check("%s ignored by the caller: run completes" % name,
                      p.returncode == 0 and os.path.exists(os.path.join(d, "m.csv")),
                      "%s %s" % (p.returncode, os.listdir(d)))
            else:
                p.wait(timeout=120)
                check("%s: died of it" % name, p.returncode == -sig, str(p.returncode))
                check("%s: no temporary, no output" % name, os.listdir(d) == [],
                      str(os.listdir(d)))

    # 7b. the same for output folders (--dump, batch mode: a folder per input
    #     inside the temporary one): the signal removes the whole tree
    folder_outputs = (("--dump", ["--dump", "*", "--out", "dumps"]),
                      ("--heatmap", ["--heatmap", "pictures"]))
    for (what, flags), sig in itertools.product(folder_outputs, (signal.SIGTERM, signal.SIGINT)):
        with tempfile.TemporaryDirectory() as d:
            p = subprocess.Popen([ATTN, "run", "--config", CFG] + flags,
                                 cwd=d, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE)
            p.stdin.write(b"the cat\nthe dog\n")
            p.stdin.flush()
            tree = []
            for _ in range(500):  # wait until the second input's folder has files
                tree = [os.path.join(r, f) for r, _, fs in os.walk(d) for f in fs]
                if any(os.sep + "1" + os.sep in t for t in tree):
                    break
                time.sleep(0.02)
            name = "%s during %s" % (signal.Signals(sig).name, what)
            check("%s: a tree exists before the signal" % name, len(tree) >= 2, str(tree))
            p.send_signal(sig)
            p.wait(timeout=120)
            check("%s: died of it" % name, p.returncode == -sig, str(p.returncode))
            check("%s: no temporary folder, no output" % name, os.listdir(d) == [],
                  str(os.listdir(d)))

    # 8. the same file under two spellings is a usage error, before any work
    with tempfile.TemporaryDirectory() as d:
        open(os.path.join(d, "b.csv"), "w").close()
        os.symlink("b.csv", os.path.join(d, "l.csv"))
        cases = [
            (["run", "--config", CFG, "--text", "the cat", "--maps", "a.csv", "--context", "./a.csv"], "a.csv"),
            (["run", "--config", CFG, "--text", "the cat", "--maps", "b.csv", "--context", "l.csv"], "b.csv"),
            (["run", "--config", CFG, "--text", "the cat", "--top-k", "2", "--maps", "p.csv",
              "--predictions", os.path.join(d, "p.csv")], "p.csv"),
            (["generate", "--config", CFG, "--text", "the cat", "--steps", "2", "--maps", "t.csv",
              "--tokens", "./t.csv"], "t.csv"),
        ]
        for args, name in cases:
            r = run(args, d)
            check("same file %s: exit 2" % " ".join(args[-4:]), r.returncode == 2
                  and b"the same file" in r.stderr, "%d %r" % (r.returncode, r.stderr))
        check("same file: nothing written", sorted(os.listdir(d)) == ["b.csv", "l.csv"],
              str(os.listdir(d)))

    # 9. closed standard streams: a closed standard output never becomes an
    #    output file's descriptor; batch mode refuses a closed standard input
    with tempfile.TemporaryDirectory() as d:
        r = run(["run", "--config", CFG, "--text", "the cat", "--maps", "m.csv", "--context",
                 "c.csv"], d, preexec_fn=lambda: os.close(1))
        with open(os.path.join(d, "m.csv")) as f:
            m = f.readline()
        with open(os.path.join(d, "c.csv")) as f:
            c = f.readline()
        check("stdout closed: exit 0", r.returncode == 0, str(r.returncode))
        check("stdout closed: each file holds its own CSV",
              m.startswith("input,stack,layer") and c.startswith("input,pos,token"), m + c)
    with tempfile.TemporaryDirectory() as d:
        r = run(["run", "--config", CFG, "--maps", "m.csv"], d, preexec_fn=lambda: os.close(0))
        check("stdin closed: batch mode is a usage error", r.returncode == 2
              and b"standard input is closed" in r.stderr, "%d %r" % (r.returncode, r.stderr))
        check("stdin closed: no file", os.listdir(d) == [], str(os.listdir(d)))

    # 10. a batch line longer than the limit (1 MiB) is refused as it is read,
    #     not after buffering it, and the numbering of later lines holds
    with tempfile.TemporaryDirectory() as d:
        inp = os.path.join(d, "in.txt")
        with open(inp, "w") as f:
            f.write("the cat\n" + "a" * (100 << 20) + "\nthe mat\n")
        with open(inp) as stdin:
            r = subprocess.run(["/usr/bin/time", "-f", "maxrss %M", ATTN, "run", "--config", CFG,
                                "--maps", "m.csv"], cwd=d, stdin=stdin, capture_output=True)
        err = r.stderr.decode()
        rss = int(err.split("maxrss ")[-1].split()[0]) if "maxrss " in err else 0
        with open(os.path.join(d, "m.csv")) as f:
            inputs = sorted({row.split(",")[0] for row in f.read().splitlines()[1:]})
        check("long line: exit 1 and a message naming line 2",
              r.returncode == 1 and "line 2: longer than 1048576 bytes" in err, err)
        check("long line: inputs 0 and 2 written", inputs == ["0", "2"], str(inputs))
        check("long line: peak memory under 64 MiB (%d KiB)" % rss, 0 < rss < 65536, str(rss))

    # 11. a UTF-8 byte order mark at the start of a config, a vocabulary or an
    #     embeddings CSV is skipped: the same run as without it
    with tempfile.TemporaryDirectory() as d:
        src = os.path.dirname(CFG)
        for f in os.listdir(src):
            shutil.copy(os.path.join(src, f), d)
        with open(os.path.join(src, "config.json"), "rb") as f:
            cfg_bytes = f.read()
        vocab = json.loads(cfg_bytes)["tokenizer"]["vocab"]
        ref = run(["run", "--config", os.path.join(src, "config.json"), "--text", "the cat sat",
                   "--context", "-"], d).stdout
        for name in ("config.json", vocab):
            path = os.path.join(d, name)
            with open(path, "rb") as f:
                data = f.read()
            with open(path, "wb") as f:
                f.write(b"\xef\xbb\xbf" + data)
        r = run(["run", "--config", os.path.join(d, "config.json"), "--text", "the cat sat",
                 "--context", "-"], d)
        check("BOM in config and vocabulary: same run", r.returncode == 0 and r.stdout == ref,
              r.stderr.decode())
        d_model = json.loads(cfg_bytes)["d_model"]
        rows = "\n".join(",".join("%g" % ((i * 7 + j * 3) % 11 / 10 - 0.5) for j in range(d_model))
                         for i in range(3)) + "\n"
        for name, data in (("e.csv", rows.encode()), ("bom.csv", b"\xef\xbb\xbf" + rows.encode())):
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)
        a = run(["run", "--config", CFG, "--embeddings", "e.csv", "--context", "-"], d)
        b = run(["run", "--config", CFG, "--embeddings", "bom.csv", "--context", "-"], d)
        check("BOM in an embeddings CSV: same run", a.returncode == 0 and a.stdout == b.stdout,
              b.stderr.decode())

    # 12. an interrupted import removes its temporary folder (and its files),
    #     and the process dies of the signal. SIGXFSZ: a file size limit
    #     smaller than the model, hit while model.safetensors is written.
    shared = os.path.join(ROOT, "..", "shared", "models", "stories260K")
    with tempfile.TemporaryDirectory() as d:
        import resource
        ckpt, tok = write_llama2c(d, 64, 128, 2, 4, 64, 32, 1)
        inputs = [("random checkpoint", ckpt, tok)]
        if os.path.exists(os.path.join(shared, "stories260K.bin")):
            inputs.append(("stories260K", os.path.join(shared, "stories260K.bin"),
                           os.path.join(shared, "tok512.bin")))
        else:
            print("skip the stories260K import: %s is absent" % shared)
        for what, c, t in inputs:
            def limit():
                no_core()
                resource.setrlimit(resource.RLIMIT_FSIZE, (64 << 10, 64 << 10))
            r = subprocess.run(import_args(c, t, "out"), cwd=d, capture_output=True,
                               preexec_fn=limit)
            check("import %s, SIGXFSZ: died of it" % what, r.returncode == -signal.SIGXFSZ,
                  "%s %r" % (r.returncode, r.stderr))
            check("import %s, SIGXFSZ: no temporary folder, no output" % what,
                  not leftovers(d) and not os.path.exists(os.path.join(d, "out")),
                  str(os.listdir(d)))
            for f in leftovers(d):
                shutil.rmtree(os.path.join(d, f))
    #     The other signals, sent while the import is stopped at a moment its
    #     temporary folder exists (a checkpoint of 28 MB gives that moment).
    with tempfile.TemporaryDirectory() as d:
        ckpt, tok = write_llama2c(d, 256, 768, 8, 8, 512, 64, 2)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGPIPE):
            name = signal.Signals(sig).name
            p = stop_with_tmp_folder(import_args(ckpt, tok, "out"), d)
            if p is None:
                check("import, %s: stopped while its temporary folder exists" % name, False,
                      "the import always finished first")
                continue
            os.kill(p.pid, sig)
            os.kill(p.pid, signal.SIGCONT)
            p.wait(timeout=120)
            check("import, %s: died of it" % name, p.returncode == -sig,
                  "%s %r" % (p.returncode, p.stderr.read()))
            check("import, %s: no temporary folder, no output" % name,
                  not leftovers(d) and not os.path.exists(os.path.join(d, "out")),
                  str(os.listdir(d)))
            p.stderr.close()
            for f in leftovers(d):  # (so that each signal is judged alone)
                shutil.rmtree(os.path.join(d, f))

    # 13. the weights are mapped: truncating the weights file of a running
    #     batch stops it with one line (attn's SIGBUS handler), exit 1, and
    #     leaves no output and no temporary (tests/memory/test_sigbus.py
    #     does it for more outputs)
    with tempfile.TemporaryDirectory() as d:
        src = os.path.dirname(CFG)
        model = os.path.join(d, "model")
        shutil.copytree(src, model)
        cfg = os.path.join(model, "config.json")
        lines = b"the cat sat on the mat\nthe dog\n"
        p = subprocess.Popen([ATTN, "run", "--config", cfg, "--maps", "m.csv", "--context",
                              "c.csv"], cwd=d, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
        # the model is open once its weights file shows in /proc/PID/maps
        # (the outputs are opened before, so they tell nothing)
        weights = os.path.realpath(os.path.join(model, "model.safetensors"))
        for _ in range(3000):
            try:
                with open("/proc/%d/maps" % p.pid) as f:
                    if any(l.rstrip("\n").endswith(weights) for l in f):
                        break
            except OSError:
                break
            if p.poll() is not None:
                break
            time.sleep(0.01)
        os.truncate(weights, 0)
        _, err = p.communicate(lines, timeout=120)
        check("weights truncated during a batch: exit 1, one line",
              p.returncode == 1 and err.count(b"\n") == 1 and
              b"the weights file changed while attn was reading it" in err,
              "%s %r" % (p.returncode, err))
        check("weights truncated during a batch: no output, no temporary left",
              sorted(os.listdir(d)) == ["model"], str(os.listdir(d)))

    # 14. a NaN or an infinity in the weights, in a checkpoint, or in an
    #     embeddings file is refused with one line naming where it is
    with tempfile.TemporaryDirectory() as d:
        model = os.path.join(d, "model")
        shutil.copytree(os.path.dirname(CFG), model)
        cfg = os.path.join(model, "config.json")
        weights = os.path.join(model, "model.safetensors")
        with open(weights, "rb") as f:
            data = bytearray(f.read())
        (hl,) = struct.unpack("<Q", data[:8])
        header = json.loads(data[8:8 + hl])
        d_model = json.load(open(cfg))["d_model"]
        begin = 8 + hl + header["blocks.0.attn.v.weight"]["data_offsets"][0]
        at = d_model + 3  # row 1, column 3
        for value, word in ((float("nan"), "NaN"), (float("-inf"), "-inf")):
            bad = bytearray(data)
            bad[begin + 4 * at:begin + 4 * at + 4] = struct.pack("<f", value)
            with open(weights, "wb") as f:
                f.write(bad)
            r = run(["run", "--config", cfg, "--text", "the cat", "--maps", "m.csv"], d)
            err = r.stderr.decode()
            want = ('tensor "blocks.0.attn.v.weight": element %d (row 1, column 3) is %s'
                    % (at, word))
            check("%s weight: exit 1, one line naming the tensor and element" % word,
                  r.returncode == 1 and err.count("\n") == 1 and want in err, err)
            check("%s weight: no output" % word, not os.path.exists(os.path.join(d, "m.csv"))
                  and not leftovers(d), str(os.listdir(d)))
        # a tensor of several blocks of 4,096 (scanned on the threads): the
        # first of two bad elements in later blocks is named, at 1 and 2 threads
        name = "blocks.0.mlp.up.weight"
        begin = 8 + hl + header[name]["data_offsets"][0]
        d_ff = json.load(open(cfg))["d_ff"]
        first, later = 4096 + 7, 2 * 4096 + 1  # blocks 1 and 2 of 4: two threads
        bad = bytearray(data)
        for at, value in ((first, float("inf")), (later, float("nan"))):
            bad[begin + 4 * at:begin + 4 * at + 4] = struct.pack("<f", value)
        with open(weights, "wb") as f:
            f.write(bad)
        for threads in ("1", "2"):
            r = run(["run", "--config", cfg, "--text", "the cat", "--threads", threads], d)
            err = r.stderr.decode()
            want = ('tensor "%s": element %d (row %d, column %d) is +inf'
                    % (name, first, first // d_model, first % d_model))
            check("two bad weights in later blocks, %s thread(s): the first is named" % threads,
                  d_ff * d_model >= 4 * 4096 and r.returncode == 1 and want in err, err)
        with open(weights, "wb") as f:
            f.write(data)
        ckpt, tok = write_llama2c(d, 16, 32, 1, 2, 16, 8, 3, poison=(16 * 16 + 16 + 5,
                                                                     float("inf")))
        r = subprocess.run(import_args(ckpt, tok, "out"), cwd=d, capture_output=True)
        err = r.stderr.decode()
        check("import of a checkpoint with an infinity: exit 1, one line naming it",
              r.returncode == 1 and err.count("\n") == 1
              and 'tensor "blocks.0.attn.q.weight": element 5 (row 0, column 5) is +inf' in err,
              err)
        check("import of a checkpoint with an infinity: nothing left",
              not leftovers(d) and not os.path.exists(os.path.join(d, "out")), str(os.listdir(d)))
        with open(os.path.join(d, "e.csv"), "w") as f:
            f.write(",".join(["0.5"] * d_model) + "\n" + ",".join(["0.25"] * (d_model - 1)
                                                                  + ["nan"]) + "\n")
        r = run(["run", "--config", CFG, "--embeddings", "e.csv", "--context", "c.csv"], d)
        err = r.stderr.decode()
        check("NaN in an embeddings file: exit 1, one line naming line and column",
              r.returncode == 1 and err.count("\n") == 1
              and "e.csv line 2, column %d: 'nan' is not a finite number" % d_model in err, err)

    print("%d hardening checks failed" % len(failures) if failures else "all hardening checks passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

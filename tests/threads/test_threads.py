"""Outputs are the same, byte for byte, for every thread count (issue 12,
item 2): --threads 1, 2 and 3 and ATTN_THREADS, on models large enough that
the matrix products run on several threads (more than 2^20 multiply-adds a
product), for the maps, the context, the predictions, named dumps (npy) and
generate (its maps and tokens), a decoder, an encoder-decoder and a Llama-shaped
decoder.

  test_threads.py ATTN_EXE SOURCE_ROOT
"""
import os
import subprocess
import sys
import tempfile

ATTN, ROOT = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
sys.path.insert(0, os.path.join(ROOT, "tests", "reference"))
import make_models  # noqa: E402

failures = []


def check(ok, what):
    if not ok:
        failures.append(what)
        print("FAIL " + what)


SPECS = [
    make_models.Spec("threads-decoder", dict(
        architecture="decoder", vocab_size=300, d_model=256, n_heads=4, d_ff=768, max_seq_len=96,
        n_layers=2, positional="learned", norm="layernorm", norm_position="pre", mlp="gelu",
        bias=True, lm_head="tied"), seq_len=80, seed=7),
    make_models.Spec("threads-translator", dict(
        architecture="encoder-decoder", vocab_size=200, d_model=192, n_heads=6, d_ff=512,
        max_seq_len=80, n_layers=2, n_encoder_layers=2, positional="sinusoidal", norm="layernorm",
        norm_position="post", mlp="relu", bias=True, lm_head="tied"), seq_len=40, src_len=70, seed=8),
    # rmsnorm, swiglu, rope, grouped heads: the norms, the activations and the
    # residuals run in chunks of 16,384 elements on the threads (80 x 768)
    make_models.Spec("threads-llama", dict(
        architecture="decoder", vocab_size=300, d_model=256, n_heads=4, n_kv_heads=2, d_ff=768,
        max_seq_len=96, n_layers=2, positional="rope", rope_theta=10000, norm="rmsnorm",
        norm_eps=1e-6, norm_position="pre", mlp="swiglu", bias=False, lm_head="separate"),
        seq_len=80, seed=9),
]


def outputs(d):
    """{relative path: bytes} of every file under d."""
    got = {}
    for base, _, files in os.walk(d):
        for f in files:
            p = os.path.join(base, f)
            with open(p, "rb") as fh:
                got[os.path.relpath(p, d)] = fh.read()
    return got


def run_all(spec, d, how):
    """Every output of one thread setting into d; how: ("--threads", "N") or ("env", "N")."""
    words = " ".join(make_models.vocabulary(spec.cfg["vocab_size"])[16:16 + spec.seq_len])
    env = dict(os.environ)
    flag = []
    if how[0] == "env":
        env["ATTN_THREADS"] = how[1]
    else:
        flag = ["--threads", how[1]]
    src = []
    if spec.src_len:
        src = ["--source", " ".join(make_models.vocabulary(spec.cfg["vocab_size"])[20:20 + spec.src_len])]
    runs = [
        ["run", "--config", spec.config, "--text", words] + src +
        ["--maps", os.path.join(d, "maps.csv"), "--context", os.path.join(d, "ctx.csv"),
         "--top-k", "5", "--predictions", os.path.join(d, "pred.csv")],
        ["run", "--config", spec.config, "--text", words] + src +
        ["--dump", "*", "--out", os.path.join(d, "dump")],
        ["generate", "--config", spec.config, "--text", words.split()[0]] + src +
        ["--steps", "30", "--maps", os.path.join(d, "gen-maps.csv"), "--tokens",
         os.path.join(d, "gen-tokens.csv")],
    ]
    for args in runs:
        p = subprocess.run([ATTN] + args + flag, env=env, capture_output=True)
        check(p.returncode == 0, "%s %s %s: exit %d: %s" % (spec.name, how, args[0], p.returncode,
                                                            p.stderr.decode()[-300:]))
    return outputs(d)


def main():
    with tempfile.TemporaryDirectory(prefix="attn-threads-") as tmp:
        for spec in SPECS:
            make_models.build(spec, tmp)
            base = None
            for how in (("--threads", "1"), ("--threads", "2"), ("--threads", "3"), ("env", "2")):
                d = os.path.join(tmp, "%s-%s-%s" % (spec.name, how[0].strip("-"), how[1]))
                os.mkdir(d)
                got = run_all(spec, d, how)
                if base is None:
                    base = got
                    check(len(got) > 10, "%s: only %d files" % (spec.name, len(got)))
                    continue
                check(sorted(got) == sorted(base), "%s %s: other files %s" % (spec.name, how,
                                                                             sorted(set(got) ^ set(base))[:5]))
                diff = [f for f in base if got.get(f) != base[f]]
                check(not diff, "%s %s: differs from one thread in %s" % (spec.name, how, diff[:5]))
            print("%s: %d files, the same bytes on 1, 2 and 3 threads and ATTN_THREADS=2"
                  % (spec.name, len(base)))
        # bad values: one line, exit 2
        for args, env in ((["--threads", "0"], {}), (["--threads", "x"], {}),
                          (["--threads", "257"], {}), ([], {"ATTN_THREADS": "-1"}),
                          ([], {"ATTN_THREADS": "two"})):
            p = subprocess.run([ATTN, "run", "--config", SPECS[0].config, "--text", "the"] + args,
                               env=dict(os.environ, **env), capture_output=True)
            check(p.returncode == 2 and len(p.stderr.splitlines()) == 1 and p.stdout == b"",
                  "bad threads %s %s: exit %d %r" % (args, env, p.returncode, p.stderr))
    print("%d failures" % len(failures))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

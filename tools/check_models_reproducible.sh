#!/bin/sh
# Rebuilds the corpus and every shipped toy model into a temporary folder and
# compares each file with the committed one (sha256). Takes several minutes
# (four trainings); not part of the test suite.
#
#   sh tools/check_models_reproducible.sh [MODEL ...]    (default: all four)
#
# Exit status 0 when every file is identical, 1 otherwise.
#
# Which BLAS: tools/train.py computes every matrix product with torch's own
# elementwise kernels and calls no BLAS routine (torch would hand mm, bmm,
# addmm and so nn.Linear and "@" to libblas.so.3, and the reference BLAS and
# OpenBLAS round differently: before this, the rebuild was bit for bit only
# with the reference BLAS; with OpenBLAS the weights came out DIFFERENT).
# So the files must come out the same whichever libblas.so.3 the system's
# alternative points to; this script prints which one it is. With OpenBLAS on
# a CPU with AVX-512 it sets OPENBLAS_CORETYPE=SkylakeX (unless set): Debian's
# OpenBLAS 0.3.21 can misdetect such CPUs. numpy (the float64 export check)
# still uses the BLAS; its numbers are only compared within a tolerance.
#
# Results (Debian 12, torch 1.13.1+dfsg-4, numpy 1.24.2, Intel Xeon with
# AVX-512, torch's CPU kernels AVX2), the alternative libblas.so.3-x86_64-linux-gnu
# switched with update-alternatives --set between the two runs: all 16 files
# (data/ and the three models) "same" with the reference BLAS (libblas3
# 3.11.0), 7 min; all 16 "same" with OpenBLAS (libopenblas0-pthread 0.3.21,
# OPENBLAS_CORETYPE=SkylakeX set here), 7 min. Before (tools/train.py using
# nn.Linear and @), the models were DIFFERENT with OpenBLAS: 300-step
# trainings of the decoder and the encoder already gave other weights.
#
# The bits do depend on torch's CPU kernel set (printed below):
# ATEN_CPU_CAPABILITY=default or avx512, or a CPU without AVX2, gives other
# bits. This script unsets ATEN_CPU_CAPABILITY so torch picks its default.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
py=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
models=${*:-tiny-decoder tiny-encoder tiny-translator tiny-induction}
status=0
unset ATEN_CPU_CAPABILITY

# the BLAS library torch loads (as libblas.so.3), and torch's CPU kernel set
info=$("$py" -c 'import torch
blas = [l.split()[-1] for l in open("/proc/self/maps") if "blas" in l.rsplit("/", 1)[-1]]
cap = [l.split(":", 1)[1].strip() for l in torch.__config__.show().splitlines()
       if "CPU capability usage" in l]
print(blas[0] if blas else "none", cap[0] if cap else "unknown")')
blas=${info% *}
case "$blas" in
*openblas*)
    if [ -z "${OPENBLAS_CORETYPE:-}" ] && grep -qw avx512f /proc/cpuinfo 2>/dev/null; then
        export OPENBLAS_CORETYPE=SkylakeX
    fi
    export OPENBLAS_NUM_THREADS=1
    echo "BLAS: $blas (OpenBLAS; OPENBLAS_CORETYPE=${OPENBLAS_CORETYPE:-auto})" ;;
*)
    echo "BLAS: $blas" ;;
esac
echo "torch CPU kernels: ${info##* }"

compare() { # compare FILE_A FILE_B
    a=$(sha256sum < "$1" | cut -d' ' -f1)
    b=$(sha256sum < "$2" | cut -d' ' -f1)
    if [ "$a" = "$b" ]; then
        echo "same     $a  $1"
    else
        echo "DIFFERENT $1 ($a) vs rebuilt ($b)"
        status=1
    fi
}

echo "== data/ (tools/corpus.py)"
"$py" "$root/tools/corpus.py" --out "$tmp/data" > /dev/null
for f in "$tmp"/data/*; do
    compare "$root/data/$(basename "$f")" "$f"
done

for m in $models; do
    echo "== models/$m (tools/train.py $m)"
    "$py" "$root/tools/train.py" "$m" --out "$tmp/$m" > "$tmp/$m.log" 2>&1 || {
        echo "training $m failed:"; cat "$tmp/$m.log"; exit 1; }
    grep "trained in" "$tmp/$m.log" || true
    for f in "$tmp/$m"/*; do
        compare "$root/models/$m/$(basename "$f")" "$f"
    done
done
[ $status -eq 0 ] && echo "all files rebuilt bit for bit" || echo "some files differ"
exit $status

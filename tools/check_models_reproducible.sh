#!/bin/sh
# Rebuilds the corpus and every shipped toy model into a temporary folder and
# compares each file with the committed one (sha256). Takes several minutes
# (three trainings); not part of the test suite.
#
#   sh tools/check_models_reproducible.sh [MODEL ...]    (default: all three)
#
# Exit status 0 when every file is identical, 1 otherwise.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
py=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT INT TERM
models=${*:-tiny-decoder tiny-encoder tiny-translator}
status=0

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

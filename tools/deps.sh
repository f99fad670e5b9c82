#!/usr/bin/env bash
# Installs the Debian packages attn needs for building and testing, if any is missing.
# Usage: tools/deps.sh            (as root, or a user with sudo)
set -euo pipefail

# libpcre2-dev: the gpt2 tokenizer's pattern (optional for the build); nodejs/npm
# (if present) run tests/tokenizer's reference test. clang + libclang-rt-14-dev: the libFuzzer harnesses; llvm: llvm-symbolizer for
# their reports; valgrind: meson test --setup=valgrind; parallel: the sharded-batch
# test; chromium: the headless browser of tests/html, about 350 MB installed;
# fonts-dejavu-core: the TrueType labels of --heatmap (optional at run time) (all
# used by tools/test); libopenblas0-pthread: python3-torch without recommends
# links the reference BLAS, and bench/bench_torch.py measures PyTorch on OpenBLAS
packages=(gcc libc6-dev pkg-config meson ninja-build libcjson-dev libstb-dev libpcre2-dev check
          python3 python3-numpy python3-torch clang libclang-rt-14-dev llvm valgrind time
          parallel chromium fonts-dejavu-core libopenblas0-pthread)

missing=()
for p in "${packages[@]}"; do
    status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
    [[ "$status" == "install ok installed" ]] || missing+=("$p")
done
[[ ${#missing[@]} -eq 0 ]] && exit 0

echo "attn: installing ${missing[*]}" >&2
sudo=()
[[ $(id -u) -eq 0 ]] || sudo=(sudo)
export DEBIAN_FRONTEND=noninteractive
"${sudo[@]}" apt-get update -qq
"${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

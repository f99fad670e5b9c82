#!/usr/bin/env bash
# Installs the Debian packages attn needs for building and testing, if any is missing.
# Usage: tools/deps.sh            (as root, or a user with sudo)
set -euo pipefail

packages=(gcc libc6-dev pkg-config meson ninja-build libcjson-dev libstb-dev check
          python3 python3-numpy python3-torch)

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

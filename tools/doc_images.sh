#!/usr/bin/env bash
# Regenerates the pictures of the docs (docs/images/) from the bundled
# tiny-decoder: one heatmap (docs/heatmaps.md) and a screenshot of the HTML
# head view (docs/html.md, headless chromium).
# Usage: tools/doc_images.sh [BUILD_DIR]   (default: build)
set -euo pipefail
cd "$(dirname "$0")/.."
attn=${1:-build}/src/attn
out=docs/images
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
text="The cat sits on the mat"
ATTN_FONT=/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf \
    "$attn" run --config models/tiny-decoder --text "$text" --layers 1 --heads 2 --heatmap "$tmp/h"
cp "$tmp/h/blocks.1.attn.weights.h2.png" "$out/heatmap.png"
"$attn" run --config models/tiny-decoder --text "$text" --html "$tmp/view.html"
chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=900,370 \
    --screenshot="$out/html-view.png" "file://$tmp/view.html" 2>/dev/null
echo "wrote $out/heatmap.png $out/html-view.png"

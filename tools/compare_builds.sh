#!/usr/bin/env bash
# compare_builds.sh: proves that a change (a refactoring, a cleanup, a new
# build layout) changed no behaviour of the attn command line, byte for byte.
#
#   tools/compare_builds.sh [OLD [NEW]]     (default: HEAD WORKTREE)
#   tools/compare_builds.sh --list          print the commands, build nothing
#
# OLD and NEW are each a commit-ish (HEAD, HEAD~3, a branch, a hash) or the
# literal WORKTREE: the current checkout as it is, uncommitted and untracked
# (not ignored) files included. A commit is extracted with 'git archive'
# (the repository's worktree list, index and checkout are left alone), the
# worktree is copied file by file; each copy is built in its own temporary
# folder ('meson setup --buildtype=release', 'ninja src/attn').
#
# Then the same list of commands (every subcommand and its --help, every
# bundled model in models/, the llama2.c stories260K model imported from
# ../shared/models/stories260K when that folder exists, usage errors and
# failures) runs with both binaries. Each command runs in the same fresh,
# empty folder (one path for both builds), with:
#   - the environment pinned: env -i, PATH with the build's 'attn' first,
#     LC_ALL=C, COLUMNS=100, TERM=dumb, TZ=UTC, NO_COLOR unset, umask 022;
#   - standard input /dev/null unless the command redirects it;
#   - 'models' a symlink to the build's own source tree's models/ (OLD runs
#     on OLD's models, NEW on NEW's; messages that name a model path are the
#     same), 'in' a symlink to generated input files (batches, CSV and .npy
#     vectors) shared by both, 'stories' a symlink to the stories260K folder,
#     and, after the import command, 'st260K' the model that this build's own
#     'attn import' wrote.
# Recorded and compared: the exit status, standard output, standard error,
# and every file or folder the command left in its folder (name, type, mode
# and bytes; text is shown, binary files by size and sha256).
#
# Output: one line per command, 'same  N COMMAND' or 'DIFF  N COMMAND'
# followed by the first 20 lines of a unified diff of the two records (lines
# cut at 200 characters; COMPARE_KEEP=1 keeps the whole records), then
#   compare_builds: 150 commands, 150 identical, 0 different (20 s)
# Exit status: 0 when every command behaved identically, 1 when some did not
# (or a build failed), 2 for a usage error.
#
# Environment:
#   COMPARE_PATCH=FILE   apply this patch (patch -p1) to NEW's copy after
#                        extraction, e.g. to check that a deliberate change of
#                        behaviour is caught; the repository is not touched
#   COMPARE_KEEP=1       keep the temporary folder (printed) for inspection:
#                        records/N.old.txt and N.new.txt are command N's records
#   STORIES260K=DIR      where stories260K.bin and tok512.bin are (default:
#                        ../shared/models/stories260K next to the repository)
#   COMPARE_TIMEOUT=S    seconds allowed per command (default 60)
#
# Needs: git, meson, ninja, a C compiler and attn's build dependencies,
# coreutils, tar, patch (only with COMPARE_PATCH).
set -euo pipefail

prog=compare_builds

usage() {
    sed -n '2,/^set -euo/{/^set -euo/d;s/^# \{0,1\}//;p}' "${BASH_SOURCE[0]}"
}

usage_error() {
    echo "$prog: $*" >&2
    echo "usage: tools/compare_builds.sh [OLD [NEW]]   (commit-ish or WORKTREE; see --help)" >&2
    exit 2
}

list_only=0
case "${1:-}" in
    -h|--help) usage; exit 0 ;;
    --list) list_only=1; shift ;;
    -*) usage_error "unknown option '$1'" ;;
esac
(( $# <= 2 )) || usage_error "at most two arguments, OLD and NEW"
for a in "$@"; do
    [[ $a == -* ]] && usage_error "unknown option '$a'"
    [[ -n $a ]] || usage_error "an empty revision"
done

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(git -C "$script_dir" rev-parse --show-toplevel 2>/dev/null) ||
    usage_error "$script_dir is not inside a git repository"

old_rev=${1:-HEAD}
new_rev=${2:-WORKTREE}

resolve() { # REV -> a commit hash, or WORKTREE
    if [[ $1 == WORKTREE ]]; then
        echo WORKTREE
    else
        git -C "$repo" rev-parse --verify --quiet "$1^{commit}" ||
            usage_error "'$1' is not a commit of $repo (nor WORKTREE)"
    fi
}

timeout_s=${COMPARE_TIMEOUT:-60}
[[ $timeout_s =~ ^[1-9][0-9]*$ ]] || usage_error "COMPARE_TIMEOUT must be a positive integer"
patch_file=
if [[ -n ${COMPARE_PATCH:-} ]]; then
    [[ -f $COMPARE_PATCH ]] || usage_error "COMPARE_PATCH: no such file: $COMPARE_PATCH"
    patch_file=$(cd "$(dirname "$COMPARE_PATCH")" && pwd)/$(basename "$COMPARE_PATCH")
fi

stories_dir=${STORIES260K:-$repo/../shared/models/stories260K}
have_stories=0
if [[ -f $stories_dir/stories260K.bin && -f $stories_dir/tok512.bin ]]; then
    have_stories=1
    stories_dir=$(cd "$stories_dir" && pwd)
fi

# --------------------------------------------------------------------------
# The commands. Each is run by 'bash -c' in the command's folder; 'attn' is
# the build under test. CMDS[i] is shown as it is; KEEP[i] names a folder the
# command writes that later commands use (copied aside per build).

CMDS=()
KEEP=()
add() { CMDS+=("$1"); KEEP+=(""); }
add_keep() { CMDS+=("$2"); KEEP+=("$1"); }

SEED=models/seed-attention/config.json
DEC=models/tiny-decoder/config.json
ENC=models/tiny-encoder/config.json
TR=models/tiny-translator/config.json
ST=st260K/config.json

seed_t='--text "The sun rises in the east"'
dec_t='--text "The cat sits on the mat"'
enc_t='--text "she sat on the <mask> of the river ."'
tr_t='--source "the cat sits on the mat ." --text "dine fobu dapo fobu losotu pofo ."'
st_t='--text "Once upon a time, there was a little girl"'

# the top level and every subcommand's help
add "attn --help"
add "attn --version"
add "attn -V"
add "attn"
add "attn frobnicate"
add "attn run --help"
add "attn generate --help"
add "attn explain --help"
add "attn import --help"

# attn run: the same set on every model
run_set() { # CONFIG INPUT IDS_INPUT EMBEDDINGS_INPUT BATCH IDS_BATCH LM_HEAD(0/1)
    local c=$1 t=$2 ids=$3 emb=$4 batch=$5 idsb=$6 lm=$7
    add "attn run --config $c $t"
    add "attn run --config $c $t --maps -"
    add "attn run --config $c $t --context -"
    add "attn run --config $c $t --maps f.csv --context g.csv"
    add "attn run --config $c $t --top-k 3"        # without an lm_head: an error
    if (( lm )); then
        add "attn run --config $c $t --top-k 2 --predictions -"
        add "attn run --config $c $t --top-k 2 --last"
        add "attn run --config $c $ids --maps - --top-k 1 --last --predictions p.csv"
        add "attn run --config $c --maps - --context - < $batch"
        add "attn run --config $c --top-k 2 --last < $batch"
        add "attn run --config $c --ids-input --maps m.csv --top-k 1 --predictions - < $idsb"
    else
        add "attn run --config $c $ids --maps - --context c.csv"
        add "attn run --config $c --maps - --context - < $batch"
        add "attn run --config $c < $batch"
        add "attn run --config $c --ids-input --maps m.csv --context - < $idsb"
    fi
    add "attn run --config $c $emb --maps - --context -"
    add "attn run --config $c $t --color always"
}
run_set "$SEED" "$seed_t" "--ids 1,2,3,4,1,5" "--embeddings in/emb-d4.csv" \
    in/batch-seed.txt in/batch-seed-ids.txt 0
add "attn run --config $SEED --embeddings in/emb-d4.npy"
run_set "$DEC" "$dec_t" "--ids 170,27,150,126,170,110" "--embeddings in/emb-d64.csv" \
    in/batch-decoder.txt in/batch-decoder-ids.txt 1
run_set "$ENC" "$enc_t" "--ids 171,28,151,127,171,1,2" "--embeddings in/emb-d64.csv" \
    in/batch-encoder.txt in/batch-encoder-ids.txt 1
run_set "$TR" "$tr_t" "--source-ids 1,331,45,305 --ids 1,69,112" \
    "--source \"the cat sits on the mat .\" --embeddings in/emb-d64.csv" \
    in/batch-translator.tsv in/batch-translator-ids.tsv 1
add "attn run --config $TR --source-embeddings in/emb-d64-src.csv --text \"dine fobu\" --maps -"
add "attn run --config $TR --source \"the cat sits on the mat .\" --maps - < in/batch-translator-targets.txt"

# attn generate
add "attn generate --config $DEC $dec_t --steps 6"
add "attn generate --config $DEC $dec_t --steps 6 --maps -"
add "attn generate --config $DEC $dec_t --steps 6 --tokens -"
add "attn generate --config $DEC $dec_t --steps 6 --maps m.csv --tokens t.csv"
add "attn generate --config $DEC $dec_t --steps 40"
add "attn generate --config $DEC --ids 170,27 --steps 0 --tokens - --maps -"
add "attn generate --config $TR --source \"the cat sits on the mat .\" --text \"\" --steps 10"
add "attn generate --config $TR --source \"the sun rises in the east .\" --text \"\" --steps 10 --tokens -"
add "attn generate --config $TR --source-ids 1,331,45,305 --ids 1 --steps 4 --maps - --tokens -"
add "attn generate --config $TR --source \"the cat sits on the mat .\" --text \"dine\" --steps 3 --maps m.csv --tokens t.csv"
add "attn generate --config $SEED $seed_t --steps 3"
add "attn generate --config $ENC $enc_t --steps 3"

# attn explain
add "attn explain --config $SEED $seed_t"
add "attn explain --config $SEED $seed_t --head 1"
add "attn explain --config $SEED --embeddings in/emb-d4.csv --digits 1 --width 60"
add "attn explain --config $SEED --ids 1,2,3 --full --digits 5 --width 200"
add "attn explain --config $DEC $dec_t"
add "attn explain --config $DEC $dec_t --layer 1 --head 3"
add "attn explain --config $DEC $dec_t --width 60 --digits 0"
add "attn explain --config $DEC $dec_t --full --digits 4"
add "attn explain --config $DEC --embeddings in/emb-d64.csv --width 150"
add "attn explain --config $ENC $enc_t"
add "attn explain --config $ENC $enc_t --layer 1 --head 2 --digits 2"
add "attn explain --config $ENC --ids 171,28,151 --full --width 250"
add "attn explain --config $TR $tr_t"
add "attn explain --config $TR $tr_t --kind self"
add "attn explain --config $TR $tr_t --kind cross --layer 1 --head 1"
add "attn explain --config $TR $tr_t --kind both --width 120 --digits 2"
add "attn explain --config $TR $tr_t --stack encoder --layer 1 --head 1 --full"
add "attn explain --config $TR --source-embeddings in/emb-d64-src.csv --text \"dine fobu\" --kind cross"

# usage errors and failures: the message and the exit status must match too
add "attn run"
add "attn run --text \"the cat\""
add "attn run --config models/nope/config.json $dec_t"
add "attn run --config models/tiny-decoder/vocab.txt $dec_t"
add "attn run --config $DEC $dec_t --frobnicate"
add "attn run --config $DEC --text"
add "attn run --config $DEC --ids 1,x,3"
add "attn run --config $DEC --ids 1,999"
add "attn run --config $DEC --text \"the cat\" --ids 1,2"
add "attn run --config $DEC --text \"\""
add "attn run --config $DEC --text \"$(printf 'the %.0s' {1..40})\""
add "attn run --config $DEC --embeddings in/missing.csv"
add "attn run --config $SEED --embeddings in/emb-bad.csv"
add "attn run --config $DEC $dec_t --top-k 0"
add "attn run --config $DEC $dec_t --top-k abc"
add "attn run --config $DEC $dec_t --top-k 191"
add "attn run --config $DEC $dec_t --last"
add "attn run --config $DEC $dec_t --color sometimes"
add "attn run --config $DEC $dec_t --maps nodir/m.csv"
add "attn run --config $DEC $dec_t > /dev/full"
add "NO_COLOR=1 attn run --config $DEC --text \"the cat\" --color always"
add "attn run --config $TR --text \"dine fobu\""
add "attn generate --config $DEC $dec_t"
add "attn generate --config $DEC $dec_t --steps -1"
add "attn explain --config $DEC $dec_t --layer 2"
add "attn explain --config $DEC $dec_t --head 4"
add "attn explain --config $DEC $dec_t --digits 10"
add "attn explain --config $DEC $dec_t --kind cross"
add "attn explain --config $TR $tr_t --stack middle"

# stories260K: import it (the files are compared), then use the imported model
if (( have_stories )); then
    ck="--checkpoint stories/stories260K.bin --tokenizer stories/tok512.bin"
    add_keep st260K "attn import llama2c $ck --out st260K"
    add "attn import llama2c $ck"
    add "attn import gguf $ck --out x"
    add "attn import llama2c --checkpoint stories/tok512.bin --tokenizer stories/tok512.bin --out x"
    add "mkdir x && echo notes > x/notes.txt && attn import llama2c $ck --out x"
    add "mkdir x && echo notes > x/notes.txt && attn import llama2c $ck --out x --force"
    run_set "$ST" "$st_t" "--ids 1,403,407,261,420" "--embeddings in/emb-d64.csv" \
        in/batch-stories.txt in/batch-stories-ids.txt 1
    add "attn run --config $ST --text \"Ünïcödé → 猫 🐈\" --maps -"
    add "attn generate --config $ST --text \"Once upon a time\" --steps 24"
    add "attn generate --config $ST --text \"Once upon a time\" --steps 12 --maps -"
    add "attn generate --config $ST --text \"Once upon a time\" --steps 12 --tokens -"
    add "attn generate --config $ST --ids 1,403 --steps 8 --maps m.csv --tokens t.csv"
    add "attn explain --config $ST --text \"Once upon a time\""
    add "attn explain --config $ST --text \"Once upon a time\" --layer 4 --head 7"
    add "attn explain --config $ST --text \"The dog\" --layer 2 --head 5 --digits 2 --width 90"
    add "attn explain --config $ST --text \"The dog\" --full --width 300"
    add "attn run --config $ST --ids 1,512"
fi

if (( list_only )); then
    for i in "${!CMDS[@]}"; do printf '%3d %s\n' $((i + 1)) "${CMDS[$i]}"; done
    (( have_stories )) || echo "note: $stories_dir not found; the stories260K commands are left out"
    exit 0
fi

old_hash=$(resolve "$old_rev")
new_hash=$(resolve "$new_rev")

# --------------------------------------------------------------------------
tmp=$(mktemp -d "${TMPDIR:-/tmp}/compare_builds.XXXXXX")
cleanup() {
    if [[ ${COMPARE_KEEP:-} == 1 ]]; then
        echo "$prog: kept $tmp"
    else
        rm -rf "$tmp"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

describe() { # REV HASH
    if [[ $2 == WORKTREE ]]; then
        echo "WORKTREE (the checkout as it is, on $(git -C "$repo" rev-parse --short HEAD))"
    else
        echo "$1 ($(git -C "$repo" log -1 --format='%h %s' "$2" | cut -c1-70))"
    fi
}
old_desc=$(describe "$old_rev" "$old_hash")
new_desc=$(describe "$new_rev" "$new_hash")
echo "$prog: OLD = $old_desc"
echo "$prog: NEW = $new_desc${patch_file:+ + $patch_file}"

extract() { # HASH DEST
    mkdir -p "$2"
    if [[ $1 == WORKTREE ]]; then
        (cd "$repo" && git ls-files -z --cached --others --exclude-standard) |
            LC_ALL=C sort -zu |
            while IFS= read -r -d '' f; do
                if [[ -e $repo/$f || -L $repo/$f ]]; then printf '%s\0' "$f"; fi
            done |
            tar -C "$repo" --null --no-recursion -T - -cf - | tar -C "$2" -xf -
    else
        git -C "$repo" archive --format=tar "$1" | tar -C "$2" -xf -
    fi
}

build() { # SIDE HASH
    local side=$1 src=$tmp/$1/src bld=$tmp/$1/build log=$tmp/$1/build.log
    extract "$2" "$src"
    if [[ $side == new && -n $patch_file ]]; then
        patch -s -p1 -d "$src" < "$patch_file" || {
            echo "$prog: COMPARE_PATCH $patch_file does not apply to NEW" >&2; exit 1; }
    fi
    local target=src/attn
    if ! { meson setup --buildtype=release "$bld" "$src" &&
           { ninja -C "$bld" -t query src/attn > /dev/null 2>&1 || target=; } &&
           ninja -C "$bld" $target; } > "$log" 2>&1; then
        echo "$prog: building ${side^^} failed; the end of $log:" >&2
        tail -n 25 "$log" >&2
        exit 1
    fi
    [[ -x $bld/src/attn ]] || { echo "$prog: ${side^^}: no src/attn in $bld" >&2; exit 1; }
    mkdir -p "$tmp/$side/bin" "$tmp/$side/keep"
    cp "$bld/src/attn" "$tmp/$side/bin/attn"
}

start=$SECONDS
build old "$old_hash"
build new "$new_hash"
echo "$prog: built both in $((SECONDS - start)) s; running ${#CMDS[@]} commands"
(( have_stories )) ||
    echo "$prog: note: $stories_dir not found (stories260K.bin, tok512.bin); the stories260K commands are skipped"

# --------------------------------------------------------------------------
# Inputs shared by both builds, written the same way every time.
inputs=$tmp/in
mkdir -p "$inputs"

vectors() { # ROWS COLS SEED: deterministic numbers in [-2, 2], 2 decimals
    awk -v r="$1" -v c="$2" -v s="$3" 'BEGIN {
        for (i = 0; i < r; i++) {
            line = ""
            for (j = 0; j < c; j++)
                line = line (j ? "," : "") sprintf("%.2f", ((i * 37 + j * 11 + s * 7) % 41 - 20) / 10)
            print line
        }
    }'
}
{
    echo "# five input vectors of d_model 4, one row per position"
    echo "d0,d1,d2,d3"
    vectors 5 4 1
} > "$inputs/emb-d4.csv"
vectors 6 64 2 > "$inputs/emb-d64.csv"
vectors 7 64 3 > "$inputs/emb-d64-src.csv"
vectors 3 3 4 > "$inputs/emb-bad.csv"   # 3 numbers a row, d_model is 4
# a .npy [3, 4] of float32: 1, 0.5, -1, 2, 0 (exact in binary)
{
    hdr="{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }"
    while (( (10 + ${#hdr} + 1) % 64 )); do hdr+=" "; done
    printf '\x93NUMPY\x01\x00'
    printf "\\x$(printf %02x $(( (${#hdr} + 1) % 256 )))\\x$(printf %02x $(( (${#hdr} + 1) / 256 )))"
    printf '%s\n' "$hdr"
    one='\x00\x00\x80\x3f' half='\x00\x00\x00\x3f' mone='\x00\x00\x80\xbf'
    two='\x00\x00\x00\x40' zero='\x00\x00\x00\x00'
    printf "$one$zero$zero$half$zero$one$half$zero$mone$zero$two$one"
} > "$inputs/emb-d4.npy"

long=$(printf 'the %.0s' {1..40})
printf '%s\n' "The sun rises in the east" "" "east sun" "$long" "The moon rises" \
    > "$inputs/batch-seed.txt"
printf '%s\n' "1,2,3" "1,x" "5,4,3,2,1" "6" "0" > "$inputs/batch-seed-ids.txt"
printf '%s\n' "the cat sits on the mat" "" "the dog runs to the park ." "$long" \
    "THE BIRD, the Quokka!" > "$inputs/batch-decoder.txt"
printf '%s\n' "3,17,42" "1,x" "5,6,999" "7" "170,27,152" > "$inputs/batch-decoder-ids.txt"
printf '%s\n' "the boy sits on the bank of the lake ." "" \
    "the doctor borrows some money from the <mask> ." "$long" > "$inputs/batch-encoder.txt"
printf '%s\n' "171,28,151" "-1" "1,2,3,4" "190,191" > "$inputs/batch-encoder-ids.txt"
printf '%s\t%s\n' "the cat sits on the mat ." "dine fobu dapo fobu losotu pofo ." \
    "the sun rises in the east ." "gabeni fobu mega fobu rozutu moguze ." \
    > "$inputs/batch-translator.tsv"
printf '%s\n' "no tab in this line" >> "$inputs/batch-translator.tsv"
printf '%s\t%s\n' "the dog ." "" >> "$inputs/batch-translator.tsv"
printf '%s\t%s\n' "4,5,6" "1,7,8" "1,2" "" "4,5" "9999" > "$inputs/batch-translator-ids.tsv"
printf '%s\n' "1,2" >> "$inputs/batch-translator-ids.tsv"
printf '%s\n' "dine fobu" "" "dine fobu dapo" > "$inputs/batch-translator-targets.txt"
printf '%s\n' "Once upon a time" "" "The little dog" "Ünïcödé ☃" > "$inputs/batch-stories.txt"
printf '%s\n' "1,403,407" "1,512" "2" "1,x" > "$inputs/batch-stories-ids.txt"

# --------------------------------------------------------------------------
run_dir=$tmp/run
cwd=$run_dir/cwd
records=$tmp/records
mkdir -p "$run_dir/bin" "$run_dir/home" "$records"

section() { # LABEL FILE: size, sha256, and the bytes when they are text
    local size sha
    size=$(stat -c %s "$2")
    sha=$(sha256sum < "$2")
    sha=${sha%% *}
    printf '== %s: %s bytes, sha256 %s\n' "$1" "$size" "$sha"
    (( size > 0 )) || return 0
    if LC_ALL=C tr -d '\000' < "$2" | cmp -s - "$2"; then
        LC_ALL=C sed -e 's/\x1b/\\e/g' -e 's/\r/\\r/g' "$2"
        [[ $(tail -c 1 "$2" | wc -l) -eq 1 ]] || printf '\n\\ no newline at end\n'
    else
        echo "(binary)"
    fi
}

# run_one SIDE INDEX: runs CMDS[INDEX] with SIDE's build; writes its record,
# $records/N.SIDE.txt (N from 1)
run_one() {
    local side=$1 i=$2 rc=0 name p
    local seeded=(models in)
    rm -rf "$cwd"
    mkdir "$cwd"
    ln -sfn "$tmp/$side/bin/attn" "$run_dir/bin/attn"
    ln -s "$tmp/$side/src/models" "$cwd/models"
    ln -s "$inputs" "$cwd/in"
    if (( have_stories )); then ln -s "$stories_dir" "$cwd/stories"; seeded+=(stories); fi
    for p in "$tmp/$side/keep"/*; do
        [[ -e $p ]] || continue
        name=$(basename "$p")
        ln -s "$p" "$cwd/$name"
        seeded+=("$name")
    done
    (
        cd "$cwd"
        umask 022
        exec env -i PATH="$run_dir/bin:/usr/local/bin:/usr/bin:/bin" HOME="$run_dir/home" \
            LC_ALL=C COLUMNS=100 TERM=dumb TZ=UTC \
            timeout -k 5 "$timeout_s" bash -c "${CMDS[$i]}"
    ) < /dev/null > "$run_dir/stdout" 2> "$run_dir/stderr" || rc=$?

    {
        echo "exit status $rc"
        section stdout "$run_dir/stdout"
        section stderr "$run_dir/stderr"
        local prune=()
        for name in "${seeded[@]}"; do prune+=(-path "./$name" -o); done
        (cd "$cwd" && find . -mindepth 1 \( "${prune[@]}" -false \) -prune -o -print0) |
            LC_ALL=C sort -z |
            while IFS= read -r -d '' p; do
                p=${p#./}
                if [[ -L $cwd/$p ]]; then
                    printf '== symlink %s -> %s\n' "$p" "$(readlink "$cwd/$p")"
                elif [[ -d $cwd/$p ]]; then
                    printf '== folder %s/ (mode %s)\n' "$p" "$(stat -c %a "$cwd/$p")"
                elif [[ -f $cwd/$p ]]; then
                    section "file $p (mode $(stat -c %a "$cwd/$p"))" "$cwd/$p"
                else
                    printf '== other %s (%s)\n' "$p" "$(stat -c %F "$cwd/$p")"
                fi
            done
    } > "$records/$((i + 1)).$side.txt"

    if [[ -n ${KEEP[$i]} && -d $cwd/${KEEP[$i]} ]]; then
        cp -a "$cwd/${KEEP[$i]}" "$tmp/$side/keep/"
    fi
}

n=${#CMDS[@]}
same=0
diff=0
for i in "${!CMDS[@]}"; do
    run_one old "$i"
    run_one new "$i"
    a=$records/$((i + 1)).old.txt b=$records/$((i + 1)).new.txt
    if cmp -s "$a" "$b"; then
        same=$((same + 1))
        printf 'same  %3d %s\n' $((i + 1)) "${CMDS[$i]}"
    else
        diff=$((diff + 1))
        printf 'DIFF  %3d %s\n' $((i + 1)) "${CMDS[$i]}"
        { diff -u --label "OLD $old_rev" --label "NEW $new_rev${patch_file:+ + patch}" \
              "$a" "$b" || true; } | head -n 20 | cut -c 1-200 | sed 's/^/    /'
    fi
done
rm -rf "$cwd"

echo "$prog: $n commands, $same identical, $diff different ($((SECONDS - start)) s)"
(( diff == 0 ))

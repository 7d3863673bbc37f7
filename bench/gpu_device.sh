#!/usr/bin/env bash
# The one GPU session (issues #15.5, #12.6/#12.7): EXACTLY two `run` calls, back to back (the
# machine stays warm only ~30 s between calls; /tmp and ignored files survive while it is warm).
#
#   here, once:  bash bench/gpu_device.sh prep
#       packs ../shared/datasets/fer2013/{train,val} into .cache/gpu_a/ and .cache/gpu_b/
#       (one byte-identical part each, ~25 MB), downloads the wheels the device lacks into
#       .whl/ (pytorch-metric-learning 2.9.0, tqdm 4.70.1: 0.2 MB) and prints every size.
#       Nothing of it is in git (.cache/ and .whl/ are ignored).
#   call 1:  run(command="bash bench/gpu_device.sh 1", carry=[".cache/gpu_a"], timeout_s=120)
#       unpacks part A into /tmp/fer.
#   call 2:  run(command="bash bench/gpu_device.sh 2 540", carry=[".cache/gpu_b", ".whl"],
#                timeout_s=570)
#       unpacks part B, installs the wheels into /tmp/site, starts scripts/long_budget.py in the
#       background (deadline 540 - 100 s) and runs bench/gpu_check.py beside it (budget
#       540 - 150 s, killed at 540 - 40 s; its JSON is written part by part), waits, and copies
#       gpu_check.json, long_budget.json, the two checkpoint tars (<= 15 MB each) and the logs
#       to $OUT (7 files). When part A is missing (a fresh machine: call 1's files are gone) it
#       says so, skips the training and still runs gpu_check.
# The second argument of call 2 is its seconds (default 540); keep timeout_s ~30 s above it.
# Before call 2, `status` gives budget_left_s: use SECONDS = min(540, budget_left_s - 60).
# Afterwards, here: tar xf long_budget_*.tar (per run: best/last .safetensors + sidecar .json,
# config.json, log.csv, summary.json; unfinished runs also train_state.pt: resume them here with
# `ln -s $PWD/../shared/datasets/fer2013 /tmp/fer` and `ferembed train --config
# RUN/config.json --out RUN --resume`, the config's root being /tmp/fer).
# Carry per call: the repository (~32.4 MB tracked) + ~25.4 MB (part A) or ~25.4 MB + 0.2 MB
# (part B + wheels), each under 64 MiB. FAISS is not carried (faiss-cpu is 18.8 MB, faiss-gpu
# ~135 MB): evaluate's clustering group is skipped on the device and the pseudo-label loop's
# k-means uses scikit-learn (both say so in their output).
set -u
CALL=${1:?usage: gpu_device.sh prep|1|2 [SECONDS]}
TOTAL=${2:-540}
PY=${PY:-python3}
FER=${FER:-/tmp/fer}      # the unpacked dataset (survives between the calls while warm)
SITE=${SITE:-/tmp/site}   # the carried wheels, installed
LBW=${LBW:-/tmp/lb}       # long_budget's training folders
LBO=${LBO:-/tmp/lb_out}   # its copied checkpoints and tars
OUT=${OUT:-/tmp/gpu_out}
DEVICE=${DEVICE:-cuda}   # DEVICE=cpu GC_ARGS=--smoke LB_ARGS="--smoke --only softmax": a CPU rehearsal
GC_ARGS=${GC_ARGS:-}
LB_ARGS=${LB_ARGS:-}

if [ "$CALL" = prep ]; then
    ROOT=${ROOT:-../shared/datasets/fer2013}
    PY=${PY_PREP:-python3}
    rm -rf .cache/gpu_pack .cache/gpu_a .cache/gpu_b
    "$PY" scripts/_gpu_pack.py pack --root "$ROOT" --splits train val --parts 2 \
        --out .cache/gpu_pack || exit 1
    mkdir -p .cache/gpu_a .cache/gpu_b
    mv .cache/gpu_pack/*_part1of2.npz .cache/gpu_a/ && mv .cache/gpu_pack/*_part2of2.npz .cache/gpu_b/
    rmdir .cache/gpu_pack
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 -d .whl pytorch-metric-learning==2.9.0 tqdm==4.70.1 || exit 1
    du -b .cache/gpu_a .cache/gpu_b .whl
    git ls-files -z | xargs -0 stat -c %s | awk '{t+=$1} END {printf "repo (tracked): %d bytes\n", t}'
    exit 0
fi

mkdir -p "$OUT"
LOG="$OUT/call$CALL.txt"
say() { echo "[$(date -u +%T)] $*" | tee -a "$LOG"; }
say "call $CALL on $(hostname), $(nproc) cores; $("$PY" -c 'import torch; print(torch.__version__, torch.cuda.is_available())' 2>&1)"
nvidia-smi --query-gpu=name,memory.total,memory.used --format=csv >>"$LOG" 2>&1

unpack() {  # $1: folder holding one part
    for part in "$1"/*.npz; do
        [ -f "$part" ] || { say "no part in $1"; return 1; }
        "$PY" scripts/_gpu_pack.py unpack "$part" --dest "$FER" >>"$LOG" 2>&1 || { say "unpack $part failed"; return 1; }
    done
}

if [ "$CALL" = 1 ]; then
    unpack .cache/gpu_a && say "part A unpacked: $(find "$FER" -type f | wc -l) files in $FER"
    exit 0
fi

unpack .cache/gpu_b && say "part B unpacked"
mkdir -p "$SITE"
if ! "$PY" -m pip install -q --no-index --no-deps --target "$SITE" .whl/*.whl >>"$LOG" 2>&1; then
    say "pip failed; unzipping the wheels instead"
    for w in .whl/*.whl; do "$PY" -m zipfile -e "$w" "$SITE" >>"$LOG" 2>&1; done
fi
export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
LB=""
if "$PY" scripts/_gpu_pack.py complete --dest "$FER" >>"$LOG" 2>&1; then
    say "data complete: starting long_budget (deadline $((TOTAL - 100)) s)"
    export GPU_CHECK_CONCURRENT=long_budget
    timeout $((TOTAL - 25)) "$PY" scripts/long_budget.py --root "$FER" --work "$LBW" \
        --out "$LBO" --device "$DEVICE" --deadline-s $((TOTAL - 100)) --resume $LB_ARGS \
        >"$OUT/long_budget.txt" 2>&1 &
    LB=$!
else
    say "data part A missing (fresh machine: call 1's files are gone): training skipped"
fi
# Beside the training processes (1 CPU thread each) the CPU baselines get GC_THREADS threads.
GC_THREADS=${GC_THREADS:-$([ -n "$LB" ] && echo 8 || nproc)}
say "gpu_check (budget $((TOTAL - 150)) s, $GC_THREADS CPU threads)"
OMP_NUM_THREADS=$GC_THREADS timeout $((TOTAL - 40)) "$PY" bench/gpu_check.py --out "$OUT/gpu_check.json" --device "$DEVICE" \
    --budget-s $((TOTAL - 150)) $GC_ARGS >"$OUT/gpu_check.txt" 2>&1
say "gpu_check exit $?"
if [ -n "$LB" ]; then
    wait "$LB"
    say "long_budget exit $?"
    cp "$LBO"/*.tar "$LBO"/long_budget.json "$OUT"/ 2>>"$LOG"
fi
ls -la "$OUT" >>"$LOG"
say "done"

#!/usr/bin/env bash
# The committed design-space sweep in the pilot's chosen regime (chapter 01, "How long is long
# enough?"): one epoch of 15,000 Fashion-MNIST training images (117 steps at batch 128), every
# model scored on all 10,000 test images, for the paper's seven spaces. It runs with the sweep's
# multi-process mode on both cores (2 gloo processes, one torch thread each) and resumes: re-run
# it after an interruption and finished lines are kept. The stages alternate first runs
# (replicate 0) and second seeds (replicate 1) so that the file is balanced wherever it stops:
# models are interleaved across spaces (model 0 of every space, then model 1, ...).
set -euo pipefail
cd "$(dirname "$0")/../.."
ACCELERATE=${ACCELERATE:-.venv/bin/accelerate}
OUT=${OUT:-results/sweep_15k/sweep_fashion_mnist_15k.jsonl}
SPACES=anynetx_a,anynetx_b,anynetx_c,anynetx_d,anynetx_e,regnetx,regnetx_constrained
export OMP_NUM_THREADS=1 ACCELERATE_USE_CPU=1
run() {  # run MODELS_PER_SPACE REPLICATE
    "$ACCELERATE" launch -q --multi_gpu --num_processes "${PROCESSES:-2}" \
        -m regnet_tutorial.sweep run --spaces "$SPACES" --n "$1" --seed 0 \
        --train-images 15000 --epochs 1 --val-images 10000 --batch-size 128 --channels-last \
        --replicate "$2" --log-every 300 --out "$OUT"
}
for stage in "25 0" "25 1" "50 0" "50 1" "100 0"; do
    run $stage
done

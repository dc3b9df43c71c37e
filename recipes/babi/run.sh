#!/usr/bin/env bash
# bAbI 1k, the 20 tasks: a memory network, an attentive reader and an LSTM per task, five
# seeds each (runs/babi), and one memory network for all tasks together, ten seeds
# (runs/babi-joint): the README's bAbI row (docs/qa.md). The memory network trains as the
# paper does: SGD on the loss summed over batches of 32, 20 epochs of linear start at 0.005,
# then 100 epochs at 0.005 halved every 25, gradients clipped at 40 (joint: 60 epochs halved
# every 15 after 30 of linear start).
#
#   bash recipes/babi/run.sh            # DATA=../shared/data RUNS=runs by default
#
# Two processes at a time, one per core; rerun to resume. Every setting is in each folder's
# results.json ("settings").
#
# Time on two cores: about 2 hours: the joint runs about 70 minutes (821 s per seed with the
# training engine, two at a time), the per-task runs about 40 (15-18 s per task and seed in
# the README's run).
set -euo pipefail
DATA=${DATA:-../shared/data}
RUNS=${RUNS:-runs}

common=(--corpus babi --data "$DATA" --runs "$RUNS" --threads 1 --quiet)
hybrid train-qa "${common[@]}" --name babi-joint --joint --models memory --seeds 0 1 2 3 4 &
hybrid train-qa "${common[@]}" --name babi-joint --joint --models memory --seeds 5 6 7 8 9
wait
hybrid train-qa "${common[@]}" --name babi --models memory attentive lstm --seeds 0 1 2 &
hybrid train-qa "${common[@]}" --name babi --models memory attentive lstm --seeds 3 4
wait
hybrid redraw "$RUNS/babi-joint" "$RUNS/babi"

#!/usr/bin/env bash
# The Free Spoken Digit Dataset: GMM-HMM, hybrid DNN-HMM and BiLSTM-HMM, a pure RNN and CTC
# on the same features, on isolated digits (the official split), leaving one speaker out,
# and on connected digit strings: the README's FSDD and CTC rows (docs/speech.md).
#
#   bash recipes/fsdd/run.sh            # DATA=../shared/data RUNS=runs by default
#
# Two processes share runs/fsdd: one trains the isolated and string tasks, the other the
# five leave-one-speaker-out folds. Rerun to resume. Every setting (features: 13 MFCCs with
# deltas and per-speaker CMVN; 8-state word HMMs, 3-state silence; 4 Gaussians per state;
# the networks' sizes) is in runs/fsdd/results.json ("settings").
#
# Time on two cores: about 75 minutes, the longer of the two processes: a leave-one-speaker-
# out fold takes about 15 minutes for the five systems (5-7 minutes for the GMM-HMM and
# DNN-HMM alone with the training engine), the isolated and string tasks together about 50.
set -euo pipefail
DATA=${DATA:-../shared/data}
RUNS=${RUNS:-runs}

settings=(
    --corpus fsdd --data "$DATA" --runs "$RUNS" --name fsdd
    --systems gmm dnn bilstm rnn ctc
    # every network: 10 epochs; training audio also at 0.9x and 1.1x speed; no masks
    --epochs 10 --speed-factors 0.9 1.1 --no-spec-augment
    --seeds 0 --threads 1 --quiet
)
hybrid train-asr "${settings[@]}" --tasks isolated strings &
hybrid train-asr "${settings[@]}" --tasks speakers
wait
hybrid redraw "$RUNS/fsdd"

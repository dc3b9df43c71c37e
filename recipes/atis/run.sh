#!/usr/bin/env bash
# ATIS slot filling and intent detection: softmax vs CRF vs structured-SVM heads on one
# BiLSTM encoder, five seeds each: the README's ATIS row (docs/tagging.md has every column).
#
#   bash recipes/atis/run.sh            # DATA=../shared/data RUNS=runs by default
#
# Two processes share the run folder runs/atis (one per core; their rows merge under a
# lock); a killed run resumes where it stopped when the script runs again. Every setting
# of the run is written to runs/atis/results.json ("settings"); those not given below are
# the preset's (character CNN of 30 -> 50 per word, gradient clipping at 5, Adam).
#
# Time on two cores: about 40 minutes (9 trainings in one process, 6 in the other; a CRF
# seed took 257-384 s with the training engine beside another run, a softmax or SSVM seed
# about 200 s in the README's run).
set -euo pipefail
DATA=${DATA:-../shared/data}
RUNS=${RUNS:-runs}

settings=(
    --corpus atis --data "$DATA" --runs "$RUNS" --name atis
    --heads softmax crf ssvm
    # the encoder: 100-dimensional words and a character CNN into a 1-layer BiLSTM of 200
    --word-dim 100 --char-encoder cnn --hidden 200 --layers 1 --rnn lstm
    --dropout 0.5 --word-dropout 0
    # the intent head: attention pooling, its loss weighed 3x; an auxiliary loss predicting
    # the next and previous of the 2000 most frequent words, weighed 0.1
    --intent-pooling attention --intent-weight 3 --lm-weight 0.1 --lm-words 2000
    # training: batches of 32 sentences, Adam at 0.001, at most 30 epochs, stopping after 8
    # without a better development score (span F1 and intent accuracy averaged)
    --batch-size 32 --lr 0.001 --epochs 30 --patience 8 --average 0
    --threads 1 --quiet
)
hybrid train-tagger "${settings[@]}" --seeds 0 1 2 &
hybrid train-tagger "${settings[@]}" --seeds 3 4
wait
hybrid redraw "$RUNS/atis"

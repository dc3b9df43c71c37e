#!/usr/bin/env bash
# CoNLL-2000 chunking: softmax vs CRF vs structured-SVM heads on one BiLSTM encoder reading
# words and their POS tags, three seeds each, with the auxiliary word loss (runs/conll2000)
# and without it (runs/conll2000-nolm): the README's CoNLL-2000 row (docs/tagging.md).
#
#   bash recipes/conll2000/run.sh       # DATA=../shared/data RUNS=runs by default
#
# The development split is the last 1000 training sentences (the preset's). Two processes
# at a time, one per core; rerun the script to resume after an interruption. Every setting
# is in each run folder's results.json ("settings").
#
# Time on two cores: about 3 hours (6 trainings in the longer process per folder; a seed of
# one head took 960-1,040 s with the word loss and 590-750 s without it beside another run in
# the README's run; a CRF seed took 2,950-3,080 s with the training engine when more jobs than
# cores shared the machine).
set -euo pipefail
DATA=${DATA:-../shared/data}
RUNS=${RUNS:-runs}

settings=(
    --corpus conll2000 --data "$DATA" --runs "$RUNS"
    --heads softmax crf ssvm
    --word-dim 100 --char-encoder cnn --hidden 200 --layers 1 --rnn lstm
    --dropout 0.5 --word-dropout 0
    --batch-size 32 --lr 0.001 --epochs 40 --patience 8 --average 0
    --threads 1 --quiet
)
words=(--lm-words 2000)
hybrid train-tagger "${settings[@]}" "${words[@]}" --name conll2000 --lm-weight 0.1 --seeds 0 1 &
hybrid train-tagger "${settings[@]}" "${words[@]}" --name conll2000 --lm-weight 0.1 --seeds 2
wait
hybrid train-tagger "${settings[@]}" "${words[@]}" --name conll2000-nolm --lm-weight 0 --seeds 0 1 &
hybrid train-tagger "${settings[@]}" "${words[@]}" --name conll2000-nolm --lm-weight 0 --seeds 2
wait
hybrid redraw "$RUNS/conll2000" "$RUNS/conll2000-nolm"
hybrid report "$RUNS/conll2000" "$RUNS/conll2000-nolm" --out "$RUNS/conll2000-report"

#!/usr/bin/env bash
# The Penn Treebank sample (train wsj_0001-0149, dev 0150-0159, test 0160-0169): the README's
# two parsing rows (docs/parsing.md).
#
#   bash recipes/ptb/run.sh             # DATA=../shared/data RUNS=runs by default
#
# runs/ptb-seq2seq: the encoder-decoder without attention, with attention, and with
# attention and the word pointer, 30 epochs, seed 0 (the pointer parser also seeds 1 and 2,
# the README's first re-run), decoded greedily, with a beam of 10 and with the bracket
# constraint;
# runs/ptb-pointer-avg: the word-pointer parser again, 40 epochs, scored and kept as a moving
# average of its weights (decay 0.998), seeds 0-2: the README's PTB row;
# runs/ptb-chart: the chart parser trained as a tree CRF
# and as a structured SVM, 15 epochs, three seeds, CKY and minimum-Bayes-risk decoding.
# Each on words alone and on words with the treebank's POS tags, one process per input.
# Rerun to resume. Every setting is in each folder's results.json ("settings").
#
# Time on two cores: the seq2seq half about 9 h (29, 49 and 53-54 minutes per parser
# in the README's first run; with the training engine the pointer parsers took 66 and 110
# minutes for seed 0, the second on a busier machine, 83 and 84 for seed 1, 66 and 67 for
# seed 2); the averaged pointer parsers 81 to 101 minutes per seed and input (two at a
# time); the chart half was not timed on its own.
set -euo pipefail
DATA=${DATA:-../shared/data}
RUNS=${RUNS:-runs}

common=(--corpus ptb --data "$DATA" --runs "$RUNS" --threads 1 --quiet)
seq2seq=("${common[@]}" --name ptb-seq2seq --models none attention pointer --epochs 30 --seeds 0)
averaged=("${common[@]}" --name ptb-pointer-avg --models pointer --epochs 40 --average 0.998)
chart=("${common[@]}" --name ptb-chart --models chart-crf chart-ssvm --epochs 15 --seeds 0 1 2)
hybrid train-parser "${seq2seq[@]}" --inputs words &
hybrid train-parser "${seq2seq[@]}" --inputs tags
wait
for seed in 1 2; do
    hybrid train-parser "${seq2seq[@]}" --models pointer --seeds "$seed" --inputs words &
    hybrid train-parser "${seq2seq[@]}" --models pointer --seeds "$seed" --inputs tags
    wait
done
for seed in 0 1 2; do
    hybrid train-parser "${averaged[@]}" --seeds "$seed" --inputs words &
    hybrid train-parser "${averaged[@]}" --seeds "$seed" --inputs tags
    wait
done
hybrid train-parser "${chart[@]}" --inputs words &
hybrid train-parser "${chart[@]}" --inputs tags
wait
hybrid redraw "$RUNS/ptb-seq2seq" "$RUNS/ptb-pointer-avg" "$RUNS/ptb-chart"

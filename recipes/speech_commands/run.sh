#!/usr/bin/env bash
# Speech Commands (10 words and "_unknown_", by path over the corpus's manifest; test and
# development speakers never train): the README's Speech Commands row (docs/speech.md).
#
#   bash recipes/speech_commands/run.sh # DATA=../shared/data RUNS=runs by default
#
# Two processes share runs/speech_commands, one per core. Rerun to resume. Every setting is
# in its results.json ("settings").
#
# Time on two cores: about an hour (the two processes took 42 and 56 minutes in the README's
# run).
set -euo pipefail
DATA=${DATA:-../shared/data}
RUNS=${RUNS:-runs}

settings=(
    --corpus speech_commands --data "$DATA" --runs "$RUNS" --name speech_commands
    # every network: 15 epochs with SpecAugment masks (2 runs of <= 10 frames, 2 bands of
    # <= 5 features); training audio also at 0.9x and 1.1x speed
    --epochs 15 --spec-augment --speed-factors 0.9 1.1
    --seeds 0 --threads 1 --quiet
)
hybrid train-asr "${settings[@]}" --systems gmm dnn bilstm &
hybrid train-asr "${settings[@]}" --systems rnn ctc
wait
hybrid redraw "$RUNS/speech_commands"

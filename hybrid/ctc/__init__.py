"""CTC: the loss, greedy and prefix beam search decoding, batched forced alignment, and CTC
as a topology of the graph engine."""

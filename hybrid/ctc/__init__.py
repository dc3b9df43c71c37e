"""CTC: the loss, greedy and prefix beam search decoding (with n-gram LM fusion and a
lexicon), batched forced alignment, and CTC as a topology of the graph engine.

Nothing here knows about audio: log-probabilities ``(B, T, V)`` over symbols with a blank.
"""

from .align import CTCAlignment, forced_align, greedy_decode
from .beam import BeamResult, prefix_beam_search
from .lexicon import Lexicon
from .lm import NGramLM, lm_scorer, read_arpa
from .loss import ctc_loss
from .portable import GreedyCTCDecoder, PrefixBeamCTCDecoder
from .topology import ctc_alignment_graph, ctc_lexicon_graph, ctc_topology

__all__ = [
    "BeamResult",
    "CTCAlignment",
    "GreedyCTCDecoder",
    "Lexicon",
    "NGramLM",
    "PrefixBeamCTCDecoder",
    "ctc_alignment_graph",
    "ctc_lexicon_graph",
    "ctc_loss",
    "ctc_topology",
    "forced_align",
    "greedy_decode",
    "lm_scorer",
    "prefix_beam_search",
    "read_arpa",
]

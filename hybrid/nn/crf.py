"""Linear-chain conditional random field layer."""

from __future__ import annotations

from torch import Tensor

from ..structured._inputs import check_tags
from ..structured.chain import chain_log_partition
from .chain import LinearChain, check_reduction, reduce_loss


class CRF(LinearChain):
    """A linear-chain CRF over emission scores from any encoder.

    ``p(y | x) = exp(score(x, y)) / Z(x)`` with
    ``score = start[y_0] + sum_t emissions[t, y_t] + sum_t transitions[y_{t-1}, y_t]
    + end[y_{L-1}]``.
    Training minimises `nll`; `decode` gives the best (or ``k`` best) paths;
    `marginals` gives per-token posteriors (confidences).

    Args:
        num_tags: Number of tags ``K``.
        constraints: Allowed transitions/start/end tags (forbidden ones get exactly zero
            probability in training and are never decoded), e.g.
            ``allowed_transitions("BIO", labels)``.

    Example:
        >>> crf = CRF(5)
        >>> emissions = torch.randn(2, 7, 5)
        >>> loss = crf.nll(emissions, torch.randint(5, (2, 7)), lengths=torch.tensor([7, 4]))
        >>> paths, scores = crf.decode(emissions, torch.tensor([7, 4]))
    """

    def forward(
        self,
        emissions: Tensor,
        tags: Tensor,
        lengths: Tensor | None = None,
        reduction: str = "mean",
    ) -> Tensor:
        """Same as `nll`."""
        return self.nll(emissions, tags, lengths, reduction)

    def nll(
        self,
        emissions: Tensor,
        tags: Tensor,
        lengths: Tensor | None = None,
        reduction: str = "mean",
    ) -> Tensor:
        """Negative log-likelihood ``log Z - score(gold)`` of the gold tags.

        Args:
            emissions: ``(B, T, K)`` scores.
            tags: ``(B, T)`` gold tags; values past each length are ignored.
            lengths: ``(B,)`` integers, ``(B, T)`` bool prefix mask, or ``None``.
            reduction: ``"mean"`` over sequences (default), ``"sum"``, ``"none"`` (``(B,)``)
                or ``"token_mean"`` (sum over the number of tokens).

        Returns:
            The reduced loss. ``nll(..., reduction="sum")`` equals minus pytorch-crf's
            ``crf(emissions, tags, mask, reduction="sum")``. It is non-negative up to
            rounding, and not clamped: where it is 0 in exact arithmetic (``tags`` on the
            best path), ``|loss|`` is below the dtype's eps times the magnitude of the path
            scores (float32 emissions of scale ``1e9``: about ``-1e-5``).
        """
        check_reduction(reduction)  # before any work
        chain = self._prepare(emissions, lengths)
        loss = chain_log_partition(chain, check_tags(tags, chain))
        return reduce_loss(loss, chain.lengths, reduction)

    def log_partition(self, emissions: Tensor, lengths: Tensor | None = None) -> Tensor:
        """``(B,)`` log-partition ``log Z`` of each sequence (differentiable)."""
        return chain_log_partition(self._prepare(emissions, lengths))

    @classmethod
    def from_pytorch_crf(cls, crf) -> CRF:
        """Build a CRF with the same parameters as a ``torchcrf.CRF`` (pytorch-crf).

        pytorch-crf uses the same ``[from, to]`` transition convention and the same parameter
        names, so log-likelihoods and decodes agree; whether it was ``batch_first`` only
        changes how *it* is called, ours is always batch-first.
        """
        for name in ("transitions", "start_transitions", "end_transitions", "num_tags"):
            if not hasattr(crf, name):
                raise ValueError(f"crf must be a torchcrf.CRF (missing {name!r})")
        layer = cls(int(crf.num_tags))
        layer.load_state_dict(
            {
                "transitions": crf.transitions.detach().clone(),
                "start_transitions": crf.start_transitions.detach().clone(),
                "end_transitions": crf.end_transitions.detach().clone(),
            },
            strict=False,
        )
        return layer.to(crf.transitions.device, crf.transitions.dtype)

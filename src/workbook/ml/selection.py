"""Which model ships: the fine-tuned one, unless the head it started from scores better on the
hold-out carved from train by more than a margin (finetune.ship_margin). Never decided on val,
which stays the unseen test of whatever ships.

Fine-tuning on little data can make a model worse without anyone noticing; the rule makes the
choice explicit, and its reason is written where the choice is reported. The same hold-out also
chose the head's learning rate (the tune stage), which can favour the head slightly: the margin
is there to ask for a clear loss before the simpler model ships.
"""

from __future__ import annotations

from dataclasses import dataclass

FINE_TUNED, HEAD = "fine-tuned", "head"
# Scores are shares of images (k / n): a gap of exactly the margin may come out a rounding above
# it (0.95 - 0.94 = 0.0100000000000000009), and counts as within it.
ROUNDING = 1e-9


@dataclass(frozen=True)
class Choice:
    model: str  # FINE_TUNED or HEAD
    reason: str  # the rule's outcome in words, with the two scores and the margin


def choose(head_score: float, finetuned_score: float, margin: float) -> Choice:
    """The fine-tuned model unless it scores below the head by more than `margin` (scores:
    accuracies on the same hold-out images); then the head on the frozen base."""
    gap = head_score - finetuned_score
    scores = (f"on the hold-out the fine-tuned model scores {finetuned_score:.4f}, the head "
              f"{head_score:.4f}")
    if gap > margin + ROUNDING:
        return Choice(HEAD, f"{scores}: fine-tuning lost {gap:.4f}, more than the margin of {margin:g}, "
                            "so the head on the frozen base ships")
    if gap > 0:
        return Choice(FINE_TUNED, f"{scores}: fine-tuning lost {gap:.4f}, within the margin of {margin:g}, "
                                  "so the fine-tuned model ships")
    return Choice(FINE_TUNED, f"{scores}: fine-tuning lost nothing, so the fine-tuned model ships")

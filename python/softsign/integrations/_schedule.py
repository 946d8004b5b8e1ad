"""total_steps="auto": a soft optimizer built before the run length is known, whose
total_steps a trainer callback fills in before the first step.

A training stack builds the optimizer before it tells anyone the run's length (the Hugging
Face Trainer creates it, then calls on_train_begin with state.max_steps; Lightning calls
configure_optimizers before trainer.estimated_stepping_batches is of use to a callback).
SoftSignum, SoftLion and SoftMuon take total_steps="auto": each param group without a
schedule of its own keeps the string "auto" (a JSON value, so it survives state_dict) until
`fill_total_steps` (which both callbacks call) sets it. A step with a group still "auto"
raises, naming the callbacks: the schedule is never guessed.
"""

from __future__ import annotations

import numbers

from .._fit import AUTO, unfilled

__all__ = ["AUTO", "fill_total_steps", "unfilled"]


def fill_total_steps(optimizer, total_steps: int) -> int:
    """Sets total_steps of every param group of `optimizer` (or of the softsign optimizer
    inside it: softsign.unwrap) that is still "auto" (built with total_steps="auto"), then
    checks the group's options with it (a transition too short to soften warns, as at
    construction).
    Groups with a total_steps of their own, or restored from a checkpoint, are left as they
    are. Returns how many groups it filled.

    Raises:
        ValueError: total_steps is not an integer >= 1 (a run of unknown length, say).
    """
    from ._observe import unwrap

    opt = unwrap(optimizer)
    pending = [g for g in opt.param_groups if opt._scheduled(g) and unfilled(g)]
    if not pending:
        return 0
    if (
        isinstance(total_steps, bool)
        or not isinstance(total_steps, numbers.Integral)
        or total_steps < 1
    ):
        raise ValueError(
            f"{type(opt).__name__}: cannot fill total_steps='auto' with {total_steps!r}: the "
            "trainer must know the run's length (an integer >= 1; set max_steps, or max_epochs "
            "with a sized dataloader)"
        )
    for group in pending:
        group["total_steps"] = int(total_steps)
        opt._check_options(group)
    return len(pending)

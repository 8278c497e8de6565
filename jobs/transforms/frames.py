"""Materialising a frame and learning something about it in one Spark job.

An iterative step (a stitching round, a hierarchy level) needs its rows kept for the next
step and one or two figures about them: did anything stay open, how many rows, the largest
group. Asking with a second action (`count`, `isEmpty`) re-runs or re-reads the step; an
observed metric is computed by the job that materialises it.
"""

from __future__ import annotations

from collections.abc import Callable

from pyspark.sql import Column, DataFrame, Observation


def checkpoint_observing(
    df: DataFrame,
    checkpoint: Callable[[DataFrame], DataFrame] | None = None,
    **metrics: Column,
) -> tuple[DataFrame, dict[str, object]]:
    """`df` materialised by `checkpoint` (by default an eager local checkpoint; whatever is
    passed must be eager too), and the aggregates `metrics` over its rows, computed by that
    same job: → (materialised frame, {name: value}). Over no rows a count is 0 and a max,
    min or sum is None."""
    seen = Observation()
    observed = df.observe(seen, *[value.alias(name) for name, value in metrics.items()])
    done = checkpoint(observed) if checkpoint is not None else observed.localCheckpoint()
    return done, dict(seen.get)

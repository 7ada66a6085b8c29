"""Deterministic train/validation/test assignment, decided per row index, applied per batch in C.

Row i of a work item draws byte i of the item's own stream, cut into fixed blocks each seeded by (seed,
stream, block): the result does not depend on how the item was read in chunks, nor on any other item, so an
item can be split in the same read as it is profiled, before the others are counted (the same dataset and
seed give the same split).
"""
from __future__ import annotations

import random

SPLITS = ("train", "validation", "test")
BLOCK_ROWS = 1 << 16
RESOLUTION = 256            # one random byte per row: ratios are applied in steps of 1/256


def thresholds(ratios: dict[str, float]) -> list[int]:
    """Cumulative byte thresholds; every split with a positive ratio gets at least one step."""
    train = max(1, round(ratios["train"] * RESOLUTION))
    validation = max(1, round(ratios["validation"] * RESOLUTION))
    train = min(train, RESOLUTION - validation - 1)
    return [train, train + validation, RESOLUTION]


class RowSplitter:
    def __init__(self, ratios: dict[str, float], seed: int, stream: str = ""):
        """stream: the work item's draws (shards.item_stream); "" is the seed's own."""
        self.prefix = f"{seed}:{stream}:" if stream else f"{seed}:"
        low = 0
        self.tables = {}
        for split, high in zip(SPLITS, thresholds(ratios)):
            self.tables[split] = bytes(1 if low <= b < high else 0 for b in range(256))
            low = high
        self.row = 0

    def _draws(self, count: int) -> bytes:
        start, end = self.row, self.row + count
        parts = []
        for block in range(start // BLOCK_ROWS, (end - 1) // BLOCK_ROWS + 1 if count else start // BLOCK_ROWS):
            data = random.Random(f"{self.prefix}{block}").randbytes(BLOCK_ROWS)
            lo = max(start - block * BLOCK_ROWS, 0)
            hi = min(end - block * BLOCK_ROWS, BLOCK_ROWS)
            parts.append(data[lo:hi])
        self.row = end
        return b"".join(parts)

    def masks(self, count: int) -> dict[str, bytes]:
        """For the next count rows, one selector per split (a byte per row, 1 where the row belongs),
        so several aligned lists (rows, ids, labels) can be split alike."""
        draws = self._draws(count)
        return {split: draws.translate(table) for split, table in self.tables.items()}

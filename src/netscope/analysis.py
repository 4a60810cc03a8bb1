"""The per-batch analysis step shared by the CLI and the library API.

``Analyzer.process(batch)`` decodes a batch into columns with the compiled kernel
and folds it into running counters. Everything per packet happens inside kernels
or numpy; this class only does per-batch bookkeeping.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from netscope import engine
from netscope.batch import PacketBatch
from netscope.columns import DecodedColumns
from netscope.constants import ERR_OK, ERR_UNSUPPORTED_LINK
from netscope.sources.base import DEFAULT_BATCH_PACKETS


@dataclass
class Counters:
    """Run totals reported in the summary, the stats line and (later) /metrics."""

    packets: int = 0
    bytes_wire: int = 0
    bytes_captured: int = 0
    parse_errors: int = 0
    unsupported_packets: int = 0
    unsupported_linktypes: dict[int, int] = field(default_factory=dict)


class Analyzer:
    """Decode batches and keep run totals. One Analyzer per shard / per run."""

    def __init__(self, batch_capacity: int = DEFAULT_BATCH_PACKETS) -> None:
        self.cols = DecodedColumns.allocate(batch_capacity)
        self.counters = Counters()

    def process(self, batch: PacketBatch) -> DecodedColumns:
        """Decode ``batch`` (columns valid until the next call) and update counters."""
        if batch.count > self.cols.capacity:
            self.cols = DecodedColumns.allocate(batch.count)
        engine.decode(batch, self.cols)
        n = batch.count
        c = self.counters
        c.packets += n
        c.bytes_wire += int(batch.wirelens[:n].sum(dtype=np.int64))
        c.bytes_captured += int(batch.caplens[:n].sum(dtype=np.int64))
        err = self.cols.err[:n]
        bad = int(np.count_nonzero(err))
        if bad:
            unsupported = err == ERR_UNSUPPORTED_LINK
            n_unsupported = int(np.count_nonzero(unsupported))
            c.parse_errors += bad - n_unsupported
            if n_unsupported:
                c.unsupported_packets += n_unsupported
                kinds, counts = np.unique(batch.linktypes[:n][unsupported], return_counts=True)
                for lt, k in zip(kinds.tolist(), counts.tolist(), strict=True):
                    c.unsupported_linktypes[lt] = c.unsupported_linktypes.get(lt, 0) + k
        return self.cols

    @staticmethod
    def ok_mask(cols: DecodedColumns, n: int) -> np.ndarray:
        """Packets that decoded without error."""
        return np.asarray(cols.err[:n] == ERR_OK)

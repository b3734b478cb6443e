"""Conversions between the Arrow tables stats takes and returns and the pandas frames it groups with."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa

from stats._checks import require_columns


def to_pandas(table, required: tuple[str, ...] = (), what: str = "table") -> pd.DataFrame:
    """An Arrow table, a pandas frame or a dict of columns as a pandas frame with `required` columns."""
    if isinstance(table, pa.Table):
        frame = table.to_pandas()
    elif isinstance(table, pd.DataFrame):
        frame = table
    elif isinstance(table, dict):
        frame = pd.DataFrame(table)
    else:
        raise ValueError(f"{what} must be a pyarrow.Table or pandas.DataFrame, got {type(table).__name__}")
    require_columns(frame.columns, required, what)
    return frame


def to_arrow(frame: pd.DataFrame) -> pa.Table:
    return pa.Table.from_pandas(frame.reset_index(drop=True), preserve_index=False)

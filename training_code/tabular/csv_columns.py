"""Large CSV request bodies straight to typed columns with pyarrow's CSV reader.

A 1,000-row request parsed value by value in Python (or pandas) costs 20x the prediction itself.
Here pyarrow parses the body in C++ with the type each column has in the model: numbers as
float64, dates as date32, categories as text. That reader is the optimistic path only: it accepts
a value only when the exact path (tabular.transform's parsing of text) gives the same meaning, and
returns None on anything else (a malformed value, a wrong column count, a timestamp, padding), so
the caller parses the body the exact way, which accepts the odd value or names the problem.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

# The missing-value tokens (tabular.transform.MISSING_TOKENS) as clients spell them. Another
# spelling ('nA', ' NA') fails the typed parse and takes the exact path, which reads it as missing.
NULL_TEXTS = ["", "na", "NA", "Na", "nan", "NaN", "NAN", "null", "NULL", "Null"]


def read(body: bytes, names: Sequence[str], types: Mapping[str, str], skip_header: bool) -> dict[str, Any] | None:
    """name -> float64 array (NaN where missing), datetime64[D] array (NaT where missing) or a
    pyarrow dictionary array of the texts as sent (categories: a request has a handful of distinct
    values, each normalized once), per `types` (column -> numeric/date/categorical, as
    TabularTransformer.column_kinds gives them; other columns are read as text). None: parse the
    body the exact way instead."""
    kinds = {n: types.get(n, "text") for n in names}
    column_types = {n: _ARROW_TYPES.get(k, pa.string()) for n, k in kinds.items()}
    try:
        table = pacsv.read_csv(
            pa.py_buffer(body),
            read_options=pacsv.ReadOptions(column_names=list(names), skip_rows=1 if skip_header else 0,
                                           use_threads=False),
            convert_options=pacsv.ConvertOptions(column_types=column_types, null_values=NULL_TEXTS,
                                                 strings_can_be_null=False, quoted_strings_can_be_null=False),
        )
    except (pa.ArrowInvalid, pa.ArrowTypeError, ValueError):
        return None
    if table.num_rows == 0:
        return None
    out: dict[str, Any] = {}
    for name in names:
        column = table.column(name).combine_chunks()
        if kinds[name] == "numeric":
            values = column.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
            # pyarrow reads 'nan', '-nan' as NaN; the exact path reads 'nan' as missing (the same
            # NaN) but rejects '-nan' as malformed: any NaN that is not a null goes the exact way.
            if int(np.isnan(values).sum()) != column.null_count:
                return None
            out[name] = values
        elif kinds[name] == "date":
            out[name] = column.to_numpy(zero_copy_only=False).astype("datetime64[D]")
        else:
            out[name] = column
    return out


_ARROW_TYPES = {"numeric": pa.float64(), "date": pa.date32(), "categorical": pa.dictionary(pa.int32(), pa.string())}

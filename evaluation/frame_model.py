"""The base of the evaluation's pandera models (:mod:`evaluation.schemas`)."""

from __future__ import annotations

import pandera.pandas as pa


class FileFrame(pa.DataFrameModel):
    """A frame written to a file: exactly the model's columns, in its order, each coerced to
    its type (so a file read back as text is checked as the frame that was written)."""

    class Config:
        strict = True
        ordered = True
        coerce = True

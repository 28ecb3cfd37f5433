"""The base of every topology model class."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Strict(BaseModel):
    """Every model refuses unknown keys (typos must not pass silently) and is immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)

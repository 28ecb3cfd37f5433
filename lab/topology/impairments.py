"""`impair:` in the topology: what a link does to the packets sent on it, as the file says it.

Part of the topology model (lab/topology/model.py uses it); the values are checked with the
same patterns `lab impair` uses (lab/impair.py), so the file and the command agree.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BeforeValidator, Field, model_validator

from lab.impair import PERCENT, RATE, TIME
from lab.topology.strict import Strict


def _impairment_value(pattern, example: str):
    def check(value):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            raise ValueError(f"{value} has no unit: write it like {example}")
        if not isinstance(value, str) or not pattern.match(value):
            raise ValueError(f"{value!r} is not understood: write it like {example}")
        return value
    return check


Rate = Annotated[str, BeforeValidator(_impairment_value(RATE, "2mbit or 500kbit"))]
Time = Annotated[str, BeforeValidator(_impairment_value(TIME, "50ms"))]
Percent = Annotated[str, BeforeValidator(_impairment_value(PERCENT, "1%"))]


class Impair(Strict):
    """What a link does to the packets sent on it: tc's tbf (rate) and netem (the rest)."""

    rate: Rate | None = Field(default=None, description="bandwidth cap, e.g. 2mbit (tbf)")
    delay: Time | None = Field(default=None, description="added one-way delay, e.g. 50ms (netem)")
    jitter: Time | None = Field(default=None, description="delay variation, e.g. 10ms (netem, with delay)")
    loss: Percent | None = Field(default=None, description="packets dropped, e.g. 1% (netem)")
    duplicate: Percent | None = Field(default=None, description="packets duplicated (netem)")
    corrupt: Percent | None = Field(default=None, description="packets corrupted (netem)")
    reorder: Percent | None = Field(default=None, description="packets reordered (netem, with delay)")

    @model_validator(mode="after")
    def jitter_needs_delay(self) -> "Impair":
        if self.jitter and not self.delay:
            raise ValueError("jitter needs a delay to vary: add delay, e.g. delay: 50ms")
        if not any(getattr(self, name) for name in IMPAIR_FIELDS):
            raise ValueError(f"an impair block says at least one of {', '.join(IMPAIR_FIELDS)}")
        return self


IMPAIR_FIELDS = ("rate", "delay", "jitter", "loss", "duplicate", "corrupt", "reorder")

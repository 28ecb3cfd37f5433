"""Commands about the dns part of a lab (filled in by its issue)."""

from __future__ import annotations

"""What a visitor is told when a request fails: a status that says whose fault it was,
a short reason, never a traceback, never their own (maybe huge) input echoed back.

Pure (standard library only), so tests run it without the app's packages.
"""

from __future__ import annotations

REASON_MAX = 200        # characters of a reason; PostgreSQL messages may quote the input
PROBLEMS_MAX = 10       # validation problems listed in a 422 body


def status_for_database_error(error: BaseException | None) -> int:
    """The HTTP status for an error the database driver raised.

    The request's fault when the database refused its data: SQLSTATE class 22 (data
    exception: out of range, a NUL byte...) or the driver's DataError (PEP 249 names it
    so; psycopg raises it for a NUL before sending anything) -> 400; class 23 or an
    IntegrityError (a constraint) -> 409. Anything else (no connection, a timeout) is
    the site's fault -> 503."""
    if error is None:
        return 503
    sqlstate = getattr(error, "sqlstate", None) or ""
    kinds = {cls.__name__ for cls in type(error).__mro__}
    if sqlstate.startswith("22") or "DataError" in kinds:
        return 400
    if sqlstate.startswith("23") or "IntegrityError" in kinds:
        return 409
    return 503


def short_reason(error: BaseException) -> str:
    """The error's class and the first line of its message, bounded."""
    first = (str(error).strip().splitlines() or [""])[0]
    text = f"{type(error).__name__}: {first}" if first else type(error).__name__
    return text if len(text) <= REASON_MAX else text[:REASON_MAX - 1] + "…"


def validation_problems(errors: list[dict]) -> list[dict]:
    """FastAPI's validation errors without the input they quote (an invalid body can be
    megabytes): where, and what was wrong, at most PROBLEMS_MAX of them."""
    problems = []
    for error in errors[:PROBLEMS_MAX]:
        location = [str(part) for part in error.get("loc", ())][:8]
        message = str(error.get("msg", "invalid"))[:REASON_MAX]
        problems.append({"loc": location, "msg": message})
    return problems

"""The app's error mapping (services/app/app/errors.py), run on the host: it is pure.

The exception classes below stand in for a database driver's: PEP 249 names the classes
(DataError, IntegrityError, OperationalError) and psycopg adds `sqlstate`."""

from __future__ import annotations

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("app_errors", ROOT / "services" / "app" / "app" / "errors.py")
errors = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(errors)


class DatabaseError(Exception):
    def __init__(self, message: str = "", sqlstate: str | None = None):
        super().__init__(message)
        self.sqlstate = sqlstate


class DataError(DatabaseError):
    pass


class NumericValueOutOfRange(DataError):
    pass


class IntegrityError(DatabaseError):
    pass


class OperationalError(DatabaseError):
    pass


def test_data_the_database_refuses_is_the_requests_fault():
    assert errors.status_for_database_error(NumericValueOutOfRange("integer out of range", "22003")) == 400
    # psycopg refuses a NUL byte before sending anything: a DataError with no SQLSTATE
    assert errors.status_for_database_error(DataError("PostgreSQL text fields cannot contain NUL (0x00) bytes")) == 400
    assert errors.status_for_database_error(DatabaseError("invalid text representation", "22P02")) == 400


def test_a_constraint_is_a_conflict_and_the_rest_is_the_sites_fault():
    assert errors.status_for_database_error(IntegrityError("duplicate key", "23505")) == 409
    assert errors.status_for_database_error(OperationalError("connection refused")) == 503
    assert errors.status_for_database_error(DatabaseError("the database system is shutting down", "57P03")) == 503
    assert errors.status_for_database_error(None) == 503


def test_the_reason_is_one_bounded_line():
    reason = errors.short_reason(DataError("value " + "x" * 5000 + "\nTraceback (most recent call last):"))
    assert reason.startswith("DataError: value x") and len(reason) <= errors.REASON_MAX
    assert "Traceback" not in reason and "\n" not in reason
    assert errors.short_reason(OperationalError()) == "OperationalError"


def test_validation_problems_never_echo_the_input():
    huge = "y" * 900_000
    raw = [{"type": "int_parsing", "loc": ("body", "product_id"), "msg": "Input should be a valid integer",
            "input": huge}] * 50
    problems = errors.validation_problems(raw)
    assert len(problems) == errors.PROBLEMS_MAX
    assert problems[0] == {"loc": ["body", "product_id"], "msg": "Input should be a valid integer"}
    assert huge not in repr(problems)

"""The database: connections, the schema, and the time each request spends in SQL.

psycopg directly, no ORM: the app has two tables and six statements, and importing
SQLAlchemy was a third of the app's start (about 130 ms of CPU per replica; a hundred-node
lab starts thirty of them at once). Idle connections are kept (up to POOL_SIZE) and each is
checked with a ping before use; connecting gives up after CONNECT_TIMEOUT seconds, so a
stopped database makes requests fail fast (503) and the first request after it returns
simply works again.
"""

from __future__ import annotations

import contextvars
import threading
import time
from contextlib import contextmanager
from decimal import Decimal
from typing import Any, Iterator

import psycopg

# Seconds spent in the database by the current request, one entry per statement; the
# list is shared with the worker thread that runs the endpoint, so its additions are seen here.
db_seconds: contextvars.ContextVar[list[float]] = contextvars.ContextVar("db_seconds")
# The database errors the current request met (the app's own record, logged with the
# trace id, so `lab trace` reads a database failure from evidence, not from a 503).
db_errors: contextvars.ContextVar[list[str]] = contextvars.ContextVar("db_errors")

SCHEMA_LOCK = 5_432_001   # advisory lock: replicas starting together create the schema once
POOL_SIZE = 5
CONNECT_TIMEOUT = 3

PRODUCTS = [(1, "Lab coat", Decimal("49.00")), (2, "Patch cable (2 m)", Decimal("4.50")),
            (3, "Rack screw set", Decimal("7.90")), (4, "Packet sniffer mug", Decimal("12.00"))]
# The same tables the app made with SQLAlchemy before (a kept volume is used as it is).
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS products (id SERIAL PRIMARY KEY, name VARCHAR(200) NOT NULL, "
    "price NUMERIC(10, 2) NOT NULL)",
    "CREATE TABLE IF NOT EXISTS orders (id SERIAL PRIMARY KEY, "
    "product_id INTEGER NOT NULL REFERENCES products (id), quantity INTEGER NOT NULL, "
    "customer VARCHAR(200) NOT NULL, served_by VARCHAR(64) NOT NULL, "
    "created_at TIMESTAMP WITH TIME ZONE DEFAULT now())",
)
ORDER_COLUMNS = "id, product_id, quantity, customer, served_by"


class Database:
    """Connections to one PostgreSQL database (autocommit; a transaction per request)."""

    def __init__(self, **params: Any) -> None:
        self._params = params
        self._idle: list[psycopg.Connection] = []
        self._lock = threading.Lock()

    def _checked_out(self) -> psycopg.Connection:
        while True:
            with self._lock:
                conn = self._idle.pop() if self._idle else None
            if conn is None:
                return psycopg.connect(**self._params, connect_timeout=CONNECT_TIMEOUT, autocommit=True)
            try:
                conn.execute("SELECT 1")   # the ping: a connection the server dropped is replaced
                return conn
            except psycopg.Error:
                conn.close()

    def _give_back(self, conn: psycopg.Connection) -> None:
        if conn.closed or conn.broken:
            return
        with self._lock:
            if len(self._idle) < POOL_SIZE:
                self._idle.append(conn)
                return
        conn.close()

    @contextmanager
    def transaction(self) -> Iterator[psycopg.Connection]:
        conn = self._checked_out()
        try:
            with conn.transaction():
                yield conn
        finally:
            self._give_back(conn)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


def run(conn: psycopg.Connection, query: str, params: tuple = ()) -> list[tuple]:
    """One statement, its rows, its time added to the current request's database time."""
    began = time.perf_counter()
    cursor = conn.execute(query, params)
    rows = cursor.fetchall() if cursor.description else []
    spent = db_seconds.get(None)
    if spent is not None:
        spent.append(time.perf_counter() - began)
    return rows


def create_schema(database: Database) -> None:
    """Tables and the catalogue, idempotently; one replica at a time."""
    values = ", ".join(["(%s, %s, %s)"] * len(PRODUCTS))
    with database.transaction() as conn:
        run(conn, "SELECT pg_advisory_xact_lock(%s)", (SCHEMA_LOCK,))
        for statement in SCHEMA:
            run(conn, statement)
        run(conn, f"INSERT INTO products (id, name, price) VALUES {values} ON CONFLICT (id) DO NOTHING",
            tuple(field for product in PRODUCTS for field in product))

"""The database: engine, schema and the time each request spends in it.

The engine checks a pooled connection before use (pool_pre_ping) and gives
up connecting after a few seconds, so a stopped database makes requests fail
fast (503) and the first request after it returns simply works again.
"""

from __future__ import annotations

import contextvars
import time
from decimal import Decimal

from sqlalchemy import (DateTime, ForeignKey, Integer, Numeric, String, create_engine, event, func,
                        select, text)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.engine import URL, Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

# Seconds spent in the database by the current request, one entry per statement; the
# list is shared with the worker thread that runs the endpoint, so its additions are seen here.
db_seconds: contextvars.ContextVar[list[float]] = contextvars.ContextVar("db_seconds")
# The database errors the current request met (the app's own record, logged with the
# trace id, so `lab trace` reads a database failure from evidence, not from a 503).
db_errors: contextvars.ContextVar[list[str]] = contextvars.ContextVar("db_errors")

SCHEMA_LOCK = 5_432_001   # advisory lock: replicas starting together create the schema once

PRODUCTS = [(1, "Lab coat", Decimal("49.00")), (2, "Patch cable (2 m)", Decimal("4.50")),
            (3, "Rack screw set", Decimal("7.90")), (4, "Packet sniffer mug", Decimal("12.00"))]


class Base(DeclarativeBase):
    pass


class Product(Base):
    __tablename__ = "products"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    price: Mapped[Decimal] = mapped_column(Numeric(10, 2))


class Order(Base):
    __tablename__ = "orders"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("products.id"))
    quantity: Mapped[int] = mapped_column(Integer)
    customer: Mapped[str] = mapped_column(String(200))
    served_by: Mapped[str] = mapped_column(String(64))
    created_at = mapped_column(DateTime(timezone=True), server_default=func.now())


def make_engine(url: URL) -> Engine:
    engine = create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5, pool_timeout=5,
                           connect_args={"connect_timeout": 3})
    _time_queries(engine)
    return engine


def _time_queries(engine: Engine) -> None:
    """Add every statement's duration to the current request's database time."""

    @event.listens_for(engine, "before_cursor_execute")
    def started(conn, cursor, statement, parameters, context, executemany):
        conn.info.setdefault("lab_started", []).append(time.perf_counter())

    @event.listens_for(engine, "after_cursor_execute")
    def finished(conn, cursor, statement, parameters, context, executemany):
        began = conn.info["lab_started"].pop()
        spent = db_seconds.get(None)
        if spent is not None:
            spent.append(time.perf_counter() - began)


def create_schema(engine: Engine) -> None:
    """Tables and the catalogue, idempotently; one replica at a time."""
    with engine.begin() as conn:
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": SCHEMA_LOCK})
        Base.metadata.create_all(conn)
        rows = [{"id": i, "name": n, "price": p} for i, n, p in PRODUCTS]
        conn.execute(insert(Product).values(rows).on_conflict_do_nothing(index_elements=["id"]))


def ping(session: Session) -> None:
    session.execute(select(1))

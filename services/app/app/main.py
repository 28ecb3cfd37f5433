"""A small shop: products, orders, an HTML page at /, OpenAPI docs at /docs (for the
site's own people: the load balancer does not publish them).

Each replica names itself (X-Served-By), times itself and its database
(Server-Timing) and carries the W3C traceparent along (see tracing.py).
With the database down, every endpoint that needs it answers 503 with a JSON
error; the next request after the database returns works again. Input the
database refuses is the request's fault: 400 (409 for a conflict), with the
reason (see errors.py); invalid requests get 422 without their input echoed.
"""

from __future__ import annotations

import asyncio
import html
import sys
import threading
from contextlib import asynccontextmanager
from decimal import Decimal
from contextlib import contextmanager
from typing import Iterator

from fastapi import FastAPI, HTTPException, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse
import psycopg
from pydantic import BaseModel, Field

from app.db import ORDER_COLUMNS, Database, create_schema, db_errors, run
from app.errors import short_reason, status_for_database_error, validation_problems
from app.settings import Settings
from app.tracing import path_headers

settings = Settings.load()
ROW_ID_MAX = 2**31 - 1   # the tables' integer keys: larger ids cannot exist
database = Database(**settings.db) if settings.db else None


class DatabaseUnavailable(Exception):
    pass


class _Schema:
    """Created on first use, not at import: an app that starts before its database still starts."""

    def __init__(self) -> None:
        self.ready = False
        self.lock = threading.Lock()

    def ensure(self) -> None:
        if self.ready:
            return
        with self.lock:
            if not self.ready:
                create_schema(database)
                self.ready = True


schema = _Schema()


def described(error: psycopg.Error) -> str:
    """The error's class and the first line of what the database said (200 characters at most)."""
    said = str(error).strip().splitlines()
    return f"{type(error).__name__}: {said[0][:200]}" if said else type(error).__name__


@asynccontextmanager
async def lifespan(_app: FastAPI):
    try:
        if database is not None:
            await run_in_threadpool(schema.ensure)
    except psycopg.Error as error:   # not there yet: the first request that needs it tries again
        print(f"lab-app: no schema yet, the database did not answer: {described(error)}",
              file=sys.stderr, flush=True)
    yield
    if database is not None:
        database.close()


app = FastAPI(title="lab shop", description=f"A small shop served by {settings.node}.",
              lifespan=lifespan)


@app.middleware("http")
async def reveal_path(request: Request, call_next):
    return await path_headers(request, call_next, settings.node)


@app.exception_handler(psycopg.Error)
async def database_error(request: Request, error: psycopg.Error) -> JSONResponse:
    # A short reason only: never a traceback, never the connection string.
    cause = error
    reason = type(cause).__name__
    errors = db_errors.get(None)
    if errors is not None:   # the trace's evidence: this request's own database error
        errors.append(described(cause))
    status = status_for_database_error(cause)
    if status == 503:
        return JSONResponse(status_code=503, content={"error": "database unavailable", "reason": reason,
                                                      "served_by": settings.node})
    what = "the database refused this request's data" if status == 400 else "this conflicts with stored data"
    return JSONResponse(status_code=status, content={"error": what, "reason": short_reason(cause),
                                                     "served_by": settings.node})


@app.exception_handler(RequestValidationError)
async def invalid_request(request: Request, error: RequestValidationError) -> JSONResponse:
    # Say where and what, never echo the input: an invalid body may be megabytes.
    return JSONResponse(status_code=422, content={"error": "invalid request",
                                                  "problems": validation_problems(list(error.errors())),
                                                  "served_by": settings.node})


@app.exception_handler(DatabaseUnavailable)
async def no_database(request: Request, error: DatabaseUnavailable) -> JSONResponse:
    return JSONResponse(status_code=503, content={"error": str(error), "served_by": settings.node})


@contextmanager
def transaction() -> Iterator[psycopg.Connection]:
    """A connection in a transaction: committed when the block ends, rolled back on an error."""
    if database is None:
        raise DatabaseUnavailable("this app has no database in the topology")
    schema.ensure()
    with database.transaction() as conn:
        yield conn


class ProductOut(BaseModel):
    id: int
    name: str
    price: Decimal


class OrderIn(BaseModel):
    product_id: int = Field(ge=1, le=ROW_ID_MAX)
    quantity: int = Field(default=1, ge=1, le=100)
    customer: str = Field(default="guest", min_length=1, max_length=200)


class OrderOut(BaseModel):
    id: int
    product_id: int
    quantity: int
    customer: str
    served_by: str


def _order_out(row: tuple) -> OrderOut:
    order_id, product_id, quantity, customer, served_by = row
    return OrderOut(id=order_id, product_id=product_id, quantity=quantity, customer=customer,
                    served_by=served_by)


def _products() -> list[tuple]:
    with transaction() as conn:
        return run(conn, "SELECT id, name, price FROM products ORDER BY id")


@app.get("/", response_class=HTMLResponse)
def index() -> str:
    rows = "".join(f"<li>{html.escape(name)}: {price} €</li>" for _, name, price in _products())
    node = html.escape(settings.node)
    return ("<!doctype html><html><head><title>lab shop</title></head><body>"
            f"<h1>The lab shop</h1><ul id='products'>{rows}</ul>"
            f"<p>Served by <span id='served-by'>{node}</span>. API: "
            "<a href='/api/products'>/api/products</a></p>"
            "</body></html>")


@app.get("/api/products", response_model=list[ProductOut])
def list_products():
    return [ProductOut(id=product_id, name=name, price=price) for product_id, name, price in _products()]


@app.get("/api/orders", response_model=list[OrderOut])
def list_orders():
    with transaction() as conn:
        rows = run(conn, f"SELECT {ORDER_COLUMNS} FROM orders ORDER BY id DESC LIMIT 100")
    return [_order_out(row) for row in rows]


@app.post("/api/orders", response_model=OrderOut, status_code=201)
def create_order(order: OrderIn):
    with transaction() as conn:
        if not run(conn, "SELECT 1 FROM products WHERE id = %s", (order.product_id,)):
            raise HTTPException(404, f"no product {order.product_id}")
        row = run(conn, "INSERT INTO orders (product_id, quantity, customer, served_by) "
                  f"VALUES (%s, %s, %s, %s) RETURNING {ORDER_COLUMNS}",
                  (order.product_id, order.quantity, order.customer, settings.node))[0]
    return _order_out(row)


@app.get("/api/orders/{order_id}", response_model=OrderOut)
def get_order(order_id: int = Path(ge=1, le=ROW_ID_MAX)):
    with transaction() as conn:
        rows = run(conn, f"SELECT {ORDER_COLUMNS} FROM orders WHERE id = %s", (order_id,))
    if not rows:
        raise HTTPException(404, f"no order {order_id}")
    return _order_out(rows[0])


@app.get("/api/work")
async def work(ms: int = Query(default=100, ge=0, le=10_000)) -> dict[str, object]:
    """Simulated slow work (sleeps ms milliseconds, no database): shows how the load
    balancer's algorithm treats busy servers."""
    await asyncio.sleep(ms / 1000)
    return {"slept_ms": ms, "node": settings.node}


@app.get("/healthz")
def healthz() -> dict[str, str]:
    """Alive: the process answers. Says nothing about the database (see /readyz)."""
    return {"status": "ok", "node": settings.node}


@app.get("/readyz")
def readyz() -> dict[str, str]:
    """Ready: the database answers a query."""
    with transaction() as conn:
        run(conn, "SELECT 1")
    return {"status": "ready", "node": settings.node}


@app.get("/whoami")
def whoami() -> dict[str, str]:
    return {"node": settings.node}

"""database_insert through SQLAlchemy: named connections, returned keys, no duplicate rows on retry.

A table that does not exist yet is created from the first row (an `id` primary key, an
`idempotency_key` column and one column per field). A table with an `idempotency_key`
column gets each row's stable key, and a retried insert skips rows already there.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, OperationalError, SQLAlchemyError
from temporalio.exceptions import ApplicationError

from workflows.actions import DatabaseInsertParams
from workflows.contracts import ActionInput
from workflows.errors import FailureType

_TABLE_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
KEY_COLUMN = "idempotency_key"


class DatabaseActions:
    def __init__(self, urls: Mapping[str, str]) -> None:
        self._urls = dict(urls)
        self._engines: dict[str, sa.Engine] = {}

    async def insert(self, params: DatabaseInsertParams, request: ActionInput) -> dict[str, Any]:
        return await asyncio.to_thread(self._insert, params, request.idempotency_key)

    def _engine(self, name: str) -> sa.Engine:
        if name not in self._engines:
            url = self._urls.get(name)
            if url is None:
                env = "DATABASE_URL" if name == "default" else f"DATABASE_URL_{name.upper()}"
                raise ApplicationError(
                    f"database_insert: no connection named {name!r}: set {env} on the worker",
                    type=FailureType.UNKNOWN_CONNECTION,
                    non_retryable=True,
                )
            self._engines[name] = sa.create_engine(url)
        return self._engines[name]

    def _insert(self, params: DatabaseInsertParams, key: str) -> dict[str, Any]:
        rows = [params.data] if isinstance(params.data, dict) else list(params.data)
        if not _TABLE_NAME.match(params.table):
            raise ApplicationError(
                f"database_insert: invalid table name {params.table!r}",
                type=FailureType.INVALID_PARAMS,
                non_retryable=True,
            )
        if not rows:
            return {"table": params.table, "inserted_ids": [], "skipped": 0}
        try:
            with self._engine(params.connection).begin() as connection:
                table = _table(connection, params.table, rows[0])
                return _insert_rows(connection, table, rows, key)
        except OperationalError as exc:  # the database is unreachable or busy: retry
            raise ApplicationError(
                f"database_insert: {exc.orig}", type=FailureType.DATABASE_UNAVAILABLE
            ) from None
        except (DBAPIError, SQLAlchemyError) as exc:
            reason = getattr(exc, "orig", None) or exc
            raise ApplicationError(
                f"database_insert into {params.table}: {reason}",
                type=FailureType.DATABASE_ERROR,
                non_retryable=True,
            ) from None


def _table(connection: sa.Connection, name: str, first_row: dict[str, Any]) -> sa.Table:
    if not sa.inspect(connection).has_table(name):
        columns: list[sa.Column[Any]] = [
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column(KEY_COLUMN, sa.String(512), unique=True),
        ]
        columns += [sa.Column(column, _column_type(value)) for column, value in first_row.items()]
        sa.Table(name, sa.MetaData(), *columns).create(connection)
    return sa.Table(name, sa.MetaData(), autoload_with=connection)


def _insert_rows(
    connection: sa.Connection, table: sa.Table, rows: list[dict[str, Any]], key: str
) -> dict[str, Any]:
    keyed = KEY_COLUMN in table.c
    primary = list(table.primary_key.columns)
    ids: list[Any] = []
    skipped = 0
    for index, row in enumerate(rows):
        values = dict(row)
        if keyed:
            row_key = f"{key}#{index}"
            existing = connection.execute(
                sa.select(*primary).where(table.c[KEY_COLUMN] == row_key)
            ).first()
            if existing is not None:
                ids.append(existing[0] if primary else None)
                skipped += 1
                continue
            values[KEY_COLUMN] = row_key
        result = connection.execute(table.insert().values(**values))
        inserted = result.inserted_primary_key
        ids.append(inserted[0] if inserted else None)
    return {"table": table.name, "inserted_ids": ids, "skipped": skipped}


def _column_type(value: Any) -> sa.types.TypeEngine[Any]:
    if isinstance(value, bool):
        return sa.Boolean()
    if isinstance(value, int):
        return sa.Integer()
    if isinstance(value, float):
        return sa.Float()
    if isinstance(value, dict | list):
        return sa.JSON()
    return sa.Text()

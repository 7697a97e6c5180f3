"""What bench/funnel.py and bench/activity.py share: filling a bench database fast with SQL,
and Django set up in the bench's own process against that database.

Filling: the rows are made by PostgreSQL itself (INSERT ... SELECT over generate_series, no
row crosses the socket), in a session with `session_replication_role = replica` (no foreign
key checks, no triggers: the bench builds what triggers would keep), with the table's
secondary indexes and unique constraints dropped first and built again after (one sort per
index instead of a random B-tree insert per row), then ANALYZEd and VACUUMed (visibility map
for index-only scans), as pg_restore loads a dump.
"""

# ruff: noqa: S608 - SQL the bench writes from its own numbers and table names, nothing from outside

from __future__ import annotations

import os
import sys
import time

import psycopg
from _harness import PG, ROOT


def connect(db_name: str) -> psycopg.Connection:
    return psycopg.connect(**PG, dbname=db_name, autocommit=True)


def bulk_fill(connection: psycopg.Connection, table: str, statements: list[str]) -> float:
    """Run `statements` (each filling `table`) with the table's secondary indexes and unique
    constraints dropped, then build them again, ANALYZE and VACUUM; returns the seconds taken."""
    started = time.perf_counter()
    constraints = connection.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'u'",
        [table],
    ).fetchall()
    for name, _ in constraints:
        connection.execute(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    indexes = connection.execute(
        "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s AND indexname NOT IN "
        "(SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'p')",
        [table, table],
    ).fetchall()
    for name, _ in indexes:
        connection.execute(f'DROP INDEX "{name}"')
    connection.execute("SET session_replication_role = replica")
    connection.execute("SET maintenance_work_mem = '256MB'")
    try:
        for statement in statements:
            connection.execute(statement)
    finally:
        connection.execute("SET session_replication_role = DEFAULT")
    for _, definition in indexes:
        connection.execute(definition)
    for name, definition in constraints:
        connection.execute(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')
    connection.execute(f"VACUUM ANALYZE {table}")
    return time.perf_counter() - started


def users_fill_sql(source: str) -> str:
    """accounts_user rows, one per `i` of `source` (an SQL FROM item giving `i`, such as
    "generate_series(1, 1000) AS i"), with id i, email person<i>@bench.example and no usable
    password."""
    return (
        "INSERT INTO accounts_user (id, password, is_superuser, first_name, last_name, is_staff, is_active, "
        "date_joined, public_id, email, time_zone, country) "
        "SELECT i, '!', false, '', '', false, true, now(), gen_random_uuid(), 'person' || i || '@bench.example', '', '' "
        f"FROM {source}"
    )


def sequence_reset(connection: psycopg.Connection, table: str) -> None:
    connection.execute(
        f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), coalesce((SELECT max(id) FROM {table}), 1))"
    )


def django_setup(env: dict[str, str]) -> None:
    """Django in this process, with the bench's environment (its database, its Redis db)."""
    os.environ.update(env)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def seconds(value: float) -> str:
    return f"{value * 1000:8.1f} ms" if value < 10 else f"{value:8.1f} s "


class CpuBusy:
    """How busy the machine's cores were between start() and share() (from /proc/stat, every
    process, not only this bench's): what else was running shows here."""

    def __init__(self) -> None:
        self.start()

    @staticmethod
    def _read() -> tuple[int, int]:
        try:
            with open("/proc/stat") as stat:
                fields = [int(value) for value in stat.readline().split()[1:]]
        except OSError:
            return 0, 0
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
        return sum(fields), idle

    def start(self) -> None:
        self._total, self._idle = self._read()

    def share(self) -> float:
        total, idle = self._read()
        spent = total - self._total
        return (spent - (idle - self._idle)) / spent if spent else float("nan")

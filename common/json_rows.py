"""Many rows as one parameter of a PostgreSQL statement: a JSON document for jsonb_to_recordset().

Django's psycopg cursors bind parameters on the client and quote an array parameter element by
element in Python, so `unnest(%s::bigint[], %s::text[], %s::timestamptz[], ...)` with one array
per column cost the onboarding worker tens of microseconds per row; the same rows as one JSON
document are written by the json module's C encoder and quoted once.

    INSERT INTO t (a, b) SELECT row.a, row.b FROM jsonb_to_recordset(%s::jsonb) AS row(a bigint, b text)
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any


def json_rows(columns: Sequence[str], rows: Iterable[Sequence[Any]], *, encoder: type[json.JSONEncoder] | None = None) -> str:
    """The rows (one value per column, in order) as a JSON array of objects. Datetimes must be
    given as isoformat() strings (timestamp_text), which keep their microseconds."""
    return json.dumps([dict(zip(columns, row, strict=True)) for row in rows], cls=encoder)


def timestamp_text(moment: datetime | None) -> str | None:
    """A datetime as PostgreSQL reads it back exactly (DjangoJSONEncoder drops microseconds)."""
    return None if moment is None else moment.isoformat()

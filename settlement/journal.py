"""The journal: every run, void and seal is a JSON entry `<out>/journal/<entry_id>.json` that
names the entry before it and its SHA-256, so an edited or deleted entry breaks the chain.

The store's `journal` table lists the entries in order with their SHA-256; `settle verify`
walks it. A run's entry is its manifest; a void's or a seal's says what was decided, by whom.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

import duckdb

from .clock import now_utc

#: The chain's fields keep their first names: `previous_run_id` is the previous *entry*.
PREVIOUS_ID, PREVIOUS_SHA = "previous_run_id", "previous_manifest_sha256"


def new_entry_id(kind: str, league: str, month: str) -> str:
    """A unique, sortable, path-safe id for a non-run entry: void-150700-2025-03-20261204T…-3fa2c1."""
    stamp = now_utc().strftime("%Y%m%dT%H%M%SZ")
    return f"{kind}-{league}-{month}-{stamp}-{secrets.token_hex(3)}"


def entry_rel(entry_id: str) -> Path:
    """An entry's path relative to the output directory."""
    return Path("journal") / f"{entry_id}.json"


def head(con: duckdb.DuckDBPyConnection, schema: str = "") -> tuple[str | None, str | None]:
    """(entry_id, sha256) of the last entry: what the next entry must name."""
    rows = con.execute(
        f"SELECT entry_id, sha256 FROM {schema}journal ORDER BY seq DESC LIMIT 1"
    ).fetchall()
    return (rows[0][0], rows[0][1]) if rows else (None, None)


def chain(payload: dict, previous: tuple[str | None, str | None]) -> dict:
    """The payload with the previous entry's id and SHA-256."""
    return {**payload, PREVIOUS_ID: previous[0], PREVIOUS_SHA: previous[1]}


def entry_text(payload: dict) -> str:
    """How every entry is written (the SHA-256 is of these bytes)."""
    return json.dumps(payload, ensure_ascii=False, indent=2, default=str) + "\n"


def write_entry(out_dir: Path, entry_id: str, text: str) -> None:
    """Write an entry directly (a seal's): to a temporary name, flushed, then renamed."""
    path = out_dir / entry_rel(entry_id)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def append(
    con: duckdb.DuckDBPyConnection,
    entry_id: str,
    kind: str,
    league: str,
    month: str,
    sha256: str,
    recorded_at,
) -> None:
    """Record an entry at the end of the chain (inside the caller's transaction)."""
    con.execute(
        "INSERT INTO journal (seq, entry_id, kind, league_code, month, recorded_at, sha256) "
        "SELECT COALESCE(MAX(seq), 0) + 1, ?, ?, ?, ?, ?, ? FROM journal",
        [entry_id, kind, league, month, recorded_at, sha256],
    )

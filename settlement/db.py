"""DuckDB connections kept within a memory limit (SPEC §6 outputs can be far larger than RAM)."""

from __future__ import annotations

import shutil
import tempfile
import weakref
from pathlib import Path

import duckdb

#: DuckDB keeps its tables and hash tables within this and spills the rest to a temporary
#: directory; the input is streamed in batches, so a run stays near this size whatever the
#: month's size.
DEFAULT_MEMORY_LIMIT = "1536MB"


def scratch_connection(memory_limit: str | None = None) -> duckdb.DuckDBPyConnection:
    """An in-memory connection for reading outputs (statements, audits, verify), bounded like a
    settlement's and spilling to a private temporary directory, removed with the connection."""
    spill = Path(tempfile.mkdtemp(prefix="settle-"))
    con = connect(memory_limit, spill, ordered=True)
    weakref.finalize(con, shutil.rmtree, spill, True)
    return con


def bound(con: duckdb.DuckDBPyConnection, memory_limit: str | None = None) -> None:
    """Keep a store connection within the memory limit (a file database spills beside itself)."""
    con.execute(f"SET memory_limit = '{memory_limit or DEFAULT_MEMORY_LIMIT}'")


def connect(
    memory_limit: str | None = None, temp_dir: Path | None = None, ordered: bool = False
) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection for one settlement, spilling to temp_dir past the limit.

    Unless `ordered`, results without ORDER BY come in any order (faster in parallel)."""
    con = duckdb.connect(":memory:")
    con.execute(f"SET memory_limit = '{memory_limit or DEFAULT_MEMORY_LIMIT}'")
    if temp_dir is not None:
        temp_dir.mkdir(parents=True, exist_ok=True)
        con.execute("SET temp_directory = ?", [str(temp_dir)])
    if not ordered:
        con.execute("SET preserve_insertion_order = false")
    return con

"""Publishing a run's outputs (SPEC §6): Hive-partitioned Parquet and the JSON manifest.

Files are written aside, under `<out>/.staging/<run_id>/`, then renamed into place, so a
re-run of a 盟市-month replaces its outputs whole and nothing stale is left beside them.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import duckdb

#: kind -> the temp table the SQL leaves it in
KINDS = {"ledger": "ledger_out", "rejects": "rejects_out", "units": "units"}
PART_FILE = "part-0.parquet"
ROW_GROUP_SIZE = 500_000


def partition(kind: str, league: str, month: str) -> Path:
    """Relative directory of one 盟市-month's outputs of one kind."""
    return Path(kind) / f"league={league}" / f"month={month}"


def manifest_path(out_dir: Path, league: str, month: str, part: str = PART_FILE) -> Path:
    """manifests/league=L/month=M.json; a supplementary run's: month=M.supplement-N.json."""
    suffix = "" if part == PART_FILE else "." + part.removesuffix(".parquet")
    return out_dir / "manifests" / f"league={league}" / f"month={month}{suffix}.json"


def supplement_file(n: int) -> str:
    """File name of the n-th supplementary run's outputs, beside the month's part-0.parquet."""
    return f"supplement-{n}.parquet"


def sha256_file(path: Path) -> str:
    """SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def write_staged(
    con: duckdb.DuckDBPyConnection, staging: Path, league: str, month: str, part: str = PART_FILE
) -> list[dict]:
    """COPY ledger, rejects and units to Parquet under staging; their paths, rows and hashes."""
    written = []
    for kind, table in KINDS.items():
        rel = partition(kind, league, month) / part
        target = staging / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        path_sql = str(target).replace("'", "''")
        con.execute(
            f"COPY {table} TO '{path_sql}' (FORMAT parquet, COMPRESSION zstd, "
            f"ROW_GROUP_SIZE {ROW_GROUP_SIZE})"
        )
        rows = con.execute(f"SELECT COUNT(*) FROM {table}").fetchall()[0][0]
        written.append({"path": rel.as_posix(), "rows": rows, "sha256": sha256_file(target)})
    return written


def publish(
    staging: Path, out_dir: Path, league: str, month: str, manifest: dict, part: str = PART_FILE
) -> Path:
    """Move staged outputs into place and write the manifest last. A regular run replaces the
    month's partitions whole (and its supplements' manifests); a supplementary run adds its
    files beside the month's."""
    trash = staging / "replaced"
    for kind in KINDS:
        rel = partition(kind, league, month)
        target = out_dir / rel
        if part != PART_FILE:
            target.mkdir(parents=True, exist_ok=True)
            os.replace(staging / rel / part, target / part)
            continue
        if target.exists():
            (trash / rel).parent.mkdir(parents=True, exist_ok=True)
            os.replace(target, trash / rel)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(staging / rel, target)
    text = json.dumps(manifest, ensure_ascii=False, indent=2) + "\n"
    # the journal keeps every run's manifest, append-only: the hash chain auditors walk
    journal = out_dir / "journal" / f"{manifest['run_id']}.json"
    final = manifest_path(out_dir, league, month, part)
    for path in (journal, final):
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)
    return final


def discard(staging: Path) -> None:
    """Remove a run's staging directory (and the outputs it replaced)."""
    shutil.rmtree(staging, ignore_errors=True)
    parent = staging.parent
    if parent.exists() and not any(parent.iterdir()):
        parent.rmdir()

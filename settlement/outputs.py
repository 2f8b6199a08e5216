"""Publishing a run's outputs (SPEC §6): Hive-partitioned Parquet and the JSON manifest.

Files are written aside, under `<out>/.staging/<run_id>/`, then renamed into place, so a
re-run of a 盟市-month replaces its outputs whole and nothing stale is left beside them.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
from pathlib import Path

import duckdb

#: kind -> the temp table the SQL leaves it in
KINDS = {"ledger": "ledger_out", "rejects": "rejects_out", "units": "units"}
PART_FILE = "part-0.parquet"
#: DuckDB's own row group size: 81 row groups for a 10-million-parcel month, each a unit that
#: readers scan in parallel and skip by statistics.
ROW_GROUP_SIZE = 122_880
#: Snappy, the Parquet default every reader has: with these row groups a 10M-row ledger is
#: written in 4.1–4.4 s where zstd level 1 in 500,000-row groups took 4.9–5.4 s, for files about
#: a quarter larger (bench/RESULTS.md).
COMPRESSION = "snappy"


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
        rows = con.execute(
            f"COPY {table} TO '{path_sql}' (FORMAT parquet, COMPRESSION {COMPRESSION}, "
            f"ROW_GROUP_SIZE {ROW_GROUP_SIZE})"
        ).fetchall()[0][0]
        written.append({"path": rel.as_posix(), "rows": rows, "sha256": sha256_file(target)})
    return written


def crash_point(name: str) -> None:
    """Testing hook: SETTLE_CRASH_AT=<name> kills the process here, as `kill -9` would."""
    if os.environ.get("SETTLE_CRASH_AT") == name:
        os.kill(os.getpid(), signal.SIGKILL)


def stage_text(staging: Path, rel: Path, text: str) -> None:
    """Write a text file (manifest, journal entry) into the staging tree."""
    path = staging / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


INTENT = "PUBLISHING.json"


def publish(
    staging: Path,
    out_dir: Path,
    run_id: str,
    items: list[Path],
    moves: list[tuple[Path, Path]] = (),
) -> None:
    """Move staged files and directories into place, replacing what is there.

    `moves` (source, destination), relative to out_dir, are done first: a void moves the
    month's outputs to voided/<run_id>/. Everything is announced first in
    `<staging>/PUBLISHING.json`; what each item replaces is kept under `<staging>/replaced/`
    until the store commits. If the process dies half-way, `recover` puts everything back (or,
    when the store did commit, finishes the clean-up).
    """
    intent = {
        "run_id": run_id,
        "items": [p.as_posix() for p in items],
        "moves": [[a.as_posix(), b.as_posix()] for a, b in moves],
    }
    tmp = staging / (INTENT + ".tmp")
    tmp.write_text(json.dumps(intent), encoding="utf-8")
    _fsync(tmp)
    os.replace(tmp, staging / INTENT)
    for source, destination in moves:
        if (out_dir / source).exists():
            (out_dir / destination).parent.mkdir(parents=True, exist_ok=True)
            os.replace(out_dir / source, out_dir / destination)
    for n, rel in enumerate(items, 1):
        target, backup, new = out_dir / rel, staging / "replaced" / rel, staging / rel
        if target.exists():
            backup.parent.mkdir(parents=True, exist_ok=True)
            os.replace(target, backup)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.replace(new, target)
        crash_point(f"publish:{n}")


def _fsync(path: Path) -> None:
    with path.open("rb") as fh:
        os.fsync(fh.fileno())


def recover(out_dir: Path, committed: set[str]) -> list[str]:
    """Finish or undo publications a killed process left behind; what was done, in words.

    A staging directory without an intent never touched the outputs: it is removed. With an
    intent, if its entry is in the store (`committed`) the publication completed and only the
    replaced files are removed; otherwise every move is undone in reverse order.
    """
    root = out_dir / ".staging"
    done: list[str] = []
    if not root.exists():
        return done
    for staging in sorted(p for p in root.iterdir() if p.is_dir()):
        intent_file = staging / INTENT
        if intent_file.exists():
            intent = json.loads(intent_file.read_text(encoding="utf-8"))
            if intent["run_id"] not in committed:
                for rel in reversed([Path(p) for p in intent["items"]]):
                    target, backup, new = out_dir / rel, staging / "replaced" / rel, staging / rel
                    if not new.exists() and target.exists():  # the new one was moved in
                        shutil.rmtree(target) if target.is_dir() else target.unlink()
                    if backup.exists():
                        os.replace(backup, target)
                for source, destination in reversed(intent.get("moves", [])):
                    back, moved = out_dir / source, out_dir / destination
                    if moved.exists() and not back.exists():
                        os.replace(moved, back)
                done.append(f"撤销了未完成的发布 {intent['run_id']}，恢复到此前状态")
            else:
                done.append(f"完成了批次 {intent['run_id']} 发布后的清理")
        discard(staging)
    return done


def discard(staging: Path) -> None:
    """Remove a run's staging directory (and the outputs it replaced)."""
    shutil.rmtree(staging, ignore_errors=True)
    parent = staging.parent
    if parent.exists() and not any(parent.iterdir()):
        parent.rmdir()

"""`settle verify`'s checks of paying out (SPEC §10), beside sql/audits/08 and 09: every batch's
files are the ones recorded (SHA-256) and say what the store says; every batch line equals its
months' sealed statements (statements.json, 本期实付) to the 分; every closed year's annual
statements are intact and their totals equal the sum of the year's months."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

from ..outputs import partition, sha256_file
from .annual import annual_dir
from .batches import payments_dir

TOTALS = ("regular_fen", "supplementary_fen", "clawback_fen", "due_fen")


def _rows(con, sql: str, params: list | None = None) -> list[dict]:
    cursor = con.execute(sql, params or [])
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]


def verify_payouts(
    con: duckdb.DuckDBPyConnection, out_dir: Path, problem, league: str | None = None
) -> int:
    """Check batches and closed years; `problem(file, rule, detail)` records each breach.
    Returns how many files were checked."""
    checked = 0
    for batch in _rows(
        con,
        "SELECT * FROM payment_batches WHERE ? IS NULL OR league_code = ? ORDER BY batch_id",
        [league, league],
    ):
        checked += _verify_batch(con, out_dir, batch, problem)
    for close in _rows(
        con,
        "SELECT * FROM year_closes WHERE ? IS NULL OR league_code = ? ORDER BY league_code, year",
        [league, league],
    ):
        checked += _verify_year(con, out_dir, close, problem)
    return checked


def _verify_batch(con, out_dir: Path, batch: dict, problem) -> int:
    folder = out_dir / payments_dir(batch["league_code"])
    checked = 0
    for name, sha in json.loads(batch["files"]).items():
        path = folder / name
        if not path.exists():
            problem(str(path), "拨付文件", "文件缺失")
            continue
        checked += 1
        if sha256_file(path) != sha:
            problem(str(path), "拨付文件", "SHA-256 与结算库记录不符（文件被修改）")
    lines = _rows(
        con, "SELECT * FROM payment_lines WHERE batch_id = ? ORDER BY company", [batch["batch_id"]]
    )
    parquet = folder / f"{batch['batch_id']}.parquet"
    if parquet.exists():
        table = pq.read_table(parquet).to_pylist()
        in_file = {(r["company"], r["amount_fen"]) for r in table}
        if in_file != {(x["company"], x["amount_fen"]) for x in lines}:
            problem(str(parquet), "拨付文件", "各企业拨付金额与结算库的拨付行不符")
    months = [
        r["month"]
        for r in _rows(
            con,
            "SELECT month FROM payment_months WHERE batch_id = ? ORDER BY month",
            [batch["batch_id"]],
        )
    ]
    stated: dict[str, int] = {}
    for month in months:
        folder_m = out_dir / partition("statements", batch["league_code"], month)
        manifest = folder_m / "statements.json"
        if not manifest.exists():
            problem(
                str(manifest),
                "拨付与结算单（SPEC §10）",
                f"批次 {batch['batch_id']} 拨付的月份没有结算单",
            )
            continue
        for entry in json.loads(manifest.read_text(encoding="utf-8"))["files"].values():
            if entry["company"] and entry.get("due_fen") is not None and entry.get("sha256"):
                stated.setdefault(entry["company"], {})[month] = entry["due_fen"]
    for line in lines:
        total = sum(stated.get(line["company"], {}).values())
        if total != line["due_fen"]:
            problem(
                f"批次 {batch['batch_id']}",
                "拨付与结算单（SPEC §10）",
                f"企业 {line['company']} 本批应付 {line['due_fen']} 分，所列月份结算单的本期实付合计 "
                f"{total} 分",
            )
    return checked


def _verify_year(con, out_dir: Path, close: dict, problem) -> int:
    folder = out_dir / annual_dir(close["league_code"], close["year"])
    checked = 0
    for name, sha in json.loads(close["files"]).items():
        path = folder / name
        if not path.exists():
            problem(str(path), "年度结算表", "文件缺失")
            continue
        checked += 1
        if sha256_file(path) != sha:
            problem(str(path), "年度结算表", "SHA-256 与结算库记录不符（文件被修改）")
    manifest = folder / "annual.json"
    if not manifest.exists():
        return checked
    recorded = json.loads(manifest.read_text(encoding="utf-8"))["files"]
    months = _rows(
        con,
        "SELECT company, "
        + ", ".join(f"CAST(SUM({k}) AS BIGINT) AS {k}" for k in TOTALS)
        + " FROM payable WHERE league_code = ? AND month BETWEEN ? AND ? GROUP BY company",
        [close["league_code"], close["start_month"], close["end_month"]],
    )
    by_company = {r["company"]: r for r in months}
    everyone = {k: sum(r[k] for r in months) for k in TOTALS}
    for name, entry in recorded.items():
        if not name.endswith(".xlsx"):
            continue
        expected = everyone if entry["company"] is None else by_company.get(entry["company"], {})
        for key in TOTALS:
            if entry[key] != expected.get(key, 0):
                problem(
                    str(folder / name),
                    "年度合计 = 各月之和（SPEC §10）",
                    f"{key} 年度结算表为 {entry[key]} 分，{close['start_month']} 至 "
                    f"{close['end_month']} 各月合计 {expected.get(key, 0)} 分",
                )
    return checked

"""The cash view of a budget year (settle status, the portal): per month, what the sealed
statements made due, which batch pays it and in what state, and what is outstanding; and the
carries that companies' next batches will recover (sql/96_annual.sql)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from .. import SQL_DIR, shipped
from ..period import Month
from ..store import connect_readonly, league_budget


def _rows(con, sql: str, params: list | None = None) -> list[dict]:
    cursor = con.execute(sql, params or [])
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]


def cash_view(store: Path, league: str, year: int, company: str | None = None) -> dict:
    """{"months": [...], "carries": [...], "batches": [...]} for a budget year (one company's
    with `company`): per month regular, supplementary, clawback and due 分, batch, its state and
    paid-on date, paid and outstanding 分."""
    recorded = league_budget(store, league)
    start = Month(year, recorded["year_start_month"] if recorded else 1)
    months = [str(start.shift(k)) for k in range(12)]
    con = connect_readonly(store)
    try:
        con.register("annual_params", pa.table({"league_code": [league] * 12, "month": months}))
        con.execute(shipped(SQL_DIR / "96_annual.sql").read_text(encoding="utf-8"))
        per_month = _rows(
            con,
            """
            SELECT p.month, MIN(a.batch_id) AS batch_id, MIN(a.batch_state) AS batch_state,
                   MIN(a.paid_on) AS paid_on,
                   CAST(COALESCE(SUM(a.regular_fen), 0) AS BIGINT)       AS regular_fen,
                   CAST(COALESCE(SUM(a.supplementary_fen), 0) AS BIGINT) AS supplementary_fen,
                   CAST(COALESCE(SUM(a.clawback_fen), 0) AS BIGINT)      AS clawback_fen,
                   CAST(COALESCE(SUM(a.due_fen), 0) AS BIGINT)           AS due_fen,
                   CAST(COALESCE(SUM(a.paid_fen), 0) AS BIGINT)          AS paid_fen,
                   CAST(COALESCE(SUM(a.outstanding_fen), 0) AS BIGINT)   AS outstanding_fen,
                   COALESCE(BOOL_OR(a.due_fen <> 0), false)              AS any_due
            FROM annual_params p
            LEFT JOIN annual_lines a ON a.month = p.month AND (? IS NULL OR a.company = ?)
            GROUP BY p.month ORDER BY p.month
            """,
            [company, company],
        )
        carries = _rows(
            con,
            """
            SELECT l.company, arg_max(l.carried_forward_fen, b.created_at) AS carried_fen,
                   arg_max(b.batch_id, b.created_at) AS batch_id
            FROM payment_lines l JOIN payment_batches b USING (batch_id)
            WHERE b.league_code = ? AND (? IS NULL OR l.company = ?)
            GROUP BY l.company HAVING arg_max(l.carried_forward_fen, b.created_at) < 0
            ORDER BY l.company
            """,
            [league, company, company],
        )
        batches = _rows(
            con,
            """
            SELECT b.batch_id, b.state, b.months, b.created_by, b.created_at, b.confirmed_by,
                   b.paid_on, b.voucher,
                   CAST(COALESCE(SUM(l.amount_fen) FILTER (WHERE ? IS NULL OR l.company = ?), 0)
                        AS BIGINT) AS amount_fen
            FROM payment_batches b LEFT JOIN payment_lines l USING (batch_id)
            WHERE b.league_code = ?
            GROUP BY ALL ORDER BY b.created_at, b.batch_id
            """,
            [company, company, league],
        )
    finally:
        con.close()
    return {
        "start": months[0],
        "end": months[-1],
        "months": per_month,
        "carries": carries,
        "batches": batches,
    }

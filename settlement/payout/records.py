"""The store's side of paying out: each decision — a batch, its confirmation, a clawback, a
year's close — is its rows, its journal entry and its event, written in one transaction (as
`store.record_run`, `record_seal` and `record_void` do for runs)."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa

from .. import journal
from ..events import Actor, record_event
from ..store import _query, transaction


def _insert(con, table: str, rows: list[dict]) -> None:
    if not rows:
        return
    con.register("_rows", pa.Table.from_pylist(rows))
    # no `finally`: after a failed INSERT the transaction is aborted and only the caller's
    # ROLLBACK may run (the connection is closed with it)
    con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM _rows")
    con.unregister("_rows")


def record_batch(
    store: Path, batch: dict, lines: list[dict], months: list[dict], actor: Actor, sha256: str
) -> None:
    """A new payment batch (已生成): its row, lines and months (a month already in a batch
    breaks payment_months' key: the transaction fails and nothing is recorded)."""
    with transaction(store) as con:
        _insert(con, "payment_batches", [batch])
        _insert(con, "payment_lines", lines)
        _insert(con, "payment_months", months)
        journal.append(
            con, batch["batch_id"], "batch", batch["league_code"], None, sha256, batch["created_at"]
        )
        record_event(
            con,
            actor,
            "payment_batch",
            batch["league_code"],
            None,
            None,
            {
                "batch_id": batch["batch_id"],
                "months": batch["months"],
                "amount_fen": batch["amount_fen"],
            },
        )


def record_confirmation(store: Path, batch: dict, confirm: dict, actor: Actor, sha256: str) -> None:
    """已生成 → 已拨付, once: the update only matches a batch still in state 'created'."""
    with transaction(store) as con:
        changed = con.execute(
            "UPDATE payment_batches SET state = 'paid', confirmed_by = ?, confirmed_at = ?, "
            "paid_on = ?, voucher = ?, confirm_entry_id = ? "
            "WHERE batch_id = ? AND state = 'created' RETURNING batch_id",
            [
                confirm["confirmed_by"],
                confirm["confirmed_at"],
                confirm["paid_on"],
                confirm["voucher"],
                confirm["entry_id"],
                batch["batch_id"],
            ],
        ).fetchall()
        if not changed:
            raise RuntimeError(f"batch {batch['batch_id']} is not awaiting confirmation")
        journal.append(
            con,
            confirm["entry_id"],
            "payment",
            batch["league_code"],
            None,
            sha256,
            confirm["confirmed_at"],
        )
        record_event(
            con,
            actor,
            "payment_confirmed",
            batch["league_code"],
            None,
            None,
            {
                "batch_id": batch["batch_id"],
                "paid_on": confirm["paid_on"],
                "voucher": confirm["voucher"],
            },
        )


def record_clawback(store: Path, entry: dict, rows: list[dict], actor: Actor, sha256: str) -> None:
    """A clawback (追缴): one row per waybill, booked in the company's next open month."""
    with transaction(store) as con:
        _insert(con, "clawbacks", rows)
        journal.append(
            con,
            entry["clawback_id"],
            "clawback",
            entry["league_code"],
            entry["month"],
            sha256,
            entry["recorded_at"],
        )
        record_event(
            con,
            actor,
            "clawback",
            entry["league_code"],
            entry["month"],
            None,
            {
                "clawback_id": entry["clawback_id"],
                "booked_in_month": entry["booked_in_month"],
                "waybills": len(rows),
                "amount_fen": sum(r["amount_fen"] for r in rows),
                "reason": entry["reason"],
            },
        )


def record_close(store: Path, close: dict, true_up: list[dict], actor: Actor, sha256: str) -> None:
    """A budget year closed, with the true-up's clawbacks booked in the next year."""
    with transaction(store) as con:
        _insert(con, "year_closes", [close])
        _insert(con, "clawbacks", true_up)
        journal.append(
            con, close["entry_id"], "close", close["league_code"], None, sha256, close["closed_at"]
        )
        record_event(
            con,
            actor,
            "close_year",
            close["league_code"],
            None,
            None,
            {
                "year": close["year"],
                "true_up_fen": close["true_up_fen"],
                "booked_in_month": close["booked_in_month"],
                "files": json.loads(close["files"]),
            },
        )


def batches(store: Path, league: str | None = None, batch_id: str | None = None) -> list[dict]:
    """Payment batches, oldest first (one, with `batch_id`)."""
    return _query(
        store,
        "SELECT * FROM payment_batches WHERE (? IS NULL OR league_code = ?) "
        "AND (? IS NULL OR batch_id = ?) ORDER BY created_at, batch_id",
        [league, league, batch_id, batch_id],
    )


def batch_lines(store: Path, batch_id: str) -> list[dict]:
    """The lines of one batch, by company."""
    return _query(
        store, "SELECT * FROM payment_lines WHERE batch_id = ? ORDER BY company", [batch_id]
    )


def paid_months(store: Path, league: str) -> dict[str, dict]:
    """Month -> {batch_id, state, paid_on, due_fen} for every month of a 盟市 in a batch."""
    rows = _query(
        store,
        "SELECT m.month, m.batch_id, m.due_fen, b.state, b.paid_on FROM payment_months m "
        "JOIN payment_batches b USING (batch_id) WHERE m.league_code = ? ORDER BY m.month",
        [league],
    )
    return {r["month"]: r for r in rows}

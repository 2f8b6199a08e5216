"""What every table and column an auditor sees in the store means (COMMENT ON, docs/AUDITORS.md).

One dictionary, applied to the store after every run, so `duckdb_columns()` documents itself.
"""

from __future__ import annotations

import pyarrow as pa

from .config import Config

LEDGER = {
    "waybill_no": "运单号 waybill number, as in the log (white space trimmed)",
    "company": "快递企业编码 company code from config/companies.toml",
    "village_code": "嘎查村 12-digit statistical division code",
    "county_code": "旗县 code: the village code's first 6 digits",
    "delivered_at": "签收时间 local time (Asia/Shanghai)",
    "distance_km": "派送距离 km, DECIMAL(18,6)",
    "cost_yuan": "派送成本 元, DECIMAL(18,6)",
    "revenue_yuan": "派费收入 元 used for break-even (the log's, else the company's, else the policy's default)",
    "revenue_source": "where revenue_yuan came from: log | company | policy",
    "proof": "签收方式 proof of delivery as logged",
    "area_class": "服务发生区域 class of the village in the policy version (default if none)",
    "policy_version": "id of the policy version in force on the delivery day",
    "band_from_km": "start of the distance band [from, to) that applied",
    "band_to_km": "end of that band (NULL: open-ended)",
    "base_rate_yuan": "the band's base rate in 元",
    "village_volume": "单量: the village's accepted parcels that month, all companies",
    "volume_multiplier": "multiplier of the volume tier that applied (1 when none)",
    "rate_fen": "floor(100 × min(base × multiplier, cap_yuan, max_cost_share × cost)) 分",
    "unit_key": "break-even unit: company|county, county, company or league code, by scope",
    "subsidy_fen": "分 paid for this parcel after break-even and budget",
    "source_file": "input file the row came from",
    "source_row": "1-based data row in that file",
    "run_id": "the run that settled it",
    "league": "盟市 code (from the partition path)",
    "month": "settlement month YYYY-MM (from the partition path)",
}
REJECTS = {
    "source_file": "input file the row came from",
    "source_row": "1-based data row in that file",
    "source_line": "the row as Excel or an editor numbers it: source_row + the header's line (title rows above an XLSX header counted)",
    "waybill_no": "运单号 as logged (text)",
    "company": "company as logged (text)",
    "delivered_at": "签收时间 as logged (text; DUPLICATE/ALREADY_SETTLED rows, which parsed cleanly: YYYY-MM-DD HH:MM:SS)",
    "village_code": "village code as logged (text)",
    "distance_km": "distance as logged (text; DUPLICATE/ALREADY_SETTLED rows: the parsed number, e.g. 12.5)",
    "cost_yuan": "cost as logged (text; DUPLICATE/ALREADY_SETTLED rows: the parsed number)",
    "revenue_yuan": "revenue as logged (text; DUPLICATE/ALREADY_SETTLED rows: the parsed number)",
    "proof": "proof as logged (text)",
    "reason_code": "first failing reason, SPEC §4.1 (MALFORMED … ALREADY_SETTLED)",
    "reason": "the reason in Chinese",
    "detail": "the column and value at fault and what was expected, in Chinese (DUPLICATE, "
    "ALREADY_SETTLED: the kept row or paying run only if the same company's; else find it by "
    "`waybill_no` in `ledger`)",
    "run_id": "the run that rejected it",
    "league": "盟市 code (from the partition path)",
    "month": "settlement month YYYY-MM (from the partition path)",
}
UNITS = {
    "run_id": "the run the unit belongs to",
    "unit_key": "break-even unit key (see ledger.unit_key)",
    "company": "company of the unit (scopes company_county, company_league)",
    "county_code": "county of the unit (scopes company_county, county)",
    "parcels": "accepted parcels in the unit",
    "gross_fen": "基础补贴: Σ rate_fen",
    "cost_yuan": "Σ cost_yuan of this run's parcels",
    "revenue_yuan": "Σ revenue_yuan of this run's parcels",
    "prior_cost_yuan": "Σ cost_yuan of the month's earlier runs (supplementary runs; else 0)",
    "prior_revenue_yuan": "Σ revenue_yuan of the month's earlier runs (supplementary runs; else 0)",
    "cap_fen": "盈亏平衡上限 floor(100 × max(0, cost_yuan + prior_cost_yuan − revenue_yuan − prior_revenue_yuan)) over the month (NULL: scope none)",
    "prior_paid_fen": "paid to the unit by the month's earlier runs (supplementary runs only)",
    "after_breakeven_fen": "min(gross_fen, cap_fen − prior_paid_fen)",
    "breakeven_excess_fen": "paid earlier beyond the month's cap (supplementary runs; not clawed back)",
    "subsidy_fen": "应付补贴 after the budget (largest-remainder proration)",
    "league": "盟市 code (from the partition path)",
    "month": "settlement month YYYY-MM (from the partition path)",
}
RUNS = {
    "run_id": "run id: league-month-UTC time-random",
    "league_code": "盟市 code",
    "month": "settlement month YYYY-MM",
    "kind": "regular | supplementary (补充结算 of a sealed month)",
    "status": "current | superseded | voided",
    "payable_in_month": "supplementary: the month whose statement pays it",
    "supersedes": "the run this one replaced",
    "superseded_by": "the run that replaced this one",
    "started_at": "start, UTC",
    "finished_at": "end, UTC",
    "input_sha256": "SHA-256 over the sorted SHA-256 of every input file",
    "config_sha256": "SHA-256 over the configuration files' SHA-256",
    "manifest_sha256": "SHA-256 of the run's manifest (journal/<run_id>.json)",
    "out_dir": "output directory of the run, relative to the store's directory ('.': beside it)",
    "rows_in": "input rows read",
    "parcels": "rows accepted into the ledger",
    "rejects": "rows rejected",
    "gross_fen": "Σ rate_fen",
    "after_breakeven_fen": "Σ after break-even",
    "subsidy_fen": "Σ subsidy_fen paid",
    "budget_available_fen": "what the month could pay (NULL: budget rule none)",
    "run_by": "who ran it (the events table says from where)",
    "ended_at": "when it was superseded or voided, UTC",
    "annual_budget_fen": "the annual budget it was settled under, 分",
    "budget_rule": "the budget rule it was settled under: ytd | monthly | none",
}
TABLES = {
    "ledger": (
        "view",
        "one row per accepted parcel, in no particular order (Parquet under <out>/ledger)",
        LEDGER,
    ),
    "rejects": ("view", "one row per rejected input row (Parquet under <out>/rejects)", REJECTS),
    "units": ("view", "one row per break-even unit and run (Parquet under <out>/units)", UNITS),
    "runs": ("table", "every run, current or superseded", RUNS),
    "settled_waybills": (
        "view",
        "waybills of current runs, read from their ledgers: a waybill here is ALREADY_SETTLED "
        "for any other 盟市-month",
        {
            "waybill_no": "运单号",
            "league_code": "盟市 code",
            "month": "month YYYY-MM",
            "run_id": "the run that settled it",
            "company": "company code",
            "subsidy_fen": "分 paid",
        },
    ),
    "run_dependencies": (
        "table",
        "which runs rejected waybills as ALREADY_SETTLED against which: a current run that "
        "depends on a run no longer current is stale (需重算)",
        {
            "run_id": "the run that rejected the waybills",
            "depends_on": "the run that had settled them",
            "waybills": "how many",
        },
    ),
    "voids": (
        "table",
        "runs withdrawn by settle void (their outputs moved to voided/<run_id>/)",
        {
            "run_id": "the voided run",
            "league_code": "盟市 code",
            "month": "month YYYY-MM",
            "voided_at": "when, UTC",
            "voided_by": "who",
            "reason": "why",
            "entry_id": "its journal entry (journal/<entry_id>.json)",
        },
    ),
    "journal": (
        "table",
        "the hash chain: every run, void, seal, payment batch, confirmation, clawback and year "
        "close in order; journal/<entry_id>.json names the entry before it and its SHA-256",
        {
            "seq": "position in the chain, from 1",
            "entry_id": "run id, or void-…/seal-…/pay-…/paid-…/clawback-…/close-… id",
            "kind": "run | void | seal | batch | payment | clawback | close",
            "league_code": "盟市 code",
            "month": "month YYYY-MM",
            "recorded_at": "when, UTC",
            "sha256": "SHA-256 of journal/<entry_id>.json",
        },
    ),
    "events": (
        "table",
        "every state change: who, what, when, from where",
        {
            "seq": "order, from 1",
            "occurred_at": "when, UTC",
            "actor": "user name (CLI: $SETTLE_USER or the login name; portal: the account)",
            "origin": "cli@<host>, or the portal client's address",
            "action": "run | replace_run | supplementary_run | void | seal | payment_batch | "
            "payment_confirmed | clawback | close_year | …",
            "league_code": "盟市 code",
            "month": "month YYYY-MM",
            "run_id": "the run concerned",
            "detail": "JSON: what changed",
        },
    ),
    "seals": (
        "table",
        "sealed months: review, public notice and approval (审核、公示、审批)",
        {
            "league_code": "盟市 code",
            "month": "month YYYY-MM",
            "run_id": "the sealed regular run",
            "reviewed_by": "审核人",
            "notice_start": "公示 first day",
            "notice_end": "公示 last day",
            "approved_by": "审批人",
            "approval_ref": "审批文号",
            "sealed_at": "when, UTC",
            "sealed_by": "who recorded the seal",
            "entry_id": "its journal entry (journal/<entry_id>.json)",
        },
    ),
    "payable": (
        "view",
        "what each 盟市-month's statements pay each company (sql/92_payable.sql): the regular "
        "run's payable plus supplementary runs and clawbacks booked in the month",
        {
            "league_code": "盟市 code",
            "month": "the statement month YYYY-MM",
            "company": "company code",
            "parcels": "parcels accepted by the month's regular run",
            "regular_fen": "应付补贴 of the month's regular run",
            "supplementary_fen": "补充结算 of sealed months booked in this month (runs.payable_in_month)",
            "clawback_fen": "追缴 booked in this month (≤ 0)",
            "due_fen": "本期实付 = regular_fen + supplementary_fen + clawback_fen",
        },
    ),
    "payment_batches": (
        "table",
        "payment batches (拨付批次, SPEC §10): created from sealed months (created, 已生成), "
        "confirmed by someone else once transferred (paid, 已拨付)",
        {
            "batch_id": "pay-<league>-<n>; also its journal entry (journal/<batch_id>.json)",
            "league_code": "盟市 code",
            "state": "created (已生成) | paid (已拨付)",
            "months": "the sealed months it pays, comma-separated",
            "amount_fen": "Σ of its lines' amount_fen",
            "created_by": "who created it",
            "created_at": "when, UTC",
            "confirmed_by": "who confirmed the transfer (never created_by)",
            "confirmed_at": "when, UTC",
            "paid_on": "拨付日期 (the transfer's date)",
            "voucher": "付款凭证号",
            "files": "JSON: file name -> SHA-256 of payments/league=L/<batch_id>.{parquet,xlsx,csv}",
            "confirm_entry_id": "the confirmation's journal entry (paid-<batch_id>)",
        },
    ),
    "payment_lines": (
        "table",
        "one line per company of a batch (sql/93_batch.sql)",
        {
            "batch_id": "the batch",
            "company": "company code",
            "payee_name": "收款单位名称 (companies.toml)",
            "credit_code": "统一社会信用代码",
            "bank": "开户银行",
            "account": "银行账号",
            "months": "the batch's months with anything due to the company",
            "due_fen": "Σ payable.due_fen of those months (the sealed statements' 本期实付)",
            "carried_in_fen": "what the company's previous batch could not recover (≤ 0)",
            "amount_fen": "paid: max(0, due_fen + carried_in_fen)",
            "carried_forward_fen": "left to recover from the next batch: min(0, due_fen + carried_in_fen)",
        },
    ),
    "payment_months": (
        "table",
        "which batch pays each 盟市-month: its key makes a month paid at most once",
        {
            "league_code": "盟市 code",
            "month": "the sealed month",
            "batch_id": "the batch that pays it",
            "due_fen": "Σ payable.due_fen of the month when the batch was made",
        },
    ),
    "clawbacks": (
        "table",
        "追缴: improper payments recovered as negative adjustments, one row per waybill, booked in "
        "the next open month (settle clawback; the annual true-up of settle close-year)",
        {
            "clawback_id": "its journal entry (clawback-… or, for a true-up, close-…)",
            "kind": "manual (settle clawback) | true_up (annual break-even true-up)",
            "league_code": "盟市 code",
            "booked_in_month": "the month whose statement carries it (neither sealed nor in a closed year when booked)",
            "company": "company code",
            "waybill_no": "运单号",
            "amount_fen": "recovered 分 (< 0); Σ per waybill never beyond its subsidy_fen",
            "source_month": "the month the waybill was paid in",
            "source_run_id": "the run that paid it",
            "reason": "why (shown on the statement and public notice)",
            "recorded_by": "who recorded it",
            "recorded_at": "when, UTC",
        },
    ),
    "year_closes": (
        "table",
        "closed budget years (settle close-year): once each; later changes go to the next year",
        {
            "league_code": "盟市 code",
            "year": "the budget year",
            "start_month": "its first month",
            "end_month": "its last month",
            "annual_true_up": "whether the policy's [breakeven] annual_true_up was on",
            "true_up_fen": "Σ of the true-up's clawbacks (≤ 0)",
            "booked_in_month": "where the true-up's clawbacks are booked (NULL: none)",
            "closed_by": "who closed it",
            "closed_at": "when, UTC",
            "files": "JSON: file name -> SHA-256 of annual/league=L/year=Y/*",
            "entry_id": "its journal entry",
        },
    ),
    "villages": (
        "table",
        "the village registry (2023 statistical division codes) the runs used",
        {
            "code": "嘎查村 12-digit code",
            "name": "name as NBS publishes it",
            "township_code": "苏木乡镇 9-digit code",
            "county_code": "旗县 6-digit code",
            "league_code": "盟市 6-digit code",
            "urban_rural_code": "城乡分类代码 (2xx rural)",
        },
    ),
    "counties": (
        "table",
        "the 旗县 of the registry the runs used, with their names",
        {
            "code": "旗县 6-digit code (ledger.county_code)",
            "name": "name as NBS publishes it",
            "league_code": "盟市 6-digit code",
        },
    ),
    "townships": (
        "table",
        "the 苏木乡镇 of the registry the runs used, with their names",
        {
            "code": "苏木乡镇 9-digit code (villages.township_code)",
            "name": "name as NBS publishes it",
            "county_code": "旗县 6-digit code",
        },
    ),
    "policy_versions": (
        "table",
        "dated policy versions of every 盟市 (latest configuration)",
        {
            "league_code": "盟市 code",
            "version_id": "version id",
            "reference": "legal reference",
            "effective_from": "first day in force",
            "effective_to": "last day in force (NULL: open)",
            "cap_yuan": "per-parcel ceiling 元 (≤ 0.30)",
            "max_cost_share": "rate ≤ share × cost (NULL: none)",
        },
    ),
    "budgets": (
        "table",
        "budget and break-even settings of every 盟市 (latest configuration)",
        {
            "league_code": "盟市 code",
            "league_name": "盟市 name",
            "annual_budget_fen": "annual budget 分",
            "budget_rule": "ytd | monthly | none",
            "year_start_month": "first month of the budget year",
            "scope": "break-even scope",
        },
    ),
    "schema_migrations": (
        "table",
        "schema versions applied to this store",
        {"version": "migration number", "description": "what it did", "applied_at": "when, UTC"},
    ),
}


def reference_tables(cfg: Config) -> dict[str, pa.Table]:
    """villages, counties, townships, policy_versions and budgets from the configuration, as
    Arrow tables."""
    versions, budgets = [], []
    for p in cfg.policies.values():
        budgets.append(
            {
                "league_code": p.league_code,
                "league_name": p.league_name,
                "annual_budget_fen": int(p.annual_budget_yuan * 100),
                "budget_rule": p.budget_rule,
                "year_start_month": p.year_start_month,
                "scope": p.scope,
            }
        )
        for v in p.versions:
            versions.append(
                {
                    "league_code": p.league_code,
                    "version_id": v.id,
                    "reference": v.reference,
                    "effective_from": v.effective_from,
                    "effective_to": v.effective_to,
                    "cap_yuan": v.cap_yuan,
                    "max_cost_share": v.max_cost_share,
                }
            )
    dec = pa.decimal128(18, 6)
    return {
        "villages": cfg.villages.to_arrow(),
        "counties": cfg.counties.to_arrow(),
        "townships": cfg.townships.to_arrow(),
        "policy_versions": pa.Table.from_pylist(
            versions,
            schema=pa.schema(
                [
                    ("league_code", pa.string()),
                    ("version_id", pa.string()),
                    ("reference", pa.string()),
                    ("effective_from", pa.date32()),
                    ("effective_to", pa.date32()),
                    ("cap_yuan", dec),
                    ("max_cost_share", dec),
                ]
            ),
        ),
        "budgets": pa.Table.from_pylist(
            budgets,
            schema=pa.schema(
                [
                    ("league_code", pa.string()),
                    ("league_name", pa.string()),
                    ("annual_budget_fen", pa.int64()),
                    ("budget_rule", pa.string()),
                    ("year_start_month", pa.int32()),
                    ("scope", pa.string()),
                ]
            ),
        ),
    }


def apply_comments(con) -> None:
    """COMMENT ON every documented table, view and column present in the store."""
    present = {
        r[0]
        for r in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() "
            "UNION SELECT view_name FROM duckdb_views() WHERE database_name = current_database()"
        ).fetchall()
    }
    for name, (kind, comment, columns) in TABLES.items():
        if name not in present:
            continue
        con.execute(
            f"COMMENT ON {'VIEW' if kind == 'view' else 'TABLE'} {name} IS {_quote(comment)}"
        )
        existing = {
            r[0]
            for r in con.execute(
                "SELECT column_name FROM duckdb_columns() WHERE table_name = ? "
                "AND database_name = current_database()",
                [name],
            ).fetchall()
        }
        for column, text in columns.items():
            if column in existing:
                con.execute(f'COMMENT ON COLUMN {name}."{column}" IS {_quote(text)}')


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def markdown() -> str:
    """The tables and columns section of docs/AUDITORS.md."""
    out = []
    for name, (kind, comment, columns) in TABLES.items():
        out += [f"### `{name}` ({kind})", "", comment, "", "| column | meaning |", "|---|---|"]
        out += [f"| `{c}` | {text.replace('|', '&#124;')} |" for c, text in columns.items()]
        out.append("")
    return "\n".join(out)

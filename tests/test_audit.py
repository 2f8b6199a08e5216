"""Auditors (issue 5): documented views, read-only SQL and its refusals, canned queries,
audits before publishing, verify with tampering, explain, and the journal's hash chain."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import duckdb
import polars as pl
import pytest
from click.testing import CliRunner
from conftest import V1, V2, make_config, policy_text

from settlement.catalog import TABLES
from settlement.cli import main

HEADER = "waybill_no,company,delivered_at,village_code,distance_km,cost_yuan,revenue_yuan,proof\n"


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def _office(tmp_path: Path):
    """Two settled months on one store (February, then March)."""
    cfg = make_config(tmp_path / "config", policy_text(rule="ytd", annual="10.00"))
    out = tmp_path / "out"

    def run(month, *rows, expect=0, replace=False):
        path = tmp_path / f"{month}-{len(list(tmp_path.glob('*.csv')))}.csv"
        path.write_text(HEADER + "\n".join(rows) + "\n", encoding="utf-8")
        result = cli(
            "run",
            "--league",
            "150700",
            "--month",
            month,
            "--logs",
            path,
            "--config",
            cfg,
            "--out",
            out,
            "-q",
            *(["--replace"] if replace else []),
        )
        assert result.exit_code == expect, result.output
        return result

    run(
        "2025-02",
        f"F1,ZTO,2025-02-05 10:00,{V1},12,2.00,0,签名",
        f"F2,YTO,2025-02-06 10:00,{V1},12,2.00,0,签名",
    )
    run(
        "2025-03",
        f"M1,ZTO,2025-03-05 10:00,{V1},12,2.00,0,签名",
        f"M2,ZTO,2025-03-06 10:00,{V2},5,1.00,1.50,签名",
        f"M3,YTO,2025-03-06 10:00,{V1},12,2.00,0,签名",
        f"M3,ZTO,2025-03-07 10:00,{V1},12,2.00,0,签名",
        f"F1,ZTO,2025-03-07 10:00,{V1},12,2.00,0,签名",
        f"BAD,ZTO,2025-03-07 10:00,{V1},far,2.00,0,签名",
    )
    return cfg, out, out / "settlement.duckdb", run


@pytest.fixture
def office(tmp_path):
    """Two settled months on one store, the test's own (it may change them)."""
    return _office(tmp_path)


@pytest.fixture(scope="module")
def settled(tmp_path_factory):
    """Two settled months on one store, shared by the tests that only read them."""
    return _office(tmp_path_factory.mktemp("office"))


def sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_every_view_column_is_documented(settled, monkeypatch):
    _, out, store, _ = settled
    monkeypatch.chdir(out)  # the DuckDB CLI, as AUDITORS.md says: from the output folder
    con = duckdb.connect("settlement.duckdb", read_only=True)
    rows = con.execute(
        "SELECT table_name, column_name, comment FROM duckdb_columns() "
        "WHERE table_name IN ('ledger', 'rejects', 'units', 'runs', 'settled_waybills', 'seals', "
        "'villages', 'counties', 'townships', 'policy_versions', 'budgets', 'journal', 'events', "
        "'run_dependencies', 'voids')"
    ).fetchall()
    views = dict(
        con.execute("SELECT view_name, comment FROM duckdb_views() WHERE NOT internal").fetchall()
    )
    con.close()
    assert {t for t, _, _ in rows} == {
        "ledger",
        "rejects",
        "units",
        "runs",
        "settled_waybills",
        "seals",
        "villages",
        "counties",
        "townships",
        "policy_versions",
        "budgets",
        "journal",
        "events",
        "run_dependencies",
        "voids",
    }
    undocumented = [(t, c) for t, c, comment in rows if not comment]
    assert undocumented == []
    assert views["ledger"] == TABLES["ledger"][1]


def test_sql_formats(settled, tmp_path):
    _, _, store, _ = settled
    q = "SELECT waybill_no, subsidy_fen FROM ledger WHERE month = '2025-02' ORDER BY waybill_no"
    assert (
        cli("sql", q, "--store", store, "--format", "csv").output
        == "waybill_no,subsidy_fen\nF1,15\nF2,15\n"
    )
    assert json.loads(cli("sql", q, "--store", store, "--format", "json").output) == [
        {"waybill_no": "F1", "subsidy_fen": 15},
        {"waybill_no": "F2", "subsidy_fen": 15},
    ]
    target = tmp_path / "r.parquet"
    assert cli("sql", q, "--store", store, "--format", "parquet", "--output", target).exit_code == 0
    assert pl.read_parquet(target)["subsidy_fen"].to_list() == [15, 15]
    table = cli("sql", "SELECT COUNT(*) AS n FROM runs", "--store", store)
    assert (table.exit_code, table.output) == (0, "n\n-\n2\n（共 1 行）\n")
    explain = cli("sql", "EXPLAIN SELECT * FROM ledger", "--store", store)
    assert explain.exit_code == 0


REFUSED = [
    ("INSERT INTO runs SELECT * FROM runs", "写入数据（INSERT）"),
    ("UPDATE runs SET subsidy_fen = 0", "修改数据（UPDATE）"),
    ("DELETE FROM settled_waybills", "删除数据（DELETE）"),
    ("CREATE TABLE x AS SELECT 1", "创建对象（CREATE）"),
    ("CREATE TEMP TABLE x AS SELECT 1", "创建对象（CREATE）"),
    ("DROP VIEW ledger", "删除对象（DROP）"),
    ("ALTER TABLE runs ADD COLUMN x INT", "修改结构（ALTER）"),
    ("COPY ledger TO '/tmp/stolen.csv'", "导出或导入文件（COPY）"),
    ("COPY (SELECT 1) TO 'out.parquet'", "导出或导入文件（COPY）"),
    ("ATTACH '/tmp/other.duckdb' AS o", "挂载其他数据库（ATTACH）"),
    ("INSTALL httpfs", "安装或加载扩展（INSTALL/LOAD）"),
    ("LOAD httpfs", "安装或加载扩展（INSTALL/LOAD）"),
    ("SET enable_external_access = true", "修改设置（SET/RESET/USE）"),
    ("RESET memory_limit", "修改设置（SET/RESET/USE）"),
    ("PRAGMA enable_profiling", "PRAGMA 指令"),
    ("EXPORT DATABASE '/tmp/dump'", "导出数据库（EXPORT）"),
    ("CHECKPOINT", "调用过程（CALL/CHECKPOINT）"),
    ("SELECT 1; SELECT 2", "只能执行一条查询语句"),
    ("SELECT * FROM read_csv('/etc/passwd')", "file system operations are disabled"),
    ("SELECT * FROM read_text('/etc/hostname')", "file system operations are disabled"),
    ("SELECT * FROM glob('/etc/*')", "file system operations are disabled"),
    ("SELEC 1", "SQL 语法错误"),
]


@pytest.mark.parametrize(("query", "message"), REFUSED, ids=[r[0][:30] for r in REFUSED])
def test_sql_refuses_anything_that_writes_or_reaches_outside(settled, query, message):
    _, out, store, _ = settled
    before = sha(store)
    result = cli("sql", query, "--store", store)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert result.output.count("\n") == 1 and "Traceback" not in result.output
    assert sha(store) == before
    assert not (out.parent / "out.parquet").exists()


def test_sql_time_and_row_limits(settled):
    _, _, store, _ = settled
    slow = cli(
        "sql", "SELECT COUNT(*) FROM range(100000000000) a", "--store", store, "--timeout", "0.5"
    )
    assert slow.exit_code == 1 and "查询超过 0.5 秒的时间限制，已中止" in slow.output
    many = cli("sql", "SELECT * FROM range(20)", "--store", store, "--max-rows", "10")
    assert many.exit_code == 1 and "查询结果超过 10 行的行数限制" in many.output
    assert (
        cli("sql", "SELECT * FROM range(10)", "--store", store, "--max-rows", "10").exit_code == 0
    )


def test_query_list_and_every_canned_query(settled):
    _, _, store, _ = settled
    listing = cli("query", "--list", "--store", store)
    names = [
        "budget_use_by_month",
        "payouts_by_company_county",
        "rejects_by_reason_company",
        "revenue_exceeds_cost",
        "village_volume_jumps",
        "waybills_in_several_companies",
    ]
    for name in names:
        assert f"{name}\n    问题：" in listing.output

    def q(name, *params):
        args = ["query", name, "--store", store, "--format", "json"]
        for p in params:
            args += ["--param", p]
        result = cli(*args)
        assert result.exit_code == 0, result.output
        return json.loads(result.output)

    lm = ("league=150700", "month=2025-03")
    assert q("payouts_by_company_county", *lm) == [
        {
            "company": "YTO",
            "county_code": "150702",
            "parcels": 1,
            "gross_yuan": "0.15",
            "subsidy_yuan": "0.15",
        },
        {
            "company": "ZTO",
            "county_code": "150702",
            "parcels": 1,
            "gross_yuan": "0.15",
            "subsidy_yuan": "0.15",
        },
        {
            "company": "ZTO",
            "county_code": "150783",
            "parcels": 1,
            "gross_yuan": "0.10",
            "subsidy_yuan": "0.00",
        },
    ]
    assert q("rejects_by_reason_company", *lm) == [
        {
            "reason_code": "ALREADY_SETTLED",
            "reason": "该运单已在其他月份结算",
            "company": "ZTO",
            "rows": 1,
        },
        {
            "reason_code": "DUPLICATE",
            "reason": "运单号在本次结算中重复",
            "company": "ZTO",
            "rows": 1,
        },
        {
            "reason_code": "MALFORMED",
            "reason": "必填字段为空或格式错误",
            "company": "ZTO",
            "rows": 1,
        },
    ]
    assert [r["waybill_no"] for r in q("revenue_exceeds_cost", *lm)] == ["M2"]
    several = q("waybills_in_several_companies", *lm)
    assert several == [
        {
            "waybill_no": "M3",
            "companies": "YTO, ZTO",
            "rows": 2,
            "paid_to": "YTO",
            "reasons": "DUPLICATE",
        }
    ]
    jumps = q("village_volume_jumps", *lm, "factor=0.5")
    assert [(r["village_code"], r["parcels"], r["earlier_months"]) for r in jumps] == [(V1, 2, 1)]
    budget = q("budget_use_by_month", "league=150700", "year=2025")
    assert [(r["month"], r["paid_yuan"], r["budget_left_yuan"]) for r in budget] == [
        ("2025-02", "0.30", "9.70"),
        ("2025-03", "0.30", "9.40"),
    ]


def test_query_parameter_errors(settled):
    _, _, store, _ = settled
    missing = cli(
        "query", "payouts_by_company_county", "--store", store, "--param", "league=150700"
    )
    assert missing.exit_code == 2 and "缺少参数 month" in missing.output
    unknown = cli(
        "query",
        "payouts_by_company_county",
        "--store",
        store,
        "--param",
        "league=1",
        "--param",
        "month=2025-03",
        "--param",
        "x=1",
    )
    assert unknown.exit_code == 2 and "没有参数 x" in unknown.output
    nosuch = cli("query", "nosuch", "--store", store)
    assert nosuch.exit_code == 2 and "没有名为 nosuch 的预置查询" in nosuch.output
    bad = cli("query", "payouts_by_company_county", "--store", store, "--param", "league")
    assert bad.exit_code == 2 and "应为 key=value" in bad.output


def test_verify_passes_on_a_clean_store(settled):
    _, out, _, _ = settled
    result = cli("verify", "--out", out)
    assert result.exit_code == 0, result.output
    assert "校验通过：2 个有效批次" in result.output


def test_verify_detects_an_edited_value(office):
    _, out, _, _ = office
    path = out / "ledger/league=150700/month=2025-02/part-0.parquet"
    df = pl.read_parquet(path).with_columns(pl.lit(30, dtype=pl.Int32).alias("subsidy_fen"))
    df.write_parquet(path)
    result = cli("verify", "--out", out)
    assert result.exit_code == 1
    assert f"不通过  {path}  [输出文件]  SHA-256 与清单不符（文件被修改）" in result.output
    assert "[合计一致]  明细账补贴合计与清单或结算库不符" in result.output
    assert "sql/audits/05_runs_match_ledger.sql" in result.output


def test_verify_detects_a_deleted_file(office):
    _, out, _, _ = office
    path = out / "units/league=150700/month=2025-03/part-0.parquet"
    path.unlink()
    result = cli("verify", "--out", out)
    assert result.exit_code == 1
    assert f"不通过  {path}  [输出文件]  文件缺失" in result.output


def test_verify_detects_a_deleted_run(office):
    _, out, store, _ = office
    con = duckdb.connect(str(store))
    first = con.execute("SELECT run_id FROM runs ORDER BY finished_at LIMIT 1").fetchall()[0][0]
    con.execute("DELETE FROM runs WHERE run_id = ?", [first])
    con.execute("DELETE FROM journal WHERE entry_id = ?", [first])
    con.close()
    shutil.rmtree(out / "ledger/league=150700/month=2025-02")
    result = cli("verify", "--out", out)
    assert result.exit_code == 1
    assert f"上一条目应为 None，日志记载为 {first}（有条目被删除或篡改）" in result.output


def test_verify_detects_an_edited_journal_and_statement(office):
    _, out, _, _ = office
    entry = sorted((out / "journal").glob("*.json"))[0]
    data = json.loads(entry.read_text(encoding="utf-8"))
    data["totals"]["subsidy_fen"] += 1
    entry.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    statements = out / "statements/league=150700/month=2025-03/statements.json"
    s = json.loads(statements.read_text(encoding="utf-8"))
    s["files"]["ZTO.xlsx"]["subsidy_fen"] += 100
    statements.write_text(json.dumps(s, ensure_ascii=False), encoding="utf-8")
    result = cli("verify", "--out", out)
    assert result.exit_code == 1
    assert "日志文件的 SHA-256 与结算库记录不符（文件被修改）" in result.output
    assert "[结算单合计（SPEC §7.5）]" in result.output


def test_run_refuses_to_publish_when_its_ledger_breaks_an_audit(office, monkeypatch):
    from settlement import engine

    cfg, out, store, run = office
    write_staged = engine.write_staged

    def doubled(con, staging, *args):
        """As if the engine had a bug: the staged ledger pays its first parcel twice."""
        written = write_staged(con, staging, *args)
        path = staging / written[0]["path"]
        con.execute(
            f"COPY (SELECT * FROM read_parquet('{path}') UNION ALL "
            f"(SELECT * FROM read_parquet('{path}') LIMIT 1)) TO '{path}.x' (FORMAT parquet)"
        )
        Path(f"{path}.x").replace(path)
        return written

    monkeypatch.setattr(engine, "write_staged", doubled)
    before = sha(store)
    result = run("2025-04", f"A1,ZTO,2025-04-05 10:00,{V1},12,2.00,0,签名", expect=1)
    assert "发布前审计未通过，未发布任何结果：sql/audits/01_rows_reconcile.sql" in result.output
    assert "批次读取 1 行，但明细账与剔除清单合计 2 行" in result.output
    assert not (out / "ledger/league=150700/month=2025-04").exists()
    assert sha(store) == before


def test_run_refuses_to_publish_past_the_years_budget_in_the_store(office):
    cfg, out, store, run = office
    con = duckdb.connect(str(store))  # as if February had paid more than the year's 10.00 元
    con.execute("UPDATE runs SET subsidy_fen = 1001 WHERE month = '2025-02'")
    con.close()
    before = sha(store)
    result = run("2025-04", f"A1,ZTO,2025-04-05 10:00,{V1},12,2.00,0,签名", expect=1)
    assert "发布前审计未通过，未发布任何结果：sql/audits/04_budget.sql" in result.output
    assert not (out / "ledger/league=150700/month=2025-04").exists()
    assert sha(store) == before


def test_verify_finds_a_forged_ledger_file(office):
    _, out, _, run = office
    # a forged ledger file paying F1 and F2 again in January: paid twice (SPEC §7.7)
    forged = out / "ledger/league=150700/month=2025-01"
    forged.mkdir(parents=True)
    shutil.copy(
        out / "ledger/league=150700/month=2025-02/part-0.parquet", forged / "part-0.parquet"
    )
    result = cli("verify", "--out", out)
    assert result.exit_code == 1
    assert "sql/audits/01_rows_reconcile.sql" in result.output
    assert "同一输入行出现 2 次" in result.output
    # the run publishes: the file is not a current run's ledger, so nothing is paid twice
    run("2025-04", f"A1,ZTO,2025-04-05 10:00,{V1},12,2.00,0,签名")


def test_journal_chain_links_every_run(office):
    _, out, store, run = office
    # a re-run joins the chain too
    run("2025-03", f"M1,ZTO,2025-03-05 10:00,{V1},12,2.00,0,签名", replace=True)
    con = duckdb.connect(str(store), read_only=True)
    runs = con.execute("SELECT run_id, manifest_sha256 FROM runs ORDER BY finished_at").fetchall()
    entries = con.execute("SELECT entry_id, sha256 FROM journal ORDER BY seq").fetchall()
    con.close()
    assert entries == runs and len(runs) == 3
    previous = (None, None)
    for run_id, digest in runs:
        entry = out / "journal" / f"{run_id}.json"
        assert sha(entry) == digest
        data = json.loads(entry.read_text(encoding="utf-8"))
        assert (data["previous_run_id"], data["previous_manifest_sha256"]) == previous
        previous = (run_id, digest)


def test_explain_parcel_and_reject(settled):
    _, out, _, _ = settled
    parcel = cli("explain", "M1", "--out", out)
    assert parcel.exit_code == 0, parcel.output
    text = parcel.output
    assert "运单 M1：已结算（盟市 150700 2025-03" in text
    assert "2 政策版本：T-1（测试政策 第1版）" in text
    assert "3 区域类别：一般地区（default）；距离 12 公里，距离段 [10, ∞)，基础费率 0.15 元" in text
    assert "4 单量：该村本月受理 2 件，单量系数 1" in text
    assert "6 费率 rate_fen = floor(100 × 0.15) = 15 分" in text
    assert "本件 subsidy_fen = 15 分（0.15 元）" in text
    rejected = cli("explain", "BAD", "--out", out)
    assert "原因：MALFORMED 必填字段为空或格式错误" in rejected.output
    assert "第 7 行" in rejected.output  # data row 6, below the header line
    both = cli("explain", "F1", "--out", out)
    assert "运单 F1：已结算（盟市 150700 2025-02" in both.output
    assert "原因：ALREADY_SETTLED" in both.output
    none = cli("explain", "NOPE", "--out", out)
    assert none.exit_code == 2 and "不在任何有效批次" in none.output


def test_auditors_guide_documents_every_column():
    from pathlib import Path

    from settlement.catalog import markdown

    text = (Path(__file__).parent.parent / "docs" / "AUDITORS.md").read_text(encoding="utf-8")
    generated = text.split("<!-- generated from settlement/catalog.py: start -->\n")[1]
    assert generated.split("<!-- generated from settlement/catalog.py: end -->")[0] == markdown()


def test_sql_table_is_for_people(settled):
    _, _, store, _ = settled
    query = (
        "SELECT company, county_code, c.name AS 旗县, COUNT(*) AS parcels, "
        "SUM(subsidy_fen) * 0.01 AS yuan, NULL AS note FROM ledger l "
        "JOIN counties c ON c.code = l.county_code GROUP BY ALL ORDER BY ALL"
    )
    result = cli("sql", query, "--store", store)
    assert result.exit_code == 0, result.output
    assert result.output == (
        "company  county_code  旗县      parcels  yuan  note\n"
        "-------  -----------  --------  -------  ----  ----\n"
        "YTO      150702       海拉尔区        2  0.30  NULL\n"
        "ZTO      150702       海拉尔区        2  0.30  NULL\n"
        "ZTO      150783       扎兰屯市        1  0.00  NULL\n"
        "（共 3 行）\n"
    )
    empty = cli("sql", "SELECT run_id FROM runs WHERE false", "--store", store)
    assert empty.output == "run_id\n------\n（共 0 行）\n"
    plan = cli("sql", "EXPLAIN SELECT COUNT(*) FROM runs", "--store", store)
    assert plan.exit_code == 0
    lines = plan.output.splitlines()
    assert lines[0].split() == ["explain_key", "explain_value"]
    assert lines[2].startswith("physical_plan  ")
    assert lines[-1] == "（共 1 行）"
    assert all(line.startswith(" " * 15) for line in lines[3:-1])  # the plan's lines, aligned


def test_counties_and_townships_have_names(settled):
    _, _, store, _ = settled
    county = cli(
        "sql", "SELECT name FROM counties WHERE code='150702'", "--store", store, "--format", "csv"
    )
    assert (county.exit_code, county.output) == (0, "name\n海拉尔区\n")
    township = cli(
        "sql",
        "SELECT t.name, t.county_code FROM villages v JOIN townships t ON t.code = v.township_code "
        "WHERE v.code = '150702100201'",
        "--store",
        store,
        "--format",
        "csv",
    )
    assert (township.exit_code, township.output) == (0, "name,county_code\n哈克镇,150702\n")


@pytest.mark.parametrize(
    ("param", "message"),
    [
        ("month=2025-3", "参数 month 的值“2025-3”无效，应为月份 YYYY-MM，如 2025-03"),
        ("month=2025-13", "参数 month 的值“2025-13”无效，应为月份 YYYY-MM，如 2025-03"),
        ("league=15070", "参数 league 的值“15070”无效，应为6位盟市代码，如 150700"),
        ("factor=0", "参数 factor 的值“0”无效，应为正数，如 3 或 1.5"),
        ("factor=three", "参数 factor 的值“three”无效，应为正数，如 3 或 1.5"),
    ],
)
def test_query_parameters_are_checked_against_their_kind(settled, param, message):
    _, _, store, _ = settled
    given = {"league": "150700", "month": "2025-03", "factor": "1"}
    key = param.split("=")[0]
    args = ["query", "village_volume_jumps", "--store", store]
    for k, v in given.items():
        args += ["--param", param if k == key else f"{k}={v}"]
    result = cli(*args)
    assert result.exit_code == 2
    assert result.output == f"错误：查询 village_volume_jumps 的{message}\n"


def test_query_year_parameter_and_a_month_with_spaces(settled):
    _, _, store, _ = settled
    year = cli(
        "query",
        "budget_use_by_month",
        "--store",
        store,
        "--param",
        "league=150700",
        "--param",
        "year=25",
    )
    assert year.exit_code == 2
    assert year.output == (
        "错误：查询 budget_use_by_month 的参数 year 的值“25”无效，应为4位年份，如 2025\n"
    )
    spaced = cli(
        "query",
        "payouts_by_company_county",
        "--store",
        store,
        "--param",
        "league=150700",
        "--param",
        "month= 2025-03 ",
        "--format",
        "csv",
    )
    assert spaced.exit_code == 0, spaced.output
    assert spaced.output.splitlines()[0] == "company,county_code,parcels,gross_yuan,subsidy_yuan"
    assert len(spaced.output.splitlines()) == 4


def test_every_canned_query_declares_the_kind_of_each_parameter():
    from settlement.audit import PARAM_KINDS, load_queries

    queries = load_queries()
    assert len(queries) == 6
    for q in queries.values():
        assert set(q.kinds) == set(q.params) and set(q.kinds.values()) <= set(PARAM_KINDS)
        assert all(f"${name}" in q.sql for name in q.params)


def test_a_canned_query_without_a_parameter_kind_is_refused(tmp_path, monkeypatch):
    from settlement import audit

    (tmp_path / "q.sql").write_text("-- question: x\n-- params:   league  盟市代码\nSELECT 1\n")
    monkeypatch.setattr(audit, "QUERIES_DIR", tmp_path)
    result = cli("query", "--list")
    assert result.exit_code == 1
    assert result.output == (
        f"错误：预置查询 {tmp_path / 'q.sql'} 的参数说明“league  盟市代码”应为“名称 (类型) 说明”，"
        "类型为 league, month, year, number 之一\n"
    )


def test_missing_rules_queries_or_audits_say_the_installation_is_incomplete(
    office, tmp_path, monkeypatch
):
    from settlement import audit, rules

    cfg, out, store, _ = office
    gone = tmp_path / "site-packages" / "settlement" / "bundled" / "sql"
    hint = "：安装不完整（结算规则 sql/、默认配置和样例应随程序一起安装），请重新安装 village-courier-settlement\n"
    monkeypatch.setattr(audit, "QUERIES_DIR", gone / "queries")
    listing = cli("query", "--list")
    assert (listing.exit_code, listing.output) == (1, f"错误：找不到 {gone / 'queries'}{hint}")
    monkeypatch.setattr(audit, "AUDITS_DIR", gone / "audits")
    checked = cli("verify", "--out", out)
    assert (checked.exit_code, checked.output) == (1, f"错误：找不到 {gone / 'audits'}{hint}")
    monkeypatch.setattr(rules, "SQL_DIR", gone)
    logs = tmp_path / "apr.csv"
    logs.write_text(HEADER + f"A1,ZTO,2025-04-05 10:00,{V1},12,2.00,0,签名\n", encoding="utf-8")
    args = ["run", "--league", "150700", "--month", "2025-04", "--logs", logs]
    ran = cli(*args, "--config", cfg, "--out", out, "-q")
    assert (ran.exit_code, ran.output) == (1, f"错误：找不到 {gone / '05_types.sql'}{hint}")
    assert not (out / "ledger" / "league=150700" / "month=2025-04").exists()


def test_docs_and_queries_never_divide_fen_into_a_float():
    """AUDITORS.md: 分 are summed as integers and shown as 元 exactly (× 0.01, a DECIMAL); a
    `/ 100` or `/ 100.0` in an example teaches auditors a binary float."""
    import re

    root = Path(__file__).parent.parent
    files = [root / "README.md", *(root / "docs").glob("*.md"), *(root / "sql").rglob("*.sql")]
    found = [
        f"{f.relative_to(root)}: {m.group(0)}"
        for f in files
        for m in re.finditer(r"[^/]/\s*100(\.0*)?\b", f.read_text(encoding="utf-8"))
    ]
    assert found == []

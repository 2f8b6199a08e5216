"""What a second field trial found (a tester working as the three users): statements edited
after they were rendered, the seal's maker-checker and notice dates, where reconcile writes,
the line for a new store, the misdirected hint, formulas in the rejects CSV, DuckDB types in
`settle sql`, and the messages for a mistyped company code or a stray argument."""

from __future__ import annotations

import json

from conftest import V1, V_OTHER_LEAGUE
from test_safety import Desk, p

from settlement.statements import sha256_file

HEADER_LINE = "waybill_no,company\nF1,ZTO\n"


def _statements(desk, month):
    return desk.out / "statements" / "league=150700" / f"month={month}"


def test_a_statement_edited_after_rendering_fails_verify_until_rendered_again(tmp_path):
    desk = Desk(tmp_path)
    desk.run("2025-02", p("F1", "2025-02-05"), p("F2", "2025-02-06", company="YTO"))
    assert desk.cli("verify", "--out", desk.out).exit_code == 0
    folder = _statements(desk, "2025-02")
    manifest = json.loads((folder / "statements.json").read_text(encoding="utf-8"))
    name = next(n for n in manifest["files"] if n.endswith(".html") and "ZTO" in n)
    # an edit that also rewrites the file's entry in statements.json: the files agree with
    # statements.json, but statements.json no longer agrees with the store
    target = folder / name
    target.write_text(target.read_text(encoding="utf-8").replace("0.15", "9.15"), "utf-8")
    manifest["files"][name]["sha256"] = sha256_file(target)
    (folder / "statements.json").write_text(json.dumps(manifest), encoding="utf-8")
    tampered = desk.cli("verify", "--out", desk.out)
    assert tampered.exit_code == 1
    assert (
        "SHA-256 与结算库最后一次记录的不符：结算单或其清单在生成后被改动"
        "（如需重新生成，请用 settle statement）"
    ) in tampered.output
    again = desk.cli(
        "statement",
        "--league",
        "150700",
        "--month",
        "2025-02",
        "--out",
        desk.out,
        "--config",
        desk.cfg,
    )
    assert again.exit_code == 0, again.output
    assert desk.cli("verify", "--out", desk.out).exit_code == 0
    # the store keeps who rendered them and why
    assert desk.sql(
        "SELECT action, json_extract_string(detail, '$.why') FROM events "
        "WHERE action = 'statements'"
    ) == [("statements", "statements")]


def test_a_file_dropped_into_the_statements_folder_fails_verify(tmp_path):
    desk = Desk(tmp_path)
    desk.run("2025-02", p("F1", "2025-02-05"))
    extra = _statements(desk, "2025-02") / "ZTO-修改版.html"
    extra.write_text("<p>应付 100 元</p>", encoding="utf-8")
    result = desk.cli("verify", "--out", desk.out)
    assert result.exit_code == 1
    assert "ZTO-修改版.html" in result.output
    assert "结算单目录中有 statements.json 未列出的文件" in result.output


def test_who_ran_the_month_cannot_seal_it(tmp_path):
    desk = Desk(tmp_path)
    desk.run("2025-02", p("F1", "2025-02-05"), env={"SETTLE_USER": "张三"})
    refused = desk.seal("2025-02", "2025-03-01", "2025-03-07", reviewer="张三")
    assert refused.exit_code == 2
    assert refused.output.strip().startswith(
        "错误：盟市 150700 2025-02 的结算（批次 150700-2025-02-"
    )
    assert refused.output.strip().endswith(
        "是 张三 运行的；按照经办与审核分离的要求，运行结算的人不能审核封存，请由另一人审核并封存"
    )
    assert desk.sql("SELECT COUNT(*) FROM seals") == [(0,)]
    assert desk.seal("2025-02", "2025-03-01", "2025-03-07", reviewer="李四").exit_code == 0


def test_a_notice_that_began_before_the_run_finished_is_sealed_with_a_warning(tmp_path):
    desk = Desk(tmp_path)
    today = {"SETTLE_TODAY": "2026-12-20"}
    desk.run("2025-02", p("F1", "2025-02-05"))
    from settlement.clock import to_local

    # finished_at is recorded in UTC; the date people read is Beijing's
    settled_on = to_local(desk.sql("SELECT finished_at FROM runs")[0][0]).date()
    result = desk.cli(
        "seal",
        *("--league", "150700", "--month", "2025-02", "--store", desk.store),
        *("--config", desk.cfg, "--reviewed-by", "审核员", "--approved-by", "审批人"),
        *("--approval-ref", "文1", "--notice-start", "2025-03-01", "--notice-end", "2026-12-10"),
        env=today,
    )
    assert result.exit_code == 0, result.output
    warning = (
        f"  注意：公示开始日期 2025-03-01 早于本月结算完成的日期 {settled_on}（批次 150700-2025-02-"
    )
    assert warning in result.output
    assert result.output.strip().endswith("请确认公示的是这一批次的结算结果")
    entry = desk.sql("SELECT entry_id FROM journal WHERE kind = 'seal'")[0][0]
    recorded = json.loads((desk.out / "journal" / f"{entry}.json").read_text(encoding="utf-8"))
    assert recorded["warnings"][0].startswith("公示开始日期 2025-03-01 早于本月结算完成的日期")
    # without $SETTLE_USER the reviewer named is who sealed, and who rendered the statements
    assert desk.sql(
        "SELECT action, actor FROM events WHERE action IN ('seal', 'statements') ORDER BY seq"
    ) == [("seal", "审核员"), ("statements", "审核员")]


def test_reconcile_with_a_store_writes_beside_the_months_outputs(tmp_path, monkeypatch):
    desk = Desk(tmp_path)
    desk.run("2025-02", p("F1", "2025-02-05"))
    claim = tmp_path / "claim.csv"
    claim.write_text("运单号,申报金额\nF1,0.15\n", encoding="utf-8")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    result = desk.cli(
        "reconcile",
        *("--league", "150700", "--month", "2025-02", "--company", "ZTO"),
        *("--claim", claim, "--store", desk.store, "--config", desk.cfg),
    )
    assert result.exit_code == 0, result.output
    report = desk.out / "reconciliation" / "league=150700" / "month=2025-02" / "ZTO.xlsx"
    assert report.exists()
    assert not (elsewhere / "out").exists()


def test_a_lowercase_company_code_gets_a_hint(tmp_path):
    desk = Desk(tmp_path)
    desk.run("2025-02", p("F1", "2025-02-05"))
    claim = tmp_path / "claim.csv"
    claim.write_text("运单号\nF1\n", encoding="utf-8")
    result = desk.cli(
        "reconcile",
        *("--league", "150700", "--month", "2025-02", "--company", "zto"),
        *("--claim", claim, "--store", desk.store, "--config", desk.cfg),
    )
    assert (result.exit_code, result.output.strip()) == (
        2,
        "错误：企业编码 zto 未在 companies.toml 中登记（是否为 ZTO？）",
    )
    unknown = desk.cli(
        "statement",
        *("--league", "150700", "--month", "2025-02", "--company", "顺丰"),
        *("--out", desk.out, "--config", desk.cfg),
    )
    assert unknown.output.strip() == "错误：企业编码 顺丰 未在 companies.toml 中登记"


def test_the_first_run_says_it_created_the_store(tmp_path):
    desk = Desk(tmp_path)
    first = desk.run("2025-02", p("F1", "2025-02-05"))
    assert f"  新建结算库 {desk.store}（此前没有结算记录）" in first.output
    second = desk.run("2025-03", p("M1", "2025-03-05"))
    assert "新建结算库" not in second.output


def test_the_hint_names_only_the_reason_most_rows_have(tmp_path):
    desk = Desk(tmp_path)
    # 3 rows of another 盟市, 1 of another month: more than half misdirected, the 盟市 the cause
    refused = desk.run(
        "2025-04",
        *(p(f"W{i}", "2025-04-05", village=V_OTHER_LEAGUE) for i in range(3)),
        p("M1", "2025-03-05"),
        p("A1", "2025-04-05", village=V1),
        expect=2,
    )
    assert "（这些村大多属于盟市 150100）" in refused.output
    assert "签收时间大多在" not in refused.output


def test_the_rejects_csv_cannot_carry_a_formula_into_excel(tmp_path):
    desk = Desk(tmp_path)
    logs = desk.logs("2025-02", p('=HYPERLINK("http://x")', "2025-02-05", km="abc"))
    out = tmp_path / "rejects.csv"
    result = desk.cli(
        "validate",
        *("--league", "150700", "--month", "2025-02", logs, "--config", desk.cfg),
        *("--rejects-out", out),
    )
    assert result.exit_code == 0, result.output
    text = out.read_text(encoding="utf-8-sig")
    assert "'=HYPERLINK(" in text
    assert ",=HYPERLINK(" not in text and not text.startswith("=")


def test_settle_sql_shows_maps_and_empty_lists(tmp_path):
    desk = Desk(tmp_path)
    desk.run("2025-02", p("F1", "2025-02-05"))
    result = desk.cli("sql", "--store", desk.store, "SELECT MAP([1], ['a']) AS m, [] AS l, 7 AS n")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[2] == "{1: 'a'}  []  7"
    # a SUM of BIGINT (a HUGEINT) is still a whole number, not a decimal
    total = desk.cli(
        "sql", "--store", desk.store, "--format", "json", "SELECT SUM(subsidy_fen) AS s FROM ledger"
    )
    assert json.loads(total.output) == [{"s": 15}]


def test_a_stray_argument_is_explained_in_chinese(tmp_path):
    desk = Desk(tmp_path)
    desk.run("2025-02", p("F1", "2025-02-05"))
    result = desk.cli(
        "query", "budget_use_by_month", "--store", desk.store, "league=150700", "year=2025"
    )
    assert result.exit_code == 2
    assert result.output.strip() == (
        "错误：多余的参数：league=150700 year=2025（选项要写成 --名称 值，如 --param month=2025-03）"
        "（用 main query --help 查看用法）"
    )


def test_the_sandbox_reads_the_published_outputs_but_not_the_portals_accounts(tmp_path):
    # an auditor of any 盟市 read every user's password hash with read_blob on
    # <store>.portal.sqlite, and every company's raw uploads under submissions/
    desk = Desk(tmp_path)
    desk.run("2025-02", p("F1", "2025-02-05"))
    accounts = desk.out / "settlement.duckdb.portal.sqlite"
    accounts.write_bytes(b"$argon2id$v=19$secret")
    upload = desk.out / "submissions" / "league=150700" / "month=2025-02" / "ZTO" / "a.csv"
    upload.parent.mkdir(parents=True)
    upload.write_text(HEADER_LINE, encoding="utf-8")
    for query in (
        f"SELECT content FROM read_blob('{accounts}')",
        f"SELECT * FROM read_csv('{upload}')",
        f"SELECT * FROM glob('{desk.out}/*')",
    ):
        result = desk.cli("sql", "--store", desk.store, query)
        assert result.exit_code == 2, query
        assert "Permission Error" in result.output
        assert "secret" not in result.output
    manifests = desk.cli(
        "sql",
        "--store",
        desk.store,
        f"SELECT COUNT(*) AS n FROM read_json('{desk.out}/manifests/*/*.json')",
    )
    assert manifests.exit_code == 0, manifests.output
    assert manifests.output.splitlines()[2].strip() == "1"


def test_a_run_made_from_inside_the_output_folder_reads_each_output_once(tmp_path, monkeypatch):
    # DuckDB looks a relative glob up in every directory of file_search_path: the output folder
    # listed twice (as the store's and as the working directory) read every ledger twice, and a
    # waybill settled before was rejected twice — the audits refused the run
    desk = Desk(tmp_path)
    desk.run("2025-02", p("F1", "2025-02-05"))
    monkeypatch.chdir(desk.out)
    second = desk.run("2025-03", p("F1", "2025-03-05"), p("M1", "2025-03-06"))
    assert "ALREADY_SETTLED" in second.output
    assert desk.sql("SELECT COUNT(*) FROM rejects WHERE reason_code = 'ALREADY_SETTLED'") == [(1,)]
    assert desk.cli("verify", "--out", ".").exit_code == 0


def test_another_stores_outputs_in_the_working_directory_are_never_read(tmp_path, monkeypatch):
    # relative view globs were looked up in the working directory as well: run from a folder
    # holding another store's ledger/, a store's settled_waybills read that store's waybills
    other = Desk(tmp_path / "other")
    other.run("2025-02", p("F1", "2025-02-05"))
    desk = Desk(tmp_path / "mine")
    monkeypatch.chdir(other.out)  # ledger/ of the other store right here
    first = desk.run("2025-03", p("F1", "2025-03-05"))
    assert "ALREADY_SETTLED" not in first.output
    assert desk.sql("SELECT COUNT(*) FROM ledger") == [(1,)]
    assert desk.sql("SELECT COUNT(*) FROM settled_waybills") == [(1,)]

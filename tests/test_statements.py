"""Statements, public notice and claim reconciliation (issue 4): totals equal the ledger to the
fen (SPEC §7.5), untrusted text never becomes a formula or markup, every reconciliation status."""

from __future__ import annotations

import csv
import html
import json
import re
import zipfile

import openpyxl
import polars as pl
import pytest
from click.testing import CliRunner
from conftest import V1, V2, make_config, policy_text

from settlement.cli import main
from settlement.money import rmb_upper

HEADER = "waybill_no,company,delivered_at,village_code,distance_km,cost_yuan,revenue_yuan,proof\n"
PART = "league=150700/month=2025-03"


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture
def settled(tmp_path):
    """A settled month, county scope and a binding budget, with hostile text in the logs."""
    cfg = make_config(tmp_path / "config", policy_text(scope="county", rule="ytd", annual="0.50"))
    logs = tmp_path / "logs.csv"
    rows = [
        f"A1,ZTO,2025-03-05 10:00,{V1},12,2.00,0,签名",
        f"A2,ZTO,2025-03-05 10:00,{V2},12,1.00,0.80,签名",
        f"B1,YTO,2025-03-06 10:00,{V1},12,2.00,0,签名",
        f"B2,YTO,2025-03-06 10:00,{V2},5,2.00,0,签名",
        f'"=HYPERLINK(""http://x"",""y"")",ZTO,2025-03-06 10:00,{V1},abc,2.00,0,签名',
        f"+SUM(1),ZTO,2025-03-40 10:00,{V1},1,2.00,0,签名",
        "-1,YTO,2025-03-06 10:00,150702999999,1,2.00,0,签名",
        f"@cmd,ZTO,2025-03-06 10:00,{V1},1,99,0,签名",
        f"<script>alert(1)</script>,ZTO,2025-02-06 10:00,{V1},1,2.00,0,签名",
        f"X1,=1+1,2025-03-06 10:00,{V1},1,2.00,0,签名",
    ]
    logs.write_text(HEADER + "\n".join(rows) + "\n", encoding="utf-8")
    out = tmp_path / "out"
    result = cli(
        "run",
        "--league",
        "150700",
        "--month",
        "2025-03",
        "--logs",
        logs,
        "--config",
        cfg,
        "--out",
        out,
        "-q",
    )
    assert result.exit_code == 0, result.output
    return cfg, out


def reconcile_cli(cfg, out, claim, company, month="2025-03"):
    """settle reconcile (by default for the settled March)."""
    return cli(
        "reconcile",
        "--league",
        "150700",
        "--month",
        month,
        "--company",
        company,
        "--claim",
        claim,
        "--out",
        out,
        "--config",
        cfg,
    )


def defined_names(path):
    wb = openpyxl.load_workbook(path)
    return {
        name: float(wb.defined_names[name].attr_text.lstrip("="))
        for name in ("TOTAL_SUBSIDY_YUAN", "TOTAL_PARCELS")
    }


def test_statement_files_and_totals_equal_the_ledger(settled):
    _, out = settled
    folder = out / "statements" / PART
    names = sorted(p.name for p in folder.iterdir())
    assert names == [
        "YTO.html",
        "YTO.xlsx",
        "ZTO.html",
        "ZTO.xlsx",
        "public_notice.csv",
        "public_notice.html",
        "statements.json",
        "summary.html",
        "summary.xlsx",
    ]
    ledger = pl.read_parquet(out / "ledger" / PART / "part-0.parquet")
    # ytd 50 分 over county units 150702 (A1 15 + B1 15) and 150783 (A2 15 capped to 20 with B2 10)
    assert ledger["subsidy_fen"].sum() == 50
    for company in ("ZTO", "YTO", None):
        part = ledger if company is None else ledger.filter(pl.col("company") == company)
        stem = company or "summary"
        fen, parcels = int(part["subsidy_fen"].sum()), part.height
        assert defined_names(folder / f"{stem}.xlsx") == {
            "TOTAL_SUBSIDY_YUAN": fen / 100,
            "TOTAL_PARCELS": parcels,
        }
        page = (folder / f"{stem}.html").read_text(encoding="utf-8")
        assert f'<span id="total-subsidy">¥{fen / 100:.2f}</span>' in page
        assert f"人民币{rmb_upper(fen)}" in page
        assert "@page" in page and "<link" not in page and "src=" not in page
    manifest = json.loads((folder / "statements.json").read_text(encoding="utf-8"))
    assert manifest["ledger_subsidy_fen"] == 50
    assert manifest["files"]["summary.xlsx"]["subsidy_fen"] == 50


def test_statement_lines_split_reductions_exactly(settled):
    _, out = settled
    wb = openpyxl.load_workbook(out / "statements" / PART / "summary.xlsx")
    ws = wb["结算单"]
    rows = [[c.value for c in r] for r in ws.iter_rows()]
    header = next(r for r in rows if r[0] == "旗县代码")
    total = next(r for r in rows if r[0] == "合计")
    col = {h: i for i, h in enumerate(header) if h}
    gross, be, bu, pay = (
        total[col[h]] for h in ("基础补贴(元)", "盈亏平衡核减(元)", "预算调减(元)", "应付补贴(元)")
    )
    units = pl.read_parquet(out / "units" / PART / "part-0.parquet")
    assert round(gross * 100) == units["gross_fen"].sum()
    assert round(be * 100) == (units["gross_fen"] - units["after_breakeven_fen"]).sum()
    assert round(bu * 100) == (units["after_breakeven_fen"] - units["subsidy_fen"]).sum()
    assert round(pay * 100) == units["subsidy_fen"].sum() == 50
    for r in rows[rows.index(header) + 1 : rows.index(total)]:
        assert (
            round(
                (
                    r[col["基础补贴(元)"]]
                    - r[col["盈亏平衡核减(元)"]]
                    - r[col["预算调减(元)"]]
                    - r[col["应付补贴(元)"]]
                )
                * 100
            )
            == 0
        )


def test_summary_has_a_native_chart_and_signature_lines(settled):
    _, out = settled
    path = out / "statements" / PART / "summary.xlsx"
    with zipfile.ZipFile(path) as z:
        assert any(n.startswith("xl/charts/chart") for n in z.namelist())
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames == ["结算单", "应付补贴图"]  # the summary lists no rows
    values = [c.value for r in wb["结算单"].iter_rows() for c in r if isinstance(c.value, str)]
    block = next(v for v in values if v.startswith("以上结算结果经核对无误"))
    for label in ("经办人：", "审核人：", "负责人：", "（盖章）", "日期："):
        assert label in block  # one row: a printed page never splits the signatures


def test_untrusted_text_never_becomes_a_formula(settled):
    _, out = settled
    hostile = {'=HYPERLINK("http://x","y")', "+SUM(1)", "-1", "@cmd", "=1+1"}
    for path in (out / "statements" / PART).glob("*.xlsx"):
        with zipfile.ZipFile(path) as z:
            for name in z.namelist():
                if name.startswith("xl/worksheets/"):
                    assert "<f>" not in z.read(name).decode(), (path.name, name)
        wb = openpyxl.load_workbook(path)
        seen = {
            c.value
            for ws in wb.worksheets
            for r in ws.iter_rows()
            for c in r
            if isinstance(c.value, str)
        }
        for ws in wb.worksheets:
            for r in ws.iter_rows():
                for c in r:
                    assert c.data_type != "f", (path.name, c.coordinate, c.value)
        if path.name == "ZTO.xlsx":  # the summary lists no rows: counts by reason only
            assert {'=HYPERLINK("http://x","y")', "+SUM(1)", "@cmd"} <= seen
    assert hostile


def test_html_lists_no_rows_and_escapes_what_it_shows(tmp_path):
    hostile = policy_text().replace("测试政策 第1版", "<script>alert(1)</script> & 'x'")
    cfg = make_config(tmp_path / "config", hostile)
    logs = tmp_path / "logs.csv"
    logs.write_text(
        HEADER + f"A1,ZTO,2025-03-05 10:00,{V1},12,2.00,0,签名\n<b>X</b>,ZTO,bad,{V1},1,2,0,签名\n",
        encoding="utf-8",
    )
    out = tmp_path / "out"
    run = ("run", "--league", "150700", "--month", "2025-03", "--logs", logs, "-q")
    assert cli(*run, "--config", cfg, "--out", out).exit_code == 0
    page = (out / "statements" / PART / "ZTO.html").read_text(encoding="utf-8")
    assert "<script>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &#x27;x&#x27;" in page
    assert "<b>X</b>" not in page and "&lt;b&gt;X&lt;/b&gt;" not in page  # rows are not listed
    assert "剔除行 1 行：见同目录 ZTO.xlsx 的“剔除明细”工作表。" in page


def test_public_notice(settled):
    _, out = settled
    folder = out / "statements" / PART
    rows = list(
        csv.reader((folder / "public_notice.csv").read_text(encoding="utf-8-sig").splitlines())
    )
    ledger = pl.read_parquet(out / "ledger" / PART / "part-0.parquet")
    expected = []
    for c, name in (("YTO", "圆通速递"), ("ZTO", "中通快递")):
        part = ledger.filter(pl.col("company") == c)
        fen = part["subsidy_fen"].sum()
        expected.append(
            [c, name, str(part.height), f"{fen / 100:.2f}", "0.00", "0.00", f"{fen / 100:.2f}"]
        )
    header = ["企业编码", "企业名称", "受理件数", "本月结算(元)", "补充结算调整(元)", "追缴(元)"]
    header.append("合计(元)")
    assert rows == [header, *expected]
    page = (folder / "public_notice.html").read_text(encoding="utf-8")
    assert '<td class="n" id="total-due">0.50</td>' in page
    assert "呼伦贝尔市2025年3月快递进村补贴公示名单" in page
    assert "公示期：&emsp;&emsp;年" in page  # not sealed: the dates are left blank


def test_excel_safe_guards_csv_cells():
    from settlement.statements import excel_safe

    assert [excel_safe(v) for v in ("=1+1", "+1", "-1", "@x", "ZTO", None)] == [
        "'=1+1",
        "'+1",
        "'-1",
        "'@x",
        "ZTO",
        "",
    ]


def test_statement_command_renders_again(settled):
    cfg, out = settled
    folder = out / "statements" / PART
    (folder / "ZTO.html").unlink()
    result = cli(
        "statement",
        "--league",
        "150700",
        "--month",
        "2025-03",
        "--out",
        out,
        "--config",
        cfg,
        "--company",
        "ZTO",
    )
    assert result.exit_code == 0, result.output
    assert (folder / "ZTO.html").exists()
    assert re.search(r"ZTO\.xlsx  应付补贴 0\.\d\d 元", result.output)
    missing = cli(
        "statement", "--league", "150700", "--month", "2025-04", "--out", out, "--config", cfg
    )
    assert missing.exit_code == 2 and "尚未结算" in missing.output
    with open(cfg / "companies.toml", "a", encoding="utf-8") as f:
        f.write('\n[[company]]\ncode = "SF"\nname = "顺丰速运"\n')  # registered, no parcels
    nobody = cli(
        "statement",
        "--league",
        "150700",
        "--month",
        "2025-03",
        "--out",
        out,
        "--config",
        cfg,
        "--company",
        "SF",
    )
    assert nobody.exit_code == 2 and "没有投递记录" in nobody.output


def test_supplement_appears_as_adjustment_in_next_open_month(tmp_path, monkeypatch):
    from settlement import statements

    monkeypatch.setattr(statements, "XLSX_LISTING_MAX_ROWS", 0)  # every detail is "long"
    cfg = make_config(tmp_path / "config")
    out = tmp_path / "out"
    store = out / "settlement.duckdb"

    def logs(name, *rows):
        path = tmp_path / name
        path.write_text(HEADER + "\n".join(rows) + "\n", encoding="utf-8")
        return path

    def run(month, path, *extra):
        r = cli(
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
            *extra,
        )
        assert r.exit_code == 0, r.output

    run("2025-02", logs("feb.csv", f"F1,ZTO,2025-02-05 10:00,{V1},12,2.00,0,签名"))
    run("2025-03", logs("mar.csv", f"M1,ZTO,2025-03-05 10:00,{V1},12,2.00,0,签名"))
    seal = cli(
        "seal",
        "--league",
        "150700",
        "--month",
        "2025-02",
        "--store",
        store,
        "--reviewed-by",
        "a",
        "--notice-start",
        "2025-03-02",
        "--notice-end",
        "2025-03-08",
        "--approved-by",
        "b",
        "--approval-ref",
        "c",
    )
    assert seal.exit_code == 0
    march = ("statement", "--league", "150700", "--month", "2025-03", "--out", out)
    assert cli(*march, "--config", cfg, "--with-detail").exit_code == 0
    detail = (out / "statements" / PART / "ZTO.detail.csv").read_bytes()
    run(
        "2025-02",
        logs("late.csv", f"L1,ZTO,2025-02-25 10:00,{V2},5,2.00,0,签名"),
        "--supplementary",
    )
    page = (out / "statements" / PART / "ZTO.html").read_text(encoding="utf-8")
    assert "补充结算调整" in page
    # March 15 + February's late 10
    assert '本期实付合计：人民币贰角伍分（<span id="total-due">¥0.25</span>）' in page
    # March's ledger did not change: the detail written on request is still there, and listed
    assert (out / "statements" / PART / "ZTO.detail.csv").read_bytes() == detail
    listed = json.loads((out / "statements" / PART / "statements.json").read_text("utf-8"))
    assert "ZTO.detail.csv" in listed["files"]
    assert cli("verify", "--out", out).exit_code == 0


# --------------------------------------------------------------------------- reconciliation


def test_reconcile_every_status(settled, tmp_path):
    cfg, out = settled
    claim = tmp_path / "claim.csv"
    claim.write_text(
        "运单号,申报金额\nA1,0.30\nB1,0.15\nNOPE,0.30\n+SUM(1),0.10\nA1,0.01\n,0.05\nA2,三毛\n",
        encoding="utf-8",
    )
    result = reconcile_cli(cfg, out, claim, "ZTO")
    assert result.exit_code == 0, result.output
    rows = pl.read_parquet(out / "reconciliation" / PART / "ZTO.parquet")
    ledger = pl.read_parquet(out / "ledger" / PART / "part-0.parquet")
    paid = dict(zip(ledger["waybill_no"], ledger["subsidy_fen"], strict=True))
    assert rows.columns == [
        "claim_line",
        "waybill_no",
        "status",
        "reason_code",
        "claimed_text",
        "claimed_fen",
        "paid_fen",
        "difference_fen",
    ]
    assert rows.drop("claimed_text").rows() == [
        (2, "A1", "PAID", None, 30, paid["A1"], 30 - paid["A1"]),
        (3, "B1", "OTHER_COMPANY", None, 15, None, 15),
        (4, "NOPE", "NOT_SUBMITTED", None, 30, None, 30),
        (5, "+SUM(1)", "REJECTED", "MALFORMED", 10, None, 10),  # 2025-03-40 is no date
        (6, "A1", "REPEATED", None, 1, None, 1),  # paid once, on line 2
        (7, None, "NO_WAYBILL", None, 5, None, 5),
        (8, "A2", "BAD_AMOUNT", None, None, paid["A2"], None),
    ]
    assert "PAID            已支付给本企业" in result.output
    assert "  运单号在前面的申报行已出现：第 6 行" in result.output
    assert "  运单号为空：第 7 行" in result.output
    assert "  申报金额不是数字：第 8 行（“三毛”）" in result.output
    wb = openpyxl.load_workbook(out / "reconciliation" / PART / "ZTO.xlsx")
    assert [c.value for c in wb["逐行对账"][1]] == [
        "申报行号",
        "运单号",
        "状态",
        "状态说明",
        "剔除原因代码",
        "剔除原因",
        "申报金额(原文)",
        "申报金额(元)",
        "实付金额(元)",
        "差额(元)",
    ]
    assert [c.value for c in wb["逐行对账"][5]] == [
        5,
        "+SUM(1)",
        "REJECTED",
        "已剔除",
        "MALFORMED",
        "必填字段为空或格式错误",
        "0.10",
        0.1,
        None,
        0.1,
    ]
    assert all(c.data_type != "f" for r in wb["逐行对账"].iter_rows() for c in r)


def test_reconcile_xlsx_claim_without_amounts(settled, tmp_path):
    cfg, out = settled
    import xlsxwriter

    path = tmp_path / "claim.xlsx"
    wb = xlsxwriter.Workbook(str(path))
    ws = wb.add_worksheet()
    ws.write_row(0, 0, ["运单号"])
    ws.write_string(1, 0, "B2")
    wb.close()
    result = reconcile_cli(cfg, out, path, "YTO")
    assert result.exit_code == 0, result.output
    rows = pl.read_parquet(out / "reconciliation" / PART / "YTO.parquet")
    b2 = rows.filter(pl.col("waybill_no") == "B2")
    assert b2.select("claim_line", "status", "claimed_fen", "difference_fen").rows() == [
        (2, "PAID", None, None)
    ]
    assert "申报文件没有申报金额列，不计算差额。" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--company", "XX"], "企业编码 XX 未在 companies.toml 中登记"),
        (["--month", "2025-04"], "尚未结算"),
    ],
)
def test_reconcile_refusals(settled, tmp_path, args, message):
    cfg, out = settled
    claim = tmp_path / "claim.csv"
    claim.write_text("运单号\nA1\n", encoding="utf-8")
    base = {"--month": "2025-03", "--company": "ZTO"}
    base.update(dict(zip(args[::2], args[1::2], strict=True)))
    result = reconcile_cli(cfg, out, claim, base["--company"], base["--month"])
    assert result.exit_code == 2 and message in result.output


def test_reconcile_claim_without_waybill_column(settled, tmp_path):
    cfg, out = settled
    claim = tmp_path / "claim.csv"
    claim.write_text("单号\nA1\n", encoding="utf-8")
    result = reconcile_cli(cfg, out, claim, "ZTO")
    assert result.exit_code == 2
    assert "缺少必需的列 waybill_no（运单号）" in result.output


def test_long_listings_go_to_csv_beside_the_xlsx_on_request(settled, monkeypatch):
    from settlement import statements

    cfg, out = settled
    monkeypatch.setattr(statements, "XLSX_LISTING_MAX_ROWS", 1)
    base = ("statement", "--league", "150700", "--month", "2025-03", "--out", out)
    result = cli(*base, "--config", cfg)
    assert result.exit_code == 0, result.output
    folder = out / "statements" / PART
    assert not list(folder.glob("*.csv.*")) and not list(folder.glob("*.rejects.csv"))
    assert not (folder / "ZTO.detail.csv").exists()  # long listings only on request
    command = "settle statement --league 150700 --month 2025-03"
    note = openpyxl.load_workbook(folder / "ZTO.xlsx")["投递量明细表"]["A2"].value
    assert note == (
        "投递量明细 2 件：未随结算单生成（超过 1 件）；见输出目录下 "
        f"ledger/league=150700/month=2025-03/part-0.parquet；运行 {command} --with-detail "
        f"写入同目录 ZTO.detail.csv，或运行 {command} --company ZTO --detail-csv 文件名.csv 导出。"
    )
    note = openpyxl.load_workbook(folder / "ZTO.xlsx")["剔除明细"]["A2"].value
    assert note == (
        "剔除行 4 行：未随结算单生成（超过 1 行）；见输出目录下 "
        "rejects/league=150700/month=2025-03/part-0.parquet（company = 'ZTO' 的行）；运行 "
        f"{command} --with-detail 写入同目录 ZTO.rejects.csv，或运行 {command} --company ZTO "
        "--rejects-csv 文件名.csv 导出。"
    )
    assert html.escape(note) in (folder / "ZTO.html").read_text("utf-8")  # the footer too
    result = cli(*base, "--config", cfg, "--with-detail")
    assert result.exit_code == 0, result.output
    detail = (folder / "ZTO.detail.csv").read_bytes()
    assert detail.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(detail.decode("utf-8-sig").splitlines()))
    assert rows[0][0] == "运单号" and len(rows) == 1 + 2  # ZTO has A1 and A2
    rejects = list(
        csv.reader((folder / "ZTO.rejects.csv").read_text(encoding="utf-8-sig").splitlines())
    )
    waybills = {r[2] for r in rejects[1:]}
    assert {'\'=HYPERLINK("http://x","y")', "'+SUM(1)", "'@cmd"} <= waybills
    wb = openpyxl.load_workbook(folder / "ZTO.xlsx")
    assert wb["投递量明细表"]["A2"].value == "投递量明细 2 件：见同目录 ZTO.detail.csv。"
    assert wb["剔除明细"]["A2"].value == "剔除行 4 行：见同目录 ZTO.rejects.csv。"
    manifest = json.loads((folder / "statements.json").read_text(encoding="utf-8"))
    assert {"ZTO.detail.csv", "ZTO.rejects.csv"} <= set(manifest["files"])
    assert not (folder / "YTO.rejects.csv").exists()  # YTO's one reject is in its workbook
    assert cli("verify", "--out", out).exit_code == 0


def test_detail_over_excel_limit_is_exported_on_request(settled, monkeypatch, tmp_path):
    from settlement import statements

    cfg, out = settled
    monkeypatch.setattr(statements, "XLSX_LISTING_MAX_ROWS", 0)
    monkeypatch.setattr(statements, "CSV_LISTING_MAX_ROWS", 1)
    base = ("statement", "--league", "150700", "--month", "2025-03", "--out", out)
    result = cli(*base, "--config", cfg)
    assert result.exit_code == 0, result.output
    folder = out / "statements" / PART
    assert not (folder / "ZTO.detail.csv").exists()  # 2 parcels > 1: not written with the run
    assert cli(*base, "--config", cfg, "--with-detail").exit_code == 0
    assert not (folder / "ZTO.detail.csv").exists()  # nor beside the statements: too long
    note = openpyxl.load_workbook(folder / "ZTO.xlsx")["投递量明细表"]["A2"].value
    assert note == (
        "投递量明细 2 件：超过 Excel 单表上限，未随结算单生成；见输出目录下 "
        "ledger/league=150700/month=2025-03/part-0.parquet，或运行 settle statement "
        "--league 150700 --month 2025-03 --company ZTO --detail-csv 文件名.csv 导出。"
    )
    target = tmp_path / "export" / "zto.csv"
    result = cli(*base, "--config", cfg, "--company", "ZTO", "--detail-csv", target)
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"{target}  投递量明细 2 件"
    rows = list(csv.reader(target.read_text(encoding="utf-8-sig").splitlines()))
    assert [r[0] for r in rows] == ["运单号", "A1", "A2"]
    assert cli("verify", "--out", out).exit_code == 0  # exporting changed nothing published


def test_detail_csv_needs_a_company_with_parcels(settled, tmp_path):
    cfg, out = settled
    base = ("statement", "--league", "150700", "--month", "2025-03", "--out", out, "--config", cfg)
    result = cli(*base, "--detail-csv", tmp_path / "x.csv")
    assert result.exit_code == 2
    assert "--detail-csv 需要同时指定 --company" in result.output
    result = cli(*base, "--company", "ZTO", "--with-detail", "--detail-csv", tmp_path / "x.csv")
    assert result.exit_code == 2
    assert "--detail-csv 与 --with-detail 不能同时使用" in result.output
    result = cli(*base, "--company", "SF", "--detail-csv", tmp_path / "x.csv")
    assert result.output.strip() == "错误：企业编码 SF 未在 companies.toml 中登记"
    with open(cfg / "companies.toml", "a", encoding="utf-8") as f:
        f.write('\n[[company]]\ncode = "SF"\nname = "顺丰速运"\n')  # registered, no parcels
    result = cli(*base, "--company", "SF", "--detail-csv", tmp_path / "x.csv")
    assert result.exit_code == 2
    assert "企业 SF 在盟市 150700 2025-03 没有受理的投递" in result.output

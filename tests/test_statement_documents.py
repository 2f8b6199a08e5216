"""The signed statements and the public notice as a clerk reads them (field-trial items 12, 13):
the signed page first (area classes in Chinese, rejects counted by reason, local times), listings
elsewhere with numbers as numbers and within the month's budget, the seal, the 作废 mark, and a
notice that lists everything paid in the month, supplementary adjustments included."""

from __future__ import annotations

import csv
import datetime as dt
import html
import json
import shutil

import duckdb
import openpyxl
import pytest
from click.testing import CliRunner
from conftest import V1, V2, V_BORDER, V_OVERRIDE, make_config, policy_text

from settlement.cli import main
from settlement.clock import local_text
from settlement.config import load_config
from settlement.errors import SettlementError
from settlement.period import Month

HEADER = "waybill_no,company,delivered_at,village_code,distance_km,cost_yuan,revenue_yuan,proof\n"
PART = "league=150700/month=2025-03"
ROWS = [
    f"A1,ZTO,2025-03-05 10:00,{V1},12,2.123456,0,签名",  # default class, 12 km: 15 分
    f"A2,ZTO,2025-03-05 10:00,{V_BORDER},5,2.00,0.5,签名",  # border county: 25 分
    f"A3,ZTO,2025-03-05 10:00,{V_OVERRIDE},3.5,2.00,0,签名",  # border village in 150702: 25 分
    f"B1,YTO,2025-03-06 10:00,{V2},12,2.00,0,签名",  # 15 分
    f"R1,ZTO,2025-03-06 10:00,{V1},abc,2.00,0,签名",  # MALFORMED
    f"R2,ZTO,2025-03-06 10:00,{V1},900,2.00,0,签名",  # BAD_DISTANCE (max 500 km)
    f"R3,XX,2025-03-06 10:00,{V1},1,2.00,0,签名",  # UNKNOWN_COMPANY
]


def cli(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


def run(cfg, out, month, logs, *extra):
    args = ["--league", "150700", "--month", month, "--logs", logs, "--config", cfg]
    result = cli("run", *args, "--out", out, "-q", *extra)
    assert result.exit_code == 0, result.output
    return result


def statement(cfg, out, *extra):
    args = ["--league", "150700", "--month", "2025-03", "--out", out, "--config", cfg]
    return cli("statement", *args, *extra)


def seal(out, month, start, end):
    who = [
        "--reviewed-by",
        "张审核",
        "--approved-by",
        "李审批",
        "--approval-ref",
        "呼邮管〔2025〕12号",
    ]
    when = ["--notice-start", start, "--notice-end", end]
    store = ["--store", out / "settlement.duckdb"]
    result = cli("seal", "--league", "150700", "--month", month, *store, *who, *when)
    assert result.exit_code == 0, result.output


def logs_file(path, *rows):
    path.write_text(HEADER + "\n".join(rows) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def month(tmp_path_factory):
    """March settled from ROWS (read only: tests that render again work on a copy)."""
    root = tmp_path_factory.mktemp("documents")
    cfg = make_config(root / "config")
    out = root / "out"
    run(cfg, out, "2025-03", logs_file(root / "logs.csv", *ROWS))
    return cfg, out


@pytest.fixture
def copy(month, tmp_path):
    """A copy of the settled month that a test may render again."""
    cfg, out = month
    shutil.copytree(out, tmp_path / "out")
    return cfg, tmp_path / "out"


def cells(path, sheet="结算单") -> list[list]:
    ws = openpyxl.load_workbook(path)[sheet]
    return [[c.value for c in r] for r in ws.iter_rows()]


def texts(path) -> list[str]:
    wb = openpyxl.load_workbook(path)
    return [c.value for ws in wb for r in ws.iter_rows() for c in r if isinstance(c.value, str)]


# --------------------------------------------------------------------------- the signed page


def test_area_classes_in_chinese_with_their_code(month):
    _, out = month
    folder = out / "statements" / PART
    rows = cells(folder / "summary.xlsx")
    header = rows.index(next(r for r in rows if r[0] == "旗县代码"))
    assert rows[header][2] == "服务区域类别"
    classes = {r[0]: r[2] for r in rows[header + 1 :] if r[0] and r[0].isdigit()}
    assert classes == {
        "150702": "边境旗市（border）、一般地区（default）",  # one parcel each: class code order
        "150727": "边境旗市（border）",
        "150783": "一般地区（default）",
    }
    page = (folder / "summary.html").read_text(encoding="utf-8")
    assert "<td>边境旗市（border）、一般地区（default）</td>" in page


def test_every_class_of_the_shipped_policies_has_a_chinese_name(shipped):
    from settlement.statements import AREA_CLASS_NAMES, area_class_label

    used = {a.name for p in shipped.policies.values() for v in p.versions for a in v.areas}
    assert used | {"default"} <= set(AREA_CLASS_NAMES)
    assert area_class_label("pastoral") == "牧区（pastoral）"
    assert area_class_label("mountain") == "山区丘陵（mountain）"
    assert area_class_label("sandy") == "sandy"  # a class no shipped policy uses: its code


def test_rejects_are_counted_by_reason_on_the_signed_sheet(month):
    _, out = month
    folder = out / "statements" / PART
    flat = [v for r in cells(folder / "ZTO.xlsx") for v in r]

    def count(label):  # the first value right of a (merged) label
        return next(v for v in flat[flat.index(label) + 1 :] if v is not None)

    assert count("格式错误（MALFORMED）") == 1
    assert count("距离异常（BAD_DISTANCE）") == 1
    assert next(v for v in flat[flat.index("合计", flat.index("剔除原因")) + 1 :] if v) == 2
    page = (folder / "ZTO.html").read_text(encoding="utf-8")
    reasons = page[page.index('<table class="lines" id="reasons">') :]
    reasons = reasons[: reasons.index("</table>")]
    assert "<small>MALFORMED</small>" in reasons and "<small>BAD_DISTANCE</small>" in reasons
    assert '<td class="n"><b>2</b></td>' in reasons
    assert "R1" not in page and "R2" not in page  # no listing in the printed statement
    summary = cells(folder / "summary.xlsx")
    other = next(r for r in summary if r[0] == "未登记企业编码（1 个）")
    assert other[2:4] == [0, 1]  # 受理 0, 剔除 1 (XX)


def test_signed_sheet_first_then_listings_and_print_setup(month):
    _, out = month
    folder = out / "statements" / PART
    wb = openpyxl.load_workbook(folder / "ZTO.xlsx")
    assert wb.sheetnames == ["结算单", "剔除明细", "投递量明细表"]
    ws = wb["结算单"]
    assert ws.page_setup.orientation == "landscape" and ws.page_setup.paperSize == 9
    assert ws.sheet_properties.pageSetUpPr.fitToPage
    assert fit_to(ws) == (1, 1)  # short: on one page, signatures with the totals
    assert ws.print_area == "'结算单'!$A$1:$J$" + str(ws.max_row)
    values = texts(folder / "ZTO.xlsx")
    assert "剔除行 2 行：见本工作簿“剔除明细”工作表。" in values
    assert "投递量明细 3 件：见本工作簿“投递量明细表”工作表。" in values
    page = (folder / "ZTO.html").read_text(encoding="utf-8")
    assert page.index("经办人：") < page.index('<div class="notes" id="where">')
    assert "剔除行 2 行：见同目录 ZTO.xlsx 的“剔除明细”工作表。" in page
    assert "投递量明细 3 件：见同目录 ZTO.xlsx 的“投递量明细表”工作表。" in page
    assert "@page { size: A4 landscape;" in page


def fit_to(ws) -> tuple[int, int]:
    """(pages wide, pages tall) of a sheet's fit-to-page setting; 1 when not written (OOXML's
    default), 0 for as many as needed."""
    values = (ws.page_setup.fitToWidth, ws.page_setup.fitToHeight)
    return tuple(1 if v is None else int(v) for v in values)


def test_times_shown_in_asia_shanghai(month):
    _, out = month
    folder = out / "statements" / PART
    manifest = json.loads((out / "manifests/league=150700/month=2025-03.json").read_text("utf-8"))
    shown = local_text(manifest["finished_at"])
    assert shown.endswith(" +08:00")
    for stem in ("ZTO", "YTO", "summary"):
        page = (folder / f"{stem}.html").read_text(encoding="utf-8")
        assert f"<th>生成时间：</th><td>{shown}</td>" in page
        assert "UTC" not in page
        values = texts(folder / f"{stem}.xlsx")
        assert shown in values and not any("UTC" in v for v in values)


def test_detail_sheet_numbers_are_numbers(month):
    _, out = month
    path = out / "statements" / PART / "ZTO.xlsx"
    ws = openpyxl.load_workbook(path)["投递量明细表"]
    header = [c.value for c in ws[1]]
    rows = {r[0].value: dict(zip(header, r, strict=True)) for r in ws.iter_rows(min_row=2)}
    a1 = rows["A1"]
    assert a1["派送成本(元)"].value == 2.123456 and a1["派送成本(元)"].number_format == "0.00####"
    assert a1["派送距离(公里)"].value == 12 and a1["派送距离(公里)"].number_format == "0.0#####"
    assert rows["A2"]["派费收入(元)"].value == 0.5
    assert rows["A3"]["派送距离(公里)"].value == 3.5
    assert a1["签收时间"].value == dt.datetime(2025, 3, 5, 10, 0)
    assert a1["区域类别"].value == "一般地区（default）"
    assert rows["A3"]["区域类别"].value == "边境旗市（border）"
    for name, fen in (("A1", 15), ("A2", 25), ("A3", 25)):
        assert rows[name]["费率(分)"].value == fen and rows[name]["补贴(分)"].value == fen
        assert rows[name]["单量(件/月)"].value == 1
    for r in rows.values():
        for key in ("派送距离(公里)", "派送成本(元)", "派费收入(元)", "单量(件/月)", "补贴(分)"):
            assert r[key].data_type == "n", (key, r[key].value)
    rejects = openpyxl.load_workbook(path)["剔除明细"]
    first = [c.value for c in rejects[2]]
    # 行号 as the file shows it: R1 is on line 6 (the header on line 1)
    assert first[0].endswith("logs.csv") and first[1:5] == [6, "R1", "ZTO", "MALFORMED"]
    assert rejects["B2"].data_type == "n"


# --------------------------------------------------------------------------- listings and size


def test_summary_never_lists_rejected_rows(month):
    _, out = month
    folder = out / "statements" / PART
    names = ["YTO.html", "YTO.xlsx", "ZTO.html", "ZTO.xlsx", "public_notice.csv"]
    names += ["public_notice.html", "statements.json", "summary.html", "summary.xlsx"]
    assert sorted(p.name for p in folder.iterdir()) == names
    assert openpyxl.load_workbook(folder / "summary.xlsx").sheetnames == ["结算单", "应付补贴图"]
    note = (
        "剔除行 3 行（按原因统计见上表）：各企业的逐行明细见其结算单；全部剔除行（含未登记企业）"
        "见输出目录下 rejects/league=150700/month=2025-03/part-0.parquet，或运行 settle statement "
        "--league 150700 --month 2025-03 --rejects-csv 文件名.csv 导出。"
    )
    assert note in texts(folder / "summary.xlsx")
    page = (folder / "summary.html").read_text(encoding="utf-8")
    assert note in page and "R3" not in page


def test_listings_in_workbooks_stay_within_the_months_budget(copy, monkeypatch):
    from settlement import statements

    cfg, out = copy
    monkeypatch.setattr(statements, "XLSX_LISTING_MAX_ROWS", 3)  # 7 input rows: budget 3
    assert statement(cfg, out).exit_code == 0
    folder = out / "statements" / PART
    zto, yto = (openpyxl.load_workbook(folder / f"{c}.xlsx") for c in ("ZTO", "YTO"))
    # rejects first (ZTO's 2), then the shorter parcel detail (YTO's 1): 3 rows in all
    assert [c.value for c in zto["剔除明细"]["C"]] == ["运单号", "R1", "R2"]
    assert [c.value for c in yto["投递量明细表"]["A"]] == ["运单号", "B1"]
    assert zto["投递量明细表"]["A2"].value == (
        "投递量明细 3 件：未随结算单生成（本月各结算单所附明细合计不超过 3 行，剔除明细优先、"
        "行数少的优先）；见输出目录下 ledger/league=150700/month=2025-03/part-0.parquet；运行 "
        "settle statement --league 150700 --month 2025-03 --with-detail 写入同目录 "
        "ZTO.detail.csv，或运行 settle statement --league 150700 --month 2025-03 --company ZTO "
        "--detail-csv 文件名.csv 导出。"
    )
    # one company rendered again gets the same share of the budget
    assert statement(cfg, out, "--company", "ZTO").exit_code == 0
    zto = openpyxl.load_workbook(folder / "ZTO.xlsx")
    assert [c.value for c in zto["剔除明细"]["C"]] == ["运单号", "R1", "R2"]
    assert zto["投递量明细表"]["A2"].value.startswith("投递量明细 3 件：未随结算单生成")


def test_rejects_csv_export(month, tmp_path):
    cfg, out = month
    target = tmp_path / "all.csv"
    result = statement(cfg, out, "--rejects-csv", target)
    assert result.exit_code == 0, result.output
    assert result.output.strip() == f"{target}  剔除明细 3 行"
    rows = list(csv.reader(target.read_text(encoding="utf-8-sig").splitlines()))
    assert rows[0] == ["文件", "行号", "运单号", "企业", "原因代码", "原因", "说明"]
    assert [(r[2], r[4]) for r in rows[1:]] == [
        ("R1", "MALFORMED"),
        ("R2", "BAD_DISTANCE"),
        ("R3", "UNKNOWN_COMPANY"),
    ]
    result = statement(cfg, out, "--company", "ZTO", "--rejects-csv", tmp_path / "zto.csv")
    assert result.exit_code == 0 and result.output.strip().endswith("剔除明细 2 行")
    result = statement(cfg, out, "--company", "YTO", "--rejects-csv", tmp_path / "yto.csv")
    assert result.exit_code == 2
    assert "企业 YTO 在盟市 150700 2025-03 没有剔除行" in result.output
    both = statement(cfg, out, "--detail-csv", tmp_path / "a.csv", "--rejects-csv", target)
    assert both.exit_code == 2 and "--detail-csv 与 --rejects-csv 不能同时使用" in both.output
    also = statement(cfg, out, "--with-detail", "--rejects-csv", target)
    assert also.exit_code == 2 and "--rejects-csv 与 --with-detail 不能同时使用" in also.output


# --------------------------------------------------------------------------- seal and void


def test_sealed_month_shows_the_seal_everywhere(copy, monkeypatch):
    cfg, out = copy
    monkeypatch.setenv("SETTLE_TODAY", "2025-04-20")
    folder = out / "statements" / PART
    assert "审核与审批" not in (folder / "ZTO.html").read_text(encoding="utf-8")
    seal(out, "2025-03", "2025-04-02", "2025-04-08")
    assert statement(cfg, out).exit_code == 0
    con = duckdb.connect(str(out / "settlement.duckdb"), read_only=True)
    sealed_at = con.execute("SELECT sealed_at FROM seals").fetchall()[0][0]
    con.close()
    when = local_text(sealed_at)
    expected = [
        ("审核人", "张审核"),
        ("公示期", "2025-04-02 至 2025-04-08"),
        ("审批人", "李审批"),
        ("审批文号", "呼邮管〔2025〕12号"),
        ("封存时间", when),
    ]
    table = "".join(f"<th>{k}</th><td>{html.escape(v)}</td>" for k, v in expected)
    for stem in ("ZTO", "YTO", "summary", "public_notice"):
        page = (folder / f"{stem}.html").read_text(encoding="utf-8")
        assert f'<table class="seal" id="seal"><tr>{table}</tr></table>' in page, stem
    for stem in ("ZTO", "YTO", "summary"):
        flat = [v for r in cells(folder / f"{stem}.xlsx") for v in r]
        for label, value in expected:
            assert flat[flat.index(label) + 1] == value, (stem, label)
    notice = (folder / "public_notice.html").read_text(encoding="utf-8")
    assert "公示期：2025年4月2日至2025年4月8日。" in notice
    manifest = json.loads((folder / "statements.json").read_text(encoding="utf-8"))
    assert manifest["seal"]["approval_ref"] == "呼邮管〔2025〕12号"
    assert cli("verify", "--out", out).exit_code == 0


VOID = {
    "voided_at": dt.datetime(2025, 4, 1, 2, 30, tzinfo=dt.UTC),
    "voided_by": "王经办",
    "reason": "误用了二月的日志文件",
}


def test_voided_statements_carry_the_mark_everywhere(copy):
    from settlement.statements import render

    cfg, out = copy
    manifest = json.loads((out / "manifests/league=150700/month=2025-03.json").read_text("utf-8"))
    voided = {"run_id": manifest["run_id"], **VOID}
    render(out, load_config(cfg), "150700", Month.parse("2025-03"), voided=voided)
    folder = out / "statements" / PART
    when = "作废时间 2025-04-01 10:30:00 +08:00；作废人 王经办；原因：误用了二月的日志文件"
    for stem in ("ZTO", "YTO", "summary"):
        page = (folder / f"{stem}.html").read_text(encoding="utf-8")
        assert "<title>【作废】呼伦贝尔市快递进村补贴" in page and "<h1>【作废】" in page
        assert f'<div class="void-banner" id="void-banner">本结算单已作废 — {when}</div>' in page
        assert '<div class="void-mark" aria-hidden="true">作废</div>' in page
        assert ".void-mark { position: fixed;" in page  # on every printed page
        wb = openpyxl.load_workbook(folder / f"{stem}.xlsx")
        for ws in wb:
            assert ws["A1"].value == f"本结算单已作废 — {when}", (stem, ws.title)
            assert ws["A1"].fill.fgColor.rgb == "FFC00000", (stem, ws.title)
            assert "作废" in ws.oddHeader.center.text, (stem, ws.title)
        assert wb["结算单"]["A2"].value.startswith("【作废】")
    zto = openpyxl.load_workbook(folder / "ZTO.xlsx")
    assert [c.value for c in zto["剔除明细"][2]][:3] == ["文件", "行号", "运单号"]  # below it
    notice = (folder / "public_notice.html").read_text(encoding="utf-8")
    assert f"本公示名单已作废 — {when}" in notice and "<h1>【作废】" in notice
    saved = json.loads((folder / "statements.json").read_text(encoding="utf-8"))
    assert saved["voided"]["voided_by"] == "王经办"
    # rendered again without the mark, it is gone
    render(out, load_config(cfg), "150700", Month.parse("2025-03"))
    assert "作废" not in (folder / "ZTO.html").read_text(encoding="utf-8")
    assert "voided" not in json.loads((folder / "statements.json").read_text("utf-8"))


def test_void_of_another_run_is_refused(copy):
    from settlement.statements import render

    cfg, out = copy
    with pytest.raises(SettlementError, match="作废的批次 OTHER 不是盟市 150700 2025-03"):
        render(
            out,
            load_config(cfg),
            "150700",
            Month.parse("2025-03"),
            voided={"run_id": "OTHER", **VOID},
        )


# --------------------------------------------------------------------------- the public notice


def test_notice_lists_the_months_adjustments(tmp_path, monkeypatch):
    monkeypatch.setenv("SETTLE_TODAY", "2025-04-20")
    cfg = make_config(tmp_path / "config", policy_text())
    out = tmp_path / "out"
    run(
        cfg,
        out,
        "2025-02",
        logs_file(tmp_path / "feb.csv", f"F1,ZTO,2025-02-05 10:00,{V1},12,2,0,签名"),
    )
    run(
        cfg,
        out,
        "2025-03",
        logs_file(tmp_path / "mar.csv", f"M1,ZTO,2025-03-05 10:00,{V1},12,2,0,签名"),
    )
    seal(out, "2025-02", "2025-03-02", "2025-03-08")
    late = logs_file(
        tmp_path / "late.csv",
        f"L1,ZTO,2025-02-25 10:00,{V1},5,2,0,签名",  # 10 分, ZTO
        f"L2,YTO,2025-02-26 10:00,{V2},12,2,0,签名",  # 15 分, YTO: nothing else in March
    )
    run(cfg, out, "2025-02", late, "--supplementary")  # paid in March: its statements again
    folder = out / "statements" / PART
    rows = list(
        csv.reader((folder / "public_notice.csv").read_text(encoding="utf-8-sig").splitlines())
    )
    assert rows == [
        [
            "企业编码",
            "企业名称",
            "受理件数",
            "本月结算(元)",
            "补充结算调整(元)",
            "追缴(元)",
            "合计(元)",
        ],
        ["YTO", "圆通速递", "0", "0.00", "0.15", "0.00", "0.15"],
        ["ZTO", "中通快递", "1", "0.15", "0.10", "0.00", "0.25"],
    ]
    page = (folder / "public_notice.html").read_text(encoding="utf-8")
    assert '<td class="n" id="total-subsidy">0.15</td>' in page
    assert '<td class="n" id="total-due">0.40</td>' in page
    manifest = json.loads((folder / "statements.json").read_text(encoding="utf-8"))
    companies = {n: e for n, e in manifest["files"].items() if n.endswith(".xlsx") and e["company"]}
    assert {n: (e["subsidy_fen"], e["due_fen"]) for n, e in companies.items()} == {
        "YTO.xlsx": (0, 15),
        "ZTO.xlsx": (15, 25),
    }
    assert sum(e["due_fen"] for e in companies.values()) == 40
    assert manifest["files"]["public_notice.csv"]["due_fen"] == 40
    assert manifest["files"]["public_notice.csv"]["subsidy_fen"] == 15  # verify's meaning
    yto = (folder / "YTO.html").read_text(encoding="utf-8")
    assert '本期实付合计：人民币壹角伍分（<span id="total-due">¥0.15</span>）' in yto
    assert '<tr><td colspan="10">本月无投递记录（本期只有补充结算调整）</td></tr>' in yto
    assert "本月无投递记录（本期只有补充结算调整）" in texts(folder / "YTO.xlsx")
    summary = cells(folder / "summary.xlsx")
    yto_line = next(r for r in summary if r[0] == "圆通速递（YTO）")
    assert yto_line[2:] == [0, 0, 0, 0, 0, 0, 0.15, 0.15]  # 受理, 剔除, …, 调整, 本期实付
    assert cli("verify", "--out", out).exit_code == 0


def test_signed_sheet_with_adjustments_and_seal_prints_on_one_page(tmp_path, monkeypatch):
    """A sealed month with a supplementary adjustment: header, 旗县, rejects, adjustments, seal
    and signatures scaled onto one A4 page (before, the signatures fell onto page 2)."""
    monkeypatch.setenv("SETTLE_TODAY", "2025-05-20")
    cfg = make_config(tmp_path / "config", policy_text())
    out = tmp_path / "out"
    feb = logs_file(tmp_path / "feb.csv", f"F1,ZTO,2025-02-05 10:00,{V1},12,2,0,签名")
    run(cfg, out, "2025-02", feb)
    mar = logs_file(
        tmp_path / "mar.csv",
        f"M1,ZTO,2025-03-05 10:00,{V1},12,2,0,签名",
        f"M2,ZTO,2025-03-06 10:00,{V2},5,2,0,签名",
        f"M3,ZTO,2025-03-07 10:00,{V1},abc,2,0,签名",  # MALFORMED
    )
    run(cfg, out, "2025-03", mar)
    seal(out, "2025-02", "2025-03-02", "2025-03-08")
    late = logs_file(tmp_path / "late.csv", f"L1,ZTO,2025-02-25 10:00,{V1},5,2,0,签名")
    run(cfg, out, "2025-02", late, "--supplementary")  # an adjustment line in March
    seal(out, "2025-03", "2025-04-02", "2025-04-08")
    path = out / "statements" / PART / "ZTO.xlsx"
    ws = openpyxl.load_workbook(path)["结算单"]
    assert "三、补充结算调整（已封存月份迟到投递，计入本期）" in [c for r in cells(path) for c in r]
    assert ws.sheet_properties.pageSetUpPr.fitToPage
    assert fit_to(ws) == (1, 1)
    assert ws.row_breaks.brk == []


def test_a_signed_sheet_over_the_budget_starts_its_closing_part_on_a_new_page(tmp_path):
    import xlsxwriter

    from settlement.statements import xlsx

    def breaks(rows: int, second: int, closing: int) -> tuple:
        path = tmp_path / f"{rows}-{second}.xlsx"
        wb = xlsxwriter.Workbook(str(path))
        ws = wb.add_worksheet("结算单")
        for r in range(rows):
            ws.write_number(r, 0, r)
        ws.fit_to_pages(1, 0)
        xlsx._keep_signatures_with_totals(ws, rows, second, closing)
        wb.close()
        ws = openpyxl.load_workbook(path)["结算单"]
        return fit_to(ws)[1], [b.id for b in ws.row_breaks.brk]

    assert breaks(40, 20, 30) == (1, [])  # 800 px: scaled onto one page
    assert breaks(120, 90, 110) == (0, [90])  # the sections after the 旗县 table: a new page
    assert breaks(120, 20, 110) == (0, [110])  # long sections: the closing part alone

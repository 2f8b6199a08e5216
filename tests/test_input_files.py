"""Input files as clerks really hand them over (field-trial issue, item 11): a header written
twice, the same file twice, a README beside the logs, workbooks with a title row or the data on
the second sheet, company codes in the wrong case, and rows named as Excel numbers them."""

from __future__ import annotations

import csv as csvlib
import io
import json

import openpyxl
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import xlsxwriter
from click.testing import CliRunner
from conftest import V1, V2, make_config, policy_text, row, settle_rows

from settlement.cli import main
from settlement.errors import InputFileError
from settlement.ingest import LogStream, read_logs

HEADER = "waybill_no,company,delivered_at,village_code,distance_km,cost_yuan,revenue_yuan,proof\n"
ZH = [
    "运单号",
    "快递企业",
    "签收时间",
    "嘎查村代码",
    "派送距离",
    "派送成本",
    "派费收入",
    "签收方式",
]
GOOD = f"A1,ZTO,2025-03-05 10:00,{V1},12,2.00,0,签名\n"
ARGS = ("--league", "150700", "--month", "2025-03")


def invoke(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


@pytest.fixture
def cfg_dir(tmp_path):
    return make_config(tmp_path / "config", policy_text())


def log(path, *lines, header=HEADER):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(header + "".join(line + "\n" for line in lines), encoding="utf-8")
    return path


# --------------------------------------------------------------------------- a header twice


def _twice_xlsx(path):
    wb = xlsxwriter.Workbook(str(path))
    ws = wb.add_worksheet()
    ws.write_row(0, 0, [*ZH[:6], "派送成本"])
    ws.write_row(1, 0, ["A1", "ZTO", "2025-03-05 10:00", V1, 12, 2, 3])
    wb.close()


def _twice_parquet(path):
    names = [*HEADER.strip().split(",")[:6], "cost_yuan"]
    values = ["A1", "ZTO", "2025-03-05 10:00", V1, "12", "2.00", "3.00"]
    pq.write_table(pa.table([pa.array([v]) for v in values], names=names), path)


@pytest.mark.parametrize(
    ("name", "write", "column"),
    [
        (  # streamed UTF-8: Polars would call the second one cost_yuan_duplicated_0
            "utf8.csv",
            lambda p: p.write_text(HEADER.strip() + ",cost_yuan\n" + GOOD.strip() + ",3\n"),
            "cost_yuan",
        ),
        (  # read whole (GBK)
            "gbk.csv",
            lambda p: p.write_bytes(
                (",".join(ZH) + ",派送成本\n" + GOOD.strip() + ",3\n").encode("gbk")
            ),
            "派送成本",
        ),
        ("book.xlsx", _twice_xlsx, "派送成本"),  # fastexcel would call it 派送成本_1
        ("table.parquet", _twice_parquet, "cost_yuan"),
    ],
)
def test_a_header_written_twice_is_refused(tmp_path, name, write, column):
    path = tmp_path / name
    write(path)
    with pytest.raises(InputFileError) as err:
        read_logs([path])
    assert err.value.path == str(path)
    assert err.value.problem.startswith(f"列“{column}”出现了两次，无法确定使用哪一列")


def test_an_extra_column_written_twice_is_still_ignored(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text(HEADER.strip() + ",备注,备注\n" + GOOD.strip() + ",a,b\n", encoding="utf-8")
    df, _ = read_logs([path])
    assert df.select("waybill_no", "cost_yuan").rows() == [("A1", "2.00")]


# --------------------------------------------------------------------------- the same file twice


def test_a_copy_of_a_log_in_the_folder_refuses_the_run(tmp_path, cfg_dir):
    zto = log(tmp_path / "logs" / "zto.csv", GOOD.strip())
    copy = tmp_path / "logs" / "zto - 副本.csv"
    copy.write_bytes(zto.read_bytes())
    out = tmp_path / "out"
    result = invoke("run", *ARGS, "--logs", tmp_path / "logs", "--config", cfg_dir, "--out", out)
    assert result.exit_code == 2
    assert result.output.startswith(f"错误：无法读取输入文件 {zto}: 与 {copy} 的内容完全相同")
    assert "同一份日志提交了两次" in result.output
    assert not out.exists()  # nothing written, not even the store
    result = invoke("validate", zto, copy, *ARGS, "--config", cfg_dir)
    assert result.exit_code == 2 and "内容完全相同" in result.output


def test_files_of_one_size_with_other_content_are_read(tmp_path, monkeypatch):
    from settlement import ingest

    monkeypatch.setattr(ingest, "PREFIX_BYTES", 16)  # the first bytes agree: the whole is read
    a = log(tmp_path / "a.csv", GOOD.strip())
    b = log(tmp_path / "b.csv", GOOD.strip().replace("A1", "B1"))
    assert a.stat().st_size == b.stat().st_size
    df, infos = read_logs([a, b])
    assert df["waybill_no"].to_list() == ["A1", "B1"] and len(infos) == 2


# --------------------------------------------------------------------------- what a folder holds


def test_a_readme_in_the_logs_folder_is_skipped_and_reported(tmp_path, cfg_dir):
    logs = tmp_path / "logs"
    log(logs / "zto.csv", GOOD.strip())
    (logs / "README.txt").write_text("三月的日志，中通一个文件。\n", encoding="utf-8")
    (logs / "notes.docx").write_bytes(b"PK\x03\x04")
    out = tmp_path / "out"
    result = invoke("run", *ARGS, "--logs", logs, "--config", cfg_dir, "--out", out)
    assert result.exit_code == 0, result.output
    readme = f"跳过 {logs / 'README.txt'}（目录中的 .txt 文件不读取；如确是日志，请单独指定该文件）"
    assert f"[settle] {readme}" in result.output  # stderr progress (the runner mixes it in)
    assert f"[settle] 跳过 {logs / 'notes.docx'}（不是 .csv、.parquet 或 .xlsx 文件）" in (
        result.output
    )
    manifest = json.loads((out / "manifests" / "league=150700" / "month=2025-03.json").read_text())
    assert [f["path"] for f in manifest["inputs"]] == [str(logs / "zto.csv")]
    assert manifest["skipped_files"] == [
        {"path": str(logs / "README.txt"), "reason": readme.split("（")[1].rstrip("）")},
        {"path": str(logs / "notes.docx"), "reason": "不是 .csv、.parquet 或 .xlsx 文件"},
    ]
    result = invoke("validate", logs, *ARGS, "--config", cfg_dir)
    assert result.exit_code == 0, result.output
    assert f"  {readme}" in result.output.splitlines()


def test_a_txt_log_named_itself_is_read(tmp_path):
    path = log(tmp_path / "zto.txt", GOOD.strip())
    df, _ = read_logs([path])
    assert df["waybill_no"].to_list() == ["A1"]


def test_a_folder_with_no_logs_names_what_it_held(tmp_path):
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "README.txt").write_text("x", encoding="utf-8")
    with pytest.raises(InputFileError) as err:
        read_logs([tmp_path / "logs"])
    assert err.value.problem == (
        f"目录中没有 CSV、Parquet 或 XLSX 文件（其中只有 {tmp_path / 'logs' / 'README.txt'} "
        "等 1 个其他文件）"
    )


# --------------------------------------------------------------------------- workbooks


def workbook(path, *, title_rows=(), sheet_before=False, rows=()):
    """A workbook as clerks make them: title rows above the header, maybe a sheet before."""
    wb = xlsxwriter.Workbook(str(path))
    if sheet_before:
        wb.add_worksheet("说明").write(0, 0, "本工作簿第二页为三月投递明细")
    ws = wb.add_worksheet("三月明细")
    r = 0
    for text in title_rows:
        if text is not None:
            ws.write(r, 0, text)
        r += 1
    ws.write_row(r, 0, ZH)
    for values in rows:
        r += 1
        ws.write_row(r, 0, values)
    wb.close()
    return path


ROWS = [
    ["X1", "ZTO", "2025-03-05 10:00", V1, 12, 2, 0, "签名"],
    ["X2", "ZTO", "2025-03-05 10:00", V1, "十二", 2, 0, "签名"],
    ["X1", "ZTO", "2025-03-06 10:00", V2, 5, 2, 0, "签名"],
]


def test_a_title_row_above_the_header_on_the_second_sheet(tmp_path, cfg_dir):
    path = workbook(
        tmp_path / "zto.xlsx",
        title_rows=["中通快递 2025年3月 进村投递明细", None],
        sheet_before=True,
        rows=ROWS,
    )
    stream = LogStream([path])
    frames = pl.concat(list(stream.frames()))
    assert frames.select("waybill_no", "source_row").rows() == [("X1", 1), ("X2", 2), ("X1", 3)]
    info = stream.inputs[0]
    assert (info.sheet, info.header_line, info.rows) == ("三月明细", 3, 3)
    result = invoke(
        "validate", path, *ARGS, "--config", cfg_dir, "--rejects-out", tmp_path / "r.csv"
    )
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert f"  {path}（xlsx 工作表“三月明细”，表头在第 3 行）：3 行，受理 1，剔除 2" in lines
    # Excel shows the header on row 3, X2 on row 5, the second X1 on row 6
    assert f"  {path} 第 5 行  运单号 X2：派送距离(distance_km)“十二”不是数字" in lines
    assert f"  {path} 第 6 行  运单号 X1：与 {path} 第 4 行的运单号相同，该行已受理" in lines
    rejects = list(csvlib.DictReader(io.StringIO((tmp_path / "r.csv").read_text("utf-8-sig"))))
    assert [(r["source_row"], r["source_line"]) for r in rejects] == [("2", "5"), ("3", "6")]


def test_a_workbook_without_the_headers_names_the_sheets_and_what_it_found(tmp_path):
    path = tmp_path / "x.xlsx"
    wb = xlsxwriter.Workbook(str(path))
    wb.add_worksheet("说明").write(0, 0, "请见下一页")
    ws = wb.add_worksheet("明细")
    ws.write(0, 0, "三月投递明细")
    ws.write_row(1, 0, ["运单号", "企业", "签收时间", "村代码", "距离", "派送成本"])
    wb.close()
    with pytest.raises(InputFileError) as err:
        read_logs([path])
    assert err.value.problem == (
        "缺少必需的列 company（快递企业）、distance_km（派送距离）"
        "（已查看工作表“说明”、“明细”的前 20 行；最接近表头的是工作表“明细”第 2 行："
        "运单号、企业、签收时间、村代码、距离、派送成本）"
    )


# --------------------------------------------------------------------------- company hints


@pytest.mark.parametrize(
    ("company", "detail"),
    [
        ("zto", "企业编码“zto”未在 companies.toml 中登记（是否为 ZTO？）"),
        ("Yto", "企业编码“Yto”未在 companies.toml 中登记（是否为 YTO？）"),
        ("中通", "企业编码“中通”未在 companies.toml 中登记（是否为 ZTO？）"),
        ("中通快递", "企业编码“中通快递”未在 companies.toml 中登记（是否为 ZTO？）"),
        ("中", "企业编码“中”未在 companies.toml 中登记"),  # one character suggests nothing
        ("XX", "企业编码“XX”未在 companies.toml 中登记"),
    ],
)
def test_an_unknown_company_gets_a_hint(tiny, company, detail):
    rejects = settle_rows(tiny, [row("W", company=company)]).rejects
    assert rejects.select("reason_code", "detail").rows() == [("UNKNOWN_COMPANY", detail)]


def test_a_name_prefix_two_companies_share_suggests_neither(tmp_path):
    from settlement.config import load_config

    companies = (
        '[[company]]\ncode = "ZTO"\nname = "中通快递"\n\n'
        '[[company]]\ncode = "ZJS"\nname = "中通国际"\n'
    )
    cfg = load_config(make_config(tmp_path / "config", companies=companies))
    details = settle_rows(cfg, [row("W1", company="中通"), row("W2", company="中通快")]).rejects
    assert details.sort("waybill_no")["detail"].to_list() == [
        "企业编码“中通”未在 companies.toml 中登记",
        "企业编码“中通快”未在 companies.toml 中登记（是否为 ZTO？）",
    ]


# --------------------------------------------------------------------------- rows as Excel shows them


def test_rows_are_named_as_excel_shows_them_everywhere(tmp_path, cfg_dir):
    logs = log(
        tmp_path / "zto.csv",
        GOOD.strip(),
        f"A2,ZTO,2025-03-05 10:00,{V1},远,2.00,0,签名",
        f"A1,ZTO,2025-03-06 10:00,{V1},12,2.00,0,签名",
    )
    out = tmp_path / "out"
    result = invoke("run", *ARGS, "--logs", logs, "--config", cfg_dir, "--out", out, "-q")
    assert result.exit_code == 0, result.output
    part = "league=150700/month=2025-03"
    rejects = pl.read_parquet(out / "rejects" / part / "part-0.parquet")
    assert rejects.select("source_row", "source_line", "waybill_no", "detail").rows() == [
        (2, 3, "A2", "派送距离(distance_km)“远”不是数字"),
        (3, 4, "A1", f"与 {logs} 第 2 行的运单号相同，该行已受理"),
    ]
    manifest = json.loads((out / "manifests" / "league=150700" / "month=2025-03.json").read_text())
    assert manifest["inputs"][0]["header_line"] == 1
    explained = invoke("explain", "A2", "--out", out)
    assert f"  来源：{logs} 第 3 行" in explained.output.splitlines()
    parcel = invoke("explain", "A1", "--out", out)
    assert f"  来源：{logs} 第 2 行；企业 ZTO；" in parcel.output
    sheet = openpyxl.load_workbook(out / "statements" / part / "ZTO.xlsx")["剔除明细"]
    assert [(c[1].value, c[2].value) for c in sheet.iter_rows(min_row=2)] == [(3, "A2"), (4, "A1")]
    page = (out / "statements" / part / "ZTO.html").read_text(encoding="utf-8")
    assert "剔除行 2 行：见同目录 ZTO.xlsx 的“剔除明细”工作表。" in page  # rows only in the XLSX


# --------------------------------------------------------------------------- XLSX bombs


def _sparse_bomb(path, *, references: bool):
    """A few KB of XLSX whose used range is the whole sheet: one stray cell at XFD1048576, or
    (references=False) a first row of 16,384 cells written without references."""
    import zipfile

    wb = openpyxl.Workbook()
    ws = wb.active
    ws.title = "投递"
    ws.append(HEADER.strip().split(","))
    ws.append(GOOD.strip().split(","))
    ws["XFD1048576"] = "x"
    wb.save(path)
    if references:
        return
    source = zipfile.ZipFile(path)
    members = [(i, source.read(i.filename)) for i in source.infolist()]
    source.close()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as out:
        for info, data in members:
            if info.filename.startswith("xl/worksheets/sheet"):
                body = (
                    b"<row>"
                    + b'<c t="inlineStr"><is><t>x</t></is></c>' * 16384
                    + b'</row><row r="1048576"><c t="inlineStr"><is><t>y</t></is></c></row>'
                )
                head, rest = data.split(b"<sheetData>")
                data = head + b"<sheetData>" + body + rest.split(b"</sheetData>")[1]
            out.writestr(info, data)


@pytest.mark.parametrize("references", [True, False])
def test_a_workbook_whose_range_is_the_whole_sheet_is_refused_before_it_is_read(
    tmp_path, references
):
    # the XLSX reader allocates the whole used range: 16,384 × 1,048,576 cells aborted the
    # process (and with it the portal) on a 5 KB file
    path = tmp_path / "bomb.xlsx"
    _sparse_bomb(path, references=references)
    assert path.stat().st_size < 10_000
    result = invoke("validate", path, *ARGS)
    assert (result.exit_code, result.output.strip()) == (
        2,
        f"错误：无法读取输入文件 {path}: 工作表“投递”的使用范围过大（有内容的单元格直到第 "
        "1,048,576 行、第 16,384 列），无法读取；请删除数据区以外的单元格（或把数据复制到新"
        "工作簿），或另存为 CSV 后提交",
    )


def test_a_workbook_that_unpacks_too_large_is_refused(tmp_path, monkeypatch):
    from settlement import ingest

    path = tmp_path / "logs.xlsx"
    wb = openpyxl.Workbook()
    wb.active.append(HEADER.strip().split(","))
    wb.active.append(GOOD.strip().split(","))
    wb.save(path)
    assert "受理 1" in invoke("validate", path, *ARGS).output
    monkeypatch.setattr(ingest, "MAX_XLSX_UNPACKED", 1 << 10)  # 1 KB, for the test
    result = invoke("validate", path, *ARGS)
    assert result.exit_code == 2
    assert "MB，超过 0 MB 的上限；请另存为 CSV 后提交" in result.output

"""Reading logs as they really arrive (SPEC §2): encodings, formats, headers, typed numbers."""

from __future__ import annotations

import datetime as dt

import polars as pl
import pytest
import xlsxwriter
from conftest import V1, V2, V_BORDER, frame, row, settle_rows, tiny_config

from settlement.errors import InputFileError
from settlement.ingest import read_log_file, read_logs

EN = "waybill_no,company,delivered_at,village_code,distance_km,cost_yuan,revenue_yuan,proof\n"
ZH = "运单号,快递企业,签收时间,嘎查村代码,派送距离(公里),单件成本(元),派费收入(元),妥投凭证\n"
LINE = f"SF001,ZTO,2025-03-05 10:00,{V1},12.5,0.75,0.12,签名\n"
EXPECTED = {
    "waybill_no": "SF001",
    "company": "ZTO",
    "delivered_at": "2025-03-05 10:00",
    "village_code": V1,
    "distance_km": "12.5",
    "cost_yuan": "0.75",
    "revenue_yuan": "0.12",
    "proof": "签名",
    "source_row": 1,
}


def first(df: pl.DataFrame) -> dict:
    got = df.to_dicts()[0]
    got.pop("source_file")
    return got


@pytest.mark.parametrize(
    ("name", "data", "encoding"),
    [
        ("utf8.csv", (EN + LINE).encode("utf-8"), "utf-8"),
        ("bom.csv", b"\xef\xbb\xbf" + (ZH + LINE).encode("utf-8"), "utf-8-sig"),
        ("gbk.csv", (ZH + LINE).encode("gbk"), "gb18030"),
        ("gb18030.csv", (ZH + LINE).encode("gb18030"), "gb18030"),
        ("crlf.csv", (EN + LINE).replace("\n", "\r\n").encode("utf-8"), "utf-8"),
        ("tabs.txt", (EN + LINE).replace(",", "\t").encode("utf-8"), "utf-8"),
    ],
)
def test_csv_encodings_and_headers(tmp_path, name, data, encoding):
    path = tmp_path / name
    path.write_bytes(data)
    df, info = read_log_file(path)
    assert first(df) == EXPECTED
    assert (info.format, info.encoding, info.rows) == ("csv", encoding, 1)
    assert info.sha256 == __import__("hashlib").sha256(data).hexdigest()


def test_header_variants_full_width_and_spaces(tmp_path):
    header = "运单号,企业编码,签收时间,村代码,派送距离（公里）, 派送成本 ,派费收入,签收方式,备注\n"
    path = tmp_path / "x.csv"
    path.write_text(header + LINE.rstrip("\n") + ",多余的列\n", encoding="utf-8")
    assert first(read_log_file(path)[0]) == EXPECTED


def test_optional_columns_may_be_absent(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text(
        "waybill_no,company,delivered_at,village_code,distance_km,cost_yuan\n"
        f"A,ZTO,2025-03-05 10:00,{V1},1,2\n",
        encoding="utf-8",
    )
    got = first(read_log_file(path)[0])
    assert got["revenue_yuan"] is None and got["proof"] is None


def write_xlsx(path, rows):
    wb = xlsxwriter.Workbook(str(path))
    ws = wb.add_worksheet()
    when = wb.add_format({"num_format": "yyyy-mm-dd hh:mm"})
    ws.write_row(
        0,
        0,
        [
            "运单号",
            "快递企业",
            "签收时间",
            "嘎查村代码",
            "派送距离",
            "派送成本",
            "派费收入",
            "签收方式",
        ],
    )
    for r, values in enumerate(rows, 1):
        for c, v in enumerate(values):
            if isinstance(v, dt.datetime):
                ws.write_datetime(r, c, v, when)
            elif v is not None:
                ws.write(r, c, v)
    wb.add_worksheet("第二页").write(0, 0, "ignored")
    wb.close()


def test_xlsx_numbers_dates_and_codes_stored_as_numbers(tmp_path):
    path = tmp_path / "x.xlsx"
    write_xlsx(
        path,
        [
            [
                773012345678901,
                "ZTO",
                dt.datetime(2025, 3, 5, 10, 0),
                int(V1),
                12.5,
                0.75,
                0.12,
                "签名",
            ],
            ["SF002", "ZTO", "2025-03-06 08:00", V2, 3, 1.1, None, None],
        ],
    )
    df, info = read_log_file(path)
    assert info.format == "xlsx" and info.rows == 2
    rows = df.drop("source_file").to_dicts()
    assert rows[0] == EXPECTED | {
        "waybill_no": "773012345678901",
        "delivered_at": "2025-03-05 10:00:00",
    }
    assert rows[1] == {
        "waybill_no": "SF002",
        "company": "ZTO",
        "delivered_at": "2025-03-06 08:00",
        "village_code": V2,
        "distance_km": "3",
        "cost_yuan": "1.1",
        "revenue_yuan": None,
        "proof": None,
        "source_row": 2,
    }


def test_parquet_typed_columns(tmp_path):
    path = tmp_path / "x.parquet"
    pl.DataFrame(
        {
            "waybill_no": ["SF001"],
            "company": ["ZTO"],
            "delivered_at": [dt.datetime(2025, 3, 5, 10, 0)],
            "village_code": [int(V1)],
            "distance_km": [12.5],
            "cost_yuan": [0.75],
            "revenue_yuan": [0.12],
            "proof": ["签名"],
        }
    ).write_parquet(path)
    assert first(read_log_file(path)[0]) == EXPECTED | {"delivered_at": "2025-03-05 10:00:00"}


def test_parquet_float_codes_and_utc_timestamps(tmp_path):
    path = tmp_path / "x.parquet"
    pl.DataFrame(
        {
            "waybill_no": [773012345678901.0],
            "company": ["ZTO"],
            "delivered_at": pl.Series([dt.datetime(2025, 3, 5, 2, 0)]).dt.replace_time_zone("UTC"),
            "village_code": [float(V1)],
            "distance_km": [12.5],
            "cost_yuan": [0.75],
        }
    ).write_parquet(path)
    got = first(read_log_file(path)[0])
    assert got["waybill_no"] == "773012345678901"
    assert got["village_code"] == V1
    assert got["delivered_at"] == "2025-03-05 10:00:00"  # 02:00 UTC = 10:00 Asia/Shanghai


def test_parquet_all_text(tmp_path):
    path = tmp_path / "x.parquet"
    pl.DataFrame([EXPECTED]).drop("source_row").write_parquet(path)
    assert first(read_log_file(path)[0]) == EXPECTED


def test_float_trap_through_parquet_and_excel(tmp_path):
    # 0.75 元 × max_cost_share 0.12 must give 9 分, never 8
    cfg = tiny_config(tmp_path, share="0.12")
    pq = tmp_path / "x.parquet"
    pl.DataFrame(
        {
            "waybill_no": ["P"],
            "company": ["ZTO"],
            "delivered_at": ["2025-03-05 10:00"],
            "village_code": [V1],
            "distance_km": [12.0],
            "cost_yuan": [0.75],
        }
    ).write_parquet(pq)
    xl = tmp_path / "x.xlsx"
    write_xlsx(xl, [["X", "ZTO", dt.datetime(2025, 3, 5, 11), int(V2), 12, 0.75, None, None]])
    df, _ = read_logs([pq, xl])
    assert settle_rows(cfg, df).rate() == {"P": 9, "X": 9}


def test_source_rows_and_directories(tmp_path):
    (tmp_path / "logs" / "sub").mkdir(parents=True)
    (tmp_path / "logs" / "b.csv").write_text(
        EN + LINE + LINE.replace("SF001", "SF002"), encoding="utf-8"
    )
    (tmp_path / "logs" / "sub" / "a.csv").write_text(EN + LINE, encoding="utf-8")
    (tmp_path / "logs" / "notes.md").write_text("not a log", encoding="utf-8")
    df, infos = read_logs([tmp_path / "logs"])
    assert [i.path for i in infos] == [
        str(tmp_path / "logs" / "b.csv"),
        str(tmp_path / "logs" / "sub" / "a.csv"),
    ]
    assert df.select("source_row", "waybill_no").rows() == [
        (1, "SF001"),
        (2, "SF002"),
        (1, "SF001"),
    ]


def test_header_only_file_has_no_rows(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text(EN, encoding="utf-8")
    df, info = read_log_file(path)
    assert df.height == 0 and info.rows == 0


BAD_FILES = [
    (
        "missing.csv",
        EN.replace("village_code,", "village,").encode() + b"\n",
        "缺少必需的列 village_code（嘎查村代码）",
    ),
    (
        "ambiguous.csv",
        "运单号,快递企业,企业编码,签收时间,村代码,派送距离,派送成本\n".encode(),
        "列“快递企业”和“企业编码”都对应字段 company",
    ),
    ("empty.csv", b"", "文件为空"),
    ("blank.csv", b"\n\n  \n", "文件为空"),
    ("garbage.parquet", b"PAR1 this is not parquet", "Parquet 无法读取"),
    ("garbage.xlsx", b"PK\x03\x04 broken zip", "XLSX 无法读取"),
    ("notes.json", b'{"a": 1}', "不支持的文件类型"),
    ("latin.csv", EN.encode() + b"\x81\x30\x81", "既不是 UTF-8 也不是 GBK/GB18030 编码"),
]


@pytest.mark.parametrize(("name", "data", "problem"), BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_unreadable_files_are_refused_naming_file_and_problem(tmp_path, name, data, problem):
    path = tmp_path / name
    path.write_bytes(data)
    with pytest.raises(InputFileError) as err:
        read_logs([path])
    assert err.value.path == str(path)
    assert problem in err.value.problem
    assert str(err.value).startswith(f"无法读取输入文件 {path}: ")


def test_nonexistent_path(tmp_path):
    with pytest.raises(InputFileError, match="文件不存在"):
        read_logs([tmp_path / "nope.csv"])


def test_same_file_twice_is_refused(tmp_path):
    path = tmp_path / "x.csv"
    path.write_text(EN + LINE, encoding="utf-8")
    with pytest.raises(InputFileError, match="同一文件被重复指定"):
        read_logs([path, tmp_path / "." / "x.csv"])


def test_normalise_strips_and_blanks(tmp_path):
    df = frame([row("  A ", proof="   ", revenue="")])
    got = df.to_dicts()[0]
    assert (got["waybill_no"], got["proof"], got["revenue_yuan"]) == ("A", None, None)


def test_float_trap_029(tmp_path):
    # 0.58 × 0.5 = 0.29 元 → 29 分; in binary floats 100 × 0.58 × 0.5 = 28.999999999999996 → 28
    import math

    assert math.floor(0.58 * 0.5 * 100) == 28
    cfg = tiny_config(tmp_path, tiers=True)  # border 0.25 × 1.5 = 0.375, capped at 0.30
    pq = tmp_path / "x.parquet"
    pl.DataFrame(
        {
            "waybill_no": ["P"],
            "company": ["ZTO"],
            "delivered_at": ["2025-03-05 10:00"],
            "village_code": [V_BORDER],
            "distance_km": [5.0],
            "cost_yuan": [0.58],
        }
    ).write_parquet(pq)
    df, _ = read_logs([pq])
    assert settle_rows(cfg, df).rate() == {"P": 29}


def _late_gbk(tmp_path, ascii_rows: int):
    """A GBK file whose first rows are plain ASCII: it looks like UTF-8 until later."""
    lines = [f"W{i},ZTO,2025-03-05 10:00,{V1},12.5,0.75,0.12,sign\n" for i in range(ascii_rows)]
    lines.append(f"SF001,ZTO,2025-03-05 10:00,{V1},12.5,0.75,0.12,签名\n")
    path = tmp_path / "late.csv"
    path.write_bytes((EN + "".join(lines)).encode("gbk"))
    return path


def test_gbk_past_the_sniffed_prefix_is_read_again_whole(tmp_path, monkeypatch):
    from settlement import ingest

    monkeypatch.setattr(ingest, "SNIFF_BYTES", 256)
    path = _late_gbk(tmp_path, 20)
    df, info = read_log_file(path)
    assert info.encoding == "gb18030" and info.rows == 21 == df.height
    assert df.row(20, named=True)["proof"] == "签名"
    # the engine streams into DuckDB and must start the file again, losing no row
    cfg = tiny_config(tmp_path)
    from settlement.engine import compute
    from settlement.ingest import LogStream
    from settlement.period import Month

    with compute(cfg, "150700", Month.parse("2025-03"), LogStream([path]), None, "T") as con:
        got = con.execute(
            "SELECT COUNT(*), COUNT(*) FILTER (WHERE proof = '签名') FROM ledger_out"
        ).fetchall()
    assert got == [(21, 1)]


def test_mixed_encoding_past_the_sniffed_prefix_is_refused(tmp_path, monkeypatch):
    from settlement import ingest

    monkeypatch.setattr(ingest, "SNIFF_BYTES", 256)
    path = tmp_path / "mixed.csv"
    utf8 = "".join(f"W{i},ZTO,2025-03-05 10:00,{V1},1,1,1,签名\n" for i in range(10))
    path.write_bytes(
        (EN + utf8).encode("utf-8") + f"X,ZTO,2025-03-05 10:00,{V1},1,1,1,签名\n".encode("gbk")
    )
    with pytest.raises(InputFileError, match="文件混用了两种编码：第 2 行是 UTF-8，第 12 行不是"):
        read_logs([path])


def test_batches_keep_row_numbers_across_batch_boundaries(tmp_path):
    from settlement.ingest import LogStream

    path = tmp_path / "many.csv"
    path.write_text(
        EN + "".join(f"W{i},ZTO,2025-03-05 10:00,{V1},1,1,1,x\n" for i in range(1, 1001)),
        encoding="utf-8",
    )
    stream = LogStream([path], batch_rows=64)
    frames = list(stream.frames())
    assert len(frames) > 1
    together = pl.concat(frames)
    assert together["source_row"].to_list() == list(range(1, 1001))
    assert together["waybill_no"].to_list() == [f"W{i}" for i in range(1, 1001)]
    assert [f.rows for f in stream.inputs] == [1000]


def test_a_bad_row_deep_in_a_streamed_file_refuses_it_whole(tmp_path, monkeypatch):
    # many small chunks, so DuckDB is busy with earlier ones when the reader finds the bad row
    from settlement import ingest
    from settlement.engine import compute
    from settlement.ingest import LogStream
    from settlement.period import Month

    monkeypatch.setattr(ingest, "CHUNK_ROWS", 16)
    good = "".join(f"W{i},ZTO,2025-03-05 10:00,{V1},1,1,1,x\n" for i in range(1, 200))
    path = tmp_path / "deep.csv"
    path.write_text(EN + good + f"BAD,ZTO,2025-03-05 10:00,{V1},1,1,1,x,extra\n", encoding="utf-8")
    cfg = tiny_config(tmp_path)
    with (
        pytest.raises(InputFileError, match="第 201 行有 9 个字段，多于表头的 8 个"),
        compute(cfg, "150700", Month.parse("2025-03"), LogStream([path], batch_rows=8), None, "T"),
    ):
        pass

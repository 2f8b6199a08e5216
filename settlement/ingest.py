"""Reading courier companies' delivery logs with Polars (SPEC §2).

Every file becomes the same all-text frame: the eight SPEC columns (text stripped of surrounding
white space, blanks as null), plus `source_file` and `source_row` (1-based data row). Typing and
validation happen later, in SQL, so that a bad value becomes a `MALFORMED` row, not a lost one.
Numbers that arrive typed (Excel cells, Parquet doubles) are turned into the shortest decimal
text that round-trips, so 0.75 stays "0.75" and never becomes 0.74999….
"""

from __future__ import annotations

import hashlib
import io
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pyarrow as pa

from .errors import InputFileError

FIELDS: tuple[str, ...] = (
    "waybill_no",
    "company",
    "delivered_at",
    "village_code",
    "distance_km",
    "cost_yuan",
    "revenue_yuan",
    "proof",
)
REQUIRED: tuple[str, ...] = FIELDS[:6]
HEADER_ALIASES: dict[str, tuple[str, ...]] = {
    "waybill_no": ("运单号",),
    "company": ("快递企业", "企业编码"),
    "delivered_at": ("签收时间",),
    "village_code": ("嘎查村代码", "村代码"),
    "distance_km": ("派送距离", "派送距离(公里)"),
    "cost_yuan": ("派送成本", "单件成本(元)"),
    "revenue_yuan": ("派费收入", "派费收入(元)"),
    "proof": ("签收方式", "妥投凭证"),
}
CHINESE_NAME = {field: aliases[0] for field, aliases in HEADER_ALIASES.items()}
SUFFIXES = {".csv": "csv", ".txt": "csv", ".parquet": "parquet", ".pq": "parquet", ".xlsx": "xlsx"}
#: What a directory contributes; its other files are skipped and reported (a `.txt` log is read
#: only when named itself: a folder's README.txt is not a log).
DIRECTORY_SUFFIXES = (".csv", ".parquet", ".xlsx")
#: Rows at the top of each XLSX sheet searched for the header row (title rows may sit above it).
HEADER_SCAN_ROWS = 20

#: An XLSX is refused before it is parsed when its sheets' XML would unpack to more than this,
#: or when a sheet's used range (last row × last column) holds more cells: the XLSX reader
#: allocates the whole range, so one stray cell at XFD1048576 in a 5 KB file would ask for
#: hundreds of GB and abort the process. A real month of logs is about 1 million rows × 10
#: columns.
MAX_XLSX_UNPACKED = 2 << 30
MAX_XLSX_CELLS = 40_000_000
#: Bytes compared first when two input files have the same size.
PREFIX_BYTES = 1 << 16
#: Identifier columns whose whole-number floats (Excel, Parquet) must print without ".0".
IDENTIFIERS = ("waybill_no", "village_code", "company")
TIME_ZONE = "Asia/Shanghai"


def _normalise_header(name: str) -> str:
    text = unicodedata.normalize("NFKC", str(name)).replace("\ufeff", "")
    return "".join(text.split()).lower()


_HEADER_LOOKUP: dict[str, str] = {
    _normalise_header(alias): field
    for field, aliases in HEADER_ALIASES.items()
    for alias in (field, *aliases)
}


def _lookup(aliases: dict[str, tuple[str, ...]]) -> dict[str, str]:
    """Normalised header -> field."""
    if aliases is HEADER_ALIASES:
        return _HEADER_LOOKUP
    return {_normalise_header(a): f for f, names in aliases.items() for a in (f, *names)}


@dataclass(frozen=True)
class InputFile:
    """One log file as read: where it is, what it held, and its SHA-256."""

    path: str
    format: str
    encoding: str | None
    sha256: str
    size_bytes: int
    rows: int
    #: the line of the header as Excel or an editor numbers it: data row n is line n + header_line
    header_line: int = 1
    #: the XLSX sheet read (the first that has the required headers)
    sheet: str | None = None


@dataclass(frozen=True)
class Skipped:
    """A file under a named directory that was not read, and why."""

    path: str
    reason: str


def expand_paths(paths: Iterable[str | Path]) -> tuple[list[Path], list[Skipped]]:
    """Files named directly, plus the .csv/.parquet/.xlsx files under named directories (sorted);
    and the other files under those directories, skipped."""
    files: list[Path] = []
    skipped: list[Skipped] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found, passed = [], []
            for p in sorted(p for p in path.rglob("*") if p.is_file()):
                if p.name.startswith((".", "~$")):
                    passed.append(Skipped(str(p), "隐藏文件或 Excel 临时文件"))
                elif p.suffix.lower() in DIRECTORY_SUFFIXES:
                    found.append(p)
                elif p.suffix.lower() == ".txt":
                    passed.append(
                        Skipped(str(p), "目录中的 .txt 文件不读取；如确是日志，请单独指定该文件")
                    )
                else:
                    passed.append(Skipped(str(p), "不是 .csv、.parquet 或 .xlsx 文件"))
            if not found:
                others = (
                    f"（其中只有 {passed[0].path} 等 {len(passed)} 个其他文件）" if passed else ""
                )
                raise InputFileError(path, f"目录中没有 CSV、Parquet 或 XLSX 文件{others}")
            files.extend(found)
            skipped.extend(passed)
        elif path.is_file():
            files.append(path)
        else:
            raise InputFileError(path, "文件不存在")
    seen: set[Path] = set()
    unique = []
    for f in files:
        key = f.resolve()
        if key in seen:
            raise InputFileError(f, "同一文件被重复指定")
        seen.add(key)
        unique.append(f)
    return unique, skipped


def _digest(path: Path, limit: int | None = None) -> str:
    """SHA-256 of a file, or of its first `limit` bytes."""
    digest = hashlib.sha256()
    left = limit
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 22 if left is None else min(left, 1 << 22)):
            digest.update(chunk)
            if left is not None:
                left -= len(chunk)
                if left <= 0:
                    break
    return digest.hexdigest()


def refuse_identical(files: Sequence[Path]) -> None:
    """Refuse two files with the same content (SHA-256): a copy would reject its every row as
    DUPLICATE. Only files of equal size are read, their first bytes before the whole."""
    by_size: dict[int, list[Path]] = {}
    for f in files:
        try:
            size = f.stat().st_size
        except OSError:
            continue  # refused with the reason when opened
        if size:  # empty files are refused as such
            by_size.setdefault(size, []).append(f)
    for group in (g for g in by_size.values() if len(g) > 1):
        by_prefix: dict[str, list[Path]] = {}
        for f in group:
            by_prefix.setdefault(_digest(f, PREFIX_BYTES), []).append(f)
        for same in (g for g in by_prefix.values() if len(g) > 1):
            seen: dict[str, Path] = {}
            for f in same:
                digest = _digest(f)
                if digest in seen:
                    raise InputFileError(
                        f,
                        f"与 {seen[digest]} 的内容完全相同（SHA-256 {digest[:16]}…），同一份日志"
                        "提交了两次；请删去或移走其中一个后再运行",
                    )
                seen[digest] = f


def map_headers(
    columns: Sequence[str],
    path: Path,
    aliases: dict[str, tuple[str, ...]] = HEADER_ALIASES,
    required: Sequence[str] = REQUIRED,
) -> dict[str, str]:
    """Field -> the file's column; a required column missing or a field twice is refused."""
    lookup = _lookup(aliases)
    mapping: dict[str, str] = {}
    for column in columns:
        field = lookup.get(_normalise_header(column))
        if field is None:
            continue  # extra columns are ignored (SPEC §2)
        if field in mapping:
            if mapping[field] == column:
                raise InputFileError(path, f"列“{column}”出现了两次，无法确定使用哪一列")
            raise InputFileError(
                path, f"列“{mapping[field]}”和“{column}”都对应字段 {field}，无法确定使用哪一列"
            )
        mapping[field] = column
    missing = [f for f in required if f not in mapping]
    if missing:
        names = "、".join(f"{f}（{aliases[f][0]}）" for f in missing)
        raise InputFileError(path, f"缺少必需的列 {names}")
    return mapping


def frame_mapping(
    header: Sequence[str],
    columns: Sequence[str],
    path: Path,
    aliases: dict[str, tuple[str, ...]] = HEADER_ALIASES,
    required: Sequence[str] = REQUIRED,
) -> dict[str, str]:
    """Field -> the frame's column, from the header as the file writes it.

    Readers rename a repeated name (Polars `cost_yuan_duplicated_0`, fastexcel `cost_yuan_1`),
    which would hide a second `cost_yuan`: the file's own header is checked, and its columns
    matched to the frame's by position."""
    mapping = map_headers(header, path, aliases, required)
    if len(header) != len(columns):
        return mapping
    position = {name: i for i, name in enumerate(header)}
    return {field: columns[position[name]] for field, name in mapping.items()}


def _csv_header(text: str, separator: str) -> list[str]:
    """The first record of a CSV text, as the file writes it."""
    import csv

    try:
        return next(csv.reader(io.StringIO(text, newline=""), delimiter=separator), [])
    except csv.Error:
        return []


def _decode_csv(data: bytes, path: Path) -> tuple[bytes, str]:
    """UTF-8 (with or without BOM) as is; otherwise GB18030 (a superset of GBK) re-encoded."""
    if data.startswith(b"\xef\xbb\xbf"):
        data, encoding = data[3:], "utf-8-sig"
    else:
        encoding = "utf-8"
    try:
        data.decode("utf-8")
        return data, encoding
    except UnicodeDecodeError:
        pass
    mixed = _mixed_encoding(data)
    if mixed:
        utf8_line, gbk_line = mixed
        raise InputFileError(
            path,
            f"文件混用了两种编码：第 {utf8_line} 行是 UTF-8，第 {gbk_line} 行不是；"
            "请整个文件统一另存为 UTF-8 或 GBK",
        )
    try:
        return data.decode("gb18030").encode("utf-8"), "gb18030"
    except UnicodeDecodeError as exc:
        raise InputFileError(
            path, f"既不是 UTF-8 也不是 GBK/GB18030 编码（第 {exc.start} 字节处无法解码）"
        ) from None


def _mixed_encoding(data: bytes) -> tuple[int, int] | None:
    """(a UTF-8 line, a non-UTF-8 line), 1-based, when a file mixes encodings; else None.

    Only called once the whole file failed as UTF-8. Chinese text in GBK almost never forms
    valid multi-byte UTF-8, so a non-ASCII line that decodes as UTF-8 betrays a mixed file.
    """
    utf8_line = other_line = 0
    for number, line in enumerate(data.split(b"\n"), 1):
        if line.isascii():
            continue
        try:
            line.decode("utf-8")
            utf8_line = utf8_line or number
        except UnicodeDecodeError:
            other_line = other_line or number
        if utf8_line and other_line:
            return utf8_line, other_line
    return None


def _ragged_row(data: bytes, separator: str) -> str:
    """Where a CSV row has more fields than its header (for the refusal message)."""
    import csv

    text = io.StringIO(data.decode("utf-8", errors="replace"), newline="")
    try:
        reader = csv.reader(text, delimiter=separator)
        header = next(reader, [])
        for row in reader:
            if len(row) > len(header):
                return (  # line_num: the line as an editor numbers it (where the record ends)
                    f"第 {reader.line_num} 行有 {len(row)} 个字段，多于表头的 {len(header)} 个"
                    "（值里是否有未加引号的逗号？）"
                )
    except csv.Error:  # too broken to say which row
        pass
    return "某行的字段数多于表头"


def _sniff_separator(data: bytes) -> str:
    first_line = data.split(b"\n", 1)[0]
    if b"," not in first_line:
        for sep in (b"\t", b";", b"|"):
            if sep in first_line:
                return sep.decode()
    return ","


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def _read_csv(data: bytes, path: Path) -> tuple[pl.DataFrame, list[str], str]:
    data, encoding = _decode_csv(data, path)
    if not data.strip():
        raise InputFileError(path, "文件为空")
    separator = _sniff_separator(data)
    try:
        df = pl.read_csv(
            io.BytesIO(data), infer_schema=False, separator=separator, raise_if_empty=True
        )
    except Exception as exc:  # noqa: BLE001 - polars raises several kinds
        problem = _first_line(exc)
        if "more fields" in problem:
            problem = _ragged_row(data, separator)
        raise InputFileError(path, f"CSV 无法解析：{problem}") from None
    return df, _csv_header(data[:SNIFF_BYTES].decode("utf-8", errors="ignore"), separator), encoding


def _read_parquet(
    data: bytes, path: Path, aliases: dict[str, tuple[str, ...]], required: Sequence[str]
) -> pl.DataFrame:
    try:
        return pl.read_parquet(io.BytesIO(data))
    except pl.exceptions.DuplicateError:
        import pyarrow.parquet as pq

        map_headers(pq.read_schema(io.BytesIO(data)).names, path, aliases, required)
        raise InputFileError(path, "Parquet 无法读取：有两列同名") from None
    except Exception as exc:  # noqa: BLE001
        raise InputFileError(path, f"Parquet 无法读取：{_first_line(exc)}") from None


@dataclass(frozen=True)
class _Sheet:
    """What the top of one XLSX sheet held: its name and its likeliest header row."""

    name: str
    line: int  # 1-based, as Excel numbers it; 0 when the sheet is empty
    cells: list[str]
    fields: set[str]


def _read_xlsx(
    data: bytes, path: Path, aliases: dict[str, tuple[str, ...]], required: Sequence[str]
) -> tuple[pl.DataFrame, list[str], str, int]:
    """The first sheet with a row holding the required headers in its first HEADER_SCAN_ROWS rows
    (title rows above it are skipped): (data below that row, the header, the sheet, its line)."""
    import fastexcel

    _check_xlsx_size(data, path)
    lookup = _lookup(aliases)
    seen: list[_Sheet] = []
    try:
        reader = fastexcel.read_excel(data)
        if not reader.sheet_names:
            raise InputFileError(path, "工作簿中没有工作表")
        for index, name in enumerate(reader.sheet_names):
            # every row from the sheet's first (skip_rows=0 keeps leading blank rows, so row i
            # is Excel's row i + 1); dtypes="string": calamine formats numbers the way Excel
            # shows them (12-digit codes without ".0", 0.75 as "0.75") and dates as
            # "YYYY-MM-DD HH:MM:SS".
            sheet = reader.load_sheet(index, header_row=None, skip_rows=0, dtypes="string")
            rows = sheet.to_polars()
            best = _Sheet(name, 0, [], set())
            for i, values in enumerate(rows.head(HEADER_SCAN_ROWS).iter_rows()):
                cells = ["" if v is None else str(v).strip() for v in values]
                fields = {lookup[h] for c in cells if (h := _normalise_header(c)) in lookup}
                if all(f in fields for f in required):
                    try:
                        map_headers(cells, path, aliases, required)
                    except InputFileError as exc:
                        raise InputFileError(
                            path, f"{exc.problem}（工作表“{name}”第 {i + 1} 行）"
                        ) from None
                    return rows.slice(i + 1), cells, name, i + 1
                if len(fields) > len(best.fields) or (not best.line and any(cells)):
                    best = _Sheet(name, i + 1, cells, fields)
            seen.append(best)
    except InputFileError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise InputFileError(path, f"XLSX 无法读取：{_first_line(exc)}") from None
    raise InputFileError(path, _no_header(seen, aliases, required))


def _column_number(letters: bytes) -> int:
    n = 0
    for ch in letters:
        n = n * 26 + ch - 64
    return n


def _check_xlsx_size(data: bytes, path: Path) -> None:
    """Refuse a workbook whose sheets would unpack too large, or whose used range is too big
    for the XLSX reader (which allocates last row × last column cells), before it is parsed."""
    import re
    import zipfile
    import zlib

    try:
        book = zipfile.ZipFile(io.BytesIO(data))
        infos = book.infolist()
    except (zipfile.BadZipFile, ValueError, OSError):
        return  # not a zip: the reader says what is wrong with it
    unpacked = sum(i.file_size for i in infos)
    if unpacked > MAX_XLSX_UNPACKED:
        raise InputFileError(
            path,
            f"XLSX 解压后有 {unpacked / (1 << 20):,.0f} MB，超过 {MAX_XLSX_UNPACKED >> 20:,} MB "
            "的上限；请另存为 CSV 后提交",
        )
    # the used range's last column: the widest cell reference (only two- and three-letter
    # columns, AA…, are matched: rare in logs), or, where cells come without references, the
    # most cells in one row; its last row: the last <row r="…"> (rows are written in order) or
    # the number of rows. Counting is approximate at the 1 MB chunks' edges, which is enough to
    # tell a month of logs from a bomb.
    wide = re.compile(rb' r="([A-Z]{2,3})(\d+)"')
    numbered = re.compile(rb'<row [^>]*?\br="(\d+)"')
    for info in infos:
        if not re.fullmatch(r"xl/worksheets/[^/]+\.xml", info.filename):
            continue
        last_row, last_col, rows = 0, 0, 0
        try:
            with book.open(info) as stream:
                while chunk := stream.read(1 << 20):
                    for m in wide.finditer(chunk):
                        last_col = max(last_col, _column_number(m.group(1)))
                        last_row = max(last_row, int(m.group(2)))
                    tags = chunk.count(b"<row")
                    rows += tags
                    if chunk.count(b"<c") > chunk.count(b' r="') - tags:  # cells without refs
                        last_col = max(last_col, *(p.count(b"<c") for p in chunk.split(b"<row")))
                    found = list(numbered.finditer(chunk, max(0, len(chunk) - 65536)))
                    last_row = max(last_row, rows, int(found[-1].group(1)) if found else 0)
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError):
            return  # a damaged member: the reader says so
        last_col = max(last_col, 26 if last_row else 0)
        if last_row * last_col > MAX_XLSX_CELLS:
            sheet = _sheet_names(book).get(info.filename, info.filename.rsplit("/", 1)[-1])
            raise InputFileError(
                path,
                f"工作表“{sheet}”的使用范围过大（有内容的单元格直到第 {last_row:,} 行、第 "
                f"{last_col:,} 列），无法读取；请删除数据区以外的单元格（或把数据复制到新工作簿），"
                "或另存为 CSV 后提交",
            )


def _sheet_names(book) -> dict[str, str]:
    """Sheet part (xl/worksheets/sheet1.xml) -> the sheet's name, as far as the workbook says."""
    import re
    from html import unescape

    try:
        workbook = book.read("xl/workbook.xml").decode("utf-8", "replace")
        rels = book.read("xl/_rels/workbook.xml.rels").decode("utf-8", "replace")
    except (KeyError, OSError):
        return {}
    targets = {}
    for rel in re.finditer(r"<Relationship\b[^>]*>", rels):
        ident = re.search(r'\bId="([^"]+)"', rel.group(0))
        target = re.search(r'\bTarget="([^"]+)"', rel.group(0))
        if ident and target:
            t = target.group(1).lstrip("/")
            targets[ident.group(1)] = t if t.startswith("xl/") else "xl/" + t
    names = {}
    for sheet in re.finditer(r"<(?:\w+:)?sheet\b[^>]*>", workbook):
        name = re.search(r'\bname="([^"]*)"', sheet.group(0))
        ident = re.search(r'\b\w*:?id="([^"]+)"', sheet.group(0))
        if name and ident and ident.group(1) in targets:
            names[targets[ident.group(1)]] = unescape(name.group(1))
    return names


def _no_header(
    seen: list[_Sheet], aliases: dict[str, tuple[str, ...]], required: Sequence[str]
) -> str:
    """The refusal of a workbook without the required headers: the sheets read, what was found."""
    best = max(seen, key=lambda s: (len(s.fields), s.line > 0))
    missing = "、".join(f"{f}（{aliases[f][0]}）" for f in required if f not in best.fields)
    sheets = "、".join(f"“{s.name}”" for s in seen)
    found = "、".join(c for c in best.cells if c)
    if len(found) > 120:
        found = found[:120] + "…"
    where = (
        f"最接近表头的是工作表“{best.name}”第 {best.line} 行：{found}"
        if best.line
        else "各工作表都是空的"
    )
    return f"缺少必需的列 {missing}（已查看工作表{sheets}的前 {HEADER_SCAN_ROWS} 行；{where}）"


def _as_text(series: pl.Series, field: str) -> pl.Series:
    """Typed column -> text, exactly: shortest round-trip decimals, local times, whole-number ids."""
    dtype = series.dtype
    if dtype == pl.String:
        return series
    if dtype == pl.Null:
        return series.cast(pl.String)
    if dtype.is_float() and field in IDENTIFIERS:
        whole = series.is_finite() & (series == series.floor())
        return (
            pl.select(
                pl.when(whole)
                .then(series.cast(pl.Int64, strict=False).cast(pl.String))
                .otherwise(series.cast(pl.String))
            )
            .to_series()
            .alias(series.name)
        )
    if isinstance(dtype, pl.Datetime):
        if dtype.time_zone is not None:
            series = series.dt.convert_time_zone(TIME_ZONE)
        return series.dt.strftime("%Y-%m-%d %H:%M:%S")
    if dtype == pl.Date:
        return series.dt.strftime("%Y-%m-%d")
    return series.cast(pl.String)


def text_column(df: pl.DataFrame, column: str, field: str) -> pl.Series:
    """One column as stripped text, blank as null (typed values turned into exact text)."""
    return _as_text(df.get_column(column), field).str.strip_chars().replace("", None).alias(field)


def normalise(
    df: pl.DataFrame, path: Path, source_file: str, mapping: dict[str, str] | None = None
) -> pl.DataFrame:
    """Map headers, turn every SPEC column into stripped text (blank -> null), add provenance."""
    mapping = map_headers(df.columns, path) if mapping is None else mapping
    columns = []
    for field in FIELDS:
        if field in mapping:
            columns.append(text_column(df, mapping[field], field))
        else:
            columns.append(pl.repeat(None, df.height, dtype=pl.String, eager=True).alias(field))
    out = pl.DataFrame(columns)
    return out.with_columns(
        source_file=pl.lit(source_file, dtype=pl.String),
        source_row=pl.int_range(1, df.height + 1, dtype=pl.Int64),
    )


@dataclass(frozen=True)
class RawFile:
    """A file's table as read and facts about the file. `header` is the header as the file
    writes it (the frame's column names may differ), `header_line` where it is (1-based)."""

    frame: pl.DataFrame
    header: list[str]
    format: str
    encoding: str | None
    sha256: str
    size_bytes: int
    sheet: str | None = None
    header_line: int = 1

    def mapping(
        self,
        path: Path,
        aliases: dict[str, tuple[str, ...]] = HEADER_ALIASES,
        required: Sequence[str] = REQUIRED,
    ) -> dict[str, str]:
        """Field -> the frame's column; refuses a missing, ambiguous or repeated column."""
        return frame_mapping(self.header, self.frame.columns, path, aliases, required)


def _kind(path: Path, head: bytes) -> str:
    """csv, parquet or xlsx: by the file's suffix, else by its first bytes."""
    kind = SUFFIXES.get(path.suffix.lower())
    if kind is not None:
        return kind
    if head[:4] == b"PAR1":
        return "parquet"
    if head[:2] == b"PK":
        return "xlsx"
    raise InputFileError(path, "不支持的文件类型（应为 .csv、.parquet 或 .xlsx）")


def read_raw(
    path: Path,
    aliases: dict[str, tuple[str, ...]] = HEADER_ALIASES,
    required: Sequence[str] = REQUIRED,
) -> RawFile:
    """Read a CSV, Parquet or XLSX file as a table, or raise InputFileError naming the problem.
    `aliases` and `required` say what an XLSX header row holds (to find it below title rows)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputFileError(path, f"无法打开：{exc.strerror}") from None
    digest = hashlib.sha256(data).hexdigest()
    kind = _kind(path, data)
    if kind == "csv":
        raw, header, encoding = _read_csv(data, path)
        return RawFile(raw, header, kind, encoding, digest, len(data))
    if kind == "parquet":
        raw = _read_parquet(data, path, aliases, required)
        return RawFile(raw, raw.columns, kind, None, digest, len(data))
    raw, header, sheet, line = _read_xlsx(data, path, aliases, required)
    return RawFile(raw, header, kind, None, digest, len(data), sheet, line)


def read_log_file(path: Path) -> tuple[pl.DataFrame, InputFile]:
    """Read one log file into the all-text frame, or raise InputFileError naming the problem."""
    frame, infos = read_logs([path])
    return frame, infos[0]


def read_logs(paths: Iterable[str | Path], progress=None) -> tuple[pl.DataFrame, list[InputFile]]:
    """Read every named file (directories expanded) into one frame; refuse a file that can't be read.

    The frame holds the eight SPEC columns as stripped text (blank = null), `source_file` and
    `source_row`. For large inputs use LogStream, which never holds more than a batch.
    """
    stream = LogStream(paths, progress=progress)
    while True:
        try:
            frames = list(stream.frames())
            break
        except NotUtf8Error as exc:
            stream.read_whole(exc.file_no)
    if not frames:
        empty = {f: pl.String for f in FIELDS} | {"source_file": pl.String, "source_row": pl.Int64}
        return pl.DataFrame(schema=empty), stream.inputs
    names = pl.DataFrame({"file_no": range(len(stream.files)), "source_file": stream.names})
    frame = (
        pl.concat(frames, how="vertical")
        .with_columns(pl.col(FIELDS).replace("", None))  # blank -> null, as sql/10_parse.sql does
        .join(names.with_columns(pl.col("file_no").cast(pl.Int32)), on="file_no", how="left")
        .select(*FIELDS, "source_file", "source_row")
    )
    return frame, stream.inputs


# --------------------------------------------------------------------------- streaming

#: Rows per batch handed to DuckDB: big enough to amortise, small enough to keep memory flat.
BATCH_ROWS = 256_000
#: Rows DuckDB validates at a time (Polars reads the next chunk meanwhile).
CHUNK_ROWS = 1_000_000
#: How much of a CSV is looked at to tell UTF-8 from GB18030 before streaming it.
SNIFF_BYTES = 1 << 20
STREAM_SCHEMA = pa.schema(
    [(f, pa.string_view()) for f in FIELDS] + [("file_no", pa.int32()), ("source_row", pa.int64())]
)


class NotUtf8Error(Exception):
    """A CSV streamed as UTF-8 turned out not to be (past the sniffed prefix): read it again."""

    def __init__(self, file_no: int):
        super().__init__(file_no)
        self.file_no = file_no


def _utf8_prefix(data: bytes) -> bool:
    """Whether a file's first bytes are UTF-8 (a character cut at the end is allowed)."""
    import codecs

    try:
        codecs.getincrementaldecoder("utf-8")().decode(data, final=False)
        return True
    except UnicodeDecodeError:
        return False


class _Hasher:
    """SHA-256 and size of a file, read in a background thread (hashlib releases the GIL)."""

    def __init__(self, path: Path):
        import threading

        self.path, self.digest, self.size, self.error = path, hashlib.sha256(), 0, None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            with self.path.open("rb") as fh:
                while chunk := fh.read(1 << 22):
                    self.digest.update(chunk)
                    self.size += len(chunk)
        except OSError as exc:  # pragma: no cover - the file vanished while being read
            self.error = exc

    def result(self) -> tuple[str, int]:
        self.thread.join()
        if self.error is not None:  # pragma: no cover
            raise InputFileError(self.path, f"无法读取：{self.error}")
        return self.digest.hexdigest(), self.size


class LogStream:
    """The log files of a run, read batch by batch with Polars (SPEC §2).

    Opening checks every file's type, encoding and header, so an unreadable file is refused
    before anything else happens. `batches()` then yields Arrow record batches with the eight
    SPEC columns as text stripped of surrounding white space (sql/10_parse.sql makes blank
    NULL), `file_no`
    (index into `names`) and `source_row` (1-based data row). UTF-8 CSV is streamed straight
    from disk while a thread computes its SHA-256; GB18030 CSV, Parquet and XLSX are read whole.
    `inputs` describes each file once it has been read through; `header_lines` where each file's
    header is (data row n is line n + header_line as Excel shows it); `skipped` what the named
    directories held besides logs. Two files with the same content are refused.
    """

    def __init__(self, paths: Iterable[str | Path], progress=None, batch_rows: int = BATCH_ROWS):
        self.files, self.skipped = expand_paths(paths)
        self.names = [str(p) for p in self.files]
        self.progress = progress
        self.batch_rows = batch_rows
        self.inputs: list[InputFile] = []
        self._eager: dict[int, RawFile] = {}
        self._streamed: dict[int, tuple[str, str, dict[str, str]]] = {}
        for skipped in self.skipped:
            if progress:
                progress(f"跳过 {skipped.path}（{skipped.reason}）")
        refuse_identical(self.files)
        for no, path in enumerate(self.files):
            self._open(no, path)
        self.header_lines = [
            self._eager[no].header_line if no in self._eager else 1 for no in range(len(self.files))
        ]

    @classmethod
    def from_frame(cls, frame: pl.DataFrame) -> LogStream:
        """A stream over an all-text frame that has `source_file` and `source_row` (tests)."""
        stream = cls([])
        names = frame.get_column("source_file").unique(maintain_order=True).to_list()
        stream.names = names
        stream.header_lines = [1] * len(names)
        stream._frame = frame.with_columns(
            file_no=pl.col("source_file").replace_strict(
                names, list(range(len(names))), return_dtype=pl.Int32
            )
        ).select(*FIELDS, "file_no", pl.col("source_row").cast(pl.Int64))
        return stream

    def _open(self, no: int, path: Path) -> None:
        try:
            with path.open("rb") as fh:
                head = fh.read(SNIFF_BYTES)
        except OSError as exc:
            raise InputFileError(path, f"无法打开：{exc.strerror}") from None
        kind = _kind(path, head)
        if kind != "csv" or not _utf8_prefix(head):
            self._read_whole(no, path)
            return
        encoding = "utf-8-sig" if head.startswith(b"\xef\xbb\xbf") else "utf-8"
        body = head[3:] if encoding == "utf-8-sig" else head
        if not body.strip() and path.stat().st_size <= len(head):
            raise InputFileError(path, "文件为空")
        separator = _sniff_separator(body)
        try:
            columns = self._scan(path, separator).collect_schema().names()
        except Exception as exc:  # noqa: BLE001 - polars raises several kinds
            raise InputFileError(path, f"CSV 无法解析：{_first_line(exc)}") from None
        header = _csv_header(body.decode("utf-8", errors="ignore"), separator)
        self._streamed[no] = (encoding, separator, frame_mapping(header, columns, path))

    def _read_whole(self, no: int, path: Path) -> None:
        raw = read_raw(path)
        raw.mapping(path)  # refuse a missing or repeated column now
        self._eager[no] = raw

    @staticmethod
    def _scan(path: Path, separator: str) -> pl.LazyFrame:
        return pl.scan_csv(
            path, infer_schema=False, separator=separator, raise_if_empty=True, encoding="utf8"
        )

    def frames(self) -> Iterator[pl.DataFrame]:
        """The batches as Polars frames (FIELDS as raw text, file_no, source_row)."""
        if hasattr(self, "_frame"):
            if self._frame.height:
                yield from self._frame.iter_slices(self.batch_rows)
            return
        self.inputs = []
        for no, path in enumerate(self.files):
            if no in self._eager:
                yield from self._whole_file(no, path)
            else:
                yield from self._stream_file(no, path)
            if self.progress:
                info = self.inputs[-1]
                where = (
                    f"工作表“{info.sheet}”，表头在第 {info.header_line} 行，" if info.sheet else ""
                )
                self.progress(f"读取 {no + 1}/{len(self.files)}: {path}（{where}{info.rows:,} 行）")

    def batches(self) -> Iterator[pa.RecordBatch]:
        """The batches as Arrow record batches of STREAM_SCHEMA."""
        for frame in self.frames():
            # string views: what Polars holds, and the layout of DuckDB's own strings
            table = frame.to_arrow(compat_level=pl.CompatLevel.newest()).cast(STREAM_SCHEMA)
            yield from table.to_batches()

    def chunks(self, rows: int | None = None) -> Iterator[pa.Table]:
        """The batches gathered into Arrow tables of about `rows` (default CHUNK_ROWS) rows
        (DuckDB scans a table's batches in parallel)."""
        rows = rows or CHUNK_ROWS
        pending: list[pa.RecordBatch] = []
        count = 0
        for batch in self.batches():
            pending.append(batch)
            count += batch.num_rows
            if count >= rows:
                yield pa.Table.from_batches(pending, STREAM_SCHEMA)
                pending, count = [], 0
        if pending:
            yield pa.Table.from_batches(pending, STREAM_SCHEMA)

    @staticmethod
    def empty() -> pa.Table:
        """A table of STREAM_SCHEMA with no rows."""
        return STREAM_SCHEMA.empty_table()

    def _whole_file(self, no: int, path: Path) -> Iterator[pl.DataFrame]:
        raw = self._eager[no]
        frame = (
            normalise(raw.frame, path, str(path), raw.mapping(path))
            .with_columns(file_no=pl.lit(no, dtype=pl.Int32))
            .select(*FIELDS, "file_no", "source_row")
        )
        if frame.height:
            yield from frame.iter_slices(self.batch_rows)
        self.inputs.append(
            InputFile(
                str(path),
                raw.format,
                raw.encoding,
                raw.sha256,
                raw.size_bytes,
                frame.height,
                raw.header_line,
                raw.sheet,
            )
        )

    def _stream_file(self, no: int, path: Path) -> Iterator[pl.DataFrame]:
        encoding, separator, mapping = self._streamed[no]
        hasher = _Hasher(path)
        lazy = self._scan(path, separator).select(
            [
                pl.col(mapping[f]).str.strip_chars().alias(f)
                if f in mapping
                else pl.lit(None, pl.String).alias(f)
                for f in FIELDS
            ]
        )
        rows = 0
        batches = lazy.collect_batches(chunk_size=self.batch_rows)
        while True:
            try:
                batch = next(batches)
            except StopIteration:
                break
            except Exception as exc:  # noqa: BLE001 - polars raises several kinds
                hasher.result()
                problem = _first_line(exc)
                if "utf-8" in problem.lower() or "utf8" in problem.lower():
                    raise NotUtf8Error(no) from None
                if "more fields" in problem:
                    problem = _ragged_row(path.read_bytes(), separator)
                raise InputFileError(path, f"CSV 无法解析：{problem}") from None
            yield batch.with_columns(
                file_no=pl.lit(no, dtype=pl.Int32),
                source_row=pl.int_range(rows + 1, rows + batch.height + 1, dtype=pl.Int64),
            )
            rows += batch.height
        digest, size = hasher.result()
        self.inputs.append(InputFile(str(path), "csv", encoding, digest, size, rows))

    def read_whole(self, no: int) -> None:
        """After NotUtf8Error: read that file whole (GB18030, or a clear refusal) next time."""
        self._streamed.pop(no, None)
        self._read_whole(no, self.files[no])

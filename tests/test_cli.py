"""End-to-end through click's runner: settle run, validate, sample, demo; exit codes."""

from __future__ import annotations

import hashlib
import json

import duckdb
import polars as pl
import pytest
from click.testing import CliRunner
from conftest import V1, V2, make_config, policy_text

from settlement.cli import main

HEADER = "waybill_no,company,delivered_at,village_code,distance_km,cost_yuan,revenue_yuan,proof\n"


def csv(path, *lines):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + "".join(line + "\n" for line in lines), encoding="utf-8")
    return path


def invoke(*args):
    result = CliRunner().invoke(main, [str(a) for a in args])
    return result


@pytest.fixture
def cfg_dir(tmp_path):
    return make_config(tmp_path / "config", policy_text(rule="ytd", annual="0.60"))


def run(cfg_dir, out, month, *logs, store=None, extra=()):
    args = ["run", "--league", "150700", "--month", month, "--config", cfg_dir, "--out", out, "-q"]
    for log in logs:
        args += ["--logs", log]
    if store:
        args += ["--store", store]
    return invoke(*args, *extra)


def test_run_writes_spec_outputs_and_manifest(tmp_path, cfg_dir, monkeypatch):
    logs = csv(
        tmp_path / "logs" / "zto.csv",
        f"A1,ZTO,2025-03-05 10:00,{V1},12,2.00,0,签名",
        f"A2,ZTO,2025-03-06 10:00,{V2},5,2.00,0,签名",
        f"A3,XX,2025-03-06 10:00,{V2},5,2.00,0,签名",
    )
    out = tmp_path / "out"
    result = run(cfg_dir, out, "2025-03", logs)
    assert result.exit_code == 0, result.output
    assert "受理 2 件，剔除 1 行" in result.output
    assert "应付补贴 0.25 元（25 分）" in result.output
    part = "league=150700/month=2025-03"
    for kind in ("ledger", "rejects", "units"):
        assert (out / kind / part / "part-0.parquet").is_file()
    manifest = json.loads((out / "manifests" / "league=150700" / "month=2025-03.json").read_text())
    assert manifest["counts"] == {
        "rows_in": 3,
        "parcels": 2,
        "rejects": 1,
        "by_reason": {"UNKNOWN_COMPANY": 1},
    }
    assert manifest["totals"]["subsidy_fen"] == 25
    assert manifest["inputs"][0]["sha256"] == hashlib.sha256(logs.read_bytes()).hexdigest()
    assert (manifest["inputs"][0]["accepted"], manifest["inputs"][0]["rejected"]) == (2, 1)
    for o in manifest["outputs"]:
        assert hashlib.sha256((out / o["path"]).read_bytes()).hexdigest() == o["sha256"]
    assert (
        manifest["config_files"]["policies/150700.toml"]
        == hashlib.sha256((cfg_dir / "policies" / "150700.toml").read_bytes()).hexdigest()
    )
    ledger = pl.read_parquet(out / "ledger" / part / "part-0.parquet")
    spec_columns = [
        "waybill_no",
        "company",
        "village_code",
        "county_code",
        "delivered_at",
        "distance_km",
        "cost_yuan",
        "revenue_yuan",
        "area_class",
        "policy_version",
        "rate_fen",
        "unit_key",
        "subsidy_fen",
        "source_file",
        "source_row",
        "run_id",
    ]
    assert set(spec_columns) <= set(ledger.columns)
    rejects = pl.read_parquet(out / "rejects" / part / "part-0.parquet")
    assert rejects.select(
        "source_row", "waybill_no", "company", "reason_code", "reason"
    ).rows() == [(3, "A3", "XX", "UNKNOWN_COMPANY", "快递企业编码未登记")]
    units = pl.read_parquet(out / "units" / part / "part-0.parquet")
    assert {
        "unit_key",
        "parcels",
        "gross_fen",
        "cost_yuan",
        "revenue_yuan",
        "cap_fen",
        "after_breakeven_fen",
        "subsidy_fen",
    } <= set(units.columns)
    # the auditors' views work on a read-only connection, opened from the output folder
    monkeypatch.chdir(out)
    con = duckdb.connect("settlement.duckdb", read_only=True)
    assert con.execute(
        "SELECT SUM(subsidy_fen), MIN(league), MIN(month) FROM ledger"
    ).fetchall() == [(25, "150700", "2025-03")]
    assert con.execute("SELECT COUNT(*) FROM rejects").fetchall() == [(1,)]
    con.close()
    assert not (out / ".staging").exists()


def test_rerun_replaces_outputs_and_supersedes(tmp_path, cfg_dir, monkeypatch):
    out = tmp_path / "out"
    first = csv(tmp_path / "a.csv", f"A1,ZTO,2025-03-05 10:00,{V1},12,2.00,0,签名")
    second = csv(tmp_path / "b.csv", f"B1,ZTO,2025-03-05 10:00,{V2},5,2.00,0,签名")
    assert run(cfg_dir, out, "2025-03", first).exit_code == 0
    result = run(cfg_dir, out, "2025-03", second, extra=["--replace"])
    assert result.exit_code == 0 and "已取代此前批次" in result.output
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    journal = [f for f in files if f.startswith("journal/")]
    assert len(journal) == 2  # the journal keeps both runs' manifests
    files = [f for f in files if not f.startswith("journal/")]
    assert files == [
        "ledger/league=150700/month=2025-03/part-0.parquet",
        "manifests/league=150700/month=2025-03.json",
        "rejects/league=150700/month=2025-03/part-0.parquet",
        "settlement.duckdb",
        "settlement.duckdb.lock",
        "statements/league=150700/month=2025-03/ZTO.html",
        "statements/league=150700/month=2025-03/ZTO.xlsx",
        "statements/league=150700/month=2025-03/public_notice.csv",
        "statements/league=150700/month=2025-03/public_notice.html",
        "statements/league=150700/month=2025-03/statements.json",
        "statements/league=150700/month=2025-03/summary.html",
        "statements/league=150700/month=2025-03/summary.xlsx",
        "units/league=150700/month=2025-03/part-0.parquet",
    ]
    monkeypatch.chdir(out)
    con = duckdb.connect("settlement.duckdb", read_only=True)
    assert con.execute("SELECT waybill_no FROM ledger").fetchall() == [("B1",)]
    runs = con.execute(
        "SELECT status, superseded_by IS NOT NULL FROM runs ORDER BY started_at"
    ).fetchall()
    assert runs == [("superseded", True), ("current", False)]
    assert con.execute("SELECT waybill_no FROM settled_waybills").fetchall() == [("B1",)]
    con.close()


def test_already_settled_and_ytd_budget_across_months(tmp_path, cfg_dir):
    # annual budget 0.60 元 = 60 分, ytd. February pays 15 + 10 = 25; March has 35 left.
    out = tmp_path / "out"
    feb = csv(
        tmp_path / "feb.csv",
        f"F1,ZTO,2025-02-05 10:00,{V1},12,2.00,0,签名",
        f"F2,ZTO,2025-02-06 10:00,{V2},5,2.00,0,签名",
    )
    assert run(cfg_dir, out, "2025-02", feb).exit_code == 0
    mar = csv(
        tmp_path / "mar.csv",
        f"F1,YTO,2025-03-05 10:00,{V1},12,2.00,0,签名",
        *[f"M{i},ZTO,2025-03-0{i + 1} 10:00,{V1},12,2.00,0,签名" for i in range(3)],
    )
    result = run(cfg_dir, out, "2025-03", mar)
    assert result.exit_code == 0, result.output
    manifest = json.loads((out / "manifests/league=150700/month=2025-03.json").read_text())
    assert manifest["counts"]["by_reason"] == {"ALREADY_SETTLED": 1}
    assert manifest["budget"]["paid_before_fen"] == 25
    assert manifest["budget"]["available_fen"] == 35
    assert manifest["totals"]["subsidy_fen"] == 35  # requested 45, prorated to 35
    rejects = pl.read_parquet(out / "rejects/league=150700/month=2025-03/part-0.parquet")
    # F1 was paid to ZTO in February; YTO's row is told only that another company was paid
    assert rejects["detail"].to_list() == ["该运单已由另一企业结算"]
    # re-running February does not reject its own waybills
    again = run(cfg_dir, out, "2025-02", feb, extra=["--replace"])
    assert again.exit_code == 0 and "受理 2 件" in again.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--month", "2025-3"], "结算月份“2025-3”格式错误"),
        (["--month", "2025-13"], "格式错误"),
        (["--league", "1507"], "应为6位数字"),
    ],
)
def test_run_bad_arguments_exit_2(tmp_path, cfg_dir, args, message):
    logs = csv(tmp_path / "a.csv", f"A1,ZTO,2025-03-05 10:00,{V1},12,2.00,0,签名")
    base = {"--league": "150700", "--month": "2025-03"}
    base.update(dict(zip(args[::2], args[1::2], strict=True)))
    flat = [x for kv in base.items() for x in kv]
    result = invoke("run", *flat, "--logs", logs, "--config", cfg_dir, "--out", tmp_path / "out")
    assert result.exit_code == 2
    assert message in result.output
    assert not (tmp_path / "out").exists()


def test_run_unreadable_input_exit_2_writes_nothing(tmp_path, cfg_dir):
    good = csv(tmp_path / "good.csv", f"A1,ZTO,2025-03-05 10:00,{V1},12,2.00,0,签名")
    bad = tmp_path / "bad.csv"
    bad.write_text("运单号,快递企业\nA,ZTO\n", encoding="utf-8")
    result = run(cfg_dir, tmp_path / "out", "2025-03", good, bad)
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        f"错误：无法读取输入文件 {bad}: 缺少必需的列 delivered_at（签收时间）、village_code（嘎查村代码）、"
        "distance_km（派送距离）、cost_yuan（派送成本）"
    ]
    assert not (tmp_path / "out").exists()


def test_run_config_error_exit_2(tmp_path):
    cfg = make_config(
        tmp_path / "config", policy_text().replace("cap_yuan = 0.30", "cap_yuan = 0.35")
    )
    logs = csv(tmp_path / "a.csv", f"A1,ZTO,2025-03-05 10:00,{V1},12,2.00,0,签名")
    result = run(cfg, tmp_path / "out", "2025-03", logs)
    assert result.exit_code == 2
    assert "配置错误" in result.output and "version[0].cap_yuan" in result.output
    assert "0.35 元超过每件 0.30 元的上限" in result.output


def test_run_league_without_policy_exit_2(tmp_path, cfg_dir):
    logs = csv(tmp_path / "a.csv", f"A1,ZTO,2025-03-05 10:00,{V1},12,2.00,0,签名")
    result = invoke(
        "run",
        "--league",
        "150800",
        "--month",
        "2025-03",
        "--logs",
        logs,
        "--config",
        cfg_dir,
        "--out",
        tmp_path / "out",
    )
    assert result.exit_code == 2 and "该盟市没有补贴政策配置文件" in result.output


def test_run_other_failure_exit_1(tmp_path, cfg_dir):
    logs = csv(tmp_path / "a.csv", f"A1,ZTO,2025-03-05 10:00,{V1},12,2.00,0,签名")
    blocker = tmp_path / "out"
    blocker.write_text("a file where the output directory should be")
    result = run(cfg_dir, blocker, "2025-03", logs)
    assert result.exit_code == 1
    assert result.output.startswith("内部错误：")
    assert "Traceback" not in result.output


def test_validate_reports_and_writes_nothing(tmp_path, cfg_dir):
    logs = csv(
        tmp_path / "in" / "zto.csv",
        f"A1,ZTO,2025-03-05 10:00,{V1},12,2.00,0,签名",
        f"A2,ZTO,2025-03-05 10:00,{V1},五公里,2.00,0,签名",
        f"A1,ZTO,2025-03-06 10:00,{V1},12,2.00,0,签名",
    )
    before = sorted(tmp_path.rglob("*"))
    result = invoke(
        "validate", logs, "--league", "150700", "--month", "2025-03", "--config", cfg_dir
    )
    assert result.exit_code == 0, result.output
    assert sorted(tmp_path.rglob("*")) == before
    lines = result.output.splitlines()
    assert lines[0] == "预检 150700 2025-03：共 3 行，可受理 1 行，将剔除 2 行"
    assert f"  {logs}（csv utf-8）：3 行，受理 1，剔除 2" in lines
    # rows as Excel shows them: the header is line 1
    assert f"  {logs} 第 3 行  运单号 A2：派送距离(distance_km)“五公里”不是数字" in lines
    assert f"  {logs} 第 4 行  运单号 A1：与 {logs} 第 2 行的运单号相同，该行已受理" in lines


def test_validate_rejects_out(tmp_path, cfg_dir):
    logs = csv(tmp_path / "zto.csv", f"A2,ZTO,2025-03-05 10:00,{V1},x,2.00,0,签名")
    target = tmp_path / "rejects.csv"
    result = invoke(
        "validate",
        logs,
        "--league",
        "150700",
        "--month",
        "2025-03",
        "--config",
        cfg_dir,
        "--rejects-out",
        target,
    )
    assert result.exit_code == 0
    df = pl.read_csv(target, infer_schema=False)
    assert df.select("waybill_no", "reason_code").rows() == [("A2", "MALFORMED")]


def test_validate_checks_already_settled_against_a_store(tmp_path, cfg_dir):
    out = tmp_path / "out"
    assert (
        run(
            cfg_dir,
            out,
            "2025-02",
            csv(tmp_path / "f.csv", f"F1,ZTO,2025-02-05 10:00,{V1},12,2.00,0,签名"),
        ).exit_code
        == 0
    )
    mar = csv(tmp_path / "m.csv", f"F1,ZTO,2025-03-05 10:00,{V1},12,2.00,0,签名")
    result = invoke(
        "validate",
        mar,
        "--league",
        "150700",
        "--month",
        "2025-03",
        "--config",
        cfg_dir,
        "--store",
        out / "settlement.duckdb",
    )
    assert "ALREADY_SETTLED 该运单已在其他月份结算（共 1 行）" in result.output


@pytest.mark.parametrize("fmt", ["csv", "gbk", "parquet", "xlsx"])
def test_sample_formats_are_readable_and_seeded(tmp_path, fmt):
    ext = {"gbk": "csv"}.get(fmt, fmt)
    a, b = tmp_path / f"a.{ext}", tmp_path / f"b.{ext}"
    for target in (a, b):
        result = invoke(
            "sample",
            "--league",
            "152900",
            "--month",
            "2025-03",
            "--rows",
            400,
            "--format",
            fmt,
            "--faults",
            "0.02",
            "--seed",
            7,
            "-o",
            target,
        )
        assert result.exit_code == 0, result.output
    from settlement.ingest import read_log_file

    da, ia = read_log_file(a)
    db, _ = read_log_file(b)
    assert da.drop("source_file").equals(db.drop("source_file"))
    assert da.height == 400
    if fmt == "gbk":
        assert ia.encoding == "gb18030"
    check = invoke("validate", a, "--league", "152900", "--month", "2025-03")
    for code in (
        "MALFORMED",
        "UNKNOWN_COMPANY",
        "UNKNOWN_VILLAGE",
        "WRONG_LEAGUE",
        "NOT_RURAL",
        "OUTSIDE_PERIOD",
        "BAD_DISTANCE",
        "BAD_COST",
        "DUPLICATE",
    ):
        assert f"\n{code} " in check.output, code


def test_sample_unknown_fault_kind(tmp_path):
    result = invoke(
        "sample",
        "--league",
        "150700",
        "--month",
        "2025-03",
        "--fault",
        "typo=0.1",
        "-o",
        tmp_path / "x.csv",
    )
    assert result.exit_code == 2 and "未知的错误类型 typo" in result.output


def test_demo_settles_the_bundled_sample(tmp_path):
    result = invoke("demo", "--out", tmp_path / "demo", "-q")
    assert result.exit_code == 0, result.output
    assert result.output.count("结算完成") == 4
    store = tmp_path / "demo" / "settlement.duckdb"
    query = (
        "SELECT league, month, company, SUM(subsidy_fen) AS subsidy_fen, "
        "SUM(subsidy_fen) * 0.01 AS yuan FROM ledger GROUP BY ALL ORDER BY ALL"
    )
    assert result.output.endswith(
        f"样例结算合计应付补贴 582.77 元；输出在 {tmp_path / 'demo'}/\n"
        f'审计查询（只读）：settle sql "{query}" --store {store}\n'
        "预置查询：settle query --list\n"
    )
    assert "duckdb " not in result.output  # the DuckDB CLI is not installed with the engine
    suggested = invoke("sql", query, "--store", store, "--format", "csv")
    assert suggested.exit_code == 0, suggested.output
    assert suggested.output.splitlines()[:2] == [
        "league,month,company,subsidy_fen,yuan",
        "150300,2025-06,DBL,51,0.51",
    ]
    codes = set()
    for manifest in (tmp_path / "demo" / "manifests").rglob("*.json"):
        codes |= set(json.loads(manifest.read_text())["counts"]["by_reason"])
    from settlement.reasons import REASONS

    assert codes == set(REASONS)  # the sample has every fault kind
    # the mark names exactly the runs the demo made, so the next demo may clear the directory
    from settlement import demo
    from settlement.store import list_runs

    mark = json.loads((tmp_path / "demo" / demo.MARKER).read_text(encoding="utf-8"))
    assert mark["runs"] == [r["run_id"] for r in list_runs(store)]
    demo.prepare(tmp_path / "demo")
    assert [p.name for p in (tmp_path / "demo").iterdir()] == [demo.MARKER]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["run", "--month", "2025-03"],
            "错误：缺少必需的参数 --league（用 settle run --help 查看用法）",
        ),
        (["run", "--bogus"], "错误：没有选项 --bogus（用 settle run --help 查看用法）"),
        (["nosuch"], "错误：没有这个命令：nosuch（用 settle --help 查看用法）"),
    ],
)
def test_usage_errors_are_one_line(args, message):
    result = CliRunner().invoke(main, args, prog_name="settle")
    assert result.exit_code == 2
    assert result.output.splitlines() == [message]


def test_demo_refuses_to_clear_a_directory_that_is_not_its_own(tmp_path):
    (tmp_path / "thesis.docx").write_text("precious")
    assert_demo_refuses(
        tmp_path, f"{tmp_path} 不是空目录，也不是 settle demo 建立的目录（其中有 thesis.docx）"
    )
    assert (tmp_path / "thesis.docx").read_text() == "precious"


def test_progress_on_stderr_and_quiet(tmp_path, cfg_dir):
    logs = csv(
        tmp_path / "logs" / "zto.csv",
        f"A1,ZTO,2025-03-05 10:00,{V1},12,2.00,0,签名",
        f"A2,ZTO,2025-03-06 10:00,{V2},5,2.00,0,签名",
    )
    args = ["run", "--league", "150700", "--month", "2025-03", "--config", cfg_dir]
    loud = CliRunner().invoke(
        main, [str(a) for a in [*args, "--out", tmp_path / "a", "--logs", logs]]
    )
    assert loud.exit_code == 0, loud.output
    lines = [line.removeprefix("[settle] ") for line in loud.stderr.splitlines()]
    steps = [
        f"读取 1/1: {logs}（2 行）",
        "已读取并校验 2 行",
        "共读取 2 行，开始结算 150700 2025-03",
        "执行 sql/22_repeats.sql",
        "执行 sql/70_ledger.sql",
        "写出 Parquet",
        "生成结算单",
        "发布",
        "写入结算库",
        "完成：2 件受理，补贴 25 分",
    ]
    assert [line for line in lines if line in steps] == steps  # each once, in this order
    quiet = CliRunner().invoke(
        main, [str(a) for a in [*args, "--out", tmp_path / "b", "--logs", logs, "-q"]]
    )
    assert quiet.exit_code == 0, quiet.output
    assert quiet.stderr == ""
    assert "应付补贴 0.25 元（25 分）" in quiet.stdout


def _hashes(root):
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _seal(store, month, start, end):
    result = invoke(
        "seal",
        "--league",
        "150700",
        "--month",
        month,
        "--store",
        store,
        "--reviewed-by",
        "王审核",
        "--notice-start",
        start,
        "--notice-end",
        end,
        "--approved-by",
        "赵审批",
        "--approval-ref",
        "呼邮管〔2025〕7号",
    )
    assert result.exit_code == 0, result.output


def test_demo_never_deletes_a_store_with_sealed_months(tmp_path, cfg_dir):
    out = tmp_path / "office"
    feb = csv(tmp_path / "feb.csv", f"F1,ZTO,2025-02-05 10:00,{V1},12,2.00,0,签名")
    mar = csv(tmp_path / "mar.csv", f"M1,ZTO,2025-03-05 10:00,{V1},12,2.00,0,签名")
    assert run(cfg_dir, out, "2025-02", feb).exit_code == 0
    assert run(cfg_dir, out, "2025-03", mar).exit_code == 0
    _seal(out / "settlement.duckdb", "2025-02", "2025-03-03", "2025-03-09")
    _seal(out / "settlement.duckdb", "2025-03", "2025-04-02", "2025-04-08")
    before = _hashes(out)
    entries = sorted(p.name + ("/" if p.is_dir() else "") for p in out.iterdir())
    assert_demo_refuses(
        out,
        f"{out} 不是空目录，也不是 settle demo 建立的目录（其中有 "
        f"{'、'.join(entries[:4])} 等 {len(entries)} 项；结算库 settlement.duckdb 中有 "
        "2 个结算批次，2 个已封存的月份）",
    )
    assert _hashes(out) == before


def assert_demo_refuses(out, what):
    """`settle demo --out out` exits 2 with one line: what is there, and what to do."""
    result = invoke("demo", "--out", out, "-q")
    assert (result.exit_code, result.output) == (
        2,
        f"错误：{what}；演示不会清空它；请用 --out 指定一个新目录或空目录\n",
    )


@pytest.fixture
def demo_dir(tmp_path, cfg_dir):
    """A directory `settle demo` made (an empty one with its mark), then a run the demo did not
    make settled into it: (the directory, the run's id)."""
    from settlement import demo

    out = tmp_path / "demo"
    demo.prepare(out)
    assert [p.name for p in out.iterdir()] == [demo.MARKER]
    feb = csv(tmp_path / "feb.csv", f"F1,ZTO,2025-02-05 10:00,{V1},12,2.00,0,签名")
    assert run(cfg_dir, out, "2025-02", feb).exit_code == 0
    (run_id,) = [p.stem for p in (out / "journal").glob("*.json")]
    return out, run_id


def test_demo_clears_only_a_directory_holding_nothing_but_its_own_runs(demo_dir):
    from settlement import demo

    out, run_id = demo_dir
    before = _hashes(out)
    assert_demo_refuses(
        out, f"{out} 由 settle demo 建立，但其中又有不是演示产生的结算批次 {run_id}"
    )
    assert _hashes(out) == before
    demo.record(out, run_id)  # had the demo made it, the directory would be the demo's
    (out / "notes.txt").write_text("mine")
    assert_demo_refuses(out, f"{out} 由 settle demo 建立，但其中又有不是演示输出的文件 notes.txt")
    (out / "notes.txt").unlink()
    _seal(out / "settlement.duckdb", "2025-02", "2025-03-03", "2025-03-09")
    assert_demo_refuses(out, f"{out} 由 settle demo 建立，但其中又有已封存的月份 150700 2025-02")
    assert (out / "settlement.duckdb").is_file()


def test_demo_clears_its_own_directory_and_refuses_a_file_or_a_forged_mark(tmp_path, demo_dir):
    from settlement import demo

    out, run_id = demo_dir
    demo.record(out, run_id)
    demo.prepare(out)  # everything in it is the demo's: cleared
    assert [p.name for p in out.iterdir()] == [demo.MARKER]
    assert json.loads((out / demo.MARKER).read_text(encoding="utf-8"))["runs"] == []

    (out / demo.MARKER).write_text("{}")
    (out / "ledger").mkdir()
    assert_demo_refuses(out, f"{out / demo.MARKER} 不是 settle demo 写下的标记文件")
    assert (out / "ledger").is_dir()
    a_file = tmp_path / "report.pdf"
    a_file.write_text("x")
    refused = invoke("demo", "--out", a_file, "-q")
    assert refused.exit_code == 2
    assert refused.output == f"错误：{a_file} 是一个文件，不是目录；请用 --out 指定一个目录\n"
    assert a_file.read_text() == "x"
    missing = invoke("demo", "--out", tmp_path / "d2", "--data", tmp_path / "nowhere", "-q")
    assert missing.exit_code == 2
    assert missing.output == f"错误：样例数据目录 {tmp_path / 'nowhere'} 不存在\n"
    assert not (tmp_path / "d2").exists()


@pytest.mark.parametrize(
    ("output", "fmt", "message"),
    [
        ("x.json", None, "错误：不能写出 x.json：输出文件的扩展名应为 .csv、.parquet、.xlsx 之一"),
        ("x.txt", "csv", "错误：不能写出 x.txt：输出文件的扩展名应为 .csv、.parquet、.xlsx 之一"),
        (
            "x.csv",
            "parquet",
            "错误：--format parquet 写出的是 .parquet 文件，与输出文件 x.csv 的扩展名不符；"
            "请把文件名改为 x.parquet，或去掉 --format 按扩展名写出",
        ),
        (
            "x.parquet",
            "gbk",
            "错误：--format gbk 写出的是 .csv 文件，与输出文件 x.parquet 的扩展名不符；"
            "请把文件名改为 x.csv，或去掉 --format 按扩展名写出",
        ),
    ],
)
def test_sample_refuses_an_extension_it_cannot_write(tmp_path, output, fmt, message):
    args = ["sample", "--league", "150700", "--month", "2025-03", "--rows", 5]
    args += ["-o", tmp_path / output] + (["--format", fmt] if fmt else [])
    result = invoke(*args)
    assert result.exit_code == 2
    assert result.output == message + "\n"
    assert list(tmp_path.iterdir()) == []


def test_sample_format_follows_the_extension_in_any_case(tmp_path):
    result = invoke(
        "sample", "--league", "150700", "--month", "2025-03", "--rows", 5, "-o", tmp_path / "x.XLSX"
    )
    assert result.exit_code == 0, result.output
    assert result.output == f"已生成 {tmp_path / 'x.XLSX'}（xlsx，5 行）\n"
    assert (tmp_path / "x.XLSX").read_bytes()[:2] == b"PK"


def test_sample_urban_moves_a_share_of_rows_to_urban_villages(tmp_path):
    """`--urban 0.3`: 30 % of the rows go to the 盟市's urban villages (NOT_RURAL), the other
    rows are the same as without it (the urban rows are drawn apart)."""
    from settlement import DEFAULT_CONFIG_DIR
    from settlement.config import load_config

    plain, urban = tmp_path / "plain.csv", tmp_path / "urban.csv"
    for target, extra in ((plain, ()), (urban, ("--urban", "0.3"))):
        args = ("sample", "--league", "152500", "--month", "2025-03", "--rows", 1000)
        result = invoke(*args, "--seed", 3, *extra, "-o", target)
        assert result.exit_code == 0, result.output
    a, b = pl.read_csv(plain, infer_schema=False), pl.read_csv(urban, infer_schema=False)
    assert a.drop("village_code").equals(b.drop("village_code"))
    moved = b.filter(a["village_code"] != b["village_code"])
    assert moved.height == 300
    villages = load_config(DEFAULT_CONFIG_DIR).villages
    codes = villages.filter(pl.col("code").is_in(moved["village_code"].to_list()))
    assert set(codes["league_code"]) == {"152500"}
    assert not set(codes["urban_rural_code"]) & {"210", "220"}
    check = invoke("validate", urban, "--league", "152500", "--month", "2025-03")
    assert "可受理 700 行，将剔除 300 行" in check.output
    assert "NOT_RURAL" in check.output
    too_many = invoke(*args, "--urban", "0.95", "-o", tmp_path / "x.csv")
    assert too_many.exit_code == 2 and "0.95" in too_many.output

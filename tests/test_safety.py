"""The field trial's ordinary mistakes (SPEC §8): a moved or copied store, a re-run without
--replace, the wrong month or 盟市, a stale month, a premature or blank seal, a store that does
not exist, validate on a sealed month, explain of a supplementary parcel, and the events."""

from __future__ import annotations

import hashlib
import shutil
from decimal import Decimal

import duckdb
import pytest
from click.testing import CliRunner
from conftest import V1, make_config, policy_text

from settlement import DEFAULT_CONFIG_DIR, SAMPLE_DATA_DIR
from settlement.cli import main
from settlement.store import connect_readonly

HEADER = "waybill_no,company,delivered_at,village_code,distance_km,cost_yuan,revenue_yuan,proof\n"


def p(waybill, day, km="12", village=V1, company="ZTO", cost="2.00", revenue="0"):
    """A parcel row; at 12 km the test policy pays 15 分 (5 km: 10 分, until 03-15)."""
    return f"{waybill},{company},{day} 10:00,{village},{km},{cost},{revenue},签名"


def sha(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


class Desk:
    """A settlement officer at the command line, with one output folder and its store."""

    def __init__(self, tmp_path, **knobs):
        self.root = tmp_path
        self.cfg = make_config(tmp_path / "config", policy_text(**knobs))
        self.out = tmp_path / "out"
        self.store = self.out / "settlement.duckdb"
        self.n = 0

    def cli(self, *args, env=None):
        return CliRunner().invoke(main, [str(a) for a in args], env=env)

    def logs(self, month, *lines):
        self.n += 1
        path = self.root / "logs" / f"{self.n}-{month}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(HEADER + "".join(f"{x}\n" for x in lines), encoding="utf-8")
        return path

    def run(self, month, *lines, flags=(), expect=0, env=None):
        result = self.cli(
            "run",
            "--league",
            "150700",
            "--month",
            month,
            "--logs",
            self.logs(month, *lines),
            "--config",
            self.cfg,
            "--out",
            self.out,
            "-q",
            *flags,
            env=env,
        )
        assert result.exit_code == expect, result.output
        return result

    def seal(
        self, month, notice_start, notice_end, reviewer="审核员", approver="审批人", ref="文1"
    ):
        return self.cli(
            "seal",
            "--league",
            "150700",
            "--month",
            month,
            "--store",
            self.store,
            "--config",
            self.cfg,
            "--reviewed-by",
            reviewer,
            "--notice-start",
            notice_start,
            "--notice-end",
            notice_end,
            "--approved-by",
            approver,
            "--approval-ref",
            ref,
        )

    def sql(self, query):
        con = connect_readonly(self.store)
        try:
            return con.execute(query).fetchall()
        finally:
            con.close()


# --------------------------------------------------------------------------- §8.2 relocatable


def test_moved_and_copied_store_answers_from_its_new_place(tmp_path):
    desk = Desk(tmp_path)
    desk.run("2025-02", p("F1", "2025-02-05"), p("F2", "2025-02-06", company="YTO"))
    desk.run("2025-03", p("F1", "2025-03-05"), p("M1", "2025-03-06"))
    assert desk.sql("SELECT DISTINCT out_dir FROM runs") == [(".",)]
    moved = tmp_path / "elsewhere" / "out"
    moved.parent.mkdir()
    shutil.move(desk.out, moved)
    store = moved / "settlement.duckdb"
    total = desk.cli(
        "sql", "SELECT SUM(subsidy_fen) AS fen FROM ledger", "--store", store, "--format", "csv"
    )
    assert (total.exit_code, total.output) == (0, "fen\n45\n")
    verified = desk.cli("verify", "--store", store, "--out", moved)
    assert verified.exit_code == 0, verified.output
    explained = desk.cli("explain", "M1", "--store", store)
    assert explained.exit_code == 0 and "本件 subsidy_fen = 15 分" in explained.output
    # an auditor's copy reads its own files, never the original's
    copy = tmp_path / "auditor" / "out"
    shutil.copytree(moved, copy)
    shutil.rmtree(moved / "ledger")
    from_copy = desk.cli(
        "sql",
        "SELECT COUNT(*) AS n FROM ledger",
        "--store",
        copy / "settlement.duckdb",
        "--format",
        "csv",
    )
    assert (from_copy.exit_code, from_copy.output) == (0, "n\n3\n")
    broken = desk.cli("sql", "SELECT COUNT(*) AS n FROM ledger", "--store", store)
    assert broken.exit_code == 2 and "ledger/*/*/*.parquet" in broken.output
    # a run made in the copy stays in the copy, and the copy verifies
    desk.out, desk.store = copy, copy / "settlement.duckdb"
    desk.run("2025-04", p("A1", "2025-04-05"))
    assert desk.sql("SELECT DISTINCT out_dir FROM runs") == [(".",)]
    assert (copy / "ledger/league=150700/month=2025-04/part-0.parquet").exists()
    assert not (moved / "ledger").exists()
    assert desk.cli("verify", "--out", copy).exit_code == 0


def test_a_run_into_another_folder_than_the_stores_is_refused(tmp_path):
    desk = Desk(tmp_path)
    desk.run("2025-02", p("F1", "2025-02-05"))
    other = tmp_path / "other"
    result = desk.cli(
        "run",
        "--league",
        "150700",
        "--month",
        "2025-03",
        "--logs",
        desk.logs("2025-03", p("M1", "2025-03-05")),
        "--config",
        desk.cfg,
        "--out",
        other,
        "--store",
        desk.store,
        "-q",
    )
    assert result.exit_code == 2
    assert result.output.strip() == (
        f"错误：结算库 {desk.store} 的结算输出在 {desk.out}，本次 --out 为 {other}：一个结算库只对应"
        "一个输出目录。请把 --out 指向该目录，或为新的输出目录另用一个结算库（--store）"
    )
    assert not other.exists()


def test_a_store_of_the_previous_schema_is_migrated_to_relative_paths(tmp_path):
    desk = Desk(tmp_path)
    desk.run("2025-02", p("F1", "2025-02-05"))
    # the store as schema version 2 left it: absolute out_dir, no journal, events …
    con = duckdb.connect(str(desk.store))
    for table in ("journal", "run_dependencies", "voids", "events"):
        con.execute(f"DROP TABLE {table}")
    for column in ("run_by", "ended_at", "annual_budget_fen", "budget_rule"):
        con.execute(f"ALTER TABLE runs DROP COLUMN {column}")
    for column in ("sealed_by", "entry_id"):
        con.execute(f"ALTER TABLE seals DROP COLUMN {column}")
    con.execute("UPDATE runs SET out_dir = ?", [str(desk.out)])
    con.execute("DROP VIEW payable")  # and none of the later versions' tables
    for table in ("payment_batches", "payment_lines", "payment_months", "clawbacks", "year_closes"):
        con.execute(f"DROP TABLE {table}")
    con.execute("DELETE FROM schema_migrations WHERE version >= 3")
    con.close()
    moved = tmp_path / "moved"
    shutil.move(desk.out, moved)  # moved before the new version ever opened it
    listing = desk.cli("runs", "--store", moved / "settlement.duckdb")
    assert listing.exit_code == 0 and "受理 1 件" in listing.output
    desk.store = moved / "settlement.duckdb"
    assert desk.sql("SELECT out_dir FROM runs") == [(".",)]
    assert desk.sql("SELECT kind, sha256 = (SELECT manifest_sha256 FROM runs) FROM journal") == [
        ("run", True)
    ]
    assert desk.cli("verify", "--out", moved).exit_code == 0


# --------------------------------------------------------------------------- §8.3 re-runs


def test_a_rerun_without_replace_is_refused_with_the_change_per_company(tmp_path):
    desk = Desk(tmp_path)
    desk.run("2025-03", p("M1", "2025-03-05"), p("M2", "2025-03-06", company="YTO"))
    before = {f: sha(f) for f in sorted(desk.out.rglob("*")) if f.is_file()}
    refused = desk.run("2025-03", p("M1", "2025-03-05"), p("M3", "2025-03-07"), expect=2)
    lines = refused.output.strip().splitlines()
    assert lines[0].startswith("错误：盟市 150700 2025-03 已有有效的结算（批次 150700-2025-03-")
    assert lines[0].endswith(
        "应付 0.30 元），本次结算将改为 0.30 元；未作任何更改。确认要替换该月结算请加 --replace。"
        "各企业的变化："
    )
    assert lines[1:] == [
        "  YTO     应付 0.15 → 0.00 元（−0.15）  受理 1 → 0 件",
        "  ZTO     应付 0.15 → 0.30 元（+0.15）  受理 1 → 2 件",
        "  合计    应付 0.30 → 0.30 元",
    ]
    assert {f: sha(f) for f in sorted(desk.out.rglob("*")) if f.is_file()} == before
    replaced = desk.run(
        "2025-03", p("M1", "2025-03-05"), p("M3", "2025-03-07"), flags=["--replace"]
    )
    assert "已取代此前批次 150700-2025-03-" in replaced.output
    assert "  YTO     应付 0.15 → 0.00 元（−0.15）  受理 1 → 0 件" in replaced.output


def test_a_month_not_yet_ended_needs_force(tmp_path):
    desk = Desk(tmp_path)
    today = {"SETTLE_TODAY": "2025-03-20"}
    refused = desk.run("2025-03", p("M1", "2025-03-05"), expect=2, env=today)
    assert refused.output.strip() == (
        "错误：结算月份 2025-03 尚未结束（今天是 2025-03-20，北京时间），不能结算；"
        "请检查 --month 是否写错。确需提前结算请加 --force"
    )
    assert not desk.out.exists()
    desk.run("2025-03", p("M1", "2025-03-05"), flags=["--force"], env=today)
    future = desk.run("2035-05", p("X", "2035-05-05"), expect=2)
    assert "结算月份 2035-05 尚未结束" in future.output


def test_logs_of_another_month_are_refused_without_force(tmp_path):
    desk = Desk(tmp_path)
    march = [p(f"M{i}", "2025-03-05") for i in range(3)]
    refused = desk.run("2025-04", *march, p("A1", "2025-04-05"), expect=2)
    assert refused.output.strip() == (
        "错误：本次输入 4 行中，0 行不属于盟市 150700（WRONG_LEAGUE），3 行签收时间不在 2025-04"
        "（OUTSIDE_PERIOD），合计超过一半（签收时间大多在 2025-03）；请检查 --league、--month 和 "
        "--logs 是否选对。确认无误请加 --force"
    )
    assert not desk.out.exists()
    forced = desk.run("2025-04", *march, p("A1", "2025-04-05"), flags=["--force"])
    assert "受理 1 件" in forced.output
    # exactly half is not more than half
    desk.run("2025-05", p("M9", "2025-03-05"), p("Y1", "2025-05-05"))


def test_logs_of_another_league_are_refused_without_force(tmp_path):
    logs = SAMPLE_DATA_DIR / "150700" / "2025-06" / "zto_yto_sto.csv"
    result = CliRunner().invoke(
        main,
        [
            "run",
            "--league",
            "150500",
            "--month",
            "2025-06",
            "--logs",
            str(logs),
            "--config",
            str(DEFAULT_CONFIG_DIR),
            "--out",
            str(tmp_path / "out"),
            "-q",
        ],
    )
    assert result.exit_code == 2
    assert "行不属于盟市 150500（WRONG_LEAGUE）" in result.output
    assert "这些村大多属于盟市 150700" in result.output
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- §8.5 stale months


def test_a_replaced_month_makes_later_months_stale_until_they_are_run_again(tmp_path):
    desk = Desk(tmp_path)
    desk.run("2025-04", p("A1", "2025-04-05"), p("A2", "2025-04-06"))
    desk.run("2025-05", p("A1", "2025-05-05"), p("Y1", "2025-05-06"))  # A1: ALREADY_SETTLED
    replaced = desk.run("2025-04", p("A2", "2025-04-06"), flags=["--replace"])
    assert (
        "注意：150700 2025-05（1 个运单） 以原批次已结算为由剔除了这些运单，现需重新结算"
        "（settle status 显示“需重算”）；重新结算前不能封存" in replaced.output
    )
    status = desk.cli("status", "--league", "150700", "--year", "2025", "--store", desk.store)
    assert "2025-05  需重算" in status.output
    verify = desk.cli("verify", "--out", desk.out)
    assert verify.exit_code == 1
    assert "不通过  盟市 150700 2025-05  [需重算（SPEC §8.5）]" in verify.output
    sealed = desk.seal("2025-05", "2025-06-01", "2025-06-07")
    assert sealed.exit_code == 2 and "盟市 150700 2025-05 需重算" in sealed.output
    rerun = desk.run("2025-05", p("A1", "2025-05-05"), p("Y1", "2025-05-06"), flags=["--replace"])
    assert "受理 2 件" in rerun.output  # A1 is paid in May now
    assert desk.cli("verify", "--out", desk.out).exit_code == 0
    assert desk.seal("2025-05", "2025-06-01", "2025-06-07").exit_code == 0


def test_replacing_a_month_a_sealed_month_depends_on_needs_force(tmp_path):
    desk = Desk(tmp_path)
    desk.run("2025-04", p("A1", "2025-04-05"))
    desk.run("2025-05", p("A1", "2025-05-05"), p("Y1", "2025-05-06"))
    assert desk.seal("2025-05", "2025-06-01", "2025-06-07").exit_code == 0
    refused = desk.run("2025-04", p("A9", "2025-04-06"), flags=["--replace"], expect=2)
    assert refused.output.strip().startswith(
        "错误：已封存的月份 150700 2025-05（1 个运单） 以本月批次 150700-2025-04-"
    )
    assert (
        "如确需更改，请加 --force，并用 settle run --supplementary 为这些运单补充结算"
        in refused.output
    )
    desk.run("2025-04", p("A9", "2025-04-06"), flags=["--replace", "--force"])
    verified = desk.cli("verify", "--out", desk.out)  # a sealed month is not stale: a note
    assert verified.exit_code == 0
    assert "提示：已封存的 150700 2025-05 以批次 150700-2025-04-" in verified.output


# --------------------------------------------------------------------------- §8.6 seal


def test_seal_needs_names_and_a_notice_period_that_has_ended(tmp_path):
    desk = Desk(tmp_path)
    desk.run("2025-02", p("F1", "2025-02-05"))
    blank = desk.seal("2025-02", "2025-03-01", "2025-03-07", reviewer="")
    assert (blank.exit_code, blank.output.strip()) == (
        2,
        "错误：审核人不能为空（--reviewed-by），封存需要写明审核人",
    )
    space = desk.seal("2025-02", "2025-03-01", "2025-03-07", approver=" ")
    assert space.output.strip() == "错误：审批人不能为空（--approved-by），封存需要写明审批人"
    no_ref = desk.seal("2025-02", "2025-03-01", "2025-03-07", ref="")
    assert no_ref.output.strip() == "错误：审批文号不能为空（--approval-ref），封存需要写明审批文号"
    premature = desk.cli(
        "seal",
        "--league",
        "150700",
        "--month",
        "2025-02",
        "--store",
        desk.store,
        "--config",
        desk.cfg,
        "--reviewed-by",
        "审核员",
        "--notice-start",
        "2026-12-01",
        "--notice-end",
        "2027-01-14",
        "--approved-by",
        "审批人",
        "--approval-ref",
        "文1",
    )
    assert premature.exit_code == 2
    assert "公示期至 2027-01-14 尚未结束（今天是 " in premature.output
    today = CliRunner().invoke(
        main,
        [
            "seal",
            "--league",
            "150700",
            "--month",
            "2025-02",
            "--store",
            str(desk.store),
            "--config",
            str(desk.cfg),
            "--reviewed-by",
            "审核员",
            "--notice-start",
            "2025-03-01",
            "--notice-end",
            "2025-03-07",
            "--approved-by",
            "审批人",
            "--approval-ref",
            "文1",
        ],
        env={"SETTLE_TODAY": "2025-03-07"},
    )
    assert today.output.strip() == (
        "错误：公示期至 2025-03-07 尚未结束（今天是 2025-03-07，北京时间）；公示期满后才能封存"
    )
    assert desk.sql("SELECT COUNT(*) FROM seals") == [(0,)]
    ok = desk.seal("2025-02", "2025-03-01", "2025-03-07", reviewer=" 王审核 ")
    assert ok.exit_code == 0
    assert desk.sql("SELECT reviewed_by, approval_ref FROM seals") == [("王审核", "文1")]
    # the seal is an entry of the journal's chain, and verify walks it
    assert desk.sql("SELECT kind FROM journal ORDER BY seq") == [("run",), ("seal",)]
    assert desk.cli("verify", "--out", desk.out).exit_code == 0


# --------------------------------------------------------------------------- §8.7 missing store


@pytest.mark.parametrize(
    "command",
    [
        ["runs"],
        ["status", "--league", "150700", "--year", "2025"],
        ["sql", "SELECT 1"],
        ["query", "budget_use_by_month", "--param", "league=150700", "--param", "year=2025"],
        [
            "seal",
            "--league",
            "150700",
            "--month",
            "2025-02",
            "--reviewed-by",
            "a",
            "--notice-start",
            "2025-03-01",
            "--notice-end",
            "2025-03-07",
            "--approved-by",
            "b",
            "--approval-ref",
            "c",
        ],
    ],
)
def test_read_commands_on_a_missing_store_exit_2_and_create_nothing(tmp_path, command):
    store = tmp_path / "nowhere" / "settlement.duckdb"
    result = CliRunner().invoke(main, [*command, "--store", str(store)])
    assert (result.exit_code, result.output.strip()) == (
        2,
        f"错误：结算库 {store} 不存在（目录 {store.parent} 也不存在）；请用 --store 指定已有的"
        "结算库，或先运行 settle run",
    )
    assert not store.parent.exists()


@pytest.mark.parametrize("command", [["verify"], ["explain", "W1"]])
def test_out_commands_on_a_missing_store_exit_2(tmp_path, command):
    result = CliRunner().invoke(main, [*command, "--out", str(tmp_path / "none")])
    assert result.exit_code == 2 and "不存在" in result.output
    assert not (tmp_path / "none").exists()


def test_status_uses_the_budget_recorded_with_the_runs(tmp_path):
    desk = Desk(tmp_path, rule="ytd", annual="1.00")
    desk.run("2025-02", p("F1", "2025-02-05"))
    # the configuration changes afterwards: status still shows the budget the month was paid under
    (desk.cfg / "policies" / "150700.toml").write_text(
        policy_text(rule="ytd", annual="9.00"), encoding="utf-8"
    )
    status = desk.cli("status", "--league", "150700", "--year", "2025", "--store", desk.store)
    assert "年度预算 1.00 元，规则 ytd（结算时记录）" in status.output
    assert "合计已用 0.15 元，预算余额 0.85 元" in status.output


# --------------------------------------------------------------------------- validate, supplements


def test_validate_sees_a_sealed_month_as_its_supplementary_run_would(tmp_path):
    desk = Desk(tmp_path)
    desk.run("2025-02", p("F1", "2025-02-05"), p("F2", "2025-02-06"))
    assert desk.seal("2025-02", "2025-03-01", "2025-03-07").exit_code == 0
    late = desk.logs("2025-02", p("F1", "2025-02-05"), p("F2", "2025-02-06"))
    checked = desk.cli(
        "validate",
        late,
        "--league",
        "150700",
        "--month",
        "2025-02",
        "--config",
        desk.cfg,
        "--store",
        desk.store,
    )
    assert checked.exit_code == 0
    assert "共 2 行，可受理 0 行，将剔除 2 行" in checked.output
    assert "该月已封存：按补充结算（settle run --supplementary）预检" in checked.output
    assert "ALREADY_SETTLED 该运单已在其他月份结算（共 2 行）" in checked.output
    # the supplementary run of the same rows is refused, and nothing is recorded
    refused = desk.run(
        "2025-02", p("F1", "2025-02-05"), p("F2", "2025-02-06"), flags=["--supplementary"], expect=2
    )
    assert refused.output.strip() == (
        "错误：补充结算 150700 2025-02 没有可受理的投递（ALREADY_SETTLED 2 行），未记录任何批次；"
        "可先用 settle validate --store 预检"
    )
    assert desk.sql("SELECT COUNT(*) FROM runs") == [(1,)]


def test_validate_warns_of_what_a_run_would_refuse(tmp_path):
    desk = Desk(tmp_path)
    logs = desk.logs("2025-04", p("M1", "2025-03-05"), p("M2", "2025-03-06"))
    checked = desk.cli(
        "validate", logs, "--league", "150700", "--month", "2025-04", "--config", desk.cfg
    )
    assert checked.exit_code == 0
    assert "注意：正式结算时将被拒绝：本次输入 2 行中，0 行不属于盟市 150700" in checked.output


def test_explain_of_a_supplementary_parcel_shows_the_figures_of_its_cap(tmp_path):
    # February: A cost 1.00 revenue 0.80 → paid 15 under cap 20. Late L1, L2 (cost 1.00, revenue
    # 0.90 each): the month's cap is floor(100 × (3.00 − 2.60)) = 40, less 15 paid → 25.
    desk = Desk(tmp_path)
    desk.run("2025-02", p("A", "2025-02-05", cost="1.00", revenue="0.80"))
    assert desk.seal("2025-02", "2025-03-01", "2025-03-07").exit_code == 0
    desk.run(
        "2025-02",
        p("L1", "2025-02-20", cost="1.00", revenue="0.90"),
        p("L2", "2025-02-21", cost="1.00", revenue="0.90"),
        flags=["--supplementary"],
    )
    text = desk.cli("explain", "L1", "--out", desk.out).output
    assert (
        "    补充结算按全月计算上限：成本 = 本批 2 + 本月此前批次 1 = 3 元；收入 = 本批 1.8 + "
        "本月此前批次 0.8 = 2.6 元" in text
    )
    assert "    上限 cap_fen = floor(100 × max(0, 3 − 2.6)) = 40 分" in text
    assert (
        "    本月此前批次已付 prior_paid_fen = 15 分；核减后 after_breakeven_fen = min(30, "
        "max(0, 40 − 15)) = 25 分" in text
    )
    assert desk.sql(
        "SELECT cost_yuan, prior_cost_yuan, revenue_yuan, prior_revenue_yuan, cap_fen FROM units "
        "WHERE prior_paid_fen > 0"
    ) == [(Decimal("2"), Decimal("1"), Decimal("1.8"), Decimal("0.8"), 40)]


# --------------------------------------------------------------------------- events


def test_every_state_change_is_an_event_with_who_and_where(tmp_path):
    desk = Desk(tmp_path)
    env = {"SETTLE_USER": "张三"}
    desk.run("2025-02", p("F1", "2025-02-05"), env=env)
    desk.run("2025-02", p("F2", "2025-02-05"), flags=["--replace"], env=env)
    desk.cli(
        "seal",
        "--league",
        "150700",
        "--month",
        "2025-02",
        "--store",
        desk.store,
        "--config",
        desk.cfg,
        "--reviewed-by",
        "李四",
        "--notice-start",
        "2025-03-01",
        "--notice-end",
        "2025-03-07",
        "--approved-by",
        "王五",
        "--approval-ref",
        "文1",
        env={"SETTLE_USER": "李四"},
    )
    events = desk.sql(
        "SELECT seq, actor, origin LIKE 'cli@%', action, month FROM events ORDER BY seq"
    )
    assert events == [
        (1, "张三", True, "run", "2025-02"),
        (2, "张三", True, "replace_run", "2025-02"),
        (3, "李四", True, "seal", "2025-02"),
        (4, "李四", True, "statements", "2025-02"),  # rendered again, showing the seal
    ]
    assert desk.sql("SELECT run_by FROM runs ORDER BY started_at") == [("张三",), ("张三",)]


# --------------------------------------------------------------------------- §8.4 void


def void(desk, month, reason, *flags, env=None):
    return desk.cli(
        "void",
        "--league",
        "150700",
        "--month",
        month,
        "--reason",
        reason,
        "--store",
        desk.store,
        "--config",
        desk.cfg,
        "-q",
        *flags,
        env=env,
    )


def test_void_releases_the_waybills_marks_the_statements_and_stales_later_months(tmp_path):
    desk = Desk(tmp_path)
    desk.run("2025-04", p("A1", "2025-04-05"), p("A2", "2025-04-06"))
    desk.run("2025-05", p("A1", "2025-05-05"), p("Y1", "2025-05-06"))  # A1: ALREADY_SETTLED
    april = desk.sql("SELECT run_id FROM runs WHERE month = '2025-04'")[0][0]
    blank = void(desk, "2025-04", "  ")
    assert (blank.exit_code, blank.output.strip()) == (2, "错误：作废原因不能为空（--reason）")
    result = void(desk, "2025-04", "日志重复提交", env={"SETTLE_USER": "王经办"})
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0] == (
        f"已作废 盟市 150700 2025-04 的结算批次 {april}（原因：日志重复提交）；该批次的运单已释放，"
        f"原输出移至 {desk.out / 'voided' / april}，结算单已标记作废"
    )
    assert (
        "150700 2025-05（1 个运单） 以原批次已结算为由剔除了这些运单，现需重新结算" in result.output
    )
    # the run's outputs left the live tree for voided/<run_id>/; its statements say 作废
    assert not (desk.out / "ledger/league=150700/month=2025-04").exists()
    archived = desk.out / "voided" / april
    assert (archived / "ledger/league=150700/month=2025-04/part-0.parquet").exists()
    assert (archived / "manifests/league=150700/month=2025-04.json").exists()
    for folder in (desk.out, archived):
        page = (folder / "statements/league=150700/month=2025-04/ZTO.html").read_text(
            encoding="utf-8"
        )
        assert "本结算单已作废" in page and "作废人 王经办；原因：日志重复提交" in page
    assert desk.sql("SELECT status FROM runs WHERE run_id = '" + april + "'") == [("voided",)]
    assert desk.sql("SELECT voided_by, reason FROM voids") == [("王经办", "日志重复提交")]
    assert desk.sql("SELECT kind FROM journal ORDER BY seq") == [("run",), ("run",), ("void",)]
    assert desk.sql("SELECT action, actor FROM events ORDER BY seq DESC LIMIT 1") == [
        ("void", "王经办")
    ]
    assert desk.sql("SELECT COUNT(*) FROM ledger WHERE month = '2025-04'") == [(0,)]
    runs = desk.cli("runs", "--store", desk.store)
    assert (
        "150700 2025-04  月度结算  已作废" in runs.output
        and "作废原因：日志重复提交" in runs.output
    )
    # May is stale until run again; then A1 is paid in May and everything verifies
    assert desk.cli("verify", "--out", desk.out).exit_code == 1
    desk.run("2025-05", p("A1", "2025-05-05"), p("Y1", "2025-05-06"), flags=["--replace"])
    assert desk.sql("SELECT waybill_no FROM settled_waybills ORDER BY 1") == [("A1",), ("Y1",)]
    assert desk.cli("verify", "--out", desk.out).exit_code == 0
    # April has no current run: a new run needs no --replace; voiding again is refused
    again = void(desk, "2025-04", "再次作废")
    assert again.exit_code == 2 and "没有有效的结算批次，无需作废" in again.output
    desk.run("2025-04", p("A2", "2025-04-06"))


def test_a_sealed_month_cannot_be_voided(tmp_path):
    desk = Desk(tmp_path)
    desk.run("2025-04", p("A1", "2025-04-05"))
    assert desk.seal("2025-04", "2025-05-01", "2025-05-07").exit_code == 0
    refused = void(desk, "2025-04", "误结算")
    assert refused.exit_code == 2
    assert refused.output.strip() == (
        "错误：盟市 150700 2025-04 已封存（审批文号 文1），不能作废；已支付的款项如需追回，请用 settle clawback 登记追缴"
    )


def test_a_void_killed_before_it_commits_is_undone(tmp_path):
    import os
    import subprocess
    import sys

    desk = Desk(tmp_path)
    desk.run("2025-04", p("A1", "2025-04-05"))
    ledger = desk.out / "ledger/league=150700/month=2025-04/part-0.parquet"
    before = sha(ledger)
    killed = subprocess.run(
        [
            sys.executable,
            "-m",
            "settlement.cli",
            "void",
            "--league",
            "150700",
            "--month",
            "2025-04",
            "--reason",
            "测试",
            "--store",
            str(desk.store),
            "--config",
            str(desk.cfg),
        ],
        env={**os.environ, "SETTLE_CRASH_AT": "published"},
        capture_output=True,
        text=True,
    )
    assert killed.returncode == -9
    assert not ledger.exists()  # half-way: moved to voided/, the store not yet told
    verified = desk.cli("verify", "--out", desk.out)
    assert "提示：撤销了未完成的发布 void-150700-2025-04-" in verified.output
    assert verified.exit_code == 0, verified.output
    assert sha(ledger) == before and not (desk.out / "voided").exists()
    assert desk.sql("SELECT status FROM runs") == [("current",)]


def test_empty_views_have_the_columns_of_the_outputs(tmp_path):
    """When no current run has files of a kind (the only month voided), the views keep the
    outputs' columns and types, with no rows, and the auditors' tools still run."""
    from settlement.store import VIEW_COLUMNS

    desk = Desk(tmp_path)
    desk.run("2025-04", p("A1", "2025-04-05"), p("BAD", "2025-04-06", km="far"))
    real = {
        kind: [(c, t) for c, t, *_ in desk.sql(f"DESCRIBE {kind}")][:-2]
        for kind in ("ledger", "rejects", "units")
    }
    assert real == VIEW_COLUMNS
    assert void(desk, "2025-04", "测试").exit_code == 0
    assert desk.sql("SELECT COUNT(*) FROM ledger") == [(0,)]
    emptied = {
        kind: [(c, t) for c, t, *_ in desk.sql(f"DESCRIBE {kind}")][:-2]
        for kind in ("ledger", "rejects", "units")
    }
    assert emptied == VIEW_COLUMNS
    verified = desk.cli("verify", "--out", desk.out)
    assert verified.exit_code == 0, verified.output
    counted = desk.cli(
        "sql", "SELECT COUNT(*) AS n FROM rejects", "--store", desk.store, "--format", "csv"
    )
    assert counted.output == "n\n0\n"

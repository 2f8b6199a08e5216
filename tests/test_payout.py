"""Paying out (SPEC §10): payee data, payment batches, clawbacks, the annual close with its
break-even true-up, the cash view and verify — with hand-computed 分.

The test policy pays 15 分 a parcel at 12 km (10 分 at 5 km) with no budget limit; a parcel
that costs 2.00 元 and earns nothing leaves room under the break-even cap."""

from __future__ import annotations

import csv
import datetime as dt
import json

import duckdb
import openpyxl
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner
from conftest import V1, make_config, policy_text

from settlement.cli import main
from settlement.config import load_config
from settlement.engine import settle_month
from settlement.errors import ConfigError, RefusedError, UsageError
from settlement.events import Actor
from settlement.months import seal_month
from settlement.payout.annual import close_year
from settlement.payout.batches import confirm_batch, create_batch
from settlement.payout.cash import cash_view
from settlement.payout.clawbacks import clawback
from settlement.payout.payee import credit_check_char, credit_code_problem
from settlement.period import Month
from settlement.store import connect_readonly

HEADER = "waybill_no,company,delivered_at,village_code,distance_km,cost_yuan,revenue_yuan,proof\n"
ZTO_CODE, YTO_CODE = "91150000MA0LX0004J", "91150000MA0LX0005M"
COMPANIES = f"""
[[company]]
code = "ZTO"
name = "中通快递"
payee_name = "内蒙古中通快递有限公司"
credit_code = "{ZTO_CODE}"
bank = "中国农业银行呼和浩特新城支行"
account = "6228480000000000004"

[[company]]
code = "YTO"
name = "圆通速递"
payee_name = "内蒙古圆通速递有限公司"
credit_code = "{YTO_CODE}"
bank = "中国银行呼和浩特分行"
account = "6217850000000000005"
"""
MAKER, CHECKER = Actor("wangli", "cli@test"), Actor("lisi", "cli@test")


def p(waybill, day, km="12", company="ZTO", cost="2.00", revenue="0"):
    return f"{waybill},{company},{day} 10:00,{V1},{km},{cost},{revenue},签名\n"


class Office:
    """A 盟市 office paying out from one store."""

    def __init__(self, root, companies=COMPANIES, true_up=False):
        policy = policy_text()
        if true_up:
            policy = policy.replace(
                "default_revenue_yuan = 0.50", "default_revenue_yuan = 0.50\nannual_true_up = true"
            )
        self.root = root
        self.config = make_config(root / "config", policy, companies)
        self.cfg = load_config(self.config)
        self.out = root / "out"
        self.store = self.out / "settlement.duckdb"
        self.n = 0

    def settle(self, month, *lines, replace=False):
        self.n += 1
        path = self.root / "logs" / f"{self.n}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(HEADER + "".join(lines), encoding="utf-8")
        return settle_month(
            self.cfg, "150700", Month.parse(month), [path], self.out, self.store, replace=replace
        )

    def seal(self, month):
        start = Month.parse(month).end
        return seal_month(
            self.store,
            "150700",
            Month.parse(month),
            {
                "reviewed_by": "审核员",
                "notice_start": start,
                "notice_end": start + dt.timedelta(days=6),
                "approved_by": "审批人",
                "approval_ref": f"文{month}",
            },
        )

    def pay(self, *months, actor=MAKER):
        return create_batch(self.cfg, self.store, "150700", [Month.parse(m) for m in months], actor)

    def claw(self, month, text, reason="虚假签收", actor=MAKER):
        path = self.root / f"claw-{self.n}.csv"
        self.n += 1
        path.write_text(text, encoding="utf-8")
        return clawback(self.cfg, self.store, "150700", Month.parse(month), path, reason, actor)

    def sql(self, query, params=None):
        con = connect_readonly(self.store)
        try:
            return con.execute(query, params or []).fetchall()
        finally:
            con.close()

    def statements(self, month):
        folder = self.out / "statements" / "league=150700" / f"month={month}"
        return folder, json.loads((folder / "statements.json").read_text(encoding="utf-8"))

    def cli(self, *args, env=None):
        return CliRunner().invoke(main, [str(a) for a in args], env=env)


@pytest.fixture(autouse=True)
def _today(monkeypatch):
    monkeypatch.setenv("SETTLE_TODAY", "2026-02-10")


# --------------------------------------------------------------------------- payee data


def test_credit_code_check_character_follows_gb32100():
    assert credit_check_char("91350100M000100Y4") == "3"  # the standard's worked example
    assert credit_code_problem("91350100M000100Y43") is None
    assert credit_code_problem("91350100M000100Y44") == (
        "统一社会信用代码 91350100M000100Y44 的校验码应为 3（GB 32100-2015），实际为 4"
    )
    assert credit_code_problem("9135010") == "统一社会信用代码应为18位，实际 7 位"
    assert "不允许的字符“I”" in credit_code_problem("91350100MI00100Y43")


def test_shipped_payee_data_are_complete_valid_and_marked_as_examples(shipped):
    text = (shipped.root / "companies.toml").read_text(encoding="utf-8")
    assert "EXAMPLES (示例)" in text
    for company in shipped.companies.values():
        assert company.missing_payee() == []
        assert company.payee_name.endswith("（示例）") and company.bank.endswith("（示例）")
        assert credit_code_problem(company.credit_code) is None
        assert company.account.startswith("9999")


@pytest.mark.parametrize(
    ("line", "key", "problem"),
    [
        (
            f'credit_code = "{ZTO_CODE[:-1]}K"',
            "company[0].credit_code",
            "校验码应为 J（GB 32100-2015），实际为 K",
        ),
        ('account = "6228-4800"', "company[0].account", "应为8–32位数字"),
        ('bank_name = "农行"', "company[0].bank_name", "未知的配置项"),
        ('payee_name = ""', "company[0].payee_name", "应为非空字符串"),
    ],
)
def test_payee_data_is_loaded_strictly(tmp_path, line, key, problem):
    text = f'[[company]]\ncode = "ZTO"\nname = "中通快递"\n{line}\n'
    with pytest.raises(ConfigError) as err:
        load_config(make_config(tmp_path / "config", companies=text))
    assert err.value.key == key and problem in err.value.problem
    assert "companies.toml" in str(err.value)


def test_annual_true_up_is_a_breakeven_key_only(tmp_path):
    on = policy_text().replace("scope = ", "annual_true_up = true\nscope = ")
    assert load_config(make_config(tmp_path / "a", on)).policies["150700"].annual_true_up
    assert not load_config(make_config(tmp_path / "b")).policies["150700"].annual_true_up
    elsewhere = policy_text().replace('rule = "', 'annual_true_up = true\nrule = "')
    with pytest.raises(ConfigError) as err:
        load_config(make_config(tmp_path / "c", elsewhere))
    assert (err.value.key, err.value.problem) == ("budget.annual_true_up", "未知的配置项")
    text = policy_text().replace("scope = ", 'annual_true_up = "yes"\nscope = ')
    with pytest.raises(ConfigError) as err:
        load_config(make_config(tmp_path / "d", text))
    assert (err.value.key, err.value.problem) == ("breakeven.annual_true_up", "应为 true 或 false")


def test_a_company_paid_without_complete_payee_data_is_refused_naming_it(tmp_path):
    companies = COMPANIES.replace('bank = "中国银行呼和浩特分行"\n', "")
    office = Office(tmp_path, companies)
    office.settle("2025-01", p("A1", "2025-01-05"), p("B1", "2025-01-06", company="YTO"))
    office.seal("2025-01")
    result = office.cli(
        "pay", "--league", "150700", "--month", "2025-01", "--config", office.config,
        "--out", office.out,
    )  # fmt: skip
    assert result.exit_code == 2
    assert "企业 YTO（圆通速递）缺少收款信息 bank（开户银行）" in result.output
    assert office.sql("SELECT COUNT(*) FROM payment_batches") == [(0,)]
    assert not (office.out / "payments").exists()


# --------------------------------------------------------------------------- a year paid out


@pytest.fixture(scope="module")
def year(tmp_path_factory):
    """January and February sealed and paid in one batch and confirmed; a clawback of January
    booked in March; March settled, sealed and paid in a second batch (ZTO's March is below
    its clawback: paid 0, carried forward); the year closed with the true-up."""
    mp = pytest.MonkeyPatch()
    mp.setenv("SETTLE_TODAY", "2026-02-10")
    office = Office(tmp_path_factory.mktemp("year"), true_up=True)
    office.settle("2025-01", p("A1", "2025-01-05"), p("A2", "2025-01-06"),
                  p("B1", "2025-01-07", company="YTO"))  # fmt: skip
    # February: ZTO earns more than it costs (cap 0, paid 0); YTO 15 分
    office.settle("2025-02", p("A3", "2025-02-05", cost="0.10", revenue="3.00"),
                  p("A4", "2025-02-06", cost="0.10", revenue="3.00"),
                  p("B2", "2025-02-07", company="YTO"))  # fmt: skip
    office.seal("2025-01")
    office.seal("2025-02")
    office.first = office.pay("2025-01", "2025-02")
    office.confirmed = confirm_batch(office.store, office.first["batch_id"], dt.date(2025, 4, 1),
                                     "财付〔2025〕8号", CHECKER)  # fmt: skip
    office.clawed = office.claw("2025-01", "运单号,金额\nA1,0.10\nA2,\n", "签收照片重复使用")
    office.settle("2025-03", p("A5", "2025-03-05", km="5"), p("B3", "2025-03-06", company="YTO"))
    office.seal("2025-03")
    office.second = office.pay("2025-03")
    office.closed = close_year(office.cfg, office.store, "150700", 2025, CHECKER)
    yield office
    mp.undo()


def test_a_batch_pays_each_company_its_sealed_statements_to_the_fen(year):
    first = year.first
    assert first["batch_id"] == "pay-150700-0001" and first["months"] == "2025-01,2025-02"
    lines = {x["company"]: x for x in first["lines"]}
    # ZTO: January 15 + 15, February 0 (break-even); YTO: 15 + 15
    assert {c: (x["due_fen"], x["amount_fen"]) for c, x in lines.items()} == {
        "YTO": (30, 30),
        "ZTO": (30, 30),
    }
    stated = {}
    for month in ("2025-01", "2025-02"):
        for entry in year.statements(month)[1]["files"].values():
            if entry["company"] and entry["sha256"]:
                stated.setdefault(entry["company"], {})[month] = entry["due_fen"]
    assert {c: sum(m.values()) for c, m in stated.items()} == {"YTO": 30, "ZTO": 30}
    assert year.sql("SELECT month, batch_id, due_fen FROM payment_months ORDER BY month") == [
        ("2025-01", "pay-150700-0001", 45),
        ("2025-02", "pay-150700-0001", 15),
        ("2025-03", "pay-150700-0002", 0),  # ZTO −15, YTO 15
    ]


def test_the_batch_files_for_the_finance_office(year):
    folder = year.out / "payments" / "league=150700"
    table = pq.read_table(folder / "pay-150700-0001.parquet")
    assert table.column_names == [
        "batch_id", "company", "payee_name", "credit_code", "bank", "account", "amount_fen",
        "months",
    ]  # fmt: skip
    assert table.to_pylist()[1] == {
        "batch_id": "pay-150700-0001",
        "company": "ZTO",
        "payee_name": "内蒙古中通快递有限公司",
        "credit_code": ZTO_CODE,
        "bank": "中国农业银行呼和浩特新城支行",
        "account": "6228480000000000004",
        "amount_fen": 30,
        "months": "2025-01,2025-02",  # February's parcels paid 0 (break-even): listed all the same
    }
    raw = (folder / "pay-150700-0001.csv").read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(raw.decode("utf-8-sig").splitlines()))
    assert rows[0] == ["批次号", "企业编码", "收款单位名称", "统一社会信用代码", "开户银行",
                       "银行账号", "拨付金额(元)", "结算月份"]  # fmt: skip
    assert rows[2] == ["pay-150700-0001", "ZTO", "内蒙古中通快递有限公司", ZTO_CODE,
                       "中国农业银行呼和浩特新城支行", "6228480000000000004", "0.30", "2025-01、2025-02"]  # fmt: skip
    book = openpyxl.load_workbook(folder / "pay-150700-0001.xlsx")
    assert book.sheetnames == ["拨付清单", "按月明细"]
    cells = [c for row in book["拨付清单"].iter_rows(values_only=True) for c in row if c]
    assert "呼伦贝尔市快递进村补贴资金拨付清单" in cells
    assert "叁角整" in cells and "陆角整" in cells  # 大写 per line and for the total
    assert "拨付金额合计（大写）：人民币陆角整（¥0.60）；收款单位 2 家" in cells
    assert ZTO_CODE in cells and "6228480000000000004" in cells  # text, never a number
    assert book.defined_names["TOTAL_AMOUNT_YUAN"].attr_text == "0.60"


def test_a_negative_month_pays_nothing_and_carries_forward_visibly(year):
    # ZTO: March 10 分 − the January clawback 25 分 (A1 10 + A2 15) = −15: paid 0, carried
    lines = {x["company"]: x for x in year.second["lines"]}
    assert (lines["ZTO"]["due_fen"], lines["ZTO"]["amount_fen"]) == (-15, 0)
    assert lines["ZTO"]["carried_forward_fen"] == -15
    assert (lines["YTO"]["due_fen"], lines["YTO"]["amount_fen"]) == (15, 15)
    folder = year.out / "payments" / "league=150700"
    rows = list(csv.reader((folder / "pay-150700-0002.csv").read_text("utf-8-sig").splitlines()))
    assert [r[1] for r in rows[1:]] == ["YTO"]  # no transfer of 0
    sheet = openpyxl.load_workbook(folder / "pay-150700-0002.xlsx")["拨付清单"]
    cells = [c for row in sheet.iter_rows(values_only=True) for c in row if c]
    assert "应付合计为负，本批拨付 0 元，0.15 元结转下一批次抵扣" in cells
    assert pq.read_table(folder / "pay-150700-0002.parquet").column("amount_fen").to_pylist() == [
        15,
        0,
    ]


def test_the_next_batch_recovers_the_carry(tmp_path):
    office = Office(tmp_path)
    office.settle("2025-01", p("A1", "2025-01-05"), p("A2", "2025-01-06"))
    office.seal("2025-01")
    office.pay("2025-01")
    office.claw("2025-01", "运单号\nA1\nA2\n")  # 30 分 booked in February
    office.settle("2025-02", p("A3", "2025-02-05", km="5"))  # 10 分
    office.seal("2025-02")
    second = office.pay("2025-02")
    assert [(x["due_fen"], x["amount_fen"], x["carried_forward_fen"]) for x in second["lines"]] == [
        (-20, 0, -20)
    ]
    office.settle("2025-03", p("A4", "2025-03-05"), p("A5", "2025-03-06"))  # 30 分
    office.seal("2025-03")
    third = office.pay("2025-03")
    assert [(x["carried_in_fen"], x["amount_fen"], x["carried_forward_fen"])
            for x in third["lines"]] == [(-20, 10, 0)]  # fmt: skip
    assert office.cli("verify", "--out", office.out).exit_code == 0


def test_pay_refuses_an_unsealed_an_unsettled_or_an_already_paid_month(year):
    with pytest.raises(RefusedError) as err:
        year.pay("2025-02", "2025-04")
    assert str(err.value) == (
        "盟市 150700 不能拨付：2025-02 已在拨付批次 pay-150700-0001（已拨付）中，每个月份只拨付一次；"
        "2025-04 尚未结算（或已作废），没有可拨付的结算单"
    )
    assert year.sql("SELECT COUNT(*) FROM payment_batches") == [(2,)]


def test_pay_refuses_a_month_not_yet_sealed_through_the_cli(tmp_path):
    office = Office(tmp_path)
    office.settle("2025-01", p("A1", "2025-01-05"))
    result = office.cli("pay", "--league", "150700", "--month", "2025-01", "--config",
                        office.config, "--out", office.out)  # fmt: skip
    assert result.exit_code == 2
    assert (
        "2025-01 尚未封存：结算单须经审核、公示、审批并封存（settle seal）后才能拨付"
        in result.output
    )
    office.seal("2025-01")
    env = {"SETTLE_USER": "wangli"}
    made = office.cli("pay", "--league", "150700", "--month", "2025-01", "--config",
                      office.config, "--out", office.out, "-q", env=env)  # fmt: skip
    assert made.exit_code == 0, made.output
    assert "已生成拨付批次 pay-150700-0001（已生成）：盟市 150700 2025-01，拨付合计 0.15 元" in (
        made.output
    )
    again = office.cli("pay", "--league", "150700", "--month", "2025-01", "--config",
                       office.config, "--out", office.out)  # fmt: skip
    assert again.exit_code == 2 and "已在拨付批次 pay-150700-0001（已生成）中" in again.output
    confirm = ["pay", "confirm", "--batch", "pay-150700-0001", "--store", office.store]
    mine = office.cli(*confirm, "--paid-on", "2025-04-01", "--voucher", "V1", env=env)
    assert mine.exit_code == 2
    assert "由 wangli 生成，须由另一人确认拨付（经办与复核分离）" in mine.output
    future = office.cli(*confirm, "--paid-on", "2026-02-11", "--voucher", "V1",
                        env={"SETTLE_USER": "lisi"})  # fmt: skip
    assert future.exit_code == 2 and "拨付日期 2026-02-11 晚于今天（2026-02-10" in future.output
    blank = office.cli(*confirm, "--paid-on", "2025-04-01", "--voucher", " ",
                       env={"SETTLE_USER": "lisi"})  # fmt: skip
    assert blank.exit_code == 2 and "付款凭证号不能为空" in blank.output
    ok = office.cli(*confirm, "--paid-on", "2025-04-01", "--voucher", "V1",
                    env={"SETTLE_USER": "lisi"})  # fmt: skip
    assert ok.exit_code == 0 and "确认人 lisi，经办人 wangli" in ok.output
    twice = office.cli(*confirm, "--paid-on", "2025-04-01", "--voucher", "V2",
                       env={"SETTLE_USER": "zhao"})  # fmt: skip
    assert twice.exit_code == 2 and "已于 2025-04-01 拨付（凭证号 V1，确认人 lisi）" in twice.output
    unknown = office.cli("pay", "confirm", "--batch", "pay-150700-0009", "--store", office.store,
                         "--paid-on", "2025-04-01", "--voucher", "V1")  # fmt: skip
    assert unknown.exit_code == 2 and "没有拨付批次 pay-150700-0009" in unknown.output
    assert office.sql("SELECT state, confirmed_by, voucher FROM payment_batches") == [
        ("paid", "lisi", "V1")
    ]


def test_a_month_is_paid_at_most_once_by_the_stores_key(year):
    from settlement.payout.records import record_batch

    batch = {
        "batch_id": "pay-150700-9999", "league_code": "150700", "state": "created",
        "months": "2025-01", "amount_fen": 0, "created_by": "x",
        "created_at": dt.datetime(2026, 1, 1), "files": "{}",
    }  # fmt: skip
    month = {"league_code": "150700", "month": "2025-01", "batch_id": "pay-150700-9999"}
    with pytest.raises(duckdb.ConstraintException):
        record_batch(year.store, batch, [], [{**month, "due_fen": 0}], MAKER, "0" * 64)
    assert year.sql("SELECT COUNT(*) FROM payment_batches") == [(2,)]


def test_every_state_change_is_a_journal_entry_and_an_event(year):
    kinds = [k for (k,) in year.sql("SELECT kind FROM journal ORDER BY seq")]
    assert [k for k in kinds if k not in ("run", "seal")] == [
        "batch", "payment", "clawback", "batch", "close",
    ]  # fmt: skip
    events = year.sql(
        "SELECT action, actor FROM events WHERE action NOT IN ('run', 'seal') ORDER BY seq"
    )
    assert events == [
        ("payment_batch", "wangli"), ("payment_confirmed", "lisi"), ("clawback", "wangli"),
        ("payment_batch", "wangli"), ("close_year", "lisi"),
    ]  # fmt: skip
    entry = json.loads((year.out / "journal" / "paid-pay-150700-0001.json").read_text("utf-8"))
    assert (entry["voucher"], entry["paid_on"], entry["previous_run_id"]) == (
        "财付〔2025〕8号",
        "2025-04-01",
        "pay-150700-0001",
    )


# --------------------------------------------------------------------------- clawbacks


def test_a_clawback_is_booked_in_the_next_open_month_and_shown_there(year):
    assert year.clawed.booked_in_month == "2025-03"
    assert [(x["waybill_no"], x["amount_fen"]) for x in year.clawed.lines] == [
        ("A1", -10),
        ("A2", -15),
    ]  # A2 without an amount: all of its 15 分
    folder, manifest = year.statements("2025-03")
    assert manifest["clawback_fen"] == -25
    assert {n: e["due_fen"] for n, e in manifest["files"].items() if n.endswith(".xlsx")} == {
        "YTO.xlsx": 15,
        "ZTO.xlsx": -15,  # 10 − 25
        "summary.xlsx": 0,
    }
    page = (folder / "ZTO.html").read_text(encoding="utf-8")
    assert "追缴（负数调整，计入本期）" in page
    assert year.clawed.clawback_id in page and "签收照片重复使用" in page
    assert "A1、A2" in page and "wangli，" in page
    assert '本期实付合计：人民币负壹角伍分（<span id="total-due">¥-0.15</span>）' in page
    notice = list(csv.reader((folder / "public_notice.csv").read_text("utf-8-sig").splitlines()))
    assert notice[2] == ["ZTO", "中通快递", "1", "0.10", "0.00", "-0.25", "-0.15"]
    html = (folder / "public_notice.html").read_text(encoding="utf-8")
    assert "追缴明细（计入本月，负数调整）" in html and "签收照片重复使用" in html
    book = openpyxl.load_workbook(folder / "ZTO.xlsx")
    assert [r for r in book["追缴明细"].iter_rows(values_only=True)][1:] == [
        (year.clawed.clawback_id, "ZTO", "A1", "2025-01", -0.1),
        (year.clawed.clawback_id, "ZTO", "A2", "2025-01", -0.15),
    ]


def test_clawback_refusals_name_the_waybill_and_why(year):
    with pytest.raises(RefusedError) as err:
        year.claw("2025-01", "运单号,金额\nA1,0.06\nA3,\nB1,abc\nB1,0.01\nB1,0.20\nZZ9,\n")
    assert str(err.value).startswith("追缴未登记（6 行有问题，全部行均未登记）：")
    lines = [str(err.value).split("：", 1)[1], *err.value.details]
    assert [x.split("：", 1)[0].split(" ", 1)[1] for x in lines] == [
        f"第 {n} 行 运单 {w}" for n, w in ((2, "A1"), (3, "A3"), (4, "B1"), (5, "B1"), (6, "B1"),
                                            (7, "ZZ9"))
    ]  # fmt: skip
    assert (
        "追缴金额超过该运单尚未追缴的补贴（已付 0.15 元，已追缴 0.10 元，可追缴 0.05 元，本行 0.06 元）"
        in lines[0]
    )
    assert "不是该盟市该月份已结算的运单（该运单在 150700 2025-02 结算）" in lines[1]
    assert "金额应为大于 0、最多两位小数的元数，实际为“abc”" in lines[2]
    assert "运单号在前面的行已出现" in lines[3]
    assert "不是该盟市该月份已结算的运单" in lines[5]
    assert year.sql("SELECT COUNT(*) FROM clawbacks WHERE kind = 'manual'") == [(2,)]


def test_a_waybill_fully_recovered_has_nothing_left(year):
    with pytest.raises(RefusedError) as err:
        year.claw("2025-01", "运单号\nA2\n")
    assert "该运单已无可追缴的金额（补贴为 0 或已全部追缴）（已付 0.15 元，已追缴 0.15 元" in str(
        err.value
    )


def test_clawback_needs_a_sealed_month_and_a_reason(tmp_path):
    office = Office(tmp_path)
    office.settle("2025-01", p("A1", "2025-01-05"))
    with pytest.raises(RefusedError) as err:
        office.claw("2025-01", "运单号\nA1\n")
    assert "尚未封存：未封存的月份可以重新结算（--replace）或作废，无需追缴" in str(err.value)
    office.seal("2025-01")
    with pytest.raises(UsageError, match="追缴原因不能为空"):
        office.claw("2025-01", "运单号\nA1\n", reason=" ")
    result = office.cli("clawback", "--league", "150700", "--month", "2025-01", "--waybills",
                        tmp_path / "missing.csv", "--reason", "x", "--store", office.store,
                        "--config", office.config)  # fmt: skip
    assert result.exit_code == 2 and "missing.csv" in result.output


def test_a_clawback_booked_in_a_month_not_yet_settled_appears_when_it_is(tmp_path):
    office = Office(tmp_path)
    office.settle("2025-01", p("A1", "2025-01-05"))
    office.seal("2025-01")
    env = {"SETTLE_USER": "zhao"}
    claw = tmp_path / "claw.csv"
    claw.write_text("运单号,金额\nA1,0.05\n", encoding="utf-8")
    result = office.cli("clawback", "--league", "150700", "--month", "2025-01", "--waybills",
                        claw, "--reason", "重复申报", "--store", office.store, "--config",
                        office.config, "-q", env=env)  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "1 个运单，合计 -0.05 元，计入 2025-02 结算单" in result.output
    office.settle("2025-02", p("A2", "2025-02-05"))
    folder, manifest = office.statements("2025-02")
    assert manifest["files"]["ZTO.xlsx"]["due_fen"] == 10  # 15 − 5
    assert "重复申报" in (folder / "ZTO.html").read_text(encoding="utf-8")
    assert "zhao，" in (folder / "ZTO.html").read_text(encoding="utf-8")


# --------------------------------------------------------------------------- the annual close


def test_the_annual_true_up_claws_back_what_monthly_caps_allowed_beyond_the_year(year):
    # ZTO|150702 over 2025: cost 2 + 2 + 0.1 + 0.1 + 2 = 6.20, revenue 6.00: annual cap 20 分.
    # Paid net of clawbacks: A1 15 − 10 = 5, A2 15 − 15 = 0, A5 10; 15 in all: within the cap.
    # YTO: cost 6.00, revenue 0: cap 600 分 ≥ 45. Nothing to claw back.
    assert year.closed.true_up_fen == 0 and year.closed.clawbacks == 0
    assert year.sql("SELECT year, annual_true_up, true_up_fen FROM year_closes") == [
        (2025, True, 0)
    ]


def test_the_true_up_allocates_the_excess_to_parcels_by_largest_remainder(tmp_path):
    office = Office(tmp_path, true_up=True)
    # January: ZTO loses 4.00 (cap 400), paid 30; February: profitable (cap 0), paid 0;
    # March: loses 2.00, paid 15. Year: cost 6.20 − revenue 6.00 → cap 20; paid 45 → excess 25.
    office.settle("2025-01", p("A1", "2025-01-05"), p("A2", "2025-01-06"))
    office.settle("2025-02", p("A3", "2025-02-05", cost="0.10", revenue="3.00"),
                  p("A4", "2025-02-06", cost="0.10", revenue="3.00"))  # fmt: skip
    office.settle("2025-03", p("A5", "2025-03-05"))
    for month in ("2025-01", "2025-02", "2025-03"):
        office.seal(month)
    # Σ max(0, monthly loss) = 6.00 ≥ max(0, Σ loss) = 0.20: the monthly caps allowed more
    result = office.cli("close-year", "--league", "150700", "--year", "2025", "--store",
                        office.store, "--config", office.config, "-q")  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "年度盈亏平衡清算：1 个结算单元超出全年上限，追缴 0.25 元（3 个运单），计入 2026-01" in (
        result.output
    )
    # keep 20 of 45 in proportion to 15, 15, 15: 6.67 each → 6, 6, 6 + 2 leftover fen to the
    # largest remainders, all equal: the smaller waybills A1, A2 → keep 7, 7, 6
    assert office.sql(
        "SELECT waybill_no, amount_fen, source_month, booked_in_month, kind FROM clawbacks "
        "ORDER BY waybill_no"
    ) == [
        ("A1", -8, "2025-01", "2026-01", "true_up"),
        ("A2", -8, "2025-01", "2026-01", "true_up"),
        ("A5", -9, "2025-03", "2026-01", "true_up"),
    ]
    units = office.sql("SELECT true_up_fen, booked_in_month FROM year_closes")
    assert units == [(-25, "2026-01")]
    summary = (office.out / "annual/league=150700/year=2025/summary.html").read_text("utf-8")
    assert "ZTO|150702" in summary and "计入 2026-01 结算单" in summary
    # the next year's January shows the true-up on its statement once settled
    office.settle("2026-01", p("A6", "2026-01-05"))
    folder, manifest = office.statements("2026-01")
    assert manifest["files"]["ZTO.xlsx"]["due_fen"] == 12 - 25  # T-2 pays 12 分 a parcel
    assert "年度盈亏平衡清算" in (folder / "ZTO.html").read_text(encoding="utf-8")
    assert office.cli("verify", "--out", office.out).exit_code == 0


def test_without_the_true_up_the_year_keeps_its_monthly_caps(tmp_path):
    office = Office(tmp_path)
    office.settle("2025-01", p("A1", "2025-01-05"))
    office.settle("2025-02", p("A3", "2025-02-05", cost="0.10", revenue="3.00"))
    office.seal("2025-01")
    office.seal("2025-02")
    closed = close_year(office.cfg, office.store, "150700", 2025, MAKER)
    assert closed.true_up_fen == 0 and not closed.data.annual_true_up
    assert office.sql("SELECT COUNT(*) FROM clawbacks") == [(0,)]
    page = (closed.folder / "ZTO.html").read_text(encoding="utf-8")
    assert "本盟市政策未启用年度盈亏平衡清算" in page


def test_the_annual_statements_add_up_the_months(year):
    folder = year.closed.folder
    assert sorted(p.name for p in folder.iterdir()) == [
        "YTO.html", "YTO.xlsx", "ZTO.html", "ZTO.xlsx", "annual.json", "summary.html",
        "summary.xlsx",
    ]  # fmt: skip
    manifest = json.loads((folder / "annual.json").read_text(encoding="utf-8"))["files"]
    by_month = year.sql(
        "SELECT company, SUM(regular_fen), SUM(clawback_fen), SUM(due_fen) FROM payable "
        "WHERE month BETWEEN '2025-01' AND '2025-12' GROUP BY company ORDER BY company"
    )
    assert by_month == [("YTO", 45, 0, 45), ("ZTO", 40, -25, 15)]
    for company, regular, clawed, due in by_month:
        entry = manifest[f"{company}.xlsx"]
        assert (entry["regular_fen"], entry["clawback_fen"], entry["due_fen"]) == (
            regular,
            clawed,
            due,
        )
    assert manifest["summary.xlsx"]["due_fen"] == 60
    # paid: January and February (batch 1, confirmed); March's batch 2 is not yet confirmed
    assert (manifest["summary.xlsx"]["paid_fen"], manifest["summary.xlsx"]["outstanding_fen"]) == (
        60,
        0,
    )
    sheet = openpyxl.load_workbook(folder / "ZTO.xlsx")["年度结算"]
    rows = [r for r in sheet.iter_rows(values_only=True) if r[0] and str(r[0]).startswith("2025-")]
    assert [(r[0], r[1], r[3], r[5], r[6], r[7], r[8]) for r in rows[:4]] == [
        ("2025-01", "已封存", 0.3, 0, 0.3, "pay-150700-0001", "已拨付 2025-04-01"),
        ("2025-02", "已封存", 0, 0, 0, "pay-150700-0001", "已拨付 2025-04-01"),
        ("2025-03", "已封存", 0.1, -0.25, -0.15, "pay-150700-0002", "已生成，待拨付"),
        ("2025-04", "未结算", 0, 0, 0, "—", "—"),
    ]
    html = (folder / "summary.html").read_text(encoding="utf-8")
    assert "呼伦贝尔市2025年度快递进村补贴年度结算汇总表" in html
    assert "年度预算 1,000.00 元（规则 none），已用 0.85 元，余额 999.15 元。" in html
    notes = (folder / "ZTO.html").read_text(encoding="utf-8")
    assert "截至关账有 0.15 元结转待抵扣（拨付批次 pay-150700-0002" in notes


def test_close_year_refusals(tmp_path):
    office = Office(tmp_path)
    office.settle("2025-01", p("A1", "2025-01-05"))
    office.settle("2025-02", p("A2", "2025-02-05"))
    office.seal("2025-01")
    with pytest.raises(RefusedError) as err:
        close_year(office.cfg, office.store, "150700", 2025, MAKER)
    assert str(err.value) == (
        "盟市 150700 2025 预算年度不能关账：2025-02 已结算但尚未封存。每个月份都须封存"
        "（没有结算的月份除外）"
    )
    office.seal("2025-02")
    office.claw("2025-02", "运单号\nA2\n")  # booked in March, which has no run
    with pytest.raises(RefusedError, match="2025-03 没有结算，但有计入该月的补充结算或追缴"):
        close_year(office.cfg, office.store, "150700", 2025, MAKER)
    office.settle("2025-03", p("A3", "2025-03-05"))
    office.seal("2025-03")
    early = office.cli("close-year", "--league", "150700", "--year", "2025", "--store",
                       office.store, "--config", office.config,
                       env={"SETTLE_TODAY": "2025-12-31"})  # fmt: skip
    assert early.exit_code == 2 and "尚未结束（今天是 2025-12-31），不能关账" in early.output
    close_year(office.cfg, office.store, "150700", 2025, MAKER)
    with pytest.raises(
        RefusedError, match="2025 预算年度已于 .* 由 wangli 关账，每个年度只能关账一次"
    ):
        close_year(office.cfg, office.store, "150700", 2025, CHECKER)
    # an empty month of the closed year cannot be settled any more
    with pytest.raises(RefusedError, match="2025 预算年度（2025-01 至 2025-12）已关账"):
        office.settle("2025-05", p("A9", "2025-05-05"))
    # a later clawback of the closed year goes to the next year
    assert office.claw("2025-01", "运单号\nA1\n").booked_in_month == "2026-01"


# --------------------------------------------------------------------------- status and verify


def test_status_shows_the_cash_view(year):
    cash = cash_view(year.store, "150700", 2025)
    shown = [
        (m["month"], m["due_fen"], m["batch_id"], m["batch_state"], m["outstanding_fen"])
        for m in cash["months"]
        if m["any_due"]
    ]
    assert shown == [
        ("2025-01", 45, "pay-150700-0001", "paid", 0),
        ("2025-02", 15, "pay-150700-0001", "paid", 0),
        ("2025-03", 0, "pay-150700-0002", "created", 0),
    ]
    assert [(c["company"], c["carried_fen"]) for c in cash["carries"]] == [("ZTO", -15)]
    result = year.cli("status", "--league", "150700", "--year", "2025", "--store", year.store)
    assert result.exit_code == 0
    assert "  2025-01  已封存" in result.output  # the budget lines stay
    lines = result.output.splitlines()
    assert any(
        x.split() == ["2025-03", "0.00", "-0.25", "0.00", "pay-150700-0002（已生成）", "0.00"]
        for x in lines
    )
    assert "结转待抵扣：ZTO -0.15 元（批次 pay-150700-0002 应付为负，从下一批次扣回）" in lines


def test_verify_checks_batches_clawbacks_and_the_annual_totals(year, tmp_path):
    import shutil

    assert year.cli("verify", "--out", year.out).exit_code == 0
    copy = tmp_path / "out"
    shutil.copytree(year.out, copy)
    (copy / "payments/league=150700/pay-150700-0001.csv").write_text("x", encoding="utf-8")
    con = duckdb.connect(str(copy / "settlement.duckdb"))
    con.execute("UPDATE payment_lines SET due_fen = due_fen + 1 WHERE company = 'YTO'")
    con.execute("UPDATE clawbacks SET amount_fen = -16 WHERE waybill_no = 'A2'")
    con.close()
    result = year.cli("verify", "--out", copy)
    assert result.exit_code == 1
    out = result.output
    assert "pay-150700-0001.csv  [拨付文件]  SHA-256 与结算库记录不符（文件被修改）" in out
    assert "拨付行的本批应付与所列月份结算单的本期实付合计不符" in out
    assert "企业 YTO 本批应付 31 分，所列月份结算单的本期实付合计 30 分" in out
    assert "09_clawbacks_within_paid.sql" in out and "追缴合计超过该运单的补贴" in out
    assert "ZTO.xlsx  [年度合计 = 各月之和（SPEC §10）]  clawback_fen 年度结算表为 -25 分" in out


# --------------------------------------------------------------------------- the tester's slips


def test_a_payment_date_before_its_months_ended_or_its_batch_existed_is_refused(tmp_path):
    # the confirmation cannot be undone: a mistyped year would stay on every annual statement
    office = Office(tmp_path)
    office.settle("2025-01", p("A1", "2025-01-05"))
    office.seal("2025-01")
    batch = office.pay("2025-01")["batch_id"]
    with pytest.raises(RefusedError) as err:
        confirm_batch(office.store, batch, dt.date(2020, 1, 1), "财付〔2025〕8号", CHECKER)
    assert str(err.value) == (
        "拨付日期 2020-01-01 不对：拨付只能在所付的 2025-01 结束之后；请检查 --paid-on 是否写错"
    )
    # with the real clock the batch's own date is the floor
    real = office.cli(
        "pay", "confirm", "--batch", batch, "--paid-on", "2025-02-03", "--voucher", "财付1",
        "--store", office.store, env={"SETTLE_TODAY": "", "SETTLE_USER": "lisi"},
    )  # fmt: skip
    assert real.exit_code == 2
    assert f"拨付只能在拨付批次 {batch} 生成（" in real.output
    assert office.sql("SELECT state FROM payment_batches") == [("created",)]


def test_a_voucher_used_twice_is_confirmed_with_a_warning(tmp_path):
    office = Office(tmp_path)
    for month, waybill in (("2025-01", "A1"), ("2025-02", "A2")):
        office.settle(month, p(waybill, f"{month}-05"))
        office.seal(month)
    first = office.pay("2025-01")["batch_id"]
    second = office.pay("2025-02")["batch_id"]
    assert (
        confirm_batch(office.store, first, dt.date(2025, 3, 1), "财付8", CHECKER)["warnings"] == []
    )
    result = office.cli(
        "pay", "confirm", "--batch", second, "--paid-on", "2025-03-02", "--voucher", "财付8",
        "--store", office.store, env={"SETTLE_USER": "lisi"},
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[-1] == (
        f"  注意：凭证号 财付8 已用于拨付批次 {first}，请确认没有重复登记"
    )


def test_a_year_without_a_settled_month_cannot_be_closed(tmp_path):
    # closing is for ever: `--year 2024` for 2025 shut a year never settled
    office = Office(tmp_path)
    office.settle("2025-01", p("A1", "2025-01-05"))
    office.seal("2025-01")
    result = office.cli(
        "close-year", "--league", "150700", "--year", "2024", "--store", office.store,
        "--config", office.config,
    )  # fmt: skip
    assert (result.exit_code, result.output.strip()) == (
        2,
        "错误：盟市 150700 2024 预算年度（2024-01 至 2024-12）没有任何已结算的月份，不能关账；"
        "请检查 --league 和 --year 是否写错",
    )
    assert office.sql("SELECT COUNT(*) FROM year_closes") == [(0,)]


def test_who_ran_the_month_cannot_seal_it_by_naming_another_reviewer(tmp_path):
    office = Office(tmp_path)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SETTLE_USER", "zhangsan")
        office.settle("2025-01", p("A1", "2025-01-05"))
        with pytest.raises(RefusedError, match="是 zhangsan 运行的；按照经办与审核分离的要求"):
            office.seal("2025-01")  # names 审核员, but zhangsan is at the keyboard
        mp.setenv("SETTLE_USER", "lisi")
        assert office.seal("2025-01")["reviewed_by"] == "审核员"

"""The security tester's findings against the portal (as company ZTO against YTO, and as an
auditor of another 盟市), each with the exact status and message.

One portal for the module, in file order: ZTO and YTO submit March — ZTO squats two of YTO's
waybills by backdating them (and wins the DUPLICATE tie-break), and also sends one of YTO's
waybills dated after YTO's (and loses it) — admin1 settles it, admin2 seals it, admin1 makes a
payment batch."""

from __future__ import annotations

import io
import re

import openpyxl
import polars as pl
import pytest
from click.testing import CliRunner
from conftest import make_config
from test_payout import COMPANIES
from test_web_api import World
from webfixtures import PASSWORDS, TODAY, gbk_log, log_line, make_portal

from settlement.cli import main
from settlement.web.access import SESSION_COOKIE
from settlement.web.app import NOT_AUTHENTICATED
from settlement.web.pages import LOGIN_COOKIE, LOGIN_EXPIRED

L, M = "150700", "2025-03"
BATCH = "pay-150700-0001"
OTHER_LEAGUE = "无权访问：盟市 150700 不在您的管辖范围（150300）内"

ZTO_FILE = gbk_log(
    log_line("ZT001", "ZTO", "2025-03-05"),  # paid 15 分
    log_line("ZT002", "ZTO", "2025-03-06", km="5"),  # paid 10 分
    log_line("YT001", "ZTO", "2025-03-04"),  # squatted: earlier than YTO's, ZTO's is kept
    log_line("YT003", "ZTO", "2025-03-04"),  # squatted
    log_line("YT004", "ZTO", "2025-03-09"),  # later than YTO's: DUPLICATE of YTO's row
    log_line("ZT001", "ZTO", "2025-03-08"),  # DUPLICATE of its own line 2
    log_line("ZT009", "ZTO", "2025-03-07", km="abc"),  # MALFORMED
    log_line("ZT008", "", "2025-03-07"),  # no company: rejected, still ZTO's row
)
YTO_FILE = gbk_log(
    log_line("YT001", "YTO", "2025-03-05"),  # DUPLICATE: ZTO's row is kept
    log_line("YT002", "YTO", "2025-03-09", km="abc"),  # MALFORMED
    log_line("YT003", "YTO", "2025-03-06"),  # DUPLICATE: ZTO's row is kept
    log_line("YT004", "YTO", "2025-03-07"),  # paid to YTO
)
OTHER_DUPLICATE = "与另一企业提交的同一运单号重复（该企业的记录已受理）"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("SETTLE_TODAY", TODAY)
    app, settings = make_portal(tmp_path_factory.mktemp("security"), companies=COMPANIES)
    w = World(app, settings)
    for who, data, name in (("zto", ZTO_FILE, "中通3月.csv"), ("yto", YTO_FILE, "圆通3月.csv")):
        r = w.as_(who).post(
            f"/api/submissions?league={L}&month={M}", files={"file": (name, data, "text/csv")}
        )
        assert r.status_code == 201, r.text
    r = w.as_("admin1").post("/api/runs", json={"league": L, "month": M})
    assert r.status_code == 200, r.text
    w.run = r.json()
    body = {"league": L, "month": M, "notice_start": "2025-04-01", "notice_end": "2025-04-10",
            "approval_ref": "呼邮管〔2025〕3号", "approved_by": "审批人甲"}  # fmt: skip
    assert w.as_("admin2").post("/api/seal", json=body).status_code == 200
    r = w.as_("admin1").post("/api/batches", json={"league": L, "months": [M]})
    assert r.status_code == 201, r.text
    yield w
    mp.undo()


# --------------------------------------------------------------------------- 1 auditors' 盟市


def test_an_auditor_runs_a_canned_query_of_its_own_league_only(world):
    params = {"league": L, "month": M}
    r = world.as_("auditor_other").post(
        "/api/queries/payouts_by_company_county", json={"params": params}
    )
    assert (r.status_code, r.json()["detail"]) == (403, OTHER_LEAGUE)
    r = world.as_("auditor").post("/api/queries/payouts_by_company_county", json={"params": params})
    assert r.status_code == 200
    assert r.json()["rows"] == [
        ["YTO", "150702", 1, "0.15", "0.15"],
        ["ZTO", "150702", 4, "0.55", "0.55"],
    ]
    client = world.as_("auditor_other")
    page = client.post(
        "/queries/payouts_by_company_county",
        data=params | {"csrf_token": client.headers["X-CSRF-Token"]},
    )
    assert page.status_code == 403 and OTHER_LEAGUE in page.text
    # the SQL console reads the whole store by design (README)
    r = client.post("/api/sql", json={"query": "SELECT COUNT(*) FROM ledger"})
    assert r.status_code == 200


def test_an_auditor_explains_waybills_of_its_own_league_only(world):
    unknown = "运单 {} 不在盟市 150300 的任何有效批次的明细账或剔除清单中"
    for waybill in ("ZT001", "YT002", "NOPE"):  # paid, rejected, in no log: all the same
        r = world.as_("auditor_other").get(f"/api/explain?waybill={waybill}")
        assert (r.status_code, r.json()["detail"]) == (404, unknown.format(waybill))
    page = world.as_("auditor_other").get("/explain?waybill=ZT001")
    assert page.status_code == 404 and unknown.format("ZT001") in page.text
    assert "15 分" not in page.text and "150702100201" not in page.text
    r = world.as_("auditor").get("/api/explain?waybill=ZT001")
    assert r.status_code == 200 and r.json()["lines"][0].startswith(
        "运单 ZT001：已结算（盟市 150700"
    )
    page = world.as_("auditor").get("/explain?waybill=YT002")
    assert page.status_code == 200 and "MALFORMED" in page.text


# --------------------------------------------------------------------------- 2 a batch's total


def test_a_company_sees_only_its_own_amount_of_a_batch(world):
    office = world.as_("admin1").get(f"/api/batches/{BATCH}").json()
    assert office["amount_fen"] == 70  # ZTO 55 + YTO 15
    for company, amount in (("zto", 55), ("yto", 15)):
        r = world.bearer(company).get(f"/api/batches/{BATCH}")
        assert r.status_code == 200
        body = r.json()
        assert body["amount_fen"] == amount
        assert [(x["company"], x["amount_fen"]) for x in body["lines"]] == [
            (company.upper(), amount)
        ]
        assert body["files"] == []
        page = world.as_(company).get(f"/payouts/batches/{BATCH}").text
        assert "0.70" not in page and "拨付合计" not in page
        overview = world.as_(company).get(f"/api/payouts?league={L}&year=2025").json()
        assert [b["amount_fen"] for b in overview["batches"]] == [amount]
        assert "0.70" not in world.as_(company).get(f"/payouts?league={L}&year=2025").text


# --------------------------------------------------------------------------- 3 reconciliation


def test_a_claim_is_rejected_only_by_the_companys_own_rejects(world):
    claim = "运单号,申报金额\nZT001,0.15\nYT002,0.15\nYT004,0.15\nZT009,0.15\nZT008,0.15\n"
    r = world.as_("zto").post(
        f"/api/reconcile?league={L}&month={M}", files={"claim": ("申报.csv", claim.encode("gbk"))}
    )
    assert r.status_code == 200, r.text
    rows = pl.read_parquet(
        world.settings.out_dir / "reconciliation" / f"league={L}" / f"month={M}" / "ZTO.parquet"
    )
    assert rows.select("claim_line", "waybill_no", "status", "reason_code").rows() == [
        (2, "ZT001", "PAID", None),
        (3, "YT002", "NOT_SUBMITTED", None),  # YTO's MALFORMED row: not ZTO's business
        (4, "YT004", "OTHER_COMPANY", None),  # paid to YTO: ZTO may dispute it
        (5, "ZT009", "REJECTED", "MALFORMED"),
        (6, "ZT008", "REJECTED", "MALFORMED"),  # no company, but in ZTO's own file
        (None, "YT001", "NOT_CLAIMED", None),
        (None, "YT003", "NOT_CLAIMED", None),
        (None, "ZT002", "NOT_CLAIMED", None),
    ]
    by = {s["status"]: s["lines"] for s in r.json()["summary"]}
    assert (by["REJECTED"], by["NOT_SUBMITTED"], by["OTHER_COMPANY"]) == (2, 1, 1)


# --------------------------------------------------------------------------- 4 reject details


def every_cell(xlsx: bytes) -> str:
    book = openpyxl.load_workbook(io.BytesIO(xlsx), read_only=True)
    return "\n".join(
        str(v) for ws in book.worksheets for row in ws.iter_rows(values_only=True) for v in row
    )


def test_a_duplicate_of_another_companys_row_names_neither_its_file_nor_its_line(world):
    out = str(world.settings.out_dir.resolve())
    for company, expected in (
        (
            "ZTO",
            [
                ("YT004", "DUPLICATE", OTHER_DUPLICATE),  # YTO's row was kept
                ("ZT001", "DUPLICATE", "与 中通3月.csv 第 2 行的运单号相同，该行已受理"),
                ("ZT009", "MALFORMED", None),
                ("ZT008", "MALFORMED", None),
            ],
        ),
        (
            "YTO",
            [
                ("YT001", "DUPLICATE", OTHER_DUPLICATE),  # ZTO's backdated row was kept
                ("YT002", "MALFORMED", None),
                ("YT003", "DUPLICATE", OTHER_DUPLICATE),
            ],
        ),
    ):
        client = world.as_(company.lower())
        r = client.get(f"/api/rejects/{L}/{M}/{company}.json")
        assert r.status_code == 200 and out not in r.text and "submissions/" not in r.text
        got = [
            (
                x["waybill_no"],
                x["reason_code"],
                x["detail"] if x["reason_code"] == "DUPLICATE" else None,
            )
            for x in r.json()["rejects"]
        ]
        assert got == expected
        other = ({"ZTO", "YTO"} - {company}).pop()
        statement = every_cell(client.get(f"/api/statements/{L}/{M}/{company}.xlsx").content)
        assert OTHER_DUPLICATE in statement and out not in statement and other not in statement
        html = client.get(f"/api/statements/{L}/{M}/{company}.html").text
        assert out not in html and other not in html  # its rejects are on the XLSX's sheet
        assert out not in client.get(f"/months/{L}/{M}").text
    # the run records its inputs relative to the output folder: no server path in any output
    ledger = pl.read_parquet(world.settings.out_dir / "ledger" / f"league={L}" / f"month={M}")
    assert {f.rsplit("/", 1)[0] for f in ledger["source_file"]} == {
        f"submissions/league={L}/month={M}/ZTO",
        f"submissions/league={L}/month={M}/YTO",
    }


def test_another_companys_settled_waybill_names_neither_the_run_nor_the_month(world):
    april = gbk_log(
        log_line("YT004", "ZTO", "2025-04-02"),  # paid to YTO in March
        log_line("ZT001", "ZTO", "2025-04-03"),  # paid to ZTO in March
        log_line("ZT101", "ZTO", "2025-04-03"),
    )
    r = world.as_("zto").post(
        f"/api/submissions?league={L}&month=2025-04",
        files={"file": ("中通4月.csv", april, "text/csv")},
    )
    assert r.status_code == 201, r.text
    details = {x["waybill_no"]: x["detail"] for x in r.json()["report"]["examples"]}
    assert details == {
        "YT004": "该运单已由另一企业结算",
        "ZT001": f"已在盟市 {L} {M} 的结算（批次 {world.run['result']['run_id']}）中结算",
    }


def test_the_office_is_warned_of_waybills_two_companies_logged(world):
    warnings = [
        "注意：2 个运单号同时出现在 ZTO 和 YTO 的日志中（已受理 ZTO 的记录），请核实",
        "注意：1 个运单号同时出现在 YTO 和 ZTO 的日志中（已受理 YTO 的记录），请核实",
    ]
    assert world.run["result"]["warnings"] == warnings
    page = world.as_("admin1").get(f"/months/{L}/{M}").text
    assert all(w in page for w in warnings)
    assert all(w in world.as_("auditor").get(f"/months/{L}/{M}").text for w in warnings)
    assert "同时出现在" not in world.as_("zto").get(f"/months/{L}/{M}").text


def test_the_cli_run_summary_warns_of_waybills_two_companies_logged(tmp_path):
    config = make_config(tmp_path / "config", companies=COMPANIES)
    (tmp_path / "zto.csv").write_bytes(ZTO_FILE)
    (tmp_path / "yto.csv").write_bytes(YTO_FILE)
    result = CliRunner().invoke(
        main,
        ["run", "--league", L, "--month", M, "--logs", str(tmp_path / "zto.csv"),
         "--logs", str(tmp_path / "yto.csv"), "--config", str(config),
         "--out", str(tmp_path / "out")],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert "  注意：2 个运单号同时出现在 ZTO 和 YTO 的日志中（已受理 ZTO 的记录），请核实" in lines
    assert "  注意：1 个运单号同时出现在 YTO 和 ZTO 的日志中（已受理 YTO 的记录），请核实" in lines


# --------------------------------------------------------------------------- 5 small ones


def test_a_submission_id_beyond_any_integer_is_404(world):
    for sid in ("99999999999999999999", "0", "-1"):
        r = world.as_("zto").get(f"/api/submissions/{sid}")
        assert (r.status_code, r.json()["detail"]) == (404, f"没有编号为 {sid} 的提交")
        assert world.as_("zto").get(f"/submissions/{sid}").status_code == 404


@pytest.mark.parametrize("year", [99999999999, -5, 1999, 2101])
def test_a_budget_year_outside_2000_to_2100_is_refused(world, year):
    message = f"预算年度 {year} 无效：应为 2000 至 2100 之间的年份"
    r = world.as_("admin1").post("/api/close-year", json={"league": L, "year": year})
    assert (r.status_code, r.json()["detail"]) == (422, message)
    for path in (f"/api/payouts?league={L}&year={year}", f"/api/status?league={L}&year={year}"):
        r = world.as_("admin1").get(path)
        assert (r.status_code, r.json()["detail"]) == (422, message)
    r = world.as_("zto").get(f"/api/annual/{L}/{year}/ZTO.xlsx")
    assert (r.status_code, r.json()["detail"]) == (422, message)


def test_the_openapi_page_and_schema_need_a_login(world):
    r = world.anon().get("/openapi.json")
    assert (r.status_code, r.json()["detail"]) == (401, NOT_AUTHENTICATED)
    for path in ("/docs", "/docs/oauth2-redirect"):
        r = world.anon().get(path)
        assert r.status_code == 401 and NOT_AUTHENTICATED in r.text and 'action="/login"' in r.text
    assert world.as_("zto").get("/docs").status_code == 200
    assert "/api/batches/{batch_id}" in world.bearer("zto").get("/openapi.json").json()["paths"]
    assert "/api/login" in world.as_("auditor").get("/openapi.json").json()["paths"]


def test_the_login_form_needs_the_token_of_its_own_page(world):
    form = {"username": "zto", "password": PASSWORDS["zto"]}
    # another site's form: no login cookie, or a token not matching it
    browser = world.anon()
    r = browser.post("/login", data=form, follow_redirects=False)
    assert r.status_code == 403 and LOGIN_EXPIRED in r.text and SESSION_COOKIE not in r.cookies
    page = world.anon().get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    assert page.cookies[LOGIN_COOKIE] == token
    r = world.anon().post("/login", data=form | {"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 403 and SESSION_COOKIE not in r.cookies  # the token, not the cookie
    # the login page itself: the cookie and the form's token agree
    browser = world.anon()
    page = browser.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    r = browser.post("/login", data=form | {"csrf_token": "x" + token}, follow_redirects=False)
    assert r.status_code == 403
    r = browser.post("/login", data=form | {"csrf_token": token}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/" and r.cookies[SESSION_COOKIE]

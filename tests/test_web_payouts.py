"""Paying out in the portal (SPEC §10 through §11): every route of batches, confirmation,
clawbacks and the annual close, with each role and each cross-company or cross-league refusal.

One portal for the module, walked through in file order: ZTO and YTO submit March, admin1
settles it, admin2 seals it; admin1 makes a batch, admin2 confirms it; admin1 books a clawback
in April, April is settled and sealed; after the year has ended the year is closed."""

from __future__ import annotations

import io

import openpyxl
import pyarrow.parquet as pq
import pytest
import test_web_api
from fastapi.testclient import TestClient
from test_payout import COMPANIES
from webfixtures import PASSWORDS, TODAY, YTO_MARCH, ZTO_MARCH, gbk_log, log_line, make_portal

L, M = "150700", "2025-03"
BATCH = "pay-150700-0001"


class World(test_web_api.World):
    """The API test's clients, and a seal by admin2 (who did not run the months)."""

    def seal(self, month: str, start: str, end: str):
        body = {"league": L, "month": month, "notice_start": start, "notice_end": end,
                "approval_ref": f"呼邮管〔2025〕{month}", "approved_by": "审批人甲"}  # fmt: skip
        r = self.as_("admin2").post("/api/seal", json=body)
        assert r.status_code == 200, r.text


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("SETTLE_TODAY", TODAY)
    app, settings = make_portal(tmp_path_factory.mktemp("payouts"), companies=COMPANIES)
    w = World(app, settings)
    w.mp = mp
    for who, data in (("zto", ZTO_MARCH), ("yto", YTO_MARCH)):
        r = w.as_(who).post(
            f"/api/submissions?league={L}&month={M}", files={"file": ("3月.csv", data, "text/csv")}
        )
        assert r.status_code == 201, r.text
    r = w.as_("admin1").post("/api/runs", json={"league": L, "month": M})
    assert r.status_code == 200, r.text
    w.seal(M, "2025-04-01", "2025-04-10")
    yield w
    mp.undo()


# --------------------------------------------------------------------------- who may do what

ROUTES = [
    ("get", f"/api/payouts?league={L}&year=2025", None),
    ("post", "/api/batches", {"league": L, "months": [M]}),
    ("get", f"/api/batches/{BATCH}", None),
    ("post", f"/api/batches/{BATCH}/confirm", {"paid_on": "2025-06-01", "voucher": "V"}),
    ("get", f"/api/batches/{BATCH}/files/{BATCH}.xlsx", None),
    ("post", f"/api/clawbacks?league={L}&month={M}&reason=x", None),
    ("post", "/api/close-year", {"league": L, "year": 2025}),
    ("get", f"/api/annual/{L}/2025/ZTO.xlsx", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
def test_every_payout_route_is_401_without_a_session(world, method, path, body):
    r = getattr(TestClient(world.app), method)(path, **({"json": body} if body else {}))
    assert r.status_code == 401 and r.json()["detail"].startswith("未登录或登录已过期")


@pytest.mark.parametrize(
    ("user", "method", "path", "body"),
    [
        ("zto", "post", "/api/batches", {"league": L, "months": [M]}),
        ("auditor", "post", "/api/batches", {"league": L, "months": [M]}),
        ("admin_other", "post", "/api/batches", {"league": L, "months": [M]}),
        ("auditor_other", "get", f"/api/payouts?league={L}&year=2025", None),
        ("admin_other", "get", f"/api/payouts?league={L}&year=2025", None),
        ("zto", "post", "/api/close-year", {"league": L, "year": 2025}),
        ("auditor", "post", "/api/close-year", {"league": L, "year": 2025}),
        ("admin_other", "post", "/api/close-year", {"league": L, "year": 2025}),
    ],
)
def test_roles_and_leagues_not_their_own_are_403(world, user, method, path, body):
    r = getattr(world.as_(user), method)(path, **({"json": body} if body else {}))
    assert r.status_code == 403, r.text


def test_a_cookie_post_without_the_csrf_token_is_403(world):
    client = TestClient(world.app)
    r = client.post("/api/login", json={"username": "admin1", "password": PASSWORDS["admin1"]})
    assert r.status_code == 200
    r = client.post("/api/batches", json={"league": L, "months": [M]})
    assert r.status_code == 403 and "CSRF" in r.json()["detail"]


# --------------------------------------------------------------------------- batches


def test_the_office_creates_a_batch_of_sealed_months(world):
    r = world.as_("admin1").post("/api/batches", json={"league": L, "months": [M]})
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["batch_id"], body["state"], body["amount_fen"], body["created_by"]) == (
        BATCH,
        "created",
        55,
        "admin1",
    )
    assert [(x["company"], x["amount_fen"]) for x in body["lines"]] == [("YTO", 15), ("ZTO", 40)]
    again = world.as_("admin1").post("/api/batches", json={"league": L, "months": [M]})
    assert again.status_code == 409
    assert f"{M} 已在拨付批次 {BATCH}（已生成）中，每个月份只拨付一次" in again.json()["detail"]
    unsealed = world.as_("admin1").post("/api/batches", json={"league": L, "months": ["2025-04"]})
    assert unsealed.status_code == 409 and "2025-04 尚未结算" in unsealed.json()["detail"]
    bad = world.as_("admin1").post("/api/batches", json={"league": L, "months": ["2025-4"]})
    assert bad.status_code == 422


def test_a_company_sees_its_own_line_only(world):
    for company, amount in (("zto", 40), ("yto", 15)):
        body = world.as_(company).get(f"/api/batches/{BATCH}").json()
        assert [(x["company"], x["amount_fen"]) for x in body["lines"]] == [
            (company.upper(), amount)
        ]
        assert body["files"] == []
        overview = world.bearer(company).get(f"/api/payouts?league={L}&year=2025").json()
        assert [b["amount_fen"] for b in overview["batches"]] == [amount]
        assert [m["due_fen"] for m in overview["months"] if m["any_due"]] == [amount]
    everyone = world.as_("auditor").get(f"/api/batches/{BATCH}").json()
    assert [x["company"] for x in everyone["lines"]] == ["YTO", "ZTO"]
    assert world.as_("auditor_other").get(f"/api/batches/{BATCH}").status_code == 403
    assert world.as_("admin1").get("/api/batches/pay-150700-0099").status_code == 404


def test_batch_files_are_for_the_office_and_the_auditors(world):
    r = world.as_("auditor").get(f"/api/batches/{BATCH}/files/{BATCH}.xlsx")
    assert r.status_code == 200
    assert "拨付清单" in openpyxl.load_workbook(io.BytesIO(r.content)).sheetnames
    r = world.as_("admin1").get(f"/api/batches/{BATCH}/files/{BATCH}.parquet")
    assert pq.read_table(io.BytesIO(r.content)).column("amount_fen").to_pylist() == [15, 40]
    csv_text = world.as_("admin1").get(f"/api/batches/{BATCH}/files/{BATCH}.csv").text
    assert csv_text.startswith("\ufeff批次号,")
    assert world.as_("zto").get(f"/api/batches/{BATCH}/files/{BATCH}.xlsx").status_code == 403
    assert (
        world.as_("admin_other").get(f"/api/batches/{BATCH}/files/{BATCH}.csv").status_code == 403
    )
    assert world.as_("admin1").get(f"/api/batches/{BATCH}/files/other.xlsx").status_code == 404
    assert world.as_("admin1").get(f"/api/batches/{BATCH}/files/{BATCH}.json").status_code == 404


def test_the_maker_cannot_confirm_and_another_admin_can_once(world):
    body = {"paid_on": "2025-06-20", "voucher": "财付〔2025〕8号"}
    r = world.as_("admin1").post(f"/api/batches/{BATCH}/confirm", json=body)
    assert r.status_code == 409
    assert "由 admin1 生成，须由另一人确认拨付（经办与复核分离）" in r.json()["detail"]
    assert world.as_("auditor").post(f"/api/batches/{BATCH}/confirm", json=body).status_code == 403
    future = world.as_("admin2").post(
        f"/api/batches/{BATCH}/confirm", json=body | {"paid_on": "2025-07-01"}
    )
    assert future.status_code == 409 and "晚于今天" in future.json()["detail"]
    r = world.as_("admin2").post(f"/api/batches/{BATCH}/confirm", json=body)
    assert r.status_code == 200, r.text
    assert (r.json()["state"], r.json()["confirmed_by"], r.json()["paid_on"]) == (
        "paid",
        "admin2",
        "2025-06-20",
    )
    twice = world.as_("admin2").post(f"/api/batches/{BATCH}/confirm", json=body)
    assert twice.status_code == 409 and "不能再次确认" in twice.json()["detail"]
    events = world.as_("auditor").get("/api/events").json()["store"]
    assert [(e["action"], e["actor"]) for e in events[:2]] == [
        ("payment_confirmed", "admin2"),
        ("payment_batch", "admin1"),
    ]
    assert events[0]["origin"].startswith("portal@")


# --------------------------------------------------------------------------- clawbacks


def claw(client, text: str, reason: str = "签收照片重复使用", month: str = M):
    return client.post(
        f"/api/clawbacks?league={L}&month={month}",
        data={"reason": reason},
        files={"waybills": ("追缴清单.csv", text.encode("utf-8"), "text/csv")},
    )


def test_clawbacks_are_booked_by_the_office_only(world):
    assert claw(world.as_("zto"), "运单号\nZT001\n").status_code == 403
    assert claw(world.as_("auditor"), "运单号\nZT001\n").status_code == 403
    bad = claw(world.as_("admin1"), "运单号,金额\nZT001,0.20\nXX9,\n")
    assert bad.status_code == 409
    detail = bad.json()["detail"]
    assert "追缴未登记（2 行有问题" in detail and "第 2 行 运单 ZT001" in detail
    blank = claw(world.as_("admin1"), "运单号\nZT001\n", reason=" ")
    assert blank.status_code == 422 and "追缴原因不能为空" in blank.json()["detail"]
    r = claw(world.as_("admin1"), "运单号,金额\nZT001,0.05\nZT002,\n")
    assert r.status_code == 201, r.text
    assert (r.json()["booked_in_month"], r.json()["total_fen"]) == ("2025-04", -15)
    mine = world.as_("zto").get(f"/api/payouts?league={L}&year=2025").json()["clawbacks"]
    assert [(c["company"], c["waybills"], c["amount_fen"]) for c in mine] == [("ZTO", 2, -15)]
    assert world.as_("yto").get(f"/api/payouts?league={L}&year=2025").json()["clawbacks"] == []


def test_the_clawback_month_is_settled_and_shows_it(world):
    april = gbk_log(log_line("ZT101", "ZTO", "2025-04-02"))
    r = world.as_("zto").post(
        f"/api/submissions?league={L}&month=2025-04", files={"file": ("4月.csv", april, "text/csv")}
    )
    assert r.status_code == 201, r.text
    r = world.as_("admin1").post(
        "/api/runs", json={"league": L, "month": "2025-04", "confirm_missing": True}
    )
    assert r.status_code == 200, r.text
    page = world.as_("zto").get(f"/api/statements/{L}/2025-04/ZTO.html").text
    assert "追缴（负数调整，计入本期）" in page and "签收照片重复使用" in page


# --------------------------------------------------------------------------- the year


def test_the_year_cannot_close_before_it_ends_or_with_an_unsealed_month(world):
    r = world.as_("admin1").post("/api/close-year", json={"league": L, "year": 2025})
    assert r.status_code == 409 and "尚未结束（今天是 2025-06-30），不能关账" in r.json()["detail"]
    world.mp.setenv("SETTLE_TODAY", "2026-02-10")
    r = world.as_("admin1").post("/api/close-year", json={"league": L, "year": 2025})
    assert r.status_code == 409 and "2025-04 已结算但尚未封存" in r.json()["detail"]


def test_the_office_closes_the_year_and_each_company_sees_its_own(world):
    world.seal("2025-04", "2025-05-01", "2025-05-10")
    r = world.as_("admin2").post("/api/close-year", json={"league": L, "year": 2025})
    assert r.status_code == 200, r.text
    body = r.json()
    # March 55 + April: ZTO 12 − 15; outstanding: April's −3 (not in a batch)
    assert (body["due_fen"], body["paid_fen"], body["outstanding_fen"]) == (52, 55, -3)
    assert body["files"] == ["YTO.html", "YTO.xlsx", "ZTO.html", "ZTO.xlsx", "summary.html",
                             "summary.xlsx"]  # fmt: skip
    again = world.as_("admin1").post("/api/close-year", json={"league": L, "year": 2025})
    assert again.status_code == 409 and "每个年度只能关账一次" in again.json()["detail"]
    own = world.as_("zto").get(f"/api/annual/{L}/2025/ZTO.html")
    assert own.status_code == 200 and "中通快递（ZTO）" in own.text
    assert own.headers["content-security-policy"].endswith("sandbox")
    assert world.as_("zto").get(f"/api/annual/{L}/2025/YTO.html").status_code == 403
    assert world.as_("zto").get(f"/api/annual/{L}/2025/summary.xlsx").status_code == 403
    assert world.as_("auditor").get(f"/api/annual/{L}/2025/summary.xlsx").status_code == 200
    assert world.as_("auditor_other").get(f"/api/annual/{L}/2025/ZTO.xlsx").status_code == 403
    assert world.as_("admin1").get(f"/api/annual/{L}/2024/ZTO.xlsx").status_code == 404
    assert world.as_("admin1").get(f"/api/annual/{L}/2025/annual.json").status_code == 404
    overview = world.as_("zto").get(f"/api/payouts?league={L}&year=2025").json()
    assert overview["annual"] == ["ZTO.html", "ZTO.xlsx"]


# --------------------------------------------------------------------------- pages


def form_post(client: TestClient, url: str, data: dict, files=None):
    token = client.headers["X-CSRF-Token"]
    bare = TestClient(client.app, cookies=client.cookies)  # a browser: the token in the form
    return bare.post(url, data={**data, "csrf_token": token}, files=files)


def test_the_pages_of_each_role(world):
    admin = world.as_("admin1").get(f"/payouts?league={L}&year=2025")
    assert admin.status_code == 200
    text = admin.text
    assert "2025 预算年度资金拨付" in text and BATCH in text and "已拨付 2025-06-20" in text
    assert "年度结算表" in text and "盟市汇总" in text and "登记追缴" in text
    company = world.as_("zto").get(f"/payouts?league={L}&year=2025").text
    assert "本企业拨付与追缴" in company and "签收照片重复使用" in company
    assert "圆通" not in company and "登记追缴" not in company and "生成拨付批次" not in company
    assert "/api/annual/150700/2025/ZTO.xlsx" in company
    assert "summary" not in company
    page = world.as_("yto").get(f"/payouts/batches/{BATCH}").text
    assert "内蒙古圆通速递有限公司" in page and "内蒙古中通快递" not in page
    assert f"{BATCH}.xlsx" not in page  # no bank data of others
    auditor = world.as_("auditor").get(f"/payouts/batches/{BATCH}").text
    assert f"{BATCH}.xlsx" in auditor and "确认已拨付" not in auditor
    assert world.as_("admin_other").get(f"/payouts?league={L}").status_code == 403


def test_the_pages_create_and_confirm_a_batch_maker_checker(world):
    r = form_post(
        world.as_("admin1"), f"/payouts/{L}/batches", {"month": "2025-04", "year": "2025"}
    )
    assert r.status_code == 200 and "拨付批次已生成" in r.text
    assert "pay-150700-0002" in str(r.url)
    assert "本批次由您生成" in r.text and "确认已拨付" not in r.text
    refused = form_post(
        world.as_("admin1"),
        "/payouts/batches/pay-150700-0002/confirm",
        {"paid_on": "2026-01-05", "voucher": "V2"},
    )
    assert refused.status_code == 409 and "须由另一人确认拨付" in refused.text
    ok = form_post(
        world.as_("admin2"),
        "/payouts/batches/pay-150700-0002/confirm",
        {"paid_on": "2026-01-05", "voucher": "V2"},
    )
    assert ok.status_code == 200 and "已登记拨付：2026-01-05，凭证号 V2，确认人 admin2" in ok.text
    # ZTO's April is −3: paid 0, carried forward, shown on the line
    assert "应付合计为负，本批拨付 0 元，0.03 元结转下一批次抵扣" in ok.text
    empty = form_post(world.as_("admin1"), f"/payouts/{L}/batches", {"year": "2025"})
    assert empty.status_code == 409 and "请至少勾选一个已封存的月份" in empty.text


def test_the_pages_refuse_a_clawback_with_its_reasons_and_a_close_without_confirming(world):
    r = form_post(
        world.as_("admin1"),
        f"/payouts/{L}/clawbacks",
        {"month": M, "reason": "重复", "year": "2025"},
        files={"waybills": ("list.csv", "运单号\nZT001\nZT001\nYT009\n".encode(), "text/csv")},
    )
    assert r.status_code == 409
    assert "第 3 行 运单 ZT001：运单号在前面的行已出现" in r.text
    assert "第 4 行 运单 YT009：不是该盟市该月份已结算的运单" in r.text
    r = form_post(world.as_("admin1"), f"/payouts/{L}/close-year", {"year": "2026"})
    assert r.status_code == 409 and "请勾选“确认关账”" in r.text
    assert (
        form_post(world.as_("zto"), f"/payouts/{L}/close-year", {"year": "2026"}).status_code == 403
    )

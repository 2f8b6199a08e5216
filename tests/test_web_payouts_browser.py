"""The 资金拨付 pages in a real browser (chromium + Playwright): admin2 confirms the batch admin1
made (admin1 is told it cannot), admin1 closes the year and books a clawback, ZTO sees its own
payments, clawback and annual statement. Screenshots go to $SETTLE_SHOTS (/tmp/portal-shots)."""

from __future__ import annotations

import datetime as dt
import threading
import time

import pytest
from test_payout import COMPANIES
from test_web_browser import CHROMIUM, FLAGS, free_port, session, shot
from webfixtures import YTO_MARCH, ZTO_MARCH, make_portal

from settlement.config import load_config
from settlement.engine import settle_month
from settlement.events import Actor
from settlement.months import seal_month
from settlement.payout.batches import create_batch
from settlement.period import Month

L, M = "150700", "2025-03"
playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
pytestmark = pytest.mark.skipif(
    not __import__("pathlib").Path(CHROMIUM).exists(), reason="chromium is not installed"
)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    import uvicorn

    mp = pytest.MonkeyPatch()
    mp.setenv("SETTLE_TODAY", "2026-02-10")
    root = tmp_path_factory.mktemp("payout-browser")
    app, settings = make_portal(root, companies=COMPANIES)
    logs = root / "logs"
    logs.mkdir()
    (logs / "zto.csv").write_bytes(ZTO_MARCH)
    (logs / "yto.csv").write_bytes(YTO_MARCH)
    cfg = load_config(settings.config_dir)
    store = settings.store.resolve()
    settle_month(cfg, L, Month.parse(M), sorted(logs.iterdir()), settings.out_dir.resolve(), store)
    seal_month(store, L, Month.parse(M), {"reviewed_by": "admin2", "approved_by": "审批人甲",
               "approval_ref": "呼邮管〔2025〕3号", "notice_start": dt.date(2025, 4, 1),
               "notice_end": dt.date(2025, 4, 10)})  # fmt: skip
    create_batch(cfg, store, L, [Month.parse(M)], Actor("admin1", "portal@test"))
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}", root
    srv.should_exit = True
    thread.join(10)
    mp.undo()


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield b
        b.close()


def test_paying_out_in_the_browser(server, browser):
    base, root = server
    admin1 = session(browser, base, "admin1")
    admin1.click("text=资金拨付")
    admin1.goto(f"{base}/payouts?league={L}&year=2025")
    assert "pay-150700-0001" in admin1.inner_text("#batches")
    shot(admin1, "20-admin-payouts")
    admin1.click("#batches >> text=pay-150700-0001")
    assert "本批次由您生成" in admin1.inner_text("main")
    shot(admin1, "21-admin-batch-maker")

    admin2 = session(browser, base, "admin2")
    admin2.goto(f"{base}/payouts/batches/pay-150700-0001")
    admin2.fill("#paid_on", "2026-01-20")
    admin2.fill("#voucher", "财付〔2026〕3号")
    admin2.click("text=确认已拨付")
    text = admin2.inner_text("main")
    assert "已登记拨付：2026-01-20，凭证号 财付〔2026〕3号，确认人 admin2" in text
    shot(admin2, "22-admin-batch-confirmed")

    admin1.goto(f"{base}/payouts?league={L}&year=2025")
    admin1.check("#close-year input[name=confirm]")
    admin1.click("#close-year button")
    assert "已关账 2025 预算年度" in admin1.inner_text("main")
    claw = root / "追缴清单.csv"
    claw.write_text("运单号,金额\nZT001,0.05\n", encoding="utf-8")
    admin1.fill("#claw-month", M)
    admin1.set_input_files("#waybills", str(claw))
    admin1.fill("#reason", "签收照片重复使用")
    admin1.click("#clawback-form button")
    text = admin1.inner_text("main")
    assert "1 个运单，合计 -0.05 元，计入 2026-01 结算单" in text
    shot(admin1, "23-admin-closed-and-clawback")

    zto = session(browser, base, "zto")
    zto.goto(f"{base}/payouts?league={L}&year=2025")
    text = zto.inner_text("main")
    assert "签收照片重复使用" in text and "0.40" in text and "圆通" not in text
    shot(zto, "24-company-payouts")
    zto.goto(f"{base}/payouts/batches/pay-150700-0001")
    assert "内蒙古中通快递有限公司" in zto.inner_text("#lines")
    shot(zto, "25-company-batch")
    with zto.expect_download() as download:
        zto.goto(f"{base}/payouts?league={L}&year=2025")
        zto.click("#annual >> text=Excel（XLSX）")
    assert download.value.suggested_filename.endswith("ZTO.xlsx")

    auditor = session(browser, base, "auditor")
    auditor.goto(f"{base}/payouts?league={L}&year=2025")
    assert "登记追缴" not in auditor.inner_text("main")
    shot(auditor, "26-auditor-payouts")

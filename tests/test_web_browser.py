"""The portal in a real browser (Debian's chromium driven by Playwright): a company uploads a
GBK log and sees its report, the office runs and (another officer) seals the month, the company
downloads its statement, the auditor runs a query. Screenshots of every page go to
$SETTLE_SHOTS (default /tmp/portal-shots) for people to look at."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import time
from pathlib import Path

import pytest
from webfixtures import PASSWORDS, TODAY, YTO_MARCH, ZTO_MARCH, gbk_log, log_line, make_portal

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SHOTS = Path(os.environ.get("SETTLE_SHOTS", "/tmp/portal-shots"))
L, M = "150700", "2025-03"

playwright_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
pytestmark = pytest.mark.skipif(
    not Path(CHROMIUM).exists(),
    reason="Debian's chromium is not installed (apt-get install chromium)",
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    import uvicorn

    mp = pytest.MonkeyPatch()
    mp.setenv("SETTLE_TODAY", TODAY)
    root = tmp_path_factory.mktemp("browser")
    app, settings = make_portal(root)
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    logs = root / "logs"
    logs.mkdir()
    (logs / "中通3月.csv").write_bytes(ZTO_MARCH)
    (logs / "圆通3月.csv").write_bytes(YTO_MARCH)
    yield f"http://127.0.0.1:{port}", logs, settings
    srv.should_exit = True
    thread.join(10)
    mp.undo()


@pytest.fixture(scope="module")
def browser():
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield b
        b.close()


def session(browser, base: str, user: str):
    context = browser.new_context(
        viewport={"width": 1366, "height": 900}, accept_downloads=True, locale="zh-CN"
    )
    page = context.new_page()
    page.goto(base + "/")
    page.fill("#username", user)
    page.fill("#password", PASSWORDS[user])
    page.click("button[type=submit]")
    page.wait_for_url(base + "/months*")
    return page


def shot(page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def upload(page, base, path: Path) -> None:
    page.goto(f"{base}/submit?league={L}&month={M}")
    page.set_input_files("#file", str(path))
    page.click("text=上传并校验")
    page.wait_for_url(base + "/submissions/*")


def test_the_four_journeys(server, browser):
    base, logs, settings = server
    # no session: the login page, in Chinese
    anon = browser.new_page(viewport={"width": 1366, "height": 900}, locale="zh-CN")
    anon.goto(base + "/months")
    assert "登录" in anon.inner_text("h1")
    shot(anon, "00-login")
    anon.close()

    # 1. a company uploads a GBK file and sees its report at once
    zto = session(browser, base, "zto")
    shot(zto, "01-company-months-empty")
    zto.goto(base + "/submit")
    shot(zto, "02-company-submit")
    upload(zto, base, logs / "中通3月.csv")
    text = zto.inner_text("main")
    assert "已保存为企业 ZTO" in text and "有 2 行将被剔除" in text
    assert "OUTSIDE_PERIOD" in text and "DUPLICATE" in text and "GB18030" in text.upper()
    shot(zto, "03-company-report")
    yto = session(browser, base, "yto")
    upload(yto, base, logs / "圆通3月.csv")

    # 2. the office runs the month; the officer who ran it cannot seal it, another one does
    admin1 = session(browser, base, "admin1")
    shot(admin1, "04-admin-months")
    admin1.goto(f"{base}/months/{L}/{M}")
    assert "中通3月.csv" in admin1.inner_text("main") and "圆通3月.csv" in admin1.inner_text("main")
    shot(admin1, "05-admin-month-before-run")
    admin1.click("text=开始结算")
    admin1.wait_for_selector("text=结算完成", timeout=60_000)
    assert "应付补贴 0.55 元" in admin1.inner_text("main")
    shot(admin1, "06-admin-run-done")
    admin1.goto(f"{base}/months/{L}/{M}")
    admin1.click("text=重新结算（先比较变化）")
    admin1.wait_for_selector("text=与原结算比较", timeout=60_000)
    shot(admin1, "07-admin-compare-before-replacing")
    admin1.goto(f"{base}/months/{L}/{M}")
    assert "须由另一位管理员登录后审核封存" in admin1.inner_text("main")
    assert admin1.locator("#approval_ref").count() == 0
    shot(admin1, "08-admin-month-settled")

    admin2 = session(browser, base, "admin2")
    admin2.goto(f"{base}/months/{L}/{M}")
    admin2.fill("#notice_start", "2025-04-01")
    admin2.fill("#notice_end", "2025-04-10")
    admin2.fill("#approved_by", "审批人甲")
    admin2.fill("#approval_ref", "呼邮管〔2025〕3号")
    admin2.check("input[name=confirm]")
    admin2.click("main button:text-is('封存')")
    admin2.wait_for_selector("text=已封存：审核人 admin2")
    shot(admin2, "09-admin-sealed")
    admin2.goto(f"{base}/status?league={L}&year=2025")
    assert "0.55" in admin2.inner_text("main")
    shot(admin2, "10-admin-budget-year")

    # 3. the company downloads its own statement
    zto.goto(f"{base}/months/{L}/{M}")
    assert "本企业应付补贴" in zto.inner_text("main") and "0.40 元" in zto.inner_text("main")
    shot(zto, "11-company-month-sealed")
    with zto.expect_download() as info:
        zto.click("text=Excel（XLSX）")
    download = info.value
    target = settings.out_dir.parent / "downloaded.xlsx"
    download.save_as(target)
    assert target.read_bytes()[:2] == b"PK" and "ZTO" in download.suggested_filename
    claim = logs / "申报.csv"
    claim.write_text("运单号,申报金额\nZT001,0.15\nZT002,0.20\n", encoding="utf-8")
    zto.set_input_files("#claim", str(claim))
    zto.click("text=逐行对账")
    zto.wait_for_selector("text=对账结果")
    assert "PAID" in zto.inner_text("main")
    zto.goto(f"{base}/months/{L}/{M}")
    assert "与 中通3月.csv 第 2 行的运单号相同" in zto.inner_text("main")
    assert "submissions/" not in zto.inner_text("main")
    shot(zto, "12-company-reconcile")

    # 4. the auditor runs a query
    auditor = session(browser, base, "auditor")
    auditor.goto(base + "/sql")
    auditor.fill(
        "#query",
        "SELECT company, COUNT(*) AS parcels, SUM(subsidy_fen) AS fen FROM ledger GROUP BY 1 ORDER BY 1",
    )
    auditor.click("text=执行查询")
    auditor.wait_for_selector("text=共 2 行")
    cells = auditor.locator("main table td").all_inner_texts()
    assert cells[:6] == ["YTO", "1", "15", "ZTO", "3", "40"]
    shot(auditor, "13-auditor-sql")
    auditor.goto(base + "/queries")
    shot(auditor, "14-auditor-queries")
    auditor.goto(base + "/verify")
    auditor.click("text=开始校验")
    auditor.wait_for_selector("text=校验通过")
    shot(auditor, "15-auditor-verify")
    auditor.goto(base + "/explain?waybill=ZT002")
    assert "ZT002" in auditor.inner_text("pre")
    shot(auditor, "16-auditor-explain")
    auditor.goto(base + "/events")
    assert "admin2" in auditor.inner_text("main") and "portal@127.0.0.1" in auditor.inner_text(
        "main"
    )
    shot(auditor, "17-auditor-events")

    # a company cannot open another company's statement in the browser either
    yto.goto(f"{base}/api/statements/{L}/{M}/ZTO.xlsx")
    assert "无权访问" in yto.content()


def test_the_office_simulates_the_current_policy(server, browser):
    """The month settled above, simulated under the current policy: nothing changes."""
    base, _logs, _settings = server
    admin = session(browser, base, "admin1")
    admin.goto(base + "/simulations")
    assert "已填入现行政策（150700.toml）" in admin.inner_text("main")
    shot(admin, "18-admin-simulation-form")
    admin.click("text=开始模拟")
    admin.wait_for_selector("text=应付补贴变化", timeout=60_000)
    text = admin.inner_text("main")
    assert "应付补贴变化 ±0.00 元（与实际结算相同）" in text
    assert "模拟政策应付 0.55 元，现行政策实付 0.55 元" in text
    assert admin.locator("main svg").count() >= 1
    shot(admin, "19-admin-simulation-summary")


def test_a_late_submission_is_settled_in_a_supplementary_run(server, browser):
    """March, sealed above: ZTO uploads a late parcel, the office runs 补充结算 from the page."""
    base, logs, _settings = server
    late = logs / "中通3月补报.csv"
    late.write_bytes(gbk_log(log_line("ZT009", "ZTO", "2025-03-12")))
    zto = session(browser, base, "zto")
    zto.goto(f"{base}/months/{L}/{M}")
    assert "迟到的投递可作为补报提交" in zto.inner_text("main")
    upload(zto, base, late)
    assert "的补报（该月已封存）" in zto.inner_text("main")
    shot(zto, "20-company-late-submission")
    admin = session(browser, base, "admin1")
    admin.goto(f"{base}/months/{L}/{M}")
    assert "中通3月补报.csv" in admin.inner_text("main")
    shot(admin, "21-admin-month-late-submissions")
    admin.click("main button:text-is('补充结算')")
    admin.wait_for_selector("text=补充结算完成", timeout=60_000)
    assert "应付补贴 0.15 元，计入 2025-04 结算单的调整项" in admin.inner_text("main")
    shot(admin, "22-admin-supplement-done")
    zto.goto(f"{base}/months?league={L}")
    assert "已补充结算" in zto.inner_text("main")
    shot(zto, "23-company-months-supplement")

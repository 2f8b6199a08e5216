"""The field trial's portal findings (tasks/portalfix): login throttling per user name, runs
with companies missing, supplementary runs from late submissions, the upload's company check,
Chinese messages for request errors and the CLI's options, and `settle serve` on a busy port.

One portal for the module (its own, so the order of test_web_api.py is not disturbed); tests
run in file order and later ones rely on earlier months being settled and sealed."""

from __future__ import annotations

import datetime as dt
import re
import sqlite3

import pytest
from test_web_api import World as ApiWorld
from webfixtures import PASSWORDS, TODAY, gbk_log, log_line, make_portal

from settlement.web import accounts as accounts_module
from settlement.web.accounts import portal_db

L = "150700"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("SETTLE_TODAY", TODAY)
    root = tmp_path_factory.mktemp("portalfix")
    app, settings = make_portal(root)
    yield World(app, settings)
    mp.undo()


class World(ApiWorld):
    def db(self) -> sqlite3.Connection:
        return sqlite3.connect(portal_db(self.settings.store.resolve()))


def submit(client, data: bytes, month: str, name: str = "log.csv"):
    return client.post(
        f"/api/submissions?league={L}&month={month}", files={"file": (name, data, "text/csv")}
    )


# --------------------------------------------------------------------------- 1. login throttling


@pytest.fixture
def clock(monkeypatch):
    """The accounts' clock, set by the test: 2025-06-30 14:20 in Beijing."""
    now = [dt.datetime(2025, 6, 30, 6, 20, tzinfo=dt.UTC)]
    monkeypatch.setattr(accounts_module, "now_utc", lambda: now[0])
    return now


def login(client, name: str, password: str):
    return client.post("/api/login", json={"username": name, "password": password})


def test_five_failures_pause_that_user_name_only_and_say_until_when(world, clock):
    office = world.anon("10.9.0.1")  # the whole office behind one NAT address
    for _ in range(5):
        assert login(office, "yto", "typo").status_code == 401
    r = login(office, "yto", PASSWORDS["yto"])
    assert (r.status_code, r.json()["detail"]) == (
        429,
        "登录失败次数过多，账户 yto 已暂停登录至 14:35（北京时间）；如忘记密码请联系管理员",
    )
    # a colleague at the same address logs in as usual
    assert login(office, "zto", PASSWORDS["zto"]).status_code == 200
    # a name that does not exist is paused the same way: nothing tells the two apart
    for _ in range(5):
        assert login(office, "nobody", "x").json()["detail"] == "用户名或密码不正确"
    r = login(office, "nobody", "x")
    assert (r.status_code, r.json()["detail"]) == (
        429,
        "登录失败次数过多，账户 nobody 已暂停登录至 14:35（北京时间）；如忘记密码请联系管理员",
    )
    # the login page says the same (its form carries the page's own token)
    page = office.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    r = office.post(
        "/login", data={"username": "yto", "password": PASSWORDS["yto"], "csrf_token": token}
    )
    assert r.status_code == 429
    assert "账户 yto 已暂停登录至 14:35（北京时间）" in r.text


def test_the_pause_ends_fifteen_minutes_after_the_last_failure(world, clock):
    office = world.anon("10.9.0.1")
    clock[0] += dt.timedelta(minutes=14, seconds=59)
    assert login(office, "yto", PASSWORDS["yto"]).status_code == 429
    clock[0] += dt.timedelta(seconds=1)
    assert login(office, "yto", PASSWORDS["yto"]).status_code == 200


def test_fifty_failures_from_one_address_pause_that_address(world, clock):
    at = clock[0].isoformat(timespec="seconds")
    with world.db() as db:  # 49 names guessed from one address in the last minutes
        db.executemany(
            "INSERT INTO login_failures VALUES (?, ?, ?)",
            [(f"guess{i}", "10.9.0.2", at) for i in range(49)],
        )
    guesser = world.anon("10.9.0.2")
    assert login(guesser, "guess49", "x").status_code == 401  # the 50th
    r = login(guesser, "zto", PASSWORDS["zto"])
    assert (r.status_code, r.json()["detail"]) == (
        429,
        "登录失败次数过多，来自本网络地址（10.9.0.2）的登录已暂停至 14:35（北京时间）；"
        "请稍后再试，或联系管理员",
    )
    # another address is not affected, and the address may try again after the pause
    assert login(world.anon("10.9.0.3"), "zto", PASSWORDS["zto"]).status_code == 200
    clock[0] += dt.timedelta(minutes=15)
    assert login(guesser, "zto", PASSWORDS["zto"]).status_code == 200


# --------------------------------------------------------------------------- 2. companies missing

MISSING_YTO = (
    "以下企业在此前月份提交过投递日志，但还没有提交 2025-04 的：圆通速递（YTO，最近提交 2025-03）；"
    "现在结算，这些企业本月的投递不会得到补贴。确认仍要结算，请勾选"
    "“本月缺少以上企业，仍然结算”（API：confirm_missing 设为 true）"
)


def test_march_is_submitted_by_both_companies_and_settled(world):
    zto = gbk_log(log_line("ZT001", "ZTO", "2025-03-05"), log_line("ZT002", "ZTO", "2025-03-06"))
    assert submit(world.as_("zto"), zto, "2025-03").status_code == 201
    yto = gbk_log(log_line("YT001", "YTO", "2025-03-05"))
    assert submit(world.as_("yto"), yto, "2025-03").status_code == 201
    r = world.as_("admin1").post("/api/runs", json={"league": L, "month": "2025-03"})
    assert r.status_code == 200, r.text
    assert (r.json()["result"]["parcels"], r.json()["result"]["subsidy_fen"]) == (3, 45)


def test_a_run_with_a_company_missing_is_refused_listing_it(world):
    april = gbk_log(log_line("ZT401", "ZTO", "2025-04-03"))
    assert submit(world.as_("zto"), april, "2025-04").status_code == 201
    admin = world.as_("admin1")
    r = admin.post("/api/runs", json={"league": L, "month": "2025-04"})
    assert (r.status_code, r.json()["detail"]) == (409, MISSING_YTO)
    assert r.json()["missing"] == [{"company": "YTO", "last_month": "2025-03", "name": "圆通速递"}]
    # the month page says so and the run form needs the checkbox
    page = admin.get(f"/months/{L}/2025-04").text
    assert "还没有提交 2025-04 的：圆通速递（YTO，最近提交 2025-03）" in page
    assert 'name="confirm_missing" value="1" required' in page
    r = admin.post(f"/months/{L}/2025-04/run", data={}, follow_redirects=False)
    assert r.status_code == 409 and MISSING_YTO in r.text.replace("&#34;", '"')


def test_a_run_with_a_company_missing_goes_ahead_when_confirmed(world):
    admin = world.as_("admin1")
    r = admin.post(
        f"/months/{L}/2025-04/run", data={"confirm_missing": "1"}, follow_redirects=False
    )
    assert r.status_code == 303
    job = world.app.state.portal.jobs.get(r.headers["location"].rsplit("/", 1)[1])
    job.done.wait(60)
    assert (job.state, job.result["parcels"], job.confirm_missing) == ("done", 1, True)
    # the replacement's confirmation keeps it
    r = admin.post("/api/runs", json={"league": L, "month": "2025-04", "confirm_missing": True})
    assert r.status_code == 409 and r.json()["state"] == "confirm"
    page = admin.get(f"/jobs/{r.json()['job']}").text
    assert '<input type="hidden" name="confirm_missing" value="1">' in page
    # a month every company of earlier months submitted needs no confirmation: March above
    assert (
        world.app.state.portal.missing_companies(L, world.app.state.portal.month("2025-03")) == []
    )


# --------------------------------------------------------------------------- 3. supplementary runs


def test_after_the_seal_a_company_submits_late_parcels_as_a_late_submission(world):
    r = world.as_("admin2").post(
        "/api/seal",
        json={
            "league": L,
            "month": "2025-03",
            "notice_start": "2025-04-01",
            "notice_end": "2025-04-10",
            "approval_ref": "呼邮管〔2025〕3号",
            "approved_by": "审批人甲",
        },
    )
    assert r.status_code == 200, r.text
    late = gbk_log(
        log_line("ZT001", "ZTO", "2025-03-05"),  # settled in March: ALREADY_SETTLED
        log_line("ZT005", "ZTO", "2025-03-10"),  # late: 15 分
    )
    r = submit(world.as_("zto"), late, "2025-03", "中通3月补报.csv")
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["late"], body["replaced"], body["report"]["mode"]) == (True, [], "supplementary")
    assert (body["report"]["accepted"], body["report"]["by_reason"][0]["reason_code"]) == (
        1,
        "ALREADY_SETTLED",
    )
    world.late_id = body["submission_id"]
    # the month's regular submission stays current beside it
    rows = world.as_("zto").get(f"/api/submissions?league={L}&month=2025-03").json()
    assert [(s["original_name"], s["late"], s["settled_in"]) for s in rows] == [
        ("中通3月补报.csv", 1, None),
        ("log.csv", 0, None),
    ]
    # the office sees it waiting, with the button
    page = world.as_("admin1").get(f"/months/{L}/2025-03").text
    assert "补报与补充结算" in page and "中通3月补报.csv" in page
    assert '<input type="hidden" name="supplementary" value="1">' in page
    months = world.as_("admin1").get(f"/api/months?league={L}").json()["months"]
    assert next(m for m in months if m["month"] == "2025-03")["late_pending"] == 1


def test_the_office_runs_the_supplement_paid_in_the_next_open_month(world):
    admin = world.as_("admin1")
    r = admin.post("/api/runs", json={"league": L, "month": "2025-03", "supplementary": True})
    assert r.status_code == 200, r.text
    job = r.json()
    assert (job["state"], job["supplementary"]) == ("done", True)
    result = job["result"]
    assert (result["kind"], result["parcels"], result["rejects"], result["subsidy_fen"]) == (
        "supplementary",
        1,
        1,
        15,
    )
    assert result["payable_in_month"] == "2025-04"
    assert any("补充结算" in m["text"] for m in job["messages"])
    page = admin.get(f"/jobs/{job['job']}").text
    assert "补充结算完成：批次" in page and "计入 2025-04 结算单的调整项" in page
    # April's statement for ZTO carries it; the company sees its late submission settled
    april = world.as_("zto").get(f"/api/statements/{L}/2025-04/ZTO.html").text
    assert "补充结算" in april
    months = world.as_("zto").get(f"/api/months?league={L}").json()["months"]
    march = next(m for m in months if m["month"] == "2025-03")
    assert [(s["original_name"], s["settled_in"]) for s in march["late"]] == [
        ("中通3月补报.csv", result["run_id"])
    ]
    assert "已补充结算" in world.as_("zto").get(f"/months?league={L}").text
    # nothing is left to supplement
    r = admin.post("/api/runs", json={"league": L, "month": "2025-03", "supplementary": True})
    assert (r.status_code, r.json()["detail"]) == (
        409,
        "盟市 150700 2025-03 没有待补充结算的补报，无需补充结算",
    )


def test_a_supplement_is_for_sealed_months_and_only_admins(world):
    r = world.as_("zto").post(
        "/api/runs", json={"league": L, "month": "2025-03", "supplementary": True}
    )
    assert r.status_code == 403
    # April is settled, not sealed: a submission is still locked
    r = submit(world.as_("zto"), gbk_log(log_line("ZT402", "ZTO", "2025-04-04")), "2025-04")
    assert r.status_code == 409
    assert r.json()["detail"].endswith("封存后迟到的投递可作为补报提交")


# --------------------------------------------------------------------------- 4. the company column


def test_only_rows_of_another_registered_company_refuse_the_upload(world):
    data = gbk_log(
        log_line("ZT501", "ZTO", "2025-05-05"),
        log_line("ZT502", "zto", "2025-05-05"),  # a typo of its own code
        log_line("ZT503", "ZTX", "2025-05-05"),  # no such company
        log_line("ZT504", "YTO", "2025-05-05"),  # another registered company: line 5
    )
    r = submit(world.as_("zto"), data, "2025-05", "5月.csv")
    assert (r.status_code, r.json()["detail"]) == (
        422,
        "文件中有 1 行的快递企业是其他已登记企业，不是本企业（ZTO）：第 5 行（YTO）。"
        "每家企业只能提交本企业的投递记录；请删除这些行后重新上传，文件未保存",
    )
    assert (r.json()["rows"], r.json()["count"]) == ([{"line": 5, "company": "YTO"}], 1)


def test_an_unknown_company_code_is_rejected_by_the_validation_with_its_hint(world):
    data = gbk_log(
        log_line("ZT501", "ZTO", "2025-05-05"),
        log_line("ZT502", "zto", "2025-05-05"),
        log_line("ZT503", "ZTX", "2025-05-05"),
    )
    r = submit(world.as_("zto"), data, "2025-05", "5月.csv")
    assert r.status_code == 201, r.text
    report = r.json()["report"]
    assert (report["rows"], report["accepted"]) == (3, 1)
    assert report["by_reason"] == [
        {"reason_code": "UNKNOWN_COMPANY", "reason": report["by_reason"][0]["reason"], "rows": 2}
    ]
    assert [(e["line"], e["detail"]) for e in report["examples"]] == [
        (3, "企业编码“zto”未在 companies.toml 中登记（是否为 ZTO？）"),
        (4, "企业编码“ZTX”未在 companies.toml 中登记"),
    ]
    page = world.as_("zto").get(f"/submissions/{r.json()['submission_id']}").text
    assert "企业编码“zto”未在 companies.toml 中登记（是否为 ZTO？）" in page


# --------------------------------------------------------------------------- 5. Chinese messages


def test_a_field_that_does_not_parse_is_named_in_one_chinese_sentence(world):
    admin = world.as_("admin2")
    seal = {
        "league": L,
        "month": "2025-04",
        "notice_start": "2025-05",
        "notice_end": "2025-05-10",
        "approval_ref": "x",
    }
    r = admin.post("/api/seal", json=seal)
    assert (r.status_code, r.json()) == (
        422,
        {
            "detail": "notice_start：应为日期 YYYY-MM-DD",
            "errors": [{"field": "notice_start", "problem": "应为日期 YYYY-MM-DD"}],
        },
    )
    r = admin.post("/api/seal", json={"league": L, "month": "2025-04"})
    assert (r.status_code, r.json()["detail"]) == (
        422,
        "notice_start：必须填写；notice_end：必须填写；approval_ref：必须填写",
    )
    r = world.anon().post("/api/login", content=b"{", headers={"content-type": "application/json"})
    assert (r.status_code, r.json()["detail"]) == (422, "请求体：不是有效的 JSON")
    r = admin.post("/api/runs", json={"league": L, "month": "2025-04", "replace": "perhaps"})
    assert (r.status_code, r.json()["detail"]) == (422, "replace：应为 true 或 false")
    # and in the pages: the error page, in Chinese
    r = admin.get(f"/status?league={L}&year=abc")
    assert r.status_code == 422 and "year：应为整数" in r.text and "Input should" not in r.text


def test_the_cli_options_in_library_messages_become_what_the_page_offers(world):
    # a sealed month cannot be run again: the page's way to settle late parcels
    r = world.as_("admin1").post(
        "/api/runs", json={"league": L, "month": "2025-03", "replace": True}
    )
    assert (r.status_code, r.json()["detail"]) == (
        409,
        "盟市 150700 2025-03 已封存（审批文号 呼邮管〔2025〕3号），不能重新结算；"
        "迟到的投递请由企业作为补报提交，再在月份页面点击“补充结算”",
    )
    r = world.as_("admin1").post("/api/void", json={"league": L, "month": "2025-04", "reason": " "})
    assert (r.status_code, r.json()["detail"]) == (422, "作废原因不能为空")
    r = world.as_("auditor").post("/api/sql", json={"query": "SELECT * FROM range(10001)"})
    assert (r.status_code, r.json()["detail"]) == (
        422,
        "查询结果超过 10,000 行的行数限制，未输出；请加 LIMIT、汇总，或分批查询",
    )


#: Library strings that name the CLI but never reach the portal's users, and why.
CLI_ONLY = {
    "settlement/cli.py": "the CLI itself",
    "settlement/demo.py": "settle demo",
    "settlement/sample.py": "settle sample",
    "settlement/catalog.py": "the store's catalog (English, for developers)",
    "settlement/web/accounts.py": "settle user add (accounts are made only with the CLI)",
    "settlement/web/api.py": "the OpenAPI page's route summaries, for developers",
    "settlement/web/api_payouts.py": "the OpenAPI page's route summaries, for developers",
    "settlement/web/app.py": "the OpenAPI page's description, for developers",
    "settlement/web/messages.py": "the translations themselves",
    "settlement/statements/__init__.py": "documents (statements), not messages",
    "settlement/statements/xlsx.py": "documents (statements), not messages",
    "settlement/payout/documents.py": "documents (payment lists), not messages",
}
CLI_ONLY_TEXT = {"--format parquet 需要 --output 文件"}  # settle sql --format only


def library_strings_naming_the_cli() -> list[tuple[str, int, str]]:
    """Every string constant of the library with Chinese in it that names an option or a
    command (docstrings aside): the messages the portal may have to translate."""
    import ast
    import re
    from pathlib import Path

    import settlement

    root = Path(settlement.__file__).parent
    cjk, cli = re.compile(r"[\u4e00-\u9fff]"), re.compile(r"--[a-z]|settle [a-z]")
    found = []
    for path in sorted(root.rglob("*.py")):
        name = f"settlement/{path.relative_to(root).as_posix()}"
        if name in CLI_ONLY:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docs = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, ast.Module | ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
            and node.body
            and isinstance(node.body[0], ast.Expr)
        }
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and id(node) not in docs
                and cjk.search(node.value)
                and cli.search(node.value)
                and node.value not in CLI_ONLY_TEXT
            ):
                found.append((name, node.lineno, node.value))
    return found


def test_every_library_message_naming_the_cli_is_translated_for_the_portal():
    import re

    from settlement.web.messages import for_portal

    found = library_strings_naming_the_cli()
    assert len(found) >= 25  # the scan sees them (engine, months, audit, payout, store …)
    left = [
        (name, line, text)
        for name, line, text in found
        if re.search(r"--[a-z]|settle [a-z]", for_portal(text))
    ]
    assert left == []


def test_settle_serve_on_a_busy_port_says_so_and_exits_2(tmp_path):
    import socket

    from click.testing import CliRunner

    from settlement.cli import main

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        r = CliRunner().invoke(main, ["serve", "--out", str(tmp_path), "--port", str(port)])
    assert (r.exit_code, r.output) == (2, f"错误：端口 {port} 已被占用；请用 --port 指定其他端口\n")

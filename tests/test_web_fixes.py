"""The field trial's portal findings (tasks/portalfix): login throttling per user name, runs
with companies missing, supplementary runs from late submissions, the upload's company check,
Chinese messages for request errors and the CLI's options, and `settle serve` on a busy port.

One portal for the module (its own, so the order of test_web_api.py is not disturbed); tests
run in file order and later ones rely on earlier months being settled and sealed."""

from __future__ import annotations

import datetime as dt
import sqlite3

import pytest
from fastapi.testclient import TestClient
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


class World:
    def __init__(self, app, settings):
        self.app, self.settings = app, settings
        self.clients: dict[str, TestClient] = {}

    def anon(self, address: str = "testclient") -> TestClient:
        return TestClient(self.app, client=(address, 50000))

    def as_(self, name: str) -> TestClient:
        if name not in self.clients:
            client = TestClient(self.app)
            r = client.post("/api/login", json={"username": name, "password": PASSWORDS[name]})
            assert r.status_code == 200, r.text
            client.headers["X-CSRF-Token"] = r.json()["csrf_token"]
            self.clients[name] = client
        return self.clients[name]

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
    # the login page says the same
    r = office.post("/login", data={"username": "yto", "password": PASSWORDS["yto"]})
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

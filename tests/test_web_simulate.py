"""Policy simulation in the portal (SPEC §9, §11): the API and the page, every refusal, the
outputs by id, the event log, and that the store is never written.

One portal for the module: ZTO and YTO submit March, admin1 settles it (4 parcels: at 12 km the
test policy pays 15 分, at 5 km 10 分: ZTO 40 分, YTO 15 分, 55 分 in all). Tests run in file
order and only add simulations."""

from __future__ import annotations

import hashlib
import io
import json
import sqlite3
import threading

import polars as pl
import pytest
from conftest import policy_text
from fastapi.testclient import TestClient
from test_web_api import World as ApiWorld
from webfixtures import PASSWORDS, TODAY, YTO_MARCH, ZTO_MARCH, make_portal

from settlement.web import simulations as sim_module
from settlement.web.accounts import portal_db
from settlement.web.simulations import INTERRUPTED, Simulations

L, M = "150700", "2025-03"
CURRENT = policy_text()
#: T-1's rate for default villages from 10 km up: 0.15 → 0.20 (ZT001, ZT003, YT001: +5 分 each)
RAISED = CURRENT.replace(
    "distance_from_km = 10\n  rate_yuan = 0.15", "distance_from_km = 10\n  rate_yuan = 0.20"
)
#: the year's budget cut to 0.40 元 (ytd): March's 55 分 no longer fit
TIGHT = CURRENT.replace("annual_yuan = 1000.00", "annual_yuan = 0.40").replace(
    'rule = "none"', 'rule = "ytd"'
)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("SETTLE_TODAY", TODAY)
    root = tmp_path_factory.mktemp("simportal")
    app, settings = make_portal(root)
    w = World(app, settings)
    for company, data in (("zto", ZTO_MARCH), ("yto", YTO_MARCH)):
        r = w.as_(company).post(
            f"/api/submissions?league={L}&month={M}", files={"file": ("log.csv", data)}
        )
        assert r.status_code == 201, r.text
    r = w.bearer("admin1").post("/api/runs", json={"league": L, "month": M})
    assert r.json()["result"]["subsidy_fen"] == 55
    yield w
    mp.undo()


class World(ApiWorld):
    def page_client(self, name: str) -> TestClient:
        """A browser session whose forms carry the CSRF token as a field (no header)."""
        client = TestClient(self.app)
        r = client.post("/api/login", json={"username": name, "password": PASSWORDS[name]})
        client.csrf = r.json()["csrf_token"]
        return client

    @property
    def sims(self) -> Simulations:
        return self.app.state.simulations


def body(**extra) -> dict:
    return {"league": L, "from": M, "to": M, **extra}


def simulation_folders(world) -> set[str]:
    root = world.settings.out_dir / "simulations"
    return {p.name for p in root.iterdir()} if root.exists() else set()


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# --------------------------------------------------------------------------- the API


def test_the_current_policy_pays_what_was_settled_and_writes_nothing_to_the_store(world):
    store = world.settings.store
    before = sha256(store)
    r = world.bearer("admin1").post("/api/simulations", json=body(wait=True))
    assert r.status_code == 200, r.text
    s = r.json()
    t = s["totals"]
    assert (s["state"], s["policy"], s["requested_by"]) == ("done", "现行政策", "admin1")
    assert (t["parcels"], t["baseline_fen"], t["variant_fen"], t["delta_fen"]) == (4, 55, 55, 0)
    assert t["gross_delta_fen"] == 0 and t["prorated_runs"] == 0
    assert s["started_at"].endswith("+08:00") and s["progress"]["percent"] == 100
    assert sha256(store) == before
    # the outputs are under simulations/<id>/, and no variant.toml for the current policy
    folder = world.settings.out_dir / "simulations" / s["simulation"]
    assert sorted(p.name for p in folder.iterdir()) == [
        "comparison.parquet",
        "summary.html",
        "summary.part.html",
        "summary.xlsx",
    ]
    assert sorted(s["files"]) == ["comparison.parquet", "summary.html", "summary.xlsx"]
    world.current = s["simulation"]


def test_the_same_text_as_the_current_policy_is_the_current_policy(world):
    r = world.as_("admin1").post("/api/simulations", json=body(policy=CURRENT, wait=True))
    assert r.json()["policy"] == "现行政策" and r.json()["totals"]["delta_fen"] == 0


def test_a_variant_as_text_is_re_settled_and_downloadable_by_id(world):
    client = world.as_("admin1")
    r = client.post("/api/simulations", json=body(policy=RAISED))
    assert r.status_code == 202, r.text
    sim_id = r.json()["simulation"]
    assert r.json()["status_url"] == f"/api/simulations/{sim_id}"
    world.sims.jobs.get(sim_id).done.wait(60)
    s = client.get(f"/api/simulations/{sim_id}").json()
    assert (s["state"], s["policy"]) == ("done", "请求中的政策.toml")
    assert (s["totals"]["baseline_fen"], s["totals"]["variant_fen"]) == (55, 70)
    assert s["totals"]["delta_fen"] == 15
    parquet = client.get(s["files"]["comparison.parquet"])
    assert parquet.status_code == 200 and "attachment" in parquet.headers["content-disposition"]
    by_company = (
        pl.read_parquet(io.BytesIO(parquet.content))
        .group_by("company")
        .agg(pl.col("delta_fen").sum())
        .sort("company")
    )
    assert by_company.rows() == [("YTO", 5), ("ZTO", 10)]
    assert client.get(s["files"]["variant.toml"]).text == RAISED
    xlsx = client.get(s["files"]["summary.xlsx"])
    assert xlsx.content[:2] == b"PK"
    assert f"政策模拟-{L}-{M}-{M}-{sim_id}.xlsx" in xlsx.headers["content-disposition"].replace(
        "%E6%94%BF%E7%AD%96%E6%A8%A1%E6%8B%9F", "政策模拟"
    )
    html = client.get(s["files"]["summary.html"])
    assert "sandbox" in html.headers["content-security-policy"] and "+0.15" in html.text
    world.raised = sim_id


def test_scale_factors_by_area_class(world):
    r = world.bearer("admin1").post(
        "/api/simulations", json=body(scale={"default": "2", "border": ""}, wait=True)
    )
    s = r.json()
    # every parcel is in a default village: 0.30 + 0.20 + 0.30 + 0.30 (the cap is 0.30)
    assert (s["scale"], s["totals"]["variant_fen"]) == ({"default": "2"}, 110)
    assert s["described"] == "现行政策；一般地区（default）基础费率 ×2"


def test_the_budget_fit_by_hand(world):
    r = world.as_("admin1").post(
        "/api/simulations", json=body(policy=TIGHT, fit_budget=True, wait=True)
    )
    s = r.json()
    # every rate × m, each parcel floor(100 × rate): three at 0.15 m, one at 0.10 m, within
    # 40 分 (ytd, nothing paid before March): m = 0.7999 pays 3 × 11 + 7 = 40 分, m = 0.8000
    # would ask 3 × 12 + 8 = 44 分
    assert (s["state"], s["fit_multiplier"]) == ("done", "0.7999")
    assert (s["totals"]["variant_fen"], s["totals"]["prorated_runs"]) == (40, 0)
    assert s["described"] == "请求中的政策.toml；拟合预算（结果：全部基础费率 ×0.7999）"
    page = world.as_("admin1").get(s["page_url"]).text
    assert "预算拟合：全部基础费率乘以 0.7999 时全期无需预算调减，应付 0.40 元" in page
    assert "乘以 0.8000 时 1 个批次需调减 0.04 元" in page


def test_a_toml_syntax_error_is_the_loaders_message(world):
    r = world.as_("admin1").post("/api/simulations", json=body(policy="league_code = \n"))
    assert r.status_code == 422
    assert r.json()["detail"].startswith("配置错误 请求中的政策.toml: TOML 语法错误：")
    assert (r.json()["file"], r.json()["key"]) == ("请求中的政策.toml", "")


def test_a_cap_above_030_is_refused(world):
    r = world.as_("admin1").post(
        "/api/simulations", json=body(policy=CURRENT.replace("cap_yuan = 0.30", "cap_yuan = 0.35"))
    )
    assert r.status_code == 422
    assert r.json() == {
        "detail": "配置错误 请求中的政策.toml: version[0].cap_yuan: 0.35 元超过每件 0.30 元的上限",
        "file": "请求中的政策.toml",
        "key": "version[0].cap_yuan",
        "problem": "0.35 元超过每件 0.30 元的上限",
    }


def test_a_variant_that_changes_what_is_accepted_or_is_of_another_league_is_refused(world):
    client = world.as_("admin1")
    r = client.post("/api/simulations", json=body(policy=policy_text(require_proof=True)))
    assert r.status_code == 422 and r.json()["key"] == "eligibility.require_proof"
    assert "受理条件必须与现行政策相同" in r.json()["problem"]
    other = CURRENT.replace('league_code = "150700"', 'league_code = "150300"')
    r = client.post("/api/simulations", json=body(policy=other))
    assert r.status_code == 422
    assert r.json()["problem"] == "旗县 150727 不属于盟市 150300"  # the loader sees it first


@pytest.mark.parametrize(
    ("extra", "status", "detail"),
    [
        (
            {"from": "2025-01", "to": "2025-02"},
            409,
            "中没有盟市 150700 2025-01 至 2025-02 的有效结算批次",
        ),
        ({"from": "2025-04", "to": "2025-03"}, 422, "起始月份 2025-04 晚于结束月份 2025-03"),
        ({"from": "2025-13"}, 422, "2025-13"),
        (
            {"scale": {"forest": "1.2"}},
            422,
            "区域类别 forest 不在模拟政策中（模拟政策的区域类别：border、default）",
        ),
        ({"scale": {"default": "abc"}}, 422, "区域类别 default 的系数“abc”不是数字"),
        (
            {"scale": {"default": -1}},
            422,
            "区域类别 default 的系数“-1”应为不小于 0、最多6位小数的数",
        ),
        ({"fit_budget": True}, 422, "模拟政策的预算规则为 none（不限额），没有可拟合的预算"),
        ({"policy": "  \n"}, 422, "模拟政策是空的"),
        (
            {"policy": TIGHT, "fit_budget": True, "scale": {"default": "0", "border": "0"}},
            422,
            "的基础费率全部为 0，乘以任何系数仍为 0，无可拟合",
        ),
        ({"league": "159900"}, 403, "无权访问：盟市 159900"),
    ],
)
def test_a_request_that_cannot_be_simulated_is_refused_with_the_reason(
    world, extra, status, detail
):
    folders = simulation_folders(world)
    r = world.as_("admin1").post("/api/simulations", json=body(**extra))
    assert r.status_code == status, r.text
    assert detail in r.json()["detail"]
    assert simulation_folders(world) == folders  # nothing left behind


def test_a_policy_over_1_mb_is_refused(world):
    r = world.as_("admin1").post("/api/simulations", json=body(policy=CURRENT + "#" * 1024 * 1024))
    assert r.status_code == 413
    assert r.json()["detail"].startswith("政策文件超过大小上限 1,024 KB，未使用")


def test_a_cookie_post_needs_the_csrf_token_and_a_bearer_post_does_not(world):
    no_csrf = TestClient(world.app, cookies=world.as_("admin1").cookies)
    r = no_csrf.post("/api/simulations", json=body())
    assert r.status_code == 403 and "CSRF" in r.json()["detail"]
    r = no_csrf.post("/api/simulations", json=body(), headers={"X-CSRF-Token": "forged"})
    assert r.status_code == 403


@pytest.mark.parametrize(
    ("user", "method", "path"),
    [
        ("zto", "post", "/api/simulations"),
        ("zto", "get", f"/api/simulations?league={L}"),
        ("zto", "get", "/api/simulations/{id}"),
        ("zto", "get", "/api/simulations/{id}/summary.xlsx"),
        ("zto", "get", "/simulations"),
        ("zto", "get", "/simulations/{id}"),
        ("admin_other", "post", "/api/simulations"),
        ("admin_other", "get", f"/api/simulations?league={L}"),
        ("admin_other", "get", "/api/simulations/{id}"),
        ("admin_other", "get", "/api/simulations/{id}/comparison.parquet"),
        ("admin_other", "get", f"/simulations?league={L}"),
        ("admin_other", "get", "/simulations/{id}"),
        ("auditor", "post", "/api/simulations"),
        ("auditor_other", "get", "/api/simulations/{id}"),
        ("auditor_other", "get", "/api/simulations/{id}/summary.html"),
    ],
)
def test_a_company_another_leagues_office_or_an_auditor_starting_is_403(world, user, method, path):
    client = world.as_(user)
    path = path.replace("{id}", world.current)
    r = client.post(path, json=body()) if method == "post" else client.get(path)
    assert r.status_code == 403, r.text
    text = r.json()["detail"] if path.startswith("/api/") else r.text
    assert "您的角色" in text or "无权访问" in text


def test_the_auditor_of_the_league_reads_finished_simulations(world):
    client = world.bearer("auditor")
    listed = client.get(f"/api/simulations?league={L}").json()["simulations"]
    assert world.current in [s["simulation"] for s in listed]
    assert client.get(f"/api/simulations/{world.raised}").json()["totals"]["variant_fen"] == 70
    assert client.get(f"/api/simulations/{world.raised}/variant.toml").text == RAISED
    page = world.as_("auditor").get(f"/simulations?league={L}").text
    assert "审计人员可查看本盟市的模拟记录和结果" in page and 'name="policy"' not in page


def test_unknown_simulations_and_files_are_404(world):
    client = world.as_("admin1")
    assert client.get("/api/simulations/0123456789abcdef").status_code == 404
    assert client.get("/api/simulations/..%2F..%2Fetc").status_code == 404
    assert client.get(f"/api/simulations/{world.current}/variant.toml").status_code == 404
    assert client.get(f"/api/simulations/{world.current}/summary.part.html").status_code == 404
    assert client.get(f"/api/simulations/{world.current}/..%2Fx").status_code == 404
    assert client.get("/simulations/nope").status_code == 404


def test_each_simulation_started_is_in_the_event_log(world):
    events = [
        e
        for e in world.as_("auditor").get("/api/events").json()["portal"]
        if e["action"] == "simulation"
    ]
    first = events[-1]  # newest first
    assert (first["actor"], first["origin"], first["league_code"], first["month"]) == (
        "admin1",
        "testclient",
        L,
        "2025-03 至 2025-03",
    )
    detail = json.loads(first["detail"])
    assert detail["simulation"] == world.current and detail["policy"] == "现行政策"
    raised = next(e for e in events if json.loads(e["detail"])["simulation"] == world.raised)
    assert (
        json.loads(raised["detail"])["variant_sha256"]
        == hashlib.sha256(RAISED.encode()).hexdigest()
    )
    # refused requests started nothing, so they are not in the log
    assert len(events) == len(world.sims.list(L))


def test_one_simulation_at_a_time_with_its_progress_shown(world, monkeypatch):
    release = threading.Event()
    real = sim_module.simulate

    def held(*args, **kwargs):
        release.wait(30)
        return real(*args, **kwargs)

    monkeypatch.setattr(sim_module, "simulate", held)
    client = world.as_("admin1")
    r = client.post("/api/simulations", json=body())
    sim_id = r.json()["simulation"]
    try:
        second = client.post("/api/simulations", json=body())
        assert second.status_code == 409
        assert "开始的模拟测算（盟市 150700 2025-03 至 2025-03）尚未结束" in second.json()["detail"]
        s = client.get(f"/api/simulations/{sim_id}").json()
        assert (s["state"], s["totals"], s["files"]) == ("running", None, {})
        assert client.get(f"/api/simulations/{sim_id}/summary.xlsx").status_code == 404
        page = client.get(f"/simulations/{sim_id}").text
        assert "正在模拟" in page and '<meta http-equiv="refresh" content="2">' in page
        assert "<progress" in page and "预计共约 1 个" in page
        form = client.get(f"/simulations?league={L}").text
        assert "正在进行，同一时间只能进行一个模拟" in form
    finally:
        release.set()
    world.sims.jobs.get(sim_id).done.wait(60)
    assert client.get(f"/api/simulations/{sim_id}").json()["state"] == "done"


def test_a_simulation_interrupted_by_a_restart_is_marked(world):
    with sqlite3.connect(portal_db(world.settings.store.resolve())) as db:
        db.execute(
            "INSERT INTO simulations (id, league_code, first_month, last_month, source, scale, "
            "fit_budget, state, requested_by, origin, started_at) VALUES ('00000000000000aa', "
            "?, ?, ?, '现行政策', '{}', 0, 'running', 'admin1', 'x', '2025-06-30T01:00:00+00:00')",
            (L, M, M),
        )
    Simulations(world.app.state.portal)
    s = world.as_("admin1").get("/api/simulations/00000000000000aa").json()
    assert (s["state"], s["error"]) == ("failed", INTERRUPTED)


# --------------------------------------------------------------------------- the page


def form(client, **fields) -> dict:
    return {"csrf_token": client.csrf, "league": L, "from": M, "to": M, **fields}


def test_the_form_offers_the_settled_months_and_the_current_policy(world):
    page = world.as_("admin1").get("/simulations").text
    assert '<option value="2025-03" selected>2025-03</option>' in page
    assert "rate_yuan = 0.15" in page and "已填入现行政策（150700.toml）" in page
    assert "边境旗市（border）" in page and "一般地区（default）" in page
    assert "admin1" in page and "+08:00" in page and "+0.15" in page  # the list


def test_the_page_runs_the_edited_policy_and_shows_the_summary(world):
    client = world.page_client("admin1")
    r = client.post(
        "/simulations",
        data=form(client, policy=RAISED.replace("\n", "\r\n"), scale_border=""),
        files={"variant_file": ("", b"")},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    sim_id = r.headers["location"].rsplit("/", 1)[1]
    world.sims.jobs.get(sim_id).done.wait(60)
    page = client.get(r.headers["location"]).text
    assert "应付补贴变化 <b>+0.15 元</b>" in page
    assert "编辑后的政策.toml" in page and "按企业：增加 2 家" in page
    assert "<svg" in page and f"/api/simulations/{sim_id}/summary.xlsx" in page


def test_the_page_shows_the_loaders_problem_beside_the_form_and_keeps_the_text(world):
    client = world.page_client("admin1")
    bad = CURRENT.replace("cap_yuan = 0.30", "cap_yuan = 0.35")
    r = client.post("/simulations", data=form(client, policy=bad))
    assert r.status_code == 422
    assert "模拟政策有误，未开始模拟" in r.text
    assert "<th>位置（键）</th><td>version[0].cap_yuan</td>" in r.text
    assert "<th>问题</th><td>0.35 元超过每件 0.30 元的上限</td>" in r.text
    assert "cap_yuan = 0.35" in r.text  # the officer's text is kept
    assert "Traceback" not in r.text


def test_an_uploaded_variant_is_used_and_its_name_is_escaped(world):
    client = world.page_client("admin1")
    r = client.post(
        "/simulations",
        data=form(client),
        files={"variant_file": ("<b>方案</b>.toml", RAISED.encode("utf-8"))},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    sim_id = r.headers["location"].rsplit("/", 1)[1]
    world.sims.jobs.get(sim_id).done.wait(60)
    page = client.get(r.headers["location"]).text
    assert "<b>方案</b>" not in page and "&lt;b&gt;方案&lt;/b&gt;.toml" in page
    folder = world.settings.out_dir / "simulations" / sim_id
    assert (folder / "variant.toml").read_text(encoding="utf-8") == RAISED
    assert not list(world.settings.out_dir.rglob("*方案*"))


@pytest.mark.parametrize(
    ("name", "data", "status", "message"),
    [
        (
            "方案.xlsx",
            b"PK\x03\x04",
            422,
            "不支持的文件类型“.xlsx”：请上传政策文件（.toml，UTF-8 编码",
        ),
        ("方案.toml", CURRENT.encode("gbk"), 422, "政策文件“方案.toml”不是 UTF-8 编码的文本（第 "),
        ("方案.toml", b"", 422, "政策文件“方案.toml”是空的"),
        ("方案.toml", b"a = 1\n" + b"#" * (1024 * 1024), 413, "政策文件超过大小上限 1,024 KB"),
        ("方案.toml", b"[budget\n", 422, "<th>文件</th><td>方案.toml</td>"),
    ],
)
def test_an_upload_that_is_not_a_utf8_toml_file_is_refused(world, name, data, status, message):
    client = world.page_client("admin1")
    r = client.post("/simulations", data=form(client), files={"variant_file": (name, data)})
    assert r.status_code == status
    assert message in r.text and "未开始模拟" in r.text


def test_a_page_post_without_the_csrf_token_is_403(world):
    client = world.page_client("admin1")
    r = client.post("/simulations", data={"league": L, "from": M, "to": M})
    assert r.status_code == 403 and "CSRF" in r.text

"""A portal for the web tests: a small configuration, its accounts, and log files as companies
write them (GBK with Chinese headers, XLSX)."""

from __future__ import annotations

from pathlib import Path

from conftest import COMPANIES, V1, V2, make_config

from settlement.web.accounts import Accounts, portal_db
from settlement.web.app import create_app
from settlement.web.portal import Settings

TODAY = "2025-06-30"  # March's notice period (April) has ended; months up to May have ended
PASSWORDS = {
    "admin1": "admin1-password",
    "admin2": "admin2-password",
    "admin_other": "admin-other-password",
    "zto": "zto-password-1",
    "yto": "yto-password-1",
    "auditor": "auditor-password",
    "auditor_other": "auditor-other-password",
}
USERS = {
    "admin1": ("admin", ("150700",), None),
    "admin2": ("admin", ("150700",), None),
    "admin_other": ("admin", ("150300",), None),
    "zto": ("company", (), "ZTO"),
    "yto": ("company", (), "YTO"),
    "auditor": ("auditor", ("150700",), None),
    "auditor_other": ("auditor", ("150300",), None),
}
CN_HEADER = "运单号,快递企业,签收时间,嘎查村代码,派送距离,派送成本,派费收入,签收方式\n"


def log_line(waybill: str, company: str, day: str, km: str = "12", village: str = V1) -> str:
    """One parcel; at 12 km the test policy pays 15 分, at 5 km 10 分 (until 03-15)."""
    return f"{waybill},{company},{day} 10:00,{village},{km},2.00,0,签名\n"


def gbk_log(*lines: str) -> bytes:
    """A log as a company's Excel saves it: GBK, Chinese headers."""
    return (CN_HEADER + "".join(lines)).encode("gbk")


ZTO_MARCH = gbk_log(
    log_line("ZT001", "ZTO", "2025-03-05"),
    log_line("ZT002", "ZTO", "2025-03-06", km="5"),
    log_line("ZT003", "ZTO", "2025-03-07", village=V2),
    log_line("ZT004", "ZTO", "2025-04-02"),  # OUTSIDE_PERIOD
    log_line("ZT001", "ZTO", "2025-03-08"),  # DUPLICATE
)
YTO_MARCH = gbk_log(
    log_line("YT001", "YTO", "2025-03-05"),
    log_line("YT002", "YTO", "2025-03-09", km="abc"),  # MALFORMED
)


def make_portal(root: Path, upload_limit: int = 64 * 1024, companies: str = COMPANIES):
    """The app, with every test user created; (app, settings)."""
    config = make_config(root / "config", companies=companies)
    out = root / "out"
    settings = Settings(out, out / "settlement.duckdb", config, upload_limit=upload_limit)
    accounts = Accounts(portal_db(settings.store.resolve()))
    for name, (role, leagues, company) in USERS.items():
        accounts.add_user(name, role, PASSWORDS[name], leagues, company)
    return create_app(settings), settings

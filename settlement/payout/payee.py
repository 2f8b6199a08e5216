"""Payee data of a courier company (SPEC §10): who is paid, and whether a payment can be made.

The 统一社会信用代码 (unified social credit code) is 18 characters whose last is a check
character computed per GB 32100-2015 from the first 17.
"""

from __future__ import annotations

import re

#: GB 32100-2015 code characters, in the order of their values 0–30 (no I, O, S, V, Z).
CREDIT_CHARS = "0123456789ABCDEFGHJKLMNPQRTUWXY"
#: Weights of positions 1–17: 3^(i−1) mod 31.
CREDIT_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)
ACCOUNT_RE = re.compile(r"\d{8,32}")

#: The payee fields a payment needs, with their names in Chinese.
PAYEE_FIELDS = {
    "payee_name": "收款单位名称",
    "credit_code": "统一社会信用代码",
    "bank": "开户银行",
    "account": "银行账号",
}


def credit_check_char(first17: str) -> str:
    """The check character of a credit code's first 17 characters (GB 32100-2015)."""
    total = sum(CREDIT_CHARS.index(c) * w for c, w in zip(first17, CREDIT_WEIGHTS, strict=True))
    return CREDIT_CHARS[(31 - total % 31) % 31]


def credit_code_problem(code: str) -> str | None:
    """Why `code` is not a valid 统一社会信用代码, or None when it is."""
    if len(code) != 18:
        return f"统一社会信用代码应为18位，实际 {len(code)} 位"
    bad = [c for c in code if c not in CREDIT_CHARS]
    if bad:
        return f"统一社会信用代码含有不允许的字符“{bad[0]}”（只能是数字和除 I、O、S、V、Z 外的大写字母）"
    expected = credit_check_char(code[:17])
    if code[17] != expected:
        return (
            f"统一社会信用代码 {code} 的校验码应为 {expected}（GB 32100-2015），实际为 {code[17]}"
        )
    return None


def account_problem(account: str) -> str | None:
    """Why `account` is not a bank account number (8–32 digits), or None."""
    if not ACCOUNT_RE.fullmatch(account):
        return f"银行账号“{account}”应为8–32位数字（不含空格和横线）"
    return None

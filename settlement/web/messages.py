"""The library's messages as the portal shows them: the CLI's options and commands they name
(`请加 --replace`, `--force`, `settle statement` …) replaced by what the user can do in the page.

The library speaks to `settle` users; the portal translates at its boundary — the error
handler, the pages' error boxes, a run's or a simulation's outcome, the validation report's
warnings, verify's findings — so no route has to remember. `tests/test_web_fixes.py` finds every
Chinese string of the library that names an option or a command and checks that it comes out
here without one.
"""

from __future__ import annotations

#: (what the library says, what the page says), applied in order: longer phrases first.
PORTAL_WORDS: tuple[tuple[str, str], ...] = (
    # engine.py: runs
    ("确认要替换该月结算请加 --replace", "确认要替换该月结算，请核对下表后点击“确认替换”"),
    (
        "请检查 --league、--month 和 --logs 是否选对。确认无误请加 --force",
        "请检查盟市、月份和各企业提交的文件是否选对。确认无误可点击“仍然结算”",
    ),
    ("请检查 --league、--month 和 --logs 是否选对", "请检查盟市、月份和各企业提交的文件是否选对"),
    (
        "请检查 --month 是否写错。确需提前结算请加 --force",
        "请检查月份是否选错。确需提前结算可点击“仍然结算”",
    ),
    ("请检查 --month 是否写错", "请检查月份是否选错"),
    ("确认无误请加 --force", "确认无误可点击“仍然结算”"),
    ("确需提前结算请加 --force", "确需提前结算可点击“仍然结算”"),
    (
        "迟到的投递请用 settle run --supplementary 补充结算",
        "迟到的投递请由企业作为补报提交，再在月份页面点击“补充结算”",
    ),
    ("可先用 settle validate --store 预检", "请查看各补报的校验报告"),
    # months.py: seal, void, a change that breaks a sealed month
    ("请先重新结算该月（settle run --replace），再封存", "请先重新结算该月，再封存"),
    (
        "如确需更改，请加 --force，并用 settle run --supplementary 为这些运单补充结算",
        "如确需更改，重新结算时可点击“仍然结算”（作废须由系统管理员在命令行办理），"
        "再由企业将这些运单作为补报提交并补充结算",
    ),
    ("不能为空（--reviewed-by）", "不能为空"),
    ("不能为空（--approved-by）", "不能为空"),
    ("不能为空（--approval-ref）", "不能为空"),
    ("作废原因不能为空（--reason）", "作废原因不能为空"),
    (
        "已支付的款项如需追回，请用 settle clawback 登记追缴",
        "已支付的款项如需追回，请在“资金拨付”页面登记追缴",
    ),
    # payout/: clawbacks and batches
    ("追缴原因不能为空（--reason）", "追缴原因不能为空"),
    ("可以重新结算（--replace）或作废", "可以重新结算或作废"),
    ("请至少给出一个结算月份（--month）", "请至少勾选一个结算月份"),
    ("付款凭证号不能为空（--voucher）", "付款凭证号不能为空"),
    ("请检查 --paid-on 是否写错", "请检查拨付日期是否写错"),
    ("请检查 --league 和 --year 是否写错", "请检查盟市和预算年度是否选错"),
    ("并封存（settle seal）后才能拨付", "并封存后才能拨付"),
    # audit/: the auditors' sandbox and verify
    ("（可用 --timeout 放宽）", "（请缩小查询范围）"),
    ("或用 --max-rows 放宽", "或分批查询"),
    ("（该批次是用 --force 更改的）", "（该批次是强制更改的）"),
    ("（可用 settle statement 生成）", "（可由管理员重新生成结算单）"),
    ("（如需重新生成，请用 settle statement）", "（如需重新生成，请联系管理员）"),
    ("（settle verify 可列出问题）", "（审计人员的“全面校验”可列出问题）"),
    ("请给出运单号，如 settle explain 1234567890", "请输入运单号"),
    # simulate/
    ("--scale：区域类别", "调整基础费率：区域类别"),
    # store.py: the portal's own set-up (said to whoever runs it)
    ("；请用 --store 指定已有的结算库，或先运行 settle run", "；请先结算一个月份"),
    ("本次 --out 为", "本门户的输出目录为"),
    (
        "请把 --out 指向该目录，或为新的输出目录另用一个结算库（--store）",
        "请由系统管理员检查门户的输出目录和结算库设置",
    ),
)


def for_portal(message: str) -> str:
    """A library message with the CLI's options replaced by what the page offers."""
    for cli, page in PORTAL_WORDS:
        message = message.replace(cli, page)
    return message

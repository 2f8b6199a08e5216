"""Reject reason codes (SPEC §4.1) in the order they are checked, with their Chinese text."""

REASONS: dict[str, str] = {
    "MALFORMED": "必填字段为空或格式错误",
    "UNKNOWN_COMPANY": "快递企业编码未登记",
    "UNKNOWN_VILLAGE": "嘎查村代码不在区划库中",
    "WRONG_LEAGUE": "嘎查村不属于本次结算的盟市",
    "NOT_RURAL": "该村城乡分类不在补贴范围内",
    "OUTSIDE_PERIOD": "签收时间不在结算月份内",
    "NO_POLICY": "签收当日无有效补贴政策",
    "BAD_DISTANCE": "派送距离为负数或超过上限",
    "BAD_COST": "派送成本为负数或超过上限，或派费收入为负数",
    "NO_PROOF": "政策要求妥投凭证，但该行未提供",
    "DUPLICATE": "运单号在本次结算中重复",
    "ALREADY_SETTLED": "该运单已在其他月份结算",
}

REASON_ORDER: tuple[str, ...] = tuple(REASONS)

#: Short labels for column headings in statements.
SHORT: dict[str, str] = {
    "MALFORMED": "格式错误",
    "UNKNOWN_COMPANY": "企业未登记",
    "UNKNOWN_VILLAGE": "村代码无效",
    "WRONG_LEAGUE": "非本盟市",
    "NOT_RURAL": "非农村地区",
    "OUTSIDE_PERIOD": "非本月",
    "NO_POLICY": "无有效政策",
    "BAD_DISTANCE": "距离异常",
    "BAD_COST": "成本收入异常",
    "NO_PROOF": "无妥投凭证",
    "DUPLICATE": "重复运单",
    "ALREADY_SETTLED": "已在他月结算",
}

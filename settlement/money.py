"""The one place Python touches money: exact decimal parsing and formatting of 元 and 分.

All settlement arithmetic happens in DuckDB SQL on DECIMAL and integer 分; this module only
parses configuration amounts and formats totals for people. Never a binary float.
"""

from decimal import ROUND_FLOOR, Decimal

#: Amounts and distances are carried as DECIMAL(18, 6): exact to 0.000001 元 / km.
SCALE = 6
QUANTUM = Decimal(1).scaleb(-SCALE)


def to_decimal(value: object) -> Decimal:
    """Exact Decimal of a config value (int, Decimal or numeric text); floats are refused."""
    if isinstance(value, bool | float):
        raise TypeError("binary floats are not accepted for money")
    if isinstance(value, int | Decimal):
        return Decimal(value)
    if isinstance(value, str):
        return Decimal(value.strip())
    raise TypeError(f"not a number: {value!r}")


def has_at_most_scale(value: Decimal, scale: int = SCALE) -> bool:
    """True when value has no digits beyond `scale` decimal places."""
    return value == value.quantize(Decimal(1).scaleb(-scale), rounding=ROUND_FLOOR)


def yuan_to_fen_floor(value: Decimal) -> int:
    """floor(100 × value) as an integer number of 分."""
    return int((value * 100).to_integral_value(rounding=ROUND_FLOOR))


def fen_to_yuan(fen: int) -> Decimal:
    """Exact 元 of an integer number of 分 (two decimals)."""
    return (Decimal(int(fen)) / 100).quantize(Decimal("0.01"))


def format_yuan(fen: int) -> str:
    """'1,234.56' for 123456 分, with thousands separators, for people to read."""
    return f"{fen_to_yuan(fen):,.2f}"


_DIGITS = "零壹贰叁肆伍陆柒捌玖"
_SMALL = ("", "拾", "佰", "仟")
_BIG = ("", "万", "亿", "万亿")


def rmb_upper(fen: int) -> str:
    """人民币大写 of an amount in 分, as written on Chinese payment documents.

    12345 -> '壹佰贰拾叁元肆角伍分'; 100 -> '壹元整'; 0 -> '零元整'.
    """
    fen = int(fen)
    if fen < 0:
        return "负" + rmb_upper(-fen)
    yuan, jiao, cents = fen // 100, fen // 10 % 10, fen % 10
    words = ""
    if yuan:
        groups = []
        while yuan:
            groups.append(yuan % 10000)
            yuan //= 10000
        pending_zero = False
        for g in range(len(groups) - 1, -1, -1):
            group = groups[g]
            if group == 0:
                pending_zero = bool(words)
                continue
            if words and (pending_zero or group < 1000):
                words += "零"
            pending_zero = False
            digits = f"{group:04d}"
            zero = False
            started = False
            for i, ch in enumerate(digits):
                d = int(ch)
                if d == 0:
                    zero = started
                    continue
                if zero:
                    words += "零"
                    zero = False
                words += _DIGITS[d] + _SMALL[3 - i]
                started = True
            words += _BIG[g]
        words += "元"
    if not jiao and not cents:
        return (words or "零元") + "整"
    if jiao:
        words += _DIGITS[jiao] + "角"
    elif words:
        words += "零"
    if cents:
        words += _DIGITS[cents] + "分"
    else:
        words += "整"
    return words


def scale_yuan(value: Decimal, factor: Decimal) -> Decimal:
    """value × factor floored to 6 decimals, the scale of every amount (a rate scaled by the
    policy simulator: 0.15 × 1.2345 = 0.185175; 0.123457 × 0.5 = 0.061728)."""
    return (value * factor).quantize(QUANTUM, rounding=ROUND_FLOOR)

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

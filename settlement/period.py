"""Settlement months and budget years."""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

from .errors import UsageError

_MONTH_RE = re.compile(r"(\d{4})-(\d{2})")


@dataclass(frozen=True, order=True)
class Month:
    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Month:
        """'2025-03' -> Month(2025, 3); anything else is a UsageError."""
        m = _MONTH_RE.fullmatch(text.strip())
        if not m or not 1 <= int(m.group(2)) <= 12 or int(m.group(1)) < 2000:
            raise UsageError(f"结算月份“{text}”格式错误，应为 YYYY-MM，如 2025-03")
        return cls(int(m.group(1)), int(m.group(2)))

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"

    @property
    def start(self) -> dt.date:
        return dt.date(self.year, self.month, 1)

    @property
    def end(self) -> dt.date:
        """First day of the next month (exclusive end)."""
        return self.shift(1).start

    @property
    def last_day(self) -> dt.date:
        return self.end - dt.timedelta(days=1)

    def shift(self, months: int) -> Month:
        index = self.year * 12 + self.month - 1 + months
        return Month(index // 12, index % 12 + 1)

    def budget_year_start(self, start_month: int) -> Month:
        """First month of the budget year this month belongs to."""
        year = self.year if self.month >= start_month else self.year - 1
        return Month(year, start_month)

    def budget_month_index(self, start_month: int) -> int:
        """Position 1..12 of this month in its budget year."""
        return (self.month - start_month) % 12 + 1

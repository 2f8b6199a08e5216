"""Paying out (SPEC §10): payment batches, clawbacks and the annual close.

`payee` checks who can be paid; `batches` creates and confirms payment batches (拨付清单);
`clawbacks` books improper payments back (追缴); `annual` closes a budget year with its
break-even true-up; `cash` is what was settled, paid and outstanding, month by month. The
money rules are SQL (`sql/92_payable.sql` … `sql/96_annual.sql`).
"""

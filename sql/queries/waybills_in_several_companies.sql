-- question: 同一运单号出现在多家企业日志中的情况（含被剔除的行）
-- params:   league (league)  盟市代码
--           month  (month)   结算月份 YYYY-MM
-- columns:  waybill_no, companies, rows, paid_to, reasons
WITH all_rows AS (
    SELECT waybill_no, company, 'PAID' AS outcome FROM ledger WHERE league = $league AND month = $month
    UNION ALL
    SELECT waybill_no, company, reason_code FROM rejects
    WHERE league = $league AND month = $month AND waybill_no IS NOT NULL
)
SELECT waybill_no, string_agg(DISTINCT company, ', ' ORDER BY company) AS companies, COUNT(*) AS rows,
       string_agg(company, ', ') FILTER (WHERE outcome = 'PAID') AS paid_to,
       string_agg(DISTINCT outcome, ', ') FILTER (WHERE outcome <> 'PAID') AS reasons
FROM all_rows
GROUP BY waybill_no
HAVING COUNT(DISTINCT company) > 1
ORDER BY waybill_no

-- question: 某盟市某月按剔除原因和企业统计的剔除行数
-- params:   league (league)  盟市代码
--           month  (month)   结算月份 YYYY-MM
-- columns:  reason_code, reason, company, rows
SELECT reason_code, reason, company, COUNT(*) AS rows
FROM rejects
WHERE league = $league AND month = $month
GROUP BY ALL
ORDER BY reason_code, rows DESC, company

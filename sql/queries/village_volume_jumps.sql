-- question: 本月单量比此前各月平均跳升的嘎查村（可能的刷单或错报）
-- params:   league (league)  盟市代码
--           month  (month)   结算月份 YYYY-MM
--           factor (number)  倍数阈值，如 3（本月单量 ≥ 此前月均 × factor 即列出）
-- columns:  village_code, county_code, parcels, earlier_months, earlier_average, ratio
WITH monthly AS (
    SELECT village_code, county_code, month, COUNT(*) AS parcels
    FROM ledger WHERE league = $league AND month <= $month GROUP BY ALL
),
earlier AS (
    SELECT village_code, COUNT(*) AS earlier_months, AVG(parcels) AS earlier_average
    FROM monthly WHERE month < $month GROUP BY village_code
)
SELECT m.village_code, m.county_code, m.parcels, e.earlier_months,
       ROUND(e.earlier_average, 1) AS earlier_average,
       ROUND(m.parcels / e.earlier_average, 2) AS ratio
FROM monthly m JOIN earlier e USING (village_code)
WHERE m.month = $month AND m.parcels >= e.earlier_average * CAST($factor AS DOUBLE)
ORDER BY ratio DESC, m.village_code

-- Each account's month in cost/analysis (view 'monthly'), and its change from the
-- month before (view 'period_over_period'), recomputed from the FOCUS line items.
-- The change is (this − previous) / previous × 100, rounded half away from zero to 10
-- places and then to 2 (on the mantissas, as the bill run rounds); none when the
-- month before was not closed or cost nothing.
-- Returns the rows where the two disagree: empty when the analysis is right.
WITH line_sums AS (
    SELECT billing_period, BillingAccountId AS account_id,
           sum(BilledCost) AS billed, sum(EffectiveCost) AS effective, sum(ListCost) AS list
    FROM read_parquet(getvariable('lake') || '/bills/line_items/*/*.parquet', hive_partitioning = true)
    GROUP BY ALL
),
from_lines AS (
    -- Every invoiced account has a month, with or without lines.
    SELECT i.billing_period, i.account_id,
           coalesce(l.billed, 0) AS billed, coalesce(l.effective, 0) AS effective, coalesce(l.list, 0) AS list,
           p.effective AS previous
    FROM read_parquet(getvariable('lake') || '/bills/invoices/*/*.parquet', hive_partitioning = true) i
    LEFT JOIN line_sums l USING (billing_period, account_id)
    LEFT JOIN line_sums p ON p.account_id = i.account_id
        AND p.billing_period = strftime(strptime(i.billing_period || '-01', '%Y-%m-%d') - INTERVAL 1 MONTH, '%Y-%m')
),
changes AS (
    SELECT *, CAST((effective - previous) * 10000000000 AS HUGEINT) * 1000000000000 AS num,
           CAST(previous * 10000000000 AS HUGEINT) AS den
    FROM from_lines
),
with_pct AS (
    SELECT * EXCLUDE (num, den, m10),
           CAST(sign(m10) * ((2 * abs(m10) + 100000000) // 200000000) AS DECIMAL(38, 0)) * 0.01 AS change_pct
    FROM (SELECT *, CASE WHEN den <> 0 THEN sign(num) * sign(den) * ((2 * abs(num) + abs(den)) // (2 * abs(den))) END AS m10
          FROM changes)
),
analysis AS (
    SELECT * FROM read_parquet(getvariable('lake') || '/cost/analysis/*/*.parquet', hive_partitioning = true)
),
from_analysis AS (
    SELECT m.billing_period, m.account_id, m.billed_cost AS billed, m.effective_cost AS effective, m.list_cost AS list,
           p.effective_cost AS pop_effective, p.previous_effective_cost AS previous,
           p.change_pct
    FROM analysis m
    LEFT JOIN analysis p ON p.view = 'period_over_period' AND p.billing_period = m.billing_period AND p.account_id = m.account_id
    WHERE m.view = 'monthly'
)
SELECT coalesce(l.billing_period, a.billing_period) AS billing_period,
       coalesce(l.account_id, a.account_id) AS account_id,
       l.billed, a.billed AS analysis_billed, l.effective, a.effective AS analysis_effective,
       a.pop_effective, l.previous, a.previous AS analysis_previous,
       l.change_pct, a.change_pct AS analysis_change_pct
FROM with_pct l FULL OUTER JOIN from_analysis a USING (billing_period, account_id)
WHERE l.billed IS DISTINCT FROM a.billed OR l.effective IS DISTINCT FROM a.effective
   OR l.list IS DISTINCT FROM a.list OR a.pop_effective IS DISTINCT FROM l.effective
   OR l.previous IS DISTINCT FROM a.previous OR l.change_pct IS DISTINCT FROM a.change_pct
ORDER BY 1, 2;

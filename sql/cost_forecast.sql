-- The month's forecast in cost/analysis (view 'forecast'), recomputed from the FOCUS
-- line items: for every day an account has lines, its effective cost from the
-- period's start to that day, and that pace carried to the period's last day,
-- month_to_date × days in the period / days elapsed, rounded half away from zero to
-- 10 places and then to 2 (decimal arithmetic on the mantissas, as the bill run
-- rounds). Returns the rows where the two disagree: empty when the forecast is right.
WITH days AS (
    SELECT billing_period, BillingAccountId AS account_id,
           epoch_us(ChargePeriodStart) // 86400000000 AS day,
           sum(EffectiveCost) AS effective
    FROM read_parquet(getvariable('lake') || '/bills/line_items/*/*.parquet', hive_partitioning = true)
    GROUP BY ALL
),
to_date AS (
    SELECT *,
           sum(effective) OVER (PARTITION BY billing_period, account_id ORDER BY day) AS mtd,
           epoch_us(strptime(billing_period || '-01', '%Y-%m-%d')) // 86400000000 AS first_day,
           date_diff('day', strptime(billing_period || '-01', '%Y-%m-%d'),
                     strptime(billing_period || '-01', '%Y-%m-%d') + INTERVAL 1 MONTH) AS days_in_period
    FROM days
),
paced AS (
    SELECT *, day - first_day + 1 AS elapsed,
           CAST(mtd * 10000000000 AS HUGEINT) * days_in_period AS numerator
    FROM to_date
),
from_lines AS (
    SELECT billing_period, account_id, day, mtd,
           -- half away from zero to the mantissa (10 places) ...
           sign(numerator) * ((2 * abs(numerator) + elapsed) // (2 * elapsed)) AS m10
    FROM paced
    WHERE elapsed BETWEEN 1 AND days_in_period
),
rounded AS (
    -- ... then to 2 places.
    SELECT billing_period, account_id, day, mtd,
           CAST(sign(m10) * ((2 * abs(m10) + 100000000) // 200000000) AS DECIMAL(38, 0)) * 0.01 AS forecast
    FROM from_lines
),
from_analysis AS (
    SELECT billing_period, account_id, epoch_us("date") // 86400000000 AS day,
           effective_cost AS mtd, forecast_effective_cost AS forecast
    FROM read_parquet(getvariable('lake') || '/cost/analysis/*/*.parquet', hive_partitioning = true)
    WHERE view = 'forecast'
)
SELECT coalesce(l.billing_period, a.billing_period) AS billing_period,
       coalesce(l.account_id, a.account_id) AS account_id,
       coalesce(l.day, a.day) AS day,
       l.mtd, a.mtd AS analysis_mtd, l.forecast, a.forecast AS analysis_forecast
FROM rounded l FULL OUTER JOIN from_analysis a USING (billing_period, account_id, day)
WHERE l.mtd IS DISTINCT FROM a.mtd OR l.forecast IS DISTINCT FROM a.forecast
ORDER BY 1, 2, 3;

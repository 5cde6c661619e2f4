-- Package utilization per period: quota used and lapsed, as a share of the quota the
-- period opened with, with the deduction ledger's total next to the ledger's `used`
-- (they agree within half a unit of the 10th place per draw: quantities are shown
-- rounded to 10 places, the ledger sums the exact ones).
WITH drawn AS (
    SELECT billing_period, package_id, sum(quantity) AS drawn, count(*) AS draws
    FROM read_parquet(getvariable('lake') || '/bills/package_deductions/*/*.parquet', hive_partitioning = true)
    GROUP BY ALL
)
SELECT l.billing_period, l.account_id, l.package_id, l.opening_quota, l.used_quota, l.lapsed_quota,
       l.closing_quota,
       CASE WHEN l.opening_quota > 0 THEN round(100 * l.used_quota / l.opening_quota, 2) END AS used_pct,
       coalesce(d.drawn, 0) AS drawn_in_deductions, coalesce(d.draws, 0) AS draws
FROM read_parquet(getvariable('lake') || '/bills/package_ledger/*/*.parquet', hive_partitioning = true) l
LEFT JOIN drawn d USING (billing_period, package_id)
ORDER BY 1, 2, 3;

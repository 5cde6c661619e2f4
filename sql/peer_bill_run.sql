-- The pay-per-use part of the bill run (billing-rules §1, §4, §5, §7) as plain SQL,
-- for DuckDB: effective-dated prices, graduated tiers with split lines, line amounts
-- rounded half away from zero to 8 places, account-hour settlements truncated to
-- cents, invoices. It is the peer billrun is measured against, and an independent
-- check of its figures on lakes with pay-per-use usage only (no packages,
-- subscriptions, pools or arrears; every row valid and priced).
--
-- Exactness: quantities are integers of 1/3.6e19 of a unit (node-hours from
-- microseconds, GB-hours from 10-place GB) and prices integers of 1e-10, in HUGEINT,
-- so no value is rounded before the one rounding of each line amount.
-- Variables: lake, period ('YYYY-MM'), period_start, period_end (TIMESTAMPTZ).

CREATE OR REPLACE TEMP TABLE peer_usage AS
SELECT u.record_id, u.account_id, u.region, u.sku, u.nodes, u.unit_count, u.quantity, u.start_time, u.end_time,
       a.currency,
       epoch_us(u.end_time) - epoch_us(u.start_time) AS dur_us
FROM read_parquet(getvariable('lake') || '/usage/date=' || getvariable('period') || '-*/*/*.parquet') u
JOIN read_parquet(getvariable('lake') || '/accounts/accounts.parquet') a USING (account_id)
WHERE u.start_time >= getvariable('period_start') AND u.start_time < getvariable('period_end');

CREATE OR REPLACE TEMP TABLE peer_prices AS
SELECT sku, region, currency, pricing_unit, effective_from, effective_to,
       CAST(unit_price * 10000000000 AS HUGEINT) AS price_u,
       CAST(tier_start * 10000000000 AS HUGEINT) * 3600000000 AS tier_u
FROM read_parquet(getvariable('lake') || '/catalog/prices.parquet')
WHERE billing_mode = 'pay_per_use';

-- Each row's exact pricing quantity and its account's cumulative before it.
CREATE OR REPLACE TEMP TABLE peer_rated AS
WITH unit AS (
    SELECT DISTINCT sku, pricing_unit FROM peer_prices
),
q AS (
    SELECT u.*, CASE n.pricing_unit
            WHEN 'node-hour' THEN CAST(u.nodes AS HUGEINT) * u.unit_count * u.dur_us * 10000000000
            WHEN 'GB-hour' THEN CAST(u.quantity * 10000000000 AS HUGEINT) * u.dur_us
            ELSE CAST(u.quantity * 10000000000 AS HUGEINT) * 3600000000
        END AS q_u
    FROM peer_usage u JOIN unit n USING (sku)
)
SELECT *, coalesce(sum(q_u) OVER (PARTITION BY account_id, sku, region ORDER BY start_time, record_id
                                  ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS cum_before
FROM q;

-- One line per row and tier crossed.
CREATE OR REPLACE TEMP TABLE peer_lines AS
WITH tiers AS (
    SELECT r.record_id, r.account_id, r.sku, r.region, r.start_time, r.q_u, r.cum_before, p.price_u, p.tier_u,
           lead(p.tier_u) OVER (PARTITION BY r.record_id ORDER BY p.tier_u) AS tier_end_u
    FROM peer_rated r
    JOIN peer_prices p
      ON p.sku = r.sku AND p.region = r.region AND p.currency = r.currency
     AND p.effective_from <= r.start_time AND (p.effective_to IS NULL OR r.start_time < p.effective_to)
),
seg AS (
    SELECT *, greatest(CAST(0 AS HUGEINT),
                       least(cum_before + q_u, coalesce(tier_end_u, cum_before + q_u)) - greatest(cum_before, tier_u)) AS seg_u
    FROM tiers
)
SELECT account_id, record_id, sku, region, start_time, date_trunc('hour', start_time) AS hour_start,
       tier_u, seg_u, price_u,
       -- price (1e-10) × quantity (1/3.6e19) in units of 1e-8: ÷ 3.6e21, half away from zero.
       (price_u * seg_u + 1800000000000000000000) // 3600000000000000000000 AS amount_8
FROM seg
WHERE seg_u > 0;

CREATE OR REPLACE TEMP TABLE peer_settlements AS
SELECT account_id, hour_start, sum(amount_8) AS line_8, sum(amount_8) // 1000000 * 1000000 AS deduction_8
FROM peer_lines GROUP BY ALL;

CREATE OR REPLACE TEMP TABLE peer_invoices AS
SELECT a.account_id, a.currency,
       -- × 1e-8 as a decimal: DuckDB divides decimals in floating point, multiplies exactly.
       CAST(CAST(coalesce(sum(s.deduction_8), 0) AS DECIMAL(38, 0)) * 0.00000001 AS DECIMAL(38, 2)) AS usage_charges,
       CAST(CAST(coalesce(sum(s.line_8 - s.deduction_8), 0) AS DECIMAL(38, 0)) * 0.00000001 AS DECIMAL(38, 8)) AS truncated_amount
FROM read_parquet(getvariable('lake') || '/accounts/accounts.parquet') a
LEFT JOIN peer_settlements s USING (account_id)
GROUP BY ALL;

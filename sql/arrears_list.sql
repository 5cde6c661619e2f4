-- Accounts not active at the close of a period: what they owe, since when, and their
-- state (arrears = grace, frozen = retention, released).
SELECT i.billing_period, i.account_id, i.currency, i.status_at_close, i.arrears_amount,
       i.closing_balance, max(s.arrears_since) AS arrears_since
FROM read_parquet(getvariable('lake') || '/bills/invoices/*/*.parquet', hive_partitioning = true) i
LEFT JOIN read_parquet(getvariable('lake') || '/bills/account_status/*/*.parquet', hive_partitioning = true) s
       ON s.account_id = i.account_id AND s.billing_period = i.billing_period AND s.state <> 'active'
WHERE i.status_at_close <> 'active'
GROUP BY ALL
ORDER BY i.billing_period, i.arrears_amount DESC, i.account_id;

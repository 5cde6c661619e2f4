-- Top spenders of each period: the ten accounts with the largest total due.
SELECT billing_period, account_id, currency, total_due, usage_charges, purchase_charges,
       rank() OVER (PARTITION BY billing_period ORDER BY total_due DESC, account_id) AS rank
FROM read_parquet(getvariable('lake') || '/bills/invoices/*/*.parquet', hive_partitioning = true)
QUALIFY rank <= 10
ORDER BY billing_period, rank;

-- Invoice reconciliation: every invoice against its line items and settlements.
-- Returns one row per invoice whose figures do not tie out; an empty result is a
-- clean bill run. Parameter: the output lake root, as the DuckDB variable `lake`.
WITH lines AS (
    SELECT InvoiceId, sum(BilledCost) AS billed, count(*) AS n
    FROM read_parquet(getvariable('lake') || '/bills/line_items/*/*.parquet', hive_partitioning = true)
    GROUP BY InvoiceId
),
settled AS (
    SELECT account_id, billing_period, sum(deduction) AS deducted, sum(truncated_amount) AS truncated
    FROM read_parquet(getvariable('lake') || '/bills/settlements/*/*.parquet', hive_partitioning = true)
    GROUP BY account_id, billing_period
)
SELECT i.invoice_id, i.total_due, l.billed, i.line_count, l.n, i.usage_charges, s.deducted
FROM read_parquet(getvariable('lake') || '/bills/invoices/*/*.parquet', hive_partitioning = true) i
LEFT JOIN lines l ON l.InvoiceId = i.invoice_id
LEFT JOIN settled s ON s.account_id = i.account_id AND s.billing_period = i.billing_period
WHERE coalesce(l.billed, 0) <> i.total_due
   OR coalesce(l.n, 0) <> i.line_count
   OR coalesce(s.deducted, 0) <> i.usage_charges
   OR coalesce(s.truncated, 0) <> i.truncated_amount
   OR i.closing_balance <> i.opening_balance + i.payments - i.usage_charges
ORDER BY i.invoice_id;

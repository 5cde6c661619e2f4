-- FOCUS 1.2 rules checked on bills/line_items with DuckDB, where focus-validator 2.2.1
-- gets the rule wrong or does not really check it (docs/focus-conformance.md lists them).
-- Each query follows a line "-- check: <RULE-ID> | <the rule's text>" and returns one
-- row: the number of rows that break the rule (0 = met). tests/it/focus.rs runs them.
-- Views expected:  f   = read_parquet('<lake>/bills/line_items/billing_period=P/part-0.parquet', hive_partitioning=false)
--                  inv = read_parquet('<lake>/bills/invoices/billing_period=P/*.parquet',  hive_partitioning=false)
-- "ChargeClass is not 'Correction'" is written null-safe (IS DISTINCT FROM): billrun's ChargeClass is null on
-- every regular line, and the validator's "(ChargeClass IS NOT NULL AND ChargeClass <> 'Correction')" skips them.

-- ===== A. Replacements for validator defects (rules the validator gets wrong) ==========================

-- check: InvoiceId-C-004-C | real text: null only when the charge is on no invoice; every billrun line is on its account's invoice
SELECT count(*) AS violations FROM f LEFT JOIN inv ON inv.invoice_id = f.InvoiceId AND inv.account_id = f.BillingAccountId
WHERE f.InvoiceId IS NULL OR inv.invoice_id IS NULL;

-- check: InvoiceId-C-004-C/line_count | each invoice's line_count equals the number of FOCUS lines carrying its InvoiceId
SELECT count(*) AS violations FROM inv LEFT JOIN (SELECT InvoiceId, count(*) AS n FROM f GROUP BY 1) l ON l.InvoiceId = inv.invoice_id
WHERE coalesce(l.n, 0) <> inv.line_count;

-- check: CommitmentDiscountStatus-C-004-C | real text: MUST NOT be null when CommitmentDiscountId is not null and ChargeCategory is "Usage" (validator: condition inverted)
SELECT count(*) AS violations FROM f
WHERE CommitmentDiscountId IS NOT NULL AND ChargeCategory = 'Usage' AND CommitmentDiscountStatus IS NULL;

-- check: PricingCurrency* | CostAndUsage-D-046…056-C and the PricingCurrency* column rules: PricingCurrency* columns: MUST only with virtual currency AND public price list,
--        RECOMMENDED only with pricing/billing currency differences AND public price list; neither declared, so the columns MAY be absent.
--        (validator includes a rule when ANY of its criteria is declared.) If billrun ever adds these columns, their column rules apply again.
SELECT count(*) AS violations FROM (DESCRIBE SELECT * FROM f)
WHERE column_name IN ('PricingCurrency', 'PricingCurrencyContractedUnitPrice', 'PricingCurrencyEffectiveCost', 'PricingCurrencyListUnitPrice');

-- ===== B. Rules the validator reports as passed without really checking them =============================
-- B1. Allowed values (validator: an OR of per-value checks passes as soon as ONE row has ONE allowed value;
--     its CommitmentDiscountStatus list is even wrong: Active/Expired/Pending instead of Used/Unused).

-- check: CommitmentDiscountStatus-C-005-M | allowed values Used, Unused
SELECT count(*) AS violations FROM f WHERE CommitmentDiscountStatus IS NOT NULL AND CommitmentDiscountStatus NOT IN ('Used', 'Unused');

-- check: ChargeCategory-C-003-M | allowed values
SELECT count(*) AS violations FROM f WHERE ChargeCategory IS NULL OR ChargeCategory NOT IN ('Usage', 'Purchase', 'Tax', 'Credit', 'Adjustment');

-- check: ChargeClass-C-003-M | null or "Correction"
SELECT count(*) AS violations FROM f WHERE ChargeClass IS NOT NULL AND ChargeClass <> 'Correction';

-- check: ChargeFrequency-C-003-M | allowed values
SELECT count(*) AS violations FROM f WHERE ChargeFrequency IS NULL OR ChargeFrequency NOT IN ('One-Time', 'Recurring', 'Usage-Based');

-- check: PricingCategory-C-007-M | allowed values
SELECT count(*) AS violations FROM f WHERE PricingCategory IS NOT NULL AND PricingCategory NOT IN ('Standard', 'Dynamic', 'Committed', 'Other');

-- check: CommitmentDiscountCategory-C-005-M | allowed values
SELECT count(*) AS violations FROM f WHERE CommitmentDiscountCategory IS NOT NULL AND CommitmentDiscountCategory NOT IN ('Spend', 'Usage');

-- check: ServiceCategory-C-003-M | allowed values
SELECT count(*) AS violations FROM f WHERE ServiceCategory IS NULL OR ServiceCategory NOT IN ('AI and Machine Learning', 'Analytics',
  'Business Applications', 'Compute', 'Databases', 'Developer Tools', 'Multicloud', 'Identity', 'Integration', 'Internet of Things',
  'Management and Governance', 'Media', 'Migration', 'Mobile', 'Networking', 'Security', 'Storage', 'Web', 'Other');

-- check: ServiceSubcategory-C-003-M/C-004-M | the (ServiceCategory, ServiceSubcategory) pairs billrun emits, each from FOCUS 1.2's table
SELECT count(*) AS violations FROM f WHERE ServiceSubcategory IS NULL OR (ServiceCategory, ServiceSubcategory) NOT IN (
  ('AI and Machine Learning', 'AI Platforms'), ('Management and Governance', 'Observability'), ('Storage', 'Object Storage'),
  ('Storage', 'File Storage'), ('Storage', 'Block Storage'), ('Integration', 'Messaging'));

-- B2. "ChargeClass is not Correction" conditions (validator: null ChargeClass never matches, so these never ran).

-- check: SkuId-C-005-C | SkuId MUST NOT be null when ChargeCategory is Usage or Purchase and ChargeClass is not Correction
SELECT count(*) AS violations FROM f WHERE ChargeCategory IN ('Usage', 'Purchase') AND ChargeClass IS DISTINCT FROM 'Correction' AND SkuId IS NULL;

-- check: PricingQuantity-C-005-C | PricingQuantity MUST NOT be null when ChargeCategory is Usage or Purchase and ChargeClass is not Correction
SELECT count(*) AS violations FROM f WHERE ChargeCategory IN ('Usage', 'Purchase') AND ChargeClass IS DISTINCT FROM 'Correction' AND PricingQuantity IS NULL;

-- check: PricingCategory-C-004-C | PricingCategory MUST NOT be null when ChargeCategory is Usage or Purchase and ChargeClass is not Correction
SELECT count(*) AS violations FROM f WHERE ChargeCategory IN ('Usage', 'Purchase') AND ChargeClass IS DISTINCT FROM 'Correction' AND PricingCategory IS NULL;

-- check: CommitmentDiscountQuantity-C-005-C | MUST NOT be null when ChargeCategory is Usage or Purchase, CommitmentDiscountId is not null and ChargeClass is not Correction
SELECT count(*) AS violations FROM f WHERE ChargeCategory IN ('Usage', 'Purchase') AND CommitmentDiscountId IS NOT NULL
  AND ChargeClass IS DISTINCT FROM 'Correction' AND CommitmentDiscountQuantity IS NULL;

-- check: ConsumedQuantity-C-006-C | MUST NOT be null when ChargeCategory is Usage, CommitmentDiscountStatus is not Unused and ChargeClass is not Correction (validator: condition inverted AND null-unsafe)
SELECT count(*) AS violations FROM f WHERE ChargeCategory = 'Usage' AND CommitmentDiscountStatus IS DISTINCT FROM 'Unused'
  AND ChargeClass IS DISTINCT FROM 'Correction' AND ConsumedQuantity IS NULL;

-- check: ListCost-C-009-C/ListUnitPrice-C-010-C | ListUnitPrice x PricingQuantity matches ListCost, within the billing rules' rounding: a line's
--        amount is rounded to 8 places and PricingQuantity is shown to 10, a subscription's purchase to cents (see docs/focus-conformance.md)
SELECT count(*) AS violations FROM f WHERE ListUnitPrice IS NOT NULL AND PricingQuantity IS NOT NULL AND ChargeClass IS DISTINCT FROM 'Correction'
  AND abs(ListUnitPrice * PricingQuantity - ListCost) > CASE WHEN ChargeCategory = 'Purchase' AND x_BillingMode = 'yearly_monthly' THEN 0.005
                                                            ELSE 0.000000005 + ListUnitPrice * 0.00000000005 END;

-- ===== C. Real FOCUS 1.2 requirements the validator leaves to "dynamic" (skipped) checks =====================

-- check: ConsumedUnit-C-005-C | ConsumedUnit MUST be null when ConsumedQuantity is null, and not null otherwise
SELECT count(*) AS violations FROM f WHERE (ConsumedQuantity IS NULL) <> (ConsumedUnit IS NULL);

-- check: SkuPriceDetails-C-001-M | KeyValueFormat: a JSON object whose values are number/string/true/false/null, never object or array
SELECT count(*) AS violations FROM (
  SELECT SkuPriceDetails AS d FROM f WHERE SkuPriceDetails IS NOT NULL AND (NOT json_valid(SkuPriceDetails) OR json_type(SkuPriceDetails::JSON) <> 'OBJECT')
  UNION ALL
  SELECT d FROM (SELECT SkuPriceDetails AS d, unnest(json_keys(SkuPriceDetails::JSON)) AS k FROM f
                 WHERE SkuPriceDetails IS NOT NULL AND json_valid(SkuPriceDetails) AND json_type(SkuPriceDetails::JSON) = 'OBJECT')
  WHERE json_type(d::JSON, '$."' || k || '"') IN ('OBJECT', 'ARRAY'));

-- check: SkuPriceDetails-C-017-C/C-020-M | keys are FOCUS-defined (exact spelling) or start with x_
SELECT count(*) AS violations FROM (SELECT unnest(json_keys(SkuPriceDetails::JSON)) AS k FROM f
  WHERE SkuPriceDetails IS NOT NULL AND json_valid(SkuPriceDetails) AND json_type(SkuPriceDetails::JSON) = 'OBJECT')
WHERE NOT (starts_with(k, 'x_') OR k IN ('CoreCount', 'DiskMaxIops', 'DiskSpace', 'DiskType', 'GpuCount', 'InstanceType', 'InstanceSeries',
  'MemorySize', 'NetworkMaxIops', 'NetworkMaxThroughput', 'OperatingSystem', 'Redundancy', 'StorageClass'));

-- check: SkuPriceDetails-C-007-M | all charges with the same SkuPriceId share the same SkuPriceDetails
SELECT count(*) AS violations FROM (SELECT SkuPriceId FROM f WHERE SkuPriceId IS NOT NULL GROUP BY 1
  HAVING count(DISTINCT coalesce(SkuPriceDetails, '<null>')) > 1);

-- check: SkuMeter-C-006-O | SkuMeter SHOULD remain consistent for a given SkuId
SELECT count(*) AS violations FROM (SELECT SkuId FROM f WHERE SkuId IS NOT NULL GROUP BY 1 HAVING count(DISTINCT coalesce(SkuMeter, '<null>')) > 1);

-- check: SkuPriceId-C-008-M | one and only one parent SkuId per SkuPriceId
SELECT count(*) AS violations FROM (SELECT SkuPriceId FROM f WHERE SkuPriceId IS NOT NULL GROUP BY 1 HAVING count(DISTINCT SkuId) > 1);

-- check: CommitmentDiscountQuantity-C-007-C | MUST be null in all other cases (not Usage/Purchase, or no CommitmentDiscountId)
SELECT count(*) AS violations FROM f WHERE CommitmentDiscountQuantity IS NOT NULL AND (CommitmentDiscountId IS NULL OR ChargeCategory NOT IN ('Usage', 'Purchase'));

-- check: BilledCost-C-007-M | the sum of BilledCost for an InvoiceId matches the invoice's payable amount (total_due)
SELECT count(*) AS violations FROM inv LEFT JOIN (SELECT InvoiceId, sum(BilledCost) AS s FROM f GROUP BY 1) l ON l.InvoiceId = inv.invoice_id
WHERE l.s IS NULL OR l.s <> inv.total_due;

-- check: BillingCurrency-C-005-M | BillingCurrency matches the currency of the invoice
SELECT count(*) AS violations FROM f JOIN inv ON inv.invoice_id = f.InvoiceId WHERE f.BillingCurrency <> inv.currency;

-- check: CommitmentDiscountUnit-C-007-C | CommitmentDiscountUnit MUST remain consistent over time for a given CommitmentDiscountId
SELECT count(*) AS violations FROM (SELECT CommitmentDiscountId FROM f WHERE CommitmentDiscountUnit IS NOT NULL GROUP BY 1
  HAVING count(DISTINCT CommitmentDiscountUnit) > 1);

//! The FOCUS 1.2 cost and usage rows (`bills/line_items`): one row a line.

use super::*;
use crate::focus;
use crate::lake::inputs::UsageChunk;
use crate::model::{Module, PoolType, PricingUnit};
use crate::rules::records::*;
use arrow_array::RecordBatch;
use arrow_schema::{Schema, SchemaRef};
use rayon::prelude::*;

// ---------------------------------------------------------------- line items (FOCUS)

pub fn line_items_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        kn("BillingAccountId"),
        k("BillingAccountName"),
        kn("BillingAccountType"),
        kn("BillingCurrency"),
        f("BillingPeriodStart", ts_type(), false),
        f("BillingPeriodEnd", ts_type(), false),
        f("ChargePeriodStart", ts_type(), false),
        f("ChargePeriodEnd", ts_type(), false),
        kn("ChargeCategory"),
        k("ChargeClass"),
        k("ChargeDescription"),
        k("ChargeFrequency"),
        k("PricingCategory"),
        f("PricingQuantity", dec_type(), true),
        k("PricingUnit"),
        f("ConsumedQuantity", dec_type(), true),
        k("ConsumedUnit"),
        f("ListUnitPrice", dec_type(), true),
        f("ListCost", dec_type(), false),
        f("ContractedUnitPrice", dec_type(), true),
        f("ContractedCost", dec_type(), false),
        f("BilledCost", dec_type(), false),
        f("EffectiveCost", dec_type(), false),
        k("CommitmentDiscountId"),
        k("CommitmentDiscountName"),
        k("CommitmentDiscountType"),
        k("CommitmentDiscountCategory"),
        k("CommitmentDiscountStatus"),
        f("CommitmentDiscountQuantity", dec_type(), true),
        k("CommitmentDiscountUnit"),
        kn("InvoiceId"),
        kn("InvoiceIssuerName"),
        kn("ProviderName"),
        kn("PublisherName"),
        k("RegionId"),
        k("RegionName"),
        k("ResourceId"),
        k("ResourceName"),
        k("ResourceType"),
        k("ServiceCategory"),
        k("ServiceName"),
        k("ServiceSubcategory"),
        k("SkuId"),
        k("SkuMeter"),
        k("SkuPriceId"),
        k("SkuPriceDetails"),
        k("SubAccountId"),
        k("SubAccountName"),
        k("Tags"),
        s("x_UsageRecordId"),
        k("x_Module"),
        k("x_EnterpriseProject"),
        kn("x_BillingMode"),
        k("x_BillingItem"),
        k("x_PoolType"),
        k("x_PoolId"),
        f("x_TierStart", dec_type(), true),
        k("x_PricingQuantityExact"),
    ]))
}

/// Per-line derived values, computed once.
struct LineView<'a> {
    account: &'a Account,
    usage: Option<(&'a UsageChunk, usize)>,
    sku: Option<&'a str>,
    region: Option<&'a str>,
    module: Option<Module>,
    billing_mode: &'static str,
    commitment: Option<(&'a str, &'static str)>,
}

impl<'a> LineView<'a> {
    /// A string field of the line's usage row.
    fn usage_str(&self, get: fn(&'a UsageChunk, usize) -> Option<&'a str>) -> Option<&'a str> {
        self.usage.and_then(|(c, r)| get(c, r))
    }
}

/// A batch's lines grouped by what some of their columns depend on alone (their
/// kind, price row, commitment, …; their account): such a column is built from a
/// line of each group, as keys into its groups' values, all sharing one buffer of
/// keys. The file holds plain strings.
struct Groups {
    keys: arrow_buffer::ScalarBuffer<u32>,
    /// A line of each group, in order of first appearance.
    first: Vec<usize>,
}

impl Groups {
    fn of<K: std::hash::Hash + Eq + Copy>(lines: usize, key: impl Fn(usize) -> K) -> Groups {
        let mut at: rustc_hash::FxHashMap<K, u32> = rustc_hash::FxHashMap::default();
        let mut first = Vec::new();
        let mut last: Option<(K, u32)> = None;
        let keys: Vec<u32> = (0..lines)
            .map(|i| {
                let k = key(i);
                match last {
                    Some((lk, g)) if lk == k => g,
                    _ => {
                        let next = first.len() as u32;
                        let g = *at.entry(k).or_insert_with(|| {
                            first.push(i);
                            next
                        });
                        last = Some((k, g));
                        g
                    }
                }
            })
            .collect();
        Groups { keys: keys.into(), first }
    }

    /// The column of `value`, which must depend on what the lines are grouped by
    /// alone. A group whose value is none is null in every line.
    fn column<'a>(&self, value: impl Fn(usize) -> Option<&'a str>) -> ArrayRef {
        self.keyed(self.first.iter().map(|&i| value(i)).collect())
    }

    /// The column of a text `write` composes for a line (`false`, before writing
    /// anything: none, a null), which must depend on what the lines are grouped by
    /// alone: composed once a group, not formatted a line, each group's text written
    /// into the one buffer of an Arrow string builder.
    fn texts(&self, write: impl Fn(&mut StringBuilder, usize) -> bool) -> ArrayRef {
        let mut texts = StringBuilder::new();
        for &i in &self.first {
            if write(&mut texts, i) {
                texts.append_value("");
            } else {
                texts.append_null();
            }
        }
        self.keyed_values(texts.finish())
    }

    /// The lines' keys into the groups' `values`.
    fn keyed(&self, values: Vec<Option<&str>>) -> ArrayRef {
        self.keyed_values(StringArray::from(values))
    }

    /// The lines' keys into the groups' `values` (an array of one value a group).
    fn keyed_values(&self, values: StringArray) -> ArrayRef {
        use arrow_array::Array;
        let nulls = (values.null_count() > 0).then(|| {
            let valid = arrow_buffer::BooleanBuffer::collect_bool(self.keys.len(), |i| values.is_valid(self.keys[i] as usize));
            arrow_buffer::NullBuffer::new(valid)
        });
        let keys = UInt32Array::new(self.keys.clone(), nulls);
        Arc::new(DictionaryArray::<UInt32Type>::try_new(keys, Arc::new(values)).expect("every key indexes a value"))
    }
}

/// What the columns [`Groups`] builds for a line depend on.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct LineClass {
    kind: LineKind,
    price_row: Option<u32>,
    commitment: Option<Commitment>,
    unit: Option<PricingUnit>,
    module: Option<Module>,
    /// By address: the catalog's, an inventory entry's or a usage column's.
    sku: Option<(usize, usize)>,
    region: Option<(usize, usize)>,
}

/// Builds columns in parallel, in order: each expression is a column.
macro_rules! par_columns {
    ($($column:expr),* $(,)?) => {{
        let builders: Vec<Box<dyn Fn() -> ArrayRef + Sync + '_>> = vec![$(Box::new(|| $column)),*];
        builders.par_iter().map(|build| build()).collect::<Vec<ArrayRef>>()
    }};
}

/// Line items per batch written: an hour's lines (126,000 in an hour of a 94M-row
/// month) go to the table a slice at a time, so the Arrow columns and the encoders'
/// input in hand do not grow with the month. The file's bytes do not depend on the
/// slices: a commit writes each merged hour whole and publishes the same bytes
/// (`tests/it/shards.rs`).
pub const LINE_ITEM_BATCH_ROWS: usize = 16 * 1024;

/// `lines` in the slices of [`LINE_ITEM_BATCH_ROWS`] they are written in (one empty
/// slice for none, so that an hour without lines still writes its empty batch).
pub fn line_item_slices(lines: &[Line]) -> impl Iterator<Item = (usize, &[Line])> {
    let empty = lines.is_empty().then_some((0, lines));
    lines.chunks(LINE_ITEM_BATCH_ROWS).enumerate().map(|(i, part)| (i * LINE_ITEM_BATCH_ROWS, part)).chain(empty)
}

pub fn line_items_batch(lines: &[Line], chunks: &[UsageChunk], n: &Names<'_>) -> RecordBatch {
    let views: Vec<LineView<'_>> = lines.par_iter().map(|l| line_view(l, chunks, n)).collect();
    let address = |s: Option<&str>| s.map(|s| (s.as_ptr() as usize, s.len()));
    let class = Groups::of(lines.len(), |i| {
        let (l, v) = (&lines[i], &views[i]);
        LineClass {
            kind: l.kind,
            price_row: l.price_row,
            commitment: l.commitment,
            unit: l.unit,
            module: v.module,
            sku: address(v.sku),
            region: address(v.region),
        }
    });
    let account = Groups::of(lines.len(), |i| lines[i].account);
    let shared = Shared::of(lines, &views, &class);
    let columns = columns(lines, &views, &class, &account, shared, n);
    RecordBatch::try_new(line_items_schema(), columns).expect("line item columns match the schema")
}

/// The columns FOCUS repeats (list and contracted figures, the commitment's id and
/// name, the provider, publisher and issuer, the region's id and name, the project
/// as sub account), each built once; and those most batches have equal to another
/// (consumed and pricing quantities and units, effective and billed cost without
/// commitments or purchases), then shared too. The sink encodes a shared column once.
struct Shared {
    qty: Vec<Dec>,
    list_unit_price: ArrayRef,
    list_cost: ArrayRef,
    commitment_id: ArrayRef,
    provider: ArrayRef,
    region: ArrayRef,
    project: ArrayRef,
    pricing_quantity: ArrayRef,
    pricing_unit: ArrayRef,
    billed: ArrayRef,
    consumed_quantity: ArrayRef,
    consumed_unit: ArrayRef,
    effective: ArrayRef,
}

impl Shared {
    fn of(lines: &[Line], views: &[LineView<'_>], class: &Groups) -> Shared {
        let is_usage = |l: &Line| focus::consumes(l.kind);
        let constant = |v: Option<&str>| col_keyed(lines.iter().map(|_| v));
        let qty: Vec<Dec> = lines.iter().map(|l| l.quantity.to_dec()).collect();
        // Columns that are the same as others in most batches (no commitment, no
        // purchase) are then shared too; the sink encodes a column by itself from the
        // batch on where it differs.
        let same_quantity = lines.iter().all(|l| is_usage(l) || l.kind == LineKind::Adjustment);
        let same_unit = lines.iter().all(|l| is_usage(l) || l.unit.is_none());
        let same_cost = lines.iter().all(|l| l.effective == l.billed);
        let unless = |same: bool, build: &dyn Fn() -> ArrayRef| if same { arrow_array::new_null_array(&DataType::Null, 0) } else { build() };
        // Columns FOCUS repeats are built once and shared (the sink then encodes them once).
        let [list_unit_price, list_cost, commitment_id, provider, region, project, pricing_quantity, pricing_unit, billed, consumed_quantity, consumed_unit, effective]: [ArrayRef; 12] = par_columns![
            col_dec(lines.iter().map(|l| l.price_row.map(|_| l.list_unit_price))),
            col_dec(lines.iter().map(|l| Some(l.list_cost))),
            class.column(|i| views[i].commitment.map(|c| c.0)),
            constant(Some(PROVIDER)),
            class.column(|i| views[i].region),
            col_keyed(views.iter().map(|v| v.usage_str(|c, r| c.enterprise_project.get(r)))),
            col_dec(lines.iter().zip(&qty).map(|(l, q)| (l.kind != LineKind::Adjustment).then_some(*q))),
            class.column(|i| lines[i].unit.map(focus::unit_name)),
            col_dec(lines.iter().map(|l| Some(l.billed))),
            unless(same_quantity, &|| col_dec(lines.iter().zip(&qty).map(|(l, q)| is_usage(l).then_some(*q)))),
            unless(same_unit, &|| class.column(|i| if focus::consumes(lines[i].kind) { lines[i].unit.map(focus::unit_name) } else { None })),
            unless(same_cost, &|| col_dec(lines.iter().map(|l| Some(l.effective)))),
        ]
        .try_into()
        .expect("twelve columns");
        let shared = |same: bool, other: &ArrayRef, own: ArrayRef| if same { other.clone() } else { own };
        let consumed_quantity = shared(same_quantity, &pricing_quantity, consumed_quantity);
        let consumed_unit = shared(same_unit, &pricing_unit, consumed_unit);
        let effective = shared(same_cost, &billed, effective);
        Shared {
            qty,
            list_unit_price,
            list_cost,
            commitment_id,
            provider,
            region,
            project,
            pricing_quantity,
            pricing_unit,
            billed,
            consumed_quantity,
            consumed_unit,
            effective,
        }
    }
}

/// Every column of the batch, in the schema's order.
fn columns(lines: &[Line], views: &[LineView<'_>], class: &Groups, account: &Groups, shared: Shared, n: &Names<'_>) -> Vec<ArrayRef> {
    let Shared {
        qty,
        list_unit_price,
        list_cost,
        commitment_id,
        provider,
        region,
        project,
        pricing_quantity,
        pricing_unit,
        billed,
        consumed_quantity,
        consumed_unit,
        effective,
    } = shared;
    let (ps, pe) = (n.period.start(), n.period.end());
    let constant = |v: Option<&str>| col_keyed(lines.iter().map(|_| v));
    par_columns![
        account.column(|i| Some(views[i].account.account_id.as_str())),
        account.column(|i| Some(views[i].account.account_name.as_str())),
        constant(Some("Billing Account")),
        account.column(|i| Some(views[i].account.currency.as_str())),
        col_ts(lines.iter().map(|_| Some(ps))),
        col_ts(lines.iter().map(|_| Some(pe))),
        col_ts(lines.iter().map(|l| Some(l.charge_start))),
        col_ts(lines.iter().map(|l| Some(l.charge_end))),
        class.column(|i| Some(focus::charge_category(lines[i].kind))),
        constant(None),
        // A description depends on the line's kind, SKU, price row and commitment.
        class.texts(|b, i| {
            describe(b, &lines[i], &views[i], n);
            true
        }),
        class.column(|i| Some(focus::charge_frequency(lines[i].kind))),
        class.column(|i| focus::pricing_category(lines[i].kind)),
        pricing_quantity.clone(),
        pricing_unit.clone(),
        consumed_quantity.clone(),
        consumed_unit.clone(),
        list_unit_price.clone(),
        list_cost.clone(),
        list_unit_price.clone(),
        list_cost.clone(),
        billed.clone(),
        effective.clone(),
        commitment_id.clone(),
        commitment_id.clone(),
        class.column(|i| views[i].commitment.map(|c| c.1)),
        class.column(|i| views[i].commitment.map(|_| focus::COMMITMENT_CATEGORY)),
        class.column(|i| focus::commitment_status(lines[i].kind, lines[i].commitment)),
        // The line's own quantity, already a decimal, but on a purchase.
        col_dec(
            lines
                .iter()
                .zip(&qty)
                .map(|(l, q)| { focus::commitment_quantity(l, n.subs).map(|(c, _)| if l.kind == LineKind::Purchase { c.to_dec() } else { *q }) })
        ),
        class.column(|i| focus::commitment_quantity(&lines[i], n.subs).map(|(_, u)| focus::unit_name(u))),
        account.column(|i| Some(n.invoice_id(lines[i].account))),
        provider.clone(),
        provider.clone(),
        provider.clone(),
        region.clone(),
        region.clone(),
        col_rows(lines.iter().zip(views).map(|(l, v)| {
            v.usage_str(|c, r| c.resource_id.get(r)).or_else(|| match l.commitment {
                Some(Commitment::Subscription(i)) => Some(n.subs.get(i).resource_id.as_str()),
                _ => None,
            })
        })),
        col_rows(views.iter().map(|v| v.usage_str(|c, r| c.resource_name.get(r)))),
        class.column(|i| focus::line_resource_type(views[i].module, lines[i].commitment)),
        class.column(|i| Some(focus::service(views[i].module).1)),
        class.column(|i| Some(focus::service(views[i].module).0)),
        class.column(|i| Some(focus::service(views[i].module).2)),
        class.column(|i| views[i].sku),
        class.column(|i| views[i].sku.and_then(|s| focus::sku_meter(n.catalog, s))),
        class.column(|i| lines[i].price_row.map(|r| n.ids.price[r as usize].as_str())),
        class.column(|i| lines[i].price_row.map(|r| n.ids.price_details[r as usize].as_str())),
        project.clone(),
        project.clone(),
        col_keyed(views.iter().map(|v| v.usage_str(|c, r| c.tags.get(r)))),
        col_str(views.iter().map(|v| v.usage_str(|c, r| c.record_id.get(r)))),
        class.column(|i| views[i].module.map(Module::as_str)),
        project.clone(),
        class.column(|i| Some(views[i].billing_mode)),
        class.column(|i| focus::priced_billing_item(&lines[i], n.catalog)),
        // The checks admit only the two codes: their static text is the same text.
        col_keyed(views.iter().map(|v| v.usage_str(|c, r| c.pool_type.get(r)).map(|s| PoolType::parse(s).map_or(s, |p| p.as_str())))),
        col_keyed(views.iter().map(|v| v.usage_str(|c, r| c.pool_id.get(r)))),
        col_dec(lines.iter().map(|l| { l.price_row.filter(|_| matches!(l.kind, LineKind::Standard)).map(|r| n.catalog.row(r).tier_start) })),
        // A quantity's text depends on the quantity alone.
        Groups::of(lines.len(), |i| (lines[i].kind != LineKind::Adjustment).then_some(lines[i].quantity.0)).texts(|b, i| {
            let l = &lines[i];
            if l.kind == LineKind::Adjustment {
                return false;
            }
            exact_quantity(b, l.quantity, qty[i]);
            true
        }),
    ]
}

/// What a line's columns need of its usage row, commitment and account, found once:
/// its SKU and region (the price row's own strings when it has one, else the usage
/// row's, else the commitment's), its module, billing mode and commitment.
fn line_view<'a>(l: &Line, chunks: &'a [UsageChunk], n: &'a Names<'a>) -> LineView<'a> {
    let usage = l.usage.map(|loc| (&chunks[loc.chunk as usize], loc.row as usize));
    let (mut sku, mut region, mut module) = (None, None, None);
    if let Some((c, r)) = usage {
        // The price row's own strings when there is one (the same text): they
        // live as long as the catalog, which keyed columns need.
        let row = l.price_row.map(|p| n.catalog.row(p));
        sku = row.map(|p| p.sku.as_str()).or_else(|| c.sku.get(r));
        region = row.map(|p| p.region.as_str()).or_else(|| c.region.get(r));
        module = l.module;
    }
    let commitment = l.commitment.map(|c| match c {
        Commitment::Package(i) => {
            let p = &n.packages[i as usize];
            sku = sku.or(Some(p.sku.as_str()));
            region = region.or(Some(p.region.as_str()));
            (p.package_id.as_str(), focus::commitment_type(c))
        }
        Commitment::Subscription(i) => {
            let s = n.subs.get(i);
            sku = sku.or(Some(s.sku.as_str()));
            region = region.or(Some(s.region.as_str()));
            (s.subscription_id.as_str(), focus::commitment_type(c))
        }
    });
    let billing_mode = focus::billing_mode(l.kind, l.commitment);
    LineView { account: n.account(l.account), usage, sku, region, module, billing_mode, commitment }
}

/// The exact pricing quantity as a fraction `n/3.6e19` when it does not terminate in
/// 10 places, else the decimal.
fn exact_quantity(b: &mut impl std::fmt::Write, q: crate::decimal::Qty, rounded: Dec) {
    let _ = if crate::decimal::Qty::from_dec(rounded) == Some(q) { write!(b, "{rounded}") } else { write!(b, "{}/{}", q.0, crate::decimal::QTY_PER_UNIT) };
}

/// Writes the line's description.
fn describe(b: &mut impl std::fmt::Write, l: &Line, v: &LineView<'_>, n: &Names<'_>) {
    let sku = v.sku.unwrap_or("");
    let _ = match l.kind {
        LineKind::Standard => {
            let tier = l.price_row.map(|r| n.catalog.row(r).tier_start).unwrap_or_default();
            write!(b, "{sku} pay-per-use, tier from {tier}")
        }
        LineKind::PoolJob => write!(b, "{sku} job on a pay-per-use dedicated pool (the pool is billed)"),
        LineKind::Committed => match &v.commitment {
            Some((id, kind)) => write!(b, "{sku} covered by {kind} {id}"),
            None => write!(b, "{sku} covered"),
        },
        LineKind::Unused => match &v.commitment {
            Some((id, kind)) => write!(b, "unused {kind} {id}"),
            None => b.write_str("unused commitment"),
        },
        LineKind::Purchase => match &v.commitment {
            Some((id, kind)) => write!(b, "purchase of {kind} {id} ({sku})"),
            None => b.write_str("purchase"),
        },
        LineKind::Adjustment => b.write_str("truncation of the hourly settlement to cents"),
    };
}

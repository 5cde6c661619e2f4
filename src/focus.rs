//! How a billing record becomes a FOCUS row: every decision of the mapping, in one
//! place, for the line-item writer (`lake::outputs::line_items`) and cost management
//! (`cost`) alike. Pure: records and the catalog in, FOCUS values out.

#![deny(clippy::float_arithmetic)]

use crate::decimal::Qty;
use crate::model::{BillingItem, Module, PricingUnit, Service, PLATFORM_SERVICE};
use crate::rules::pricing::Catalog;
use crate::rules::purchases;
use crate::rules::records::{Commitment, Line, LineKind};
use crate::rules::subscriptions::Subscriptions;

/// `ChargeCategory`.
pub fn charge_category(kind: LineKind) -> &'static str {
    match kind {
        LineKind::Purchase => "Purchase",
        LineKind::Adjustment => "Adjustment",
        _ => "Usage",
    }
}

/// `ChargeFrequency`: purchases once, unused commitment every period, usage as used.
pub fn charge_frequency(kind: LineKind) -> &'static str {
    match kind {
        LineKind::Purchase => "One-Time",
        LineKind::Unused => "Recurring",
        _ => "Usage-Based",
    }
}

/// `PricingCategory`: none on an adjustment, which has no price.
pub fn pricing_category(kind: LineKind) -> Option<&'static str> {
    match kind {
        LineKind::Standard | LineKind::PoolJob | LineKind::Purchase => Some("Standard"),
        LineKind::Committed | LineKind::Unused => Some("Committed"),
        LineKind::Adjustment => None,
    }
}

/// `x_BillingMode`: how the line is paid for.
pub fn billing_mode(kind: LineKind, commitment: Option<Commitment>) -> &'static str {
    match (kind, commitment) {
        (LineKind::Adjustment, _) => "pay_per_use",
        (LineKind::PoolJob, _) => "dedicated_pool",
        (_, Some(Commitment::Package(_))) => "package",
        (_, Some(Commitment::Subscription(_))) => "yearly_monthly",
        _ => "pay_per_use",
    }
}

/// `CommitmentDiscountType` of a commitment.
pub fn commitment_type(c: Commitment) -> &'static str {
    match c {
        Commitment::Package(_) => "Resource Package",
        Commitment::Subscription(_) => "Yearly/Monthly",
    }
}

/// `CommitmentDiscountCategory`: packages and subscriptions commit to usage.
pub const COMMITMENT_CATEGORY: &str = "Usage";

/// `CommitmentDiscountStatus`: a commitment's usage is `Used`, its lapse `Unused`.
pub fn commitment_status(kind: LineKind, commitment: Option<Commitment>) -> Option<&'static str> {
    match (kind, commitment) {
        (LineKind::Committed, Some(_)) => Some("Used"),
        (LineKind::Unused, Some(_)) => Some("Unused"),
        _ => None,
    }
}

/// `CommitmentDiscountQuantity` and `CommitmentDiscountUnit`, on a commitment's lines
/// only, in the unit its usage is counted in, which FOCUS keeps the same for a
/// commitment: the used or unused part's own quantity; on the purchase, what it
/// bought: a package's quota (the line's own quantity), a subscription's node-hours
/// over its whole term ([`purchases::term_node_hours`], which the purchase rule has
/// checked fits).
pub fn commitment_quantity(l: &Line, subs: &Subscriptions) -> Option<(Qty, PricingUnit)> {
    match (l.kind, l.commitment?) {
        (LineKind::Purchase, Commitment::Subscription(i)) => Some((purchases::term_node_hours(subs.get(i))?, PricingUnit::NodeHour)),
        (LineKind::Committed | LineKind::Unused | LineKind::Purchase, _) => Some((l.quantity, l.unit?)),
        _ => None,
    }
}

/// `ConsumedQuantity` and `ConsumedUnit` are set on lines of usage only: a purchase is
/// priced by a quantity but consumes none, the unused part of a commitment is what was
/// not consumed, and an adjustment has no quantity.
pub fn consumes(kind: LineKind) -> bool {
    !matches!(kind, LineKind::Purchase | LineKind::Unused | LineKind::Adjustment)
}

/// `ResourceType` of a line: its module's resources' type; a subscription's lines
/// without usage (its purchase and its unused time) name the subscribed resource,
/// whose module the subscription does not record.
pub fn line_resource_type(module: Option<Module>, commitment: Option<Commitment>) -> Option<&'static str> {
    match (module, commitment) {
        (Some(m), _) => Some(resource_type(m)),
        (None, Some(Commitment::Subscription(_))) => Some(SUBSCRIBED_RESOURCE),
        (None, _) => None,
    }
}

/// The `ResourceType` of a subscribed pool, Lite Cluster or Lite Server on the lines
/// that carry no usage of it.
pub const SUBSCRIBED_RESOURCE: &str = "Yearly/Monthly Resource";

/// `ResourceType` of a module's resources.
pub fn resource_type(m: Module) -> &'static str {
    match m {
        Module::Notebook => "Notebook Instance",
        Module::Training => "Training Job",
        Module::InferenceRealtime => "Real-Time Service",
        Module::InferenceBatch => "Batch Service",
        Module::InferenceEdge => "Edge Service",
        Module::Workflow => "Workflow",
        Module::ExemlTraining => "ExeML Training Job",
        Module::ExemlDeployment => "ExeML Deployment",
        Module::DedicatedPool => "Dedicated Resource Pool",
        Module::LiteCluster => "Lite Cluster",
        Module::LiteServer => "Lite Server",
        Module::Maas => "MaaS Service",
        Module::Obs => "OBS Bucket",
        Module::Sfs => "SFS File System",
        Module::Evs => "EVS Disk",
        Module::Smn => "SMN Topic",
        Module::Lts => "LTS Log Group",
    }
}

/// `ServiceName`, `ServiceCategory`, `ServiceSubcategory`: a usage line's module's
/// service; purchases and adjustments are the platform's.
pub fn service(module: Option<Module>) -> Service {
    module.map(Module::service).unwrap_or(PLATFORM_SERVICE)
}

/// `PricingUnit` (and the consumed and commitment units) as FOCUS shows it.
pub fn unit_name(u: PricingUnit) -> &'static str {
    match u {
        PricingUnit::NodeHour => "Node-Hours",
        PricingUnit::GbHour => "GB-Hours",
        PricingUnit::Count => "Requests",
        PricingUnit::Gb => "GB",
        PricingUnit::NodeMonth => "Node-Months",
        PricingUnit::NodeYear => "Node-Years",
    }
}

/// `SkuPriceId`: a stable id of a catalog price: SKU, region, currency, mode, tier,
/// effective from.
pub fn sku_price_id(c: &Catalog, row: u32) -> String {
    let p = c.row(row);
    format!("{}:{}:{}:{}:{}:{}", p.sku, p.region, p.currency, p.billing_mode, p.tier_start, crate::time::format_ts(p.effective_from))
}

/// `SkuPriceDetails`: what a price is for, apart from its amount, currency and dates
/// (which FOCUS leaves out), as FOCUS's key-value object: the billing item, the
/// billing mode, the pricing unit and the tier's start (a cumulative quantity, not a
/// per-unit figure, so a string). Every key is the provider's own (`x_`): the
/// catalog records none of FOCUS's defined properties (core or GPU counts, disk
/// type, storage class) of a SKU.
pub fn sku_price_details(c: &Catalog, row: u32) -> String {
    let p = c.row(row);
    let details = serde_json::json!({
        "x_BillingItem": p.billing_item.as_str(),
        "x_BillingMode": p.billing_mode.as_str(),
        "x_PricingUnit": p.pricing_unit.as_str(),
        "x_TierStart": p.tier_start.to_string(),
    });
    details.to_string()
}

/// `SkuMeter`: what a SKU measures, from the billing item the catalog bills it as
/// (the same for every line of the SKU); the notification SKUs each meter their
/// channel. A SKU the catalog does not price has none.
pub fn sku_meter(c: &Catalog, sku: &str) -> Option<&'static str> {
    Some(match c.billing_item_of(sku)? {
        BillingItem::Compute => "Compute Usage",
        BillingItem::ObjectStorage => "Object Storage Usage",
        BillingItem::FileStorage => "File Storage Usage",
        BillingItem::BlockStorage => "Block Volume Usage",
        BillingItem::Logs => "Log Ingestion",
        BillingItem::Notification => match sku.rsplit('.').next() {
            Some("sms") => "SMS Notifications",
            Some("email") => "Email Notifications",
            Some("http") => "HTTP Notifications",
            Some("traffic") => "Notification Data Transfer",
            _ => "Notifications",
        },
    })
}

/// `x_BillingItem`: the catalog's billing item of the line's price. Lines without a
/// price (pool jobs, unused commitment, adjustments) have none in the line items.
pub fn priced_billing_item<'c>(l: &Line, catalog: &'c Catalog) -> Option<&'c str> {
    l.price_row.map(|r| catalog.row(r).billing_item.as_str())
}

/// The billing item cost composition groups a line under: its price's
/// ([`priced_billing_item`]); without a price, the item its module bills as.
pub fn billing_item<'c>(l: &Line, module: Option<Module>, catalog: &'c Catalog) -> &'c str {
    priced_billing_item(l, catalog).unwrap_or(match module {
        Some(Module::Obs) => "object_storage",
        Some(Module::Sfs) => "file_storage",
        Some(Module::Evs) => "block_storage",
        Some(Module::Smn) => "notification",
        Some(Module::Lts) => "logs",
        _ => "compute",
    })
}

/// The composition the platform's documentation names for a line (billing-rules §1):
/// notebook = compute + EVS; ExeML = training + deployment + notification.
pub fn product(module: Option<Module>, kind: LineKind) -> &'static str {
    match (module, kind) {
        (_, LineKind::Purchase) => "purchases",
        (_, LineKind::Adjustment) => "settlement",
        (Some(Module::Notebook | Module::Evs), _) => "notebook",
        (Some(Module::ExemlTraining | Module::ExemlDeployment | Module::Smn), _) => "exeml",
        (Some(m), _) => m.product(),
        (None, _) => "commitments",
    }
}

/// The `module` key of cost composition: the usage line's module; a line without one
/// is a purchase, a settlement adjustment or a commitment's unused part.
pub fn module_key(module: Option<Module>, kind: LineKind) -> &'static str {
    match (module, kind) {
        (Some(m), _) => m.as_str(),
        (None, LineKind::Purchase) => "purchase",
        (None, LineKind::Adjustment) => "settlement",
        (None, _) => "commitment",
    }
}

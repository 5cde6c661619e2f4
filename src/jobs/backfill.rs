//! Planning a range of closes. A period's close feeds the next period's opening, so
//! re-closing a period whose successors are already closed would leave them built on
//! a state that no longer exists: the plan either includes them (cascade) or refuses,
//! naming them.

use super::close::CloseJob;
use super::JobError;
use crate::lake::store::Lake;
use crate::time::Period;

/// The periods with a closed state on the output lake, in order.
pub fn closed_periods(lake: &Lake) -> Result<Vec<Period>, JobError> {
    let mut out: Vec<Period> =
        lake.list("state/")?.into_iter().filter_map(|l| Period::parse(l.path.strip_prefix("state/billing_period=")?.get(..7)?)).collect();
    out.sort();
    out.dedup();
    Ok(out)
}

/// The closes to run for `[from, to]`: with `cascade`, extended to the last closed
/// period after `to`; without it, refused when any period after `to` is closed.
pub fn plan(template: &CloseJob, from: Period, to: Period, cascade: bool) -> Result<Vec<CloseJob>, JobError> {
    // A local output lake that does not exist yet has no closed periods; planning
    // creates nothing.
    let closed = match Lake::open_with(&template.output, false, template.store) {
        Ok(output) => closed_periods(&output)?,
        Err(crate::lake::store::LakeError::Url { .. }) if !template.output.contains("://") || template.output.starts_with("file://") => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    let later: Vec<Period> = closed.into_iter().filter(|p| *p > to).collect();
    let to = match (later.last(), cascade) {
        (None, _) => to,
        (Some(last), true) => *last,
        (Some(_), false) => {
            let names: Vec<String> = later.iter().map(Period::to_string).collect();
            return Err(JobError::Plan(format!(
                "periods after {to} are already closed on {}: {}. Re-closing {from}..{to} alone would leave them \
                 opening from a state that no longer exists; add --cascade to re-close them in order too",
                template.output,
                names.join(", ")
            )));
        }
    };
    Ok(from.range_to(to).into_iter().map(|period| CloseJob { period, ..template.clone() }).collect())
}

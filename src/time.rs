//! Instants, clock hours and billing periods, all UTC.
//!
//! An instant is an `i64` count of microseconds since the Unix epoch, the unit of the
//! contract's `TIMESTAMP(MICROS, UTC)` columns. Nothing here reads a clock: the
//! period, the hour and "as of" always come in from the caller.

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Timelike, Utc};
use std::fmt;

pub type Micros = i64;

pub const SECOND: Micros = 1_000_000;
pub const HOUR: Micros = 3_600 * SECOND;
pub const DAY: Micros = 24 * HOUR;

/// The start of the clock hour that contains `t`.
pub fn hour_floor(t: Micros) -> Micros {
    t.div_euclid(HOUR) * HOUR
}

pub fn format_ts(t: Micros) -> String {
    match DateTime::<Utc>::from_timestamp_micros(t) {
        Some(d) => d.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string(),
        None => format!("{t}µs"),
    }
}

/// `date=YYYY-MM-DD/hour=HH` of the hour containing `t`.
pub fn partition_of(t: Micros) -> Option<(String, u32)> {
    let d = DateTime::<Utc>::from_timestamp_micros(t)?;
    Some((d.format("%Y-%m-%d").to_string(), d.hour()))
}

/// A billing period: a calendar month.
#[derive(Copy, Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Period {
    pub year: i32,
    pub month: u32,
}

impl Period {
    /// Parses `YYYY-MM`.
    pub fn parse(s: &str) -> Option<Period> {
        let (y, m) = s.split_once('-')?;
        if y.len() != 4 || m.len() != 2 {
            return None;
        }
        let year: i32 = y.parse().ok()?;
        let month: u32 = m.parse().ok()?;
        if !(1..=12).contains(&month) || !(1970..=9998).contains(&year) {
            return None;
        }
        Some(Period { year, month })
    }

    pub fn containing(t: Micros) -> Option<Period> {
        let d = DateTime::<Utc>::from_timestamp_micros(t)?;
        Some(Period { year: d.year(), month: d.month() })
    }

    /// The period's first instant. Checked for every usage row, so worked out by
    /// integer arithmetic (the calendar's day count) rather than through a date type.
    pub fn start(self) -> Micros {
        if (1..=9999).contains(&self.year) && (1..=12).contains(&self.month) {
            return days_from_civil(self.year as i64, self.month as i64, 1) * DAY;
        }
        self.start_reference()
    }

    fn start_reference(self) -> Micros {
        Utc.with_ymd_and_hms(self.year, self.month, 1, 0, 0, 0).single().map(|d| d.timestamp_micros()).unwrap_or(i64::MAX)
    }

    pub fn end(self) -> Micros {
        self.next().start()
    }

    pub fn next(self) -> Period {
        if self.month == 12 {
            Period { year: self.year + 1, month: 1 }
        } else {
            Period { year: self.year, month: self.month + 1 }
        }
    }

    pub fn prev(self) -> Period {
        if self.month == 1 {
            Period { year: self.year - 1, month: 12 }
        } else {
            Period { year: self.year, month: self.month - 1 }
        }
    }

    pub fn contains(self, t: Micros) -> bool {
        self.start() <= t && t < self.end()
    }

    /// `YYYYMM`, as used in invoice ids.
    pub fn compact(self) -> String {
        format!("{:04}{:02}", self.year, self.month)
    }

    /// The days of the period as `YYYY-MM-DD`, in order.
    pub fn days(self) -> Vec<String> {
        let mut out = Vec::new();
        let mut d = NaiveDate::from_ymd_opt(self.year, self.month, 1);
        while let Some(day) = d {
            if day.month() != self.month {
                break;
            }
            out.push(day.format("%Y-%m-%d").to_string());
            d = day.succ_opt();
        }
        out
    }

    /// Number of clock hours in the period.
    pub fn hours(self) -> i64 {
        (self.end() - self.start()) / HOUR
    }

    /// Periods from `self` to `to`, inclusive.
    pub fn range_to(self, to: Period) -> Vec<Period> {
        let mut out = Vec::new();
        let mut p = self;
        while p <= to {
            out.push(p);
            p = p.next();
        }
        out
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

/// Days from 1970-01-01 to a date of the proleptic Gregorian calendar.
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Parses `YYYY-MM-DDTHH` into the start of that hour.
pub fn parse_hour(s: &str) -> Option<Micros> {
    let (date, hh) = s.split_once('T')?;
    let d = NaiveDate::parse_from_str(date, "%Y-%m-%d").ok()?;
    let h: u32 = hh.parse().ok()?;
    if hh.len() != 2 || h > 23 {
        return None;
    }
    Some(d.and_hms_opt(h, 0, 0)?.and_utc().timestamp_micros())
}

/// Calendar months after `t` by `months` (clamped to the month's last day).
pub fn add_months(t: Micros, months: i32) -> Option<Micros> {
    let d = DateTime::<Utc>::from_timestamp_micros(t)?;
    let shifted =
        if months >= 0 { d.checked_add_months(chrono::Months::new(months as u32))? } else { d.checked_sub_months(chrono::Months::new((-months) as u32))? };
    Some(shifted.timestamp_micros())
}

#[cfg(test)]
mod tests {
    #[test]
    fn period_starts_agree_with_the_calendar() {
        for year in 1..=9999 {
            for month in 1..=12 {
                let p = super::Period { year, month };
                assert_eq!(p.start(), p.start_reference(), "{year}-{month}");
            }
        }
    }

    use super::*;

    #[test]
    fn periods_bound_calendar_months() {
        let p = Period::parse("2024-02").unwrap();
        assert_eq!(p.hours(), 29 * 24);
        assert_eq!(p.days().len(), 29);
        assert_eq!(p.next().to_string(), "2024-03");
        assert_eq!(Period::parse("2024-12").unwrap().next().to_string(), "2025-01");
        assert!(Period::parse("2024-13").is_none());
        assert!(Period::parse("24-01").is_none());
        assert_eq!(Period::containing(p.end() - 1), Some(p));
    }

    #[test]
    fn hours_parse_and_floor() {
        let h = parse_hour("2024-02-29T23").unwrap();
        assert_eq!(hour_floor(h + 59 * 60 * SECOND), h);
        assert_eq!(partition_of(h).unwrap(), ("2024-02-29".to_string(), 23));
        assert!(parse_hour("2024-02-29T24").is_none());
        assert_eq!(hour_floor(-1), -HOUR);
    }
}

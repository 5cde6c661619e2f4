//! Exact decimal arithmetic for money, prices and pricing quantities.
//!
//! The data contract stores money as `DECIMAL(38, 10)`; billrun keeps that very
//! representation in memory ([`Dec`]: an `i128` count of 1e-10 units), so reading,
//! computing and writing never converts through binary floating point.
//!
//! Pricing quantities are not always terminating decimals (`duration_s / 3600` for one
//! second is 0.000277…), so they are kept as exact integers of a finer unit ([`Qty`]:
//! 1/3.6e19 of a unit). Every pricing quantity the rules produce — node-hours from
//! microsecond durations, GB-hours from 10-place GB, counts and GB — is an integer in
//! that unit, so tier boundaries, package quotas and cumulative sums are compared
//! exactly, and an amount is `price × quantity` rounded once, at the end, half away
//! from zero to 8 places, through a 256-bit intermediate product.

#![deny(clippy::float_arithmetic)]

use ethnum::I256;
use std::fmt;

/// Decimal places of [`Dec`].
pub const SCALE: u32 = 10;
/// The largest mantissa `DECIMAL(38, 10)` holds: 38 nines.
pub const MAX_MANTISSA: i128 = 99_999_999_999_999_999_999_999_999_999_999_999_999;

/// A money figure or quantity that went beyond what the contract's decimals hold.
/// It refuses the run: the caller adds whose figure it was.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the {figure} goes beyond the 38 digits of decimal(38,10)")]
pub struct Overflow {
    /// What the figure is, in a billing person's words ("balance", "usage charges").
    pub figure: &'static str,
}
const ONE: i128 = 10_000_000_000;

/// Quantity units per whole unit: 1e10 (decimal places of the inputs) × 3.6e9
/// (microseconds per hour).
pub const QTY_PER_UNIT: i128 = 36_000_000_000_000_000_000;
/// Quantity units per 1e-10 of a unit.
const QTY_PER_DEC_UNIT: i128 = 3_600_000_000;

/// A fixed-point decimal with 10 places: `Dec(15)` is 0.0000000015.
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Dec(pub i128);

impl Dec {
    pub const ZERO: Dec = Dec(0);

    pub fn from_int(v: i64) -> Dec {
        Dec(v as i128 * ONE)
    }

    /// A value given as mantissa and scale, e.g. `(12345, 2)` = 123.45. `None` when it
    /// does not fit or has more than 10 significant decimal places.
    pub fn from_scaled(mantissa: i128, scale: i8) -> Option<Dec> {
        let s = scale as i32;
        if s <= SCALE as i32 {
            let f = 10i128.checked_pow((SCALE as i32 - s) as u32)?;
            mantissa.checked_mul(f).map(Dec)
        } else {
            let f = 10i128.checked_pow((s - SCALE as i32) as u32)?;
            if mantissa % f != 0 {
                return None;
            }
            Some(Dec(mantissa / f))
        }
    }

    pub fn is_zero(self) -> bool {
        self.0 == 0
    }
    pub fn is_negative(self) -> bool {
        self.0 < 0
    }
    /// A value the contract's `DECIMAL(38, 10)` holds: at most 38 digits.
    pub fn within(v: i128) -> Option<Dec> {
        (v.unsigned_abs() <= MAX_MANTISSA as u128).then_some(Dec(v))
    }
    /// `self + o`, `None` beyond 38 digits.
    pub fn checked_add(self, o: Dec) -> Option<Dec> {
        Dec::within(self.0.checked_add(o.0)?)
    }
    /// `self − o`, `None` beyond 38 digits.
    pub fn checked_sub(self, o: Dec) -> Option<Dec> {
        Dec::within(self.0.checked_sub(o.0)?)
    }
    /// `self + o`, or the [`Overflow`] of `figure`: the run is refused, a total never
    /// saturates nor becomes zero.
    pub fn plus(self, o: Dec, figure: &'static str) -> Result<Dec, Overflow> {
        self.checked_add(o).ok_or(Overflow { figure })
    }
    /// `self − o`, or the [`Overflow`] of `figure`.
    pub fn minus(self, o: Dec, figure: &'static str) -> Result<Dec, Overflow> {
        self.checked_sub(o).ok_or(Overflow { figure })
    }
    /// `−self`. Every `Dec` the checked operations make is within 38 digits, whose
    /// negation is too; a bare `Dec(i128::MIN)` stays where it is rather than wrap.
    #[allow(clippy::should_implement_trait)] // a method of its own: `-x` would hide the saturation rule above
    pub fn neg(self) -> Dec {
        Dec(self.0.checked_neg().unwrap_or(self.0))
    }
    pub fn max(self, o: Dec) -> Dec {
        if self >= o {
            self
        } else {
            o
        }
    }
    pub fn min(self, o: Dec) -> Dec {
        if self <= o {
            self
        } else {
            o
        }
    }

    /// Rounded half away from zero to `places` (≤ 10) decimal places.
    pub fn round_dp(self, places: u32) -> Dec {
        let f = 10i128.pow(SCALE - places);
        Dec(div_round_half_away(self.0, f) * f)
    }

    /// Truncated toward zero to `places` (≤ 10) decimal places.
    pub fn trunc_dp(self, places: u32) -> Dec {
        let f = 10i128.pow(SCALE - places);
        Dec(self.0 / f * f)
    }

    /// Number of decimal places actually used (0..=10).
    pub fn places_used(self) -> u32 {
        // Most values fit 64 bits, where division by a constant is a multiplication.
        if let Ok(mut v) = i64::try_from(self.0) {
            let mut p = SCALE;
            while p > 0 && v % 10 == 0 {
                v /= 10;
                p -= 1;
            }
            return p;
        }
        let mut v = self.0;
        let mut p = SCALE;
        while p > 0 && v % 10 == 0 {
            v /= 10;
            p -= 1;
        }
        p
    }

    /// The mantissa at a smaller scale, for writing a `DECIMAL(p, places)` column.
    /// Only exact when the value has no more than `places` places.
    pub fn mantissa_at(self, places: u32) -> i128 {
        self.0 / 10i128.pow(SCALE - places)
    }

    /// Parses `-12.345`; at most 10 decimal places.
    pub fn parse(s: &str) -> Option<Dec> {
        let s = s.trim();
        let (neg, body) = match s.strip_prefix('-') {
            Some(b) => (true, b),
            None => (false, s.strip_prefix('+').unwrap_or(s)),
        };
        let (int, frac) = match body.split_once('.') {
            Some((i, f)) => (i, f),
            None => (body, ""),
        };
        if (int.is_empty() && frac.is_empty()) || frac.len() > SCALE as usize {
            return None;
        }
        if !int.bytes().all(|b| b.is_ascii_digit()) || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let mut v: i128 = 0;
        for b in int.bytes().chain(frac.bytes()) {
            v = v.checked_mul(10)?.checked_add((b - b'0') as i128)?;
        }
        v = v.checked_mul(10i128.pow(SCALE - frac.len() as u32))?;
        Some(Dec(if neg { -v } else { v }))
    }
}

impl fmt::Display for Dec {
    /// Plain notation with trailing zeros removed (at least 2 places). The digits are
    /// written into a buffer directly (line items format a quantity a line).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let places = self.places_used().max(2);
        let abs = self.0.unsigned_abs();
        // At most 39 digits, the point and the sign.
        let mut buf = [0u8; 48];
        let mut at = buf.len();
        let mut put = |c: u8| {
            at -= 1;
            buf[at] = c;
        };
        // The fraction always fits 64 bits; the integer part mostly does.
        let (int, frac): (u128, u64) = match u64::try_from(abs) {
            Ok(a) => ((a / ONE as u64) as u128, a % ONE as u64),
            Err(_) => (abs / ONE as u128, (abs % ONE as u128) as u64),
        };
        let mut frac = frac / 10u64.pow(SCALE - places);
        for _ in 0..places {
            put(b'0' + (frac % 10) as u8);
            frac /= 10;
        }
        put(b'.');
        let mut int = int;
        while int > u64::MAX as u128 {
            put(b'0' + (int % 10) as u8);
            int /= 10;
        }
        let mut int = int as u64;
        loop {
            put(b'0' + (int % 10) as u8);
            int /= 10;
            if int == 0 {
                break;
            }
        }
        if self.0 < 0 {
            put(b'-');
        }
        // Only ASCII digits, '.' and '-' were written.
        f.write_str(std::str::from_utf8(&buf[at..]).map_err(|_| fmt::Error)?)
    }
}

/// An exact pricing quantity in units of 1/[`QTY_PER_UNIT`].
#[derive(Copy, Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Qty(pub i128);

impl Qty {
    pub const ZERO: Qty = Qty(0);

    pub fn from_dec(d: Dec) -> Option<Qty> {
        d.0.checked_mul(QTY_PER_DEC_UNIT).map(Qty)
    }
    /// `nodes × unit_count × duration_us / 3.6e9` node-hours.
    pub fn node_hours(nodes: i64, unit_count: i64, duration_us: i64) -> Option<Qty> {
        (nodes as i128).checked_mul(unit_count as i128)?.checked_mul(duration_us as i128)?.checked_mul(ONE).map(Qty)
    }
    /// `gb × duration_us / 3.6e9` GB-hours.
    pub fn gb_hours(gb: Dec, duration_us: i64) -> Option<Qty> {
        gb.0.checked_mul(duration_us as i128).map(Qty)
    }
    /// `a × b` where `b` is a plain decimal (for quotas: count × hours).
    pub fn times_int(self, n: i64) -> Option<Qty> {
        self.0.checked_mul(n as i128).map(Qty)
    }
    /// The quantity rounded half away from zero to 10 places, for display columns.
    pub fn to_dec(self) -> Dec {
        // |q| / 3.6e9 by long division in 64-bit steps (the divisor fits 32 bits),
        // rounded half away from zero: the same as `div_round_half_away`, faster.
        const D: u64 = QTY_PER_DEC_UNIT as u64;
        let n = self.0.unsigned_abs();
        let (hi, lo) = ((n >> 64) as u64, n as u64);
        let (q1, r1) = (hi / D, hi % D);
        let mid = (r1 << 32) | (lo >> 32);
        let (q2, r2) = (mid / D, mid % D);
        let low = (r2 << 32) | (lo & 0xFFFF_FFFF);
        let (q3, r3) = (low / D, low % D);
        let mut q = ((q1 as u128) << 64) | ((q2 as u128) << 32) | q3 as u128;
        if r3 * 2 >= D {
            q += 1;
        }
        // |q| ≤ |i128::MIN| / 3.6e9: it fits, with its sign.
        let q = q as i128;
        Dec(if self.0 < 0 { -q } else { q })
    }

    /// [`Qty::to_dec`] by 128-bit division: the reference the fast path is tested against.
    pub fn to_dec_reference(self) -> Dec {
        Dec(div_round_half_away(self.0, QTY_PER_DEC_UNIT))
    }
    pub fn is_zero(self) -> bool {
        self.0 == 0
    }
    pub fn checked_add(self, o: Qty) -> Option<Qty> {
        self.0.checked_add(o.0).map(Qty)
    }
    pub fn checked_sub(self, o: Qty) -> Option<Qty> {
        self.0.checked_sub(o.0).map(Qty)
    }
    /// `self + o`, or the [`Overflow`] of `figure`.
    pub fn plus(self, o: Qty, figure: &'static str) -> Result<Qty, Overflow> {
        self.checked_add(o).ok_or(Overflow { figure })
    }
    /// `self − o`, or the [`Overflow`] of `figure`.
    pub fn minus(self, o: Qty, figure: &'static str) -> Result<Qty, Overflow> {
        self.checked_sub(o).ok_or(Overflow { figure })
    }
    pub fn min(self, o: Qty) -> Qty {
        if self <= o {
            self
        } else {
            o
        }
    }
}

/// Checkpoints keep exact values as the decimal text of their `i128` mantissa: JSON
/// numbers cannot hold 128 bits.
macro_rules! serde_as_text {
    ($t:ident) => {
        impl serde::Serialize for $t {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(&self.0)
            }
        }
        impl<'de> serde::Deserialize<'de> for $t {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<$t, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                text.parse::<i128>().map($t).map_err(serde::de::Error::custom)
            }
        }
    };
}
serde_as_text!(Dec);
serde_as_text!(Qty);

/// `a × b / c` rounded half away from zero, exact through a 256-bit product.
/// `None` when `c` is 0 or the result does not fit in an `i128`.
///
/// A product that fits in 128 bits (a line's price × quantity, the usual case) is
/// divided in 128 bits; the 256-bit division is several times slower, and the rating
/// makes one or more a row.
pub fn mul_div_round(a: i128, b: i128, c: i128) -> Option<i128> {
    if c == 0 {
        return None;
    }
    match a.checked_mul(b) {
        // Only `i128::MIN / -1` overflows: that one goes the wide way.
        Some(p) if !(p == i128::MIN && c == -1) => Some(div_round_half_away(p, c)),
        _ => mul_div_round_wide(a, b, c),
    }
}

/// [`mul_div_round`] through a 256-bit product and division, whatever the sizes.
fn mul_div_round_wide(a: i128, b: i128, c: i128) -> Option<i128> {
    if c == 0 {
        return None;
    }
    let p = I256::from(a).checked_mul(I256::from(b))?;
    let c256 = I256::from(c);
    let (q, r) = (p.checked_div(c256)?, p.checked_rem(c256)?);
    // |r| * 2 >= |c| → round away from zero.
    let twice_r = r.checked_mul(I256::from(2))?.unsigned_abs();
    let q = if twice_r >= c256.unsigned_abs() {
        if p.is_negative() != c256.is_negative() {
            q.checked_sub(I256::ONE)?
        } else {
            q.checked_add(I256::ONE)?
        }
    } else {
        q
    };
    i128::try_from(q).ok()
}

/// `a × b / c` truncated toward zero, through a 256-bit product; `None` when `c` is 0
/// or the quotient does not fit 128 bits.
pub fn mul_div_trunc(a: i128, b: i128, c: i128) -> Option<i128> {
    let q = I256::from(a).checked_mul(I256::from(b))?.checked_div(I256::from(c))?;
    i128::try_from(q).ok()
}

/// `a.0 × a.1 ≤ b.0 × b.1`, exactly: the products are compared in 256 bits.
pub fn products_le(a: (i128, i128), b: (i128, i128)) -> bool {
    // Two i128 factors make at most 254 bits: neither product overflows.
    I256::from(a.0) * I256::from(a.1) <= I256::from(b.0) * I256::from(b.1)
}

/// `a / b` rounded half away from zero, for any `b` but 0 (and `i128::MIN / -1`).
/// A remainder needs |b| ≥ 2, so the quotient then moves by one without overflow;
/// |r| < |b| ≤ 2^127, so 2|r| fits in a u128.
fn div_round_half_away(a: i128, b: i128) -> i128 {
    let q = a / b;
    let r = a % b;
    if r.unsigned_abs() * 2 >= b.unsigned_abs() {
        if (a < 0) != (b < 0) {
            q - 1
        } else {
            q + 1
        }
    } else {
        q
    }
}

/// The largest line amount billrun accepts (1e20). Larger amounts are refused as out
/// of range, so that sums of up to 1e8 lines can never overflow 38 digits.
pub const MAX_LINE_AMOUNT: Dec = Dec(100_000_000_000_000_000_000 * 10_000_000_000);

/// `price × quantity` rounded half away from zero to 8 places: a line amount (§4).
/// `None` beyond [`MAX_LINE_AMOUNT`].
pub fn line_amount(unit_price: Dec, q: Qty) -> Option<Dec> {
    // price.0 / 1e10 × q.0 / 3.6e19, in units of 1e-8: divide by 3.6e21.
    let cents8 = mul_div_round(unit_price.0, q.0, 3_600 * 10i128.pow(18))?;
    let d = cents8.checked_mul(100).map(Dec)?;
    (d.0.abs() <= MAX_LINE_AMOUNT.0).then_some(d)
}

/// `value × part / whole` rounded half away from zero to 8 places: amortization.
pub fn prorate(value: Dec, part: i128, whole: i128) -> Option<Dec> {
    let v8 = mul_div_round(value.0, part, whole.checked_mul(100)?)?;
    v8.checked_mul(100).map(Dec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Display by 128-bit arithmetic only.
    fn display_reference(d: Dec) -> String {
        let mut v = d.0;
        let mut p = SCALE;
        while p > 0 && v % 10 == 0 {
            v /= 10;
            p -= 1;
        }
        let places = p.max(2);
        let abs = d.0.unsigned_abs();
        let int = abs / ONE as u128;
        let frac = abs % ONE as u128 / 10u128.pow(SCALE - places);
        let sign = if d.0 < 0 { "-" } else { "" };
        format!("{sign}{int}.{frac:0width$}", width = places as usize)
    }

    fn edgy() -> impl Strategy<Value = i128> {
        prop_oneof![
            any::<i128>(),
            any::<i64>().prop_map(|v| v as i128),
            (any::<i64>(), 0u32..12).prop_map(|(v, e)| v as i128 * 10i128.pow(e)),
            (any::<i64>(), -3i128..=3).prop_map(|(v, k)| v as i128 * QTY_PER_DEC_UNIT / 2 + k),
            Just(i128::MIN),
            Just(i128::MAX),
            Just(i64::MAX as i128 + 1),
            Just(i64::MIN as i128 - 1),
        ]
    }

    proptest! {
        #[test]
        fn fast_paths_agree_with_128_bit_arithmetic(v in edgy()) {
            prop_assert_eq!(Qty(v).to_dec(), Qty(v).to_dec_reference());
            prop_assert_eq!(Dec(v).to_string(), display_reference(Dec(v)));
        }

        /// The 128-bit division gives what the 256-bit one gives, rounding and overflow
        /// included: ties either side of zero, divisors of either sign, products just
        /// inside and beyond 128 bits.
        #[test]
        fn mul_div_round_agrees_with_the_wide_path(a in edgy(), b in edgy(), c in edgy(), k in -3i128..=3) {
            prop_assert_eq!(mul_div_round(a, b, c), mul_div_round_wide(a, b, c));
            // Exact halves: (2m + 1) × c / 2c, and the same just off the tie.
            let m = a >> 66;
            let c2 = c >> 2;
            prop_assert_eq!(mul_div_round(2 * m + 1, c2, 2 * c2), mul_div_round_wide(2 * m + 1, c2, 2 * c2));
            prop_assert_eq!(mul_div_round(2 * m + 1, c2, 2 * c2 + k), mul_div_round_wide(2 * m + 1, c2, 2 * c2 + k));
            // A line amount's divisor.
            prop_assert_eq!(mul_div_round(a >> 40, b >> 40, 3_600 * 10i128.pow(18)), mul_div_round_wide(a >> 40, b >> 40, 3_600 * 10i128.pow(18)));
        }
    }

    fn d(s: &str) -> Dec {
        Dec::parse(s).unwrap()
    }

    #[test]
    fn parse_and_display_round_trip() {
        assert_eq!(d("12.5").to_string(), "12.50");
        assert_eq!(d("-0.0000000001").to_string(), "-0.0000000001");
        assert_eq!(d("3").to_string(), "3.00");
        assert!(Dec::parse("1.00000000001").is_none());
        assert!(Dec::parse("abc").is_none());
        assert!(Dec::parse("").is_none());
    }

    #[test]
    fn rounding_is_half_away_from_zero() {
        assert_eq!(d("0.125").round_dp(2), d("0.13"));
        assert_eq!(d("-0.125").round_dp(2), d("-0.13"));
        assert_eq!(d("0.124999").round_dp(2), d("0.12"));
        assert_eq!(d("1.999").trunc_dp(2), d("1.99"));
        assert_eq!(d("-1.999").trunc_dp(2), d("-1.99"));
    }

    #[test]
    fn one_second_of_a_node_hour_is_priced_exactly() {
        // 3.6 per node-hour × 1 s = 0.001 exactly, although 1/3600 h does not terminate.
        let q = Qty::node_hours(1, 1, 1_000_000).unwrap();
        assert_eq!(line_amount(d("3.6"), q), Some(d("0.001")));
        // 0.0000000036 × 1 s = 1e-12 → rounds to 0 at 8 places; × 5e3 s = 5e-9 → 0.00000001.
        assert_eq!(line_amount(d("0.0000000036"), q), Some(Dec::ZERO));
        let q5k = Qty::node_hours(1, 1, 5_000_000_000).unwrap();
        assert_eq!(line_amount(d("0.0000000036"), q5k), Some(d("0.00000001")));
    }

    #[test]
    fn ties_round_away_from_zero_in_line_amounts() {
        // 0.000000005 exactly: a tie at 8 places.
        let q = Qty::from_dec(d("0.5")).unwrap();
        assert_eq!(line_amount(d("0.00000001"), q), Some(d("0.00000001")));
    }

    #[test]
    fn mul_div_round_handles_products_beyond_i128() {
        let big = 10i128.pow(30);
        assert_eq!(mul_div_round(big, big, big), Some(big));
        assert_eq!(mul_div_round(-7, 1, 2), Some(-4));
        assert_eq!(mul_div_round(7, 1, 2), Some(4));
        assert_eq!(mul_div_round(5, 1, 0), None);
        assert_eq!(mul_div_round(i128::MAX, i128::MAX, 1), None);
        assert_eq!(mul_div_round(i128::MIN, 1, -1), None);
        assert_eq!(mul_div_round(i128::MIN, -1, -1), Some(i128::MIN));
        assert_eq!(mul_div_round(i128::MIN, 1, 1), Some(i128::MIN));
        assert_eq!(mul_div_round(i128::MAX, 1, i128::MIN), Some(-1));
        assert_eq!(mul_div_round(-5, 1, 2), Some(-3));
        assert_eq!(mul_div_round(5, 1, -2), Some(-3));
        assert_eq!(mul_div_round(-5, -1, -2), Some(-3));
        assert_eq!(mul_div_round(-1, 1, 3), Some(0));
    }

    #[test]
    fn quantities_convert_exactly() {
        let q = Qty::gb_hours(d("2"), 1_800_000_000).unwrap();
        assert_eq!(q.to_dec(), d("1"));
        assert_eq!(Qty::from_dec(d("1")).unwrap(), q);
    }

    /// Sums refuse past 38 digits (what `DECIMAL(38, 10)` holds), even where the
    /// `i128` would still hold them; nothing saturates.
    #[test]
    fn checked_sums_stop_at_38_digits() {
        let max = Dec(MAX_MANTISSA);
        assert_eq!(max.checked_add(Dec(0)), Some(max));
        assert_eq!(max.checked_add(Dec(1)), None);
        assert_eq!(max.neg().checked_sub(Dec(1)), None);
        assert_eq!(max.plus(Dec(1), "balance"), Err(Overflow { figure: "balance" }));
        assert_eq!(Dec(i128::MAX).checked_sub(Dec(0)), None);
        assert_eq!(Dec(5).minus(Dec(7), "balance"), Ok(Dec(-2)));
        assert_eq!(Qty(i128::MAX).plus(Qty(1), "quota"), Err(Overflow { figure: "quota" }));
    }

    /// The 256-bit product comparison agrees with 128-bit arithmetic where that
    /// holds, and stays exact past it.
    #[test]
    fn products_compare_exactly() {
        assert!(products_le((3, 4), (2, 6)));
        assert!(!products_le((3, 5), (2, 7)));
        assert!(products_le((-3, 5), (0, 0)));
        assert!(products_le((i128::MAX, 2), (i128::MAX, 3)));
        assert!(!products_le((i128::MAX, i128::MAX), (i128::MAX, i128::MAX - 1)));
    }
}

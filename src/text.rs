//! Byte equality for the short texts compared in the hot loops (ids, names,
//! currencies): inline, eight bytes at a time, where slice equality calls `memcmp`
//! for every pair, at a cost that exceeds the compare itself for texts this short.

/// Longest text compared inline; longer ones go to slice equality.
const INLINE_MAX: usize = 64;

/// Whether `a` and `b` hold the same bytes.
#[inline(always)]
pub fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    if n > INLINE_MAX {
        return a == b;
    }
    let word = |s: &[u8], at: usize| u64::from_le_bytes(s[at..at + 8].try_into().expect("eight bytes"));
    if n >= 8 {
        // Whole words, then the last eight bytes (overlapping the word before).
        let mut at = 0;
        while at + 8 < n {
            if word(a, at) != word(b, at) {
                return false;
            }
            at += 8;
        }
        return word(a, n - 8) == word(b, n - 8);
    }
    // Under eight bytes: the bytes XORed together, so no branch a byte.
    a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        /// The same verdict as slice equality, for texts of every length up to past
        /// the inline limit, equal, of other lengths, or differing in one byte.
        #[test]
        fn same_bytes_is_slice_equality(text in proptest::collection::vec(proptest::num::u8::ANY, 0..80), flip in proptest::num::usize::ANY, cut in 0usize..3) {
            let same = text.clone();
            proptest::prop_assert!(same_bytes(&text, &same));
            let shorter = &text[..text.len().saturating_sub(cut)];
            proptest::prop_assert_eq!(same_bytes(&text, shorter), text.as_slice() == shorter);
            if !text.is_empty() {
                let mut other = text.clone();
                other[flip % text.len()] ^= 1 << (flip % 8);
                proptest::prop_assert!(!same_bytes(&text, &other));
                proptest::prop_assert!(!same_bytes(&other, &text));
            }
        }
    }
}

//! The encoder's pages against the format's definitions and the general writer.

use super::hybrid::{bit_width, varint, Hybrid};
use super::*;

/// Decodes the hybrid encoding (the format's definition, written out).
fn unhybrid(mut b: &[u8], bw: u8, n: usize) -> Vec<u32> {
    let mut out = Vec::new();
    while out.len() < n {
        let (mut h, mut shift) = (0u64, 0);
        loop {
            let byte = b[0];
            b = &b[1..];
            h |= ((byte & 0x7f) as u64) << shift;
            shift += 7;
            if byte < 0x80 {
                break;
            }
        }
        if h & 1 == 0 {
            let w = (bw as usize).div_ceil(8);
            let mut v = [0u8; 4];
            v[..w].copy_from_slice(&b[..w]);
            b = &b[w..];
            out.extend(std::iter::repeat_n(u32::from_le_bytes(v), (h >> 1) as usize));
        } else {
            let count = (h >> 1) as usize * 8;
            let (mut acc, mut bits) = (0u64, 0u32);
            for _ in 0..count {
                while bits < bw as u32 {
                    acc |= (b[0] as u64) << bits;
                    b = &b[1..];
                    bits += 8;
                }
                out.push((acc & ((1u64 << bw) - 1)) as u32);
                acc >>= bw;
                bits -= bw as u32;
            }
        }
    }
    out.truncate(n);
    out
}

/// The hybrid encoding the straightforward way: every run of equal values listed,
/// then walked; groups of eight packed one value at a time.
fn hybrid_by_runs(values: &[u32], bw: u8) -> Vec<u8> {
    let mut out = Vec::new();
    let n = values.len();
    let mut starts: Vec<usize> = (0..n).filter(|&i| i == 0 || values[i] != values[i - 1]).collect();
    starts.push(n);
    let pack = |values: &[u32], out: &mut Vec<u8>| {
        for run in values.chunks(63 * 8) {
            varint(((run.len().div_ceil(8) as u64) << 1) | 1, out);
            for group in run.chunks(8) {
                let mut acc = [0u8; 32];
                for (k, &v) in group.iter().enumerate() {
                    for b in 0..bw as usize {
                        let bit = k * bw as usize + b;
                        acc[bit / 8] |= (((v >> b) & 1) as u8) << (bit % 8);
                    }
                }
                out.extend_from_slice(&acc[..bw as usize]);
            }
        }
    };
    let mut literal_from = 0;
    for w in starts.windows(2) {
        let (i, j) = (w[0], w[1]);
        if j - i >= 8 {
            let literal_to = i + (8 - (i - literal_from) % 8) % 8;
            if literal_to > literal_from {
                pack(&values[literal_from..literal_to], &mut out);
            }
            if j - literal_to >= 8 {
                rle_run(j - literal_to, values[i], bw, &mut out);
                literal_from = j;
            } else {
                literal_from = literal_to;
            }
        }
    }
    if n > literal_from {
        pack(&values[literal_from..n], &mut out);
    }
    out
}

proptest::proptest! {
    /// The bitmap walk and the packing by width give the bytes of the
    /// straightforward walk: runs of every length, around and across the 64-value
    /// words, at every width.
    #[test]
    fn hybrid_gives_the_straightforward_bytes(
        runs in proptest::collection::vec((0u32..u32::MAX, 1usize..80), 0..120),
        bw in 0u8..=32,
        cut in 0usize..64,
    ) {
        let top = if bw == 32 { u32::MAX } else { (1u32 << bw) - 1 };
        let values: Vec<u32> = runs.iter().flat_map(|&(v, len)| std::iter::repeat_n(v & top, len)).collect();
        // A slice that starts inside a word, too.
        let values = &values[cut.min(values.len())..];
        let mut out = Vec::new();
        let mut scratch = vec![7; 3];
        hybrid(values, bw, &mut out, &mut scratch);
        proptest::prop_assert_eq!(out, hybrid_by_runs(values, bw));
    }

    /// Levels kept as bits, appended as the encoder appends them (runs of one
    /// level, and slices of validity bitmaps at any offset), encode to the bytes
    /// of the same levels as values.
    #[test]
    fn levels_as_bits_give_the_bytes_of_levels_as_values(
        parts in proptest::collection::vec((proptest::bool::ANY, 1usize..150, 0usize..9, proptest::bool::ANY), 1..40),
    ) {
        // Levels of an earlier page, cleared: their bits must not show through.
        let mut levels = Levels::default();
        levels.0.append_n(70, true);
        levels.clear();
        let mut expected: Vec<u32> = Vec::new();
        for (i, &(level, len, offset, as_run)) in parts.iter().enumerate() {
            if as_run {
                levels.0.append_n(len, level);
                expected.extend(std::iter::repeat_n(level as u32, len));
            } else {
                // A bitmap of mixed levels, sliced from an offset.
                let bits: Vec<bool> = (0..offset + len).map(|k| (k * 7 + i) % 5 < 3 || (k % 11 == 0 && level)).collect();
                let buffer = arrow_buffer::BooleanBuffer::from(bits.clone()).slice(offset, len);
                levels.0.append_buffer(&buffer);
                expected.extend(bits[offset..].iter().map(|&b| b as u32));
            }
        }
        // As a forked encoder holds them.
        let levels = levels.clone();
        proptest::prop_assert_eq!(levels.count(), expected.len());
        let mut out = Vec::new();
        hybrid(&levels, 1, &mut out, &mut Vec::new());
        proptest::prop_assert_eq!(out, hybrid_by_runs(&expected, 1));
        // Packed up to a place inside a group: the group is padded with zeros.
        let (mut bits, mut values) = (Vec::new(), Vec::new());
        let to = expected.len() - 1;
        levels.bit_pack(to / 3..to, 1, &mut bits);
        expected[..].bit_pack(to / 3..to, 1, &mut values);
        proptest::prop_assert_eq!(bits, values);
    }
}

#[test]
fn hybrid_runs_decode_to_their_values() {
    let cases: Vec<Vec<u32>> = vec![
        vec![],
        vec![0; 5],
        vec![1; 20_000],
        (0..1000).map(|i| i % 7).collect(),
        (0..1000).map(|i| if i % 100 < 60 { 3 } else { i % 5 }).collect(),
        [vec![1, 2, 3], vec![9; 8], vec![4], vec![9; 13], vec![5, 6]].concat(),
        (0..3000).map(|i| (i * 7919) % 100_000).collect(),
        (0..3000).map(|i| (i * 7919) % 65_536).collect(),
        (0..1001).map(|i| (i * 31) % 1000).collect(),
        (0..13).map(|i| i * 4000).collect(),
    ];
    // One scratch for all: a shorter case follows a longer one.
    let mut scratch = Vec::new();
    for values in cases {
        let bw = bit_width(values.iter().copied().max().unwrap_or(0));
        let mut out = Vec::new();
        hybrid(values.as_slice(), bw, &mut out, &mut scratch);
        assert_eq!(unhybrid(&out, bw, values.len()), values, "bit width {bw}");
    }
    // Every width, with a last group that is not whole.
    for bw in 1..=32u8 {
        let top = if bw == 32 { u32::MAX } else { (1u32 << bw) - 1 };
        let values: Vec<u32> = (0..1003u64).map(|i| if i % 5 == 0 { top } else { (i.wrapping_mul(2_654_435_761) as u32) & top }).collect();
        let mut out = Vec::new();
        hybrid(values.as_slice(), bw, &mut out, &mut scratch);
        assert_eq!(unhybrid(&out, bw, values.len()), values, "bit width {bw}");
    }
    // Long runs cost a few bytes, not one bit a value.
    let mut out = Vec::new();
    hybrid(&[1u32; 20_000][..], 1, &mut out, &mut Vec::new());
    assert!(out.len() <= 4, "{}", out.len());
}

//! The RLE / bit-packing hybrid encoding of dictionary indexes and definition levels.

use super::PAGE_ROWS;
use arrow_buffer::builder::BooleanBufferBuilder;
use arrow_buffer::MutableBuffer;

/// The RLE / bit-packing hybrid encoding of `values` (each below 2^`bw`): runs of
/// eight or more equal values as RLE runs, the rest bit-packed in groups of eight.
/// `starts` is scratch, kept from call to call.
///
/// Only runs of eight or more matter, and in most columns most values differ from
/// the one before, or sit in a run that goes on for a whole page: the runs are found
/// in a bitmap of where values change, 64 values a word, and only the long ones are
/// walked.
pub(super) fn hybrid<V: Hybrid + ?Sized>(values: &V, bw: u8, out: &mut Vec<u8>, starts: &mut Vec<u64>) {
    let n = values.count();
    if n == 0 {
        return;
    }
    values.run_starts(starts);
    let mut literal_from = 0;
    for w in 0..n.div_ceil(64) {
        // Bit k: a run of eight or more starts at value 64 × w + k (it starts there,
        // and the next seven values are the same as it).
        let x = starts[w] as u128 | (starts[w + 1] as u128) << 64;
        let same = !x;
        let mut long = (x & same >> 1 & same >> 2 & same >> 3 & same >> 4 & same >> 5 & same >> 6 & same >> 7) as u64;
        while long != 0 {
            let i = w * 64 + long.trailing_zeros() as usize;
            long &= long - 1;
            let j = next_start(starts, i + 1);
            // Bit-packed groups are whole: the pending literals take the run's first
            // values up to a multiple of eight.
            let pad = (8 - (i - literal_from) % 8) % 8;
            let literal_to = i + pad;
            if literal_to > literal_from {
                values.bit_pack(literal_from..literal_to, bw, out);
            }
            if j - literal_to >= 8 {
                rle_run(j - literal_to, values.value(i), bw, out);
                literal_from = j;
            } else {
                literal_from = literal_to;
            }
        }
    }
    if n > literal_from {
        values.bit_pack(literal_from..n, bw, out);
    }
}

/// What the hybrid encoding encodes: dictionary entries, or definition levels.
pub(super) trait Hybrid {
    fn count(&self) -> usize;
    fn value(&self, i: usize) -> u32;
    /// Where the runs of equal values start, as a bitmap: bit `i` of word `i / 64`
    /// is set where value `i` differs from the one before it, for the first value,
    /// and for every place from the end on (one whole word of them past the last
    /// value).
    fn run_starts(&self, starts: &mut Vec<u64>);
    /// The values of `range`, bit-packed.
    fn bit_pack(&self, range: std::ops::Range<usize>, bw: u8, out: &mut Vec<u8>);
}

impl Hybrid for [u32] {
    fn count(&self) -> usize {
        self.len()
    }

    fn value(&self, i: usize) -> u32 {
        self[i]
    }

    fn run_starts(&self, starts: &mut Vec<u64>) {
        let values = self;
        let n = values.len();
        starts.clear();
        starts.reserve(n.div_ceil(64) + 1);
        for (w, chunk) in values.chunks(64).enumerate() {
            let base = w * 64;
            let word = match (base, <&[u32; 64]>::try_from(chunk)) {
                // A whole word after the first: compared with the values one before, in
                // a loop of a fixed length that the compiler does several at a time, into
                // a byte each; eight bytes of 0 or 1 are then gathered into eight bits by
                // one multiplication (byte k lands on bit 56 + k, and nothing else
                // reaches the top byte).
                (1.., Ok(cur)) => {
                    let prev: &[u32; 64] = values[base - 1..base + 63].try_into().expect("64 values");
                    let mut differs = [0u8; 64];
                    for k in 0..64 {
                        differs[k] = (cur[k] != prev[k]) as u8;
                    }
                    differs.chunks_exact(8).enumerate().fold(0u64, |m, (b, eight)| {
                        let bytes = u64::from_le_bytes(eight.try_into().expect("eight bytes"));
                        m | (bytes.wrapping_mul(0x0102_0408_1020_4080) >> 56) << (8 * b)
                    })
                }
                _ => {
                    let first = if base == 0 { 1 } else { (chunk[0] != values[base - 1]) as u64 };
                    let rest = chunk.windows(2).enumerate().fold(0u64, |m, (k, p)| m | ((p[1] != p[0]) as u64) << (k + 1));
                    first | rest | if chunk.len() < 64 { !0u64 << chunk.len() } else { 0 }
                }
            };
            starts.push(word);
        }
        starts.push(!0);
    }

    fn bit_pack(&self, range: std::ops::Range<usize>, bw: u8, out: &mut Vec<u8>) {
        bit_pack(&self[range], bw, out)
    }
}

/// A page's definition levels (each 0 or 1), a bit each, least significant first.
pub(super) struct Levels(pub(super) BooleanBufferBuilder);

impl Default for Levels {
    fn default() -> Levels {
        Levels(BooleanBufferBuilder::new(PAGE_ROWS))
    }
}

impl Clone for Levels {
    fn clone(&self) -> Levels {
        Levels(BooleanBufferBuilder::new_from_buffer(MutableBuffer::from(self.0.as_slice().to_vec()), self.0.len()))
    }
}

impl Levels {
    pub(super) fn clear(&mut self) {
        self.0.truncate(0);
    }

    /// Levels `64 × w` to `64 × w + 63` (0 past the last level).
    fn word(&self, w: usize) -> u64 {
        let bytes = self.0.as_slice();
        let from = (w * 8).min(bytes.len());
        let to = (from + 8).min(bytes.len());
        let mut word = [0u8; 8];
        word[..to - from].copy_from_slice(&bytes[from..to]);
        u64::from_le_bytes(word)
    }

    /// The 8 levels from `at` on (`at` below the count; 0 past the last level).
    fn byte_at(&self, at: usize) -> u8 {
        let bytes = self.0.as_slice();
        let (i, shift) = (at / 8, at % 8);
        match bytes.get(i + 1) {
            Some(&next) if shift > 0 => bytes[i] >> shift | next << (8 - shift),
            _ => bytes[i] >> shift,
        }
    }
}

impl Hybrid for Levels {
    fn count(&self) -> usize {
        self.0.len()
    }

    fn value(&self, i: usize) -> u32 {
        self.0.get_bit(i) as u32
    }

    fn run_starts(&self, starts: &mut Vec<u64>) {
        starts.clear();
        let len = self.0.len();
        let mut carry = 0u64;
        for w in 0..len.div_ceil(64) {
            // A start where a level differs from the one before it.
            let x = self.word(w);
            let mut word = x ^ (x << 1 | carry);
            carry = x >> 63;
            if w == 0 {
                word |= 1;
            }
            if (w + 1) * 64 > len {
                word |= !0u64 << (len % 64);
            }
            starts.push(word);
        }
        starts.push(!0);
    }

    /// Levels are one bit each: a group of eight is a byte of the bitmap.
    fn bit_pack(&self, range: std::ops::Range<usize>, bw: u8, out: &mut Vec<u8>) {
        debug_assert_eq!(bw, 1, "levels are one bit wide");
        let mut at = range.start;
        while at < range.end {
            let run_end = (at + 63 * 8).min(range.end);
            varint((((run_end - at).div_ceil(8) as u64) << 1) | 1, out);
            while at < run_end {
                let n = (run_end - at).min(8);
                out.push(self.byte_at(at) & (0xffu16 >> (8 - n)) as u8);
                at += n;
            }
        }
    }
}

/// The first run start at or after `from` (the end, past the last value, at most).
fn next_start(starts: &[u64], from: usize) -> usize {
    let mut w = from / 64;
    let mut word = starts[w] & !0u64 << (from % 64);
    while word == 0 {
        w += 1;
        word = starts[w];
    }
    w * 64 + word.trailing_zeros() as usize
}

pub(super) fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

pub(super) fn rle_run(count: usize, value: u32, bw: u8, out: &mut Vec<u8>) {
    varint((count as u64) << 1, out);
    out.extend_from_slice(&value.to_le_bytes()[..(bw as usize).div_ceil(8)]);
}

/// Bit-packed runs of at most 63 groups of eight (the last group padded with zeros),
/// each value of `bw` bits (at most 32: the values are `u32`).
fn bit_pack(values: &[u32], bw: u8, out: &mut Vec<u8>) {
    macro_rules! widths {
        ($($w:literal)*) => {
            match bw {
                $($w => bit_pack_as::<$w>(values, out),)*
                _ => unreachable!("a bit width above 32"),
            }
        };
    }
    widths!(0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30 31 32)
}

/// [`bit_pack`] for one width: a group's shifts are constants, and its `W` bytes are
/// written from a 32-bit accumulator as whole words.
fn bit_pack_as<const W: usize>(values: &[u32], out: &mut Vec<u8>) {
    out.reserve(values.len().div_ceil(8) * W + 8);
    for run in values.chunks(63 * 8) {
        let groups = run.len().div_ceil(8);
        varint(((groups as u64) << 1) | 1, out);
        let mut whole = run.chunks_exact(8);
        for group in whole.by_ref() {
            pack_group::<W>(group.try_into().expect("eight values"), out);
        }
        let rest = whole.remainder();
        if !rest.is_empty() {
            let mut last = [0u32; 8];
            last[..rest.len()].copy_from_slice(rest);
            pack_group::<W>(&last, out);
        }
    }
}

/// Eight values of `W` bits, least significant bits first: `W` bytes.
#[inline(always)]
fn pack_group<const W: usize>(group: &[u32; 8], out: &mut Vec<u8>) {
    let mut bytes = [0u8; 36];
    let (mut acc, mut bits, mut at) = (0u64, 0, 0);
    for &v in group {
        acc |= (v as u64) << bits;
        bits += W;
        if bits >= 32 {
            bytes[at..at + 4].copy_from_slice(&(acc as u32).to_le_bytes());
            at += 4;
            acc >>= 32;
            bits -= 32;
        }
    }
    bytes[at..at + 4].copy_from_slice(&(acc as u32).to_le_bytes());
    out.extend_from_slice(&bytes[..W]);
}

/// Dictionary indexes as a data page holds them: the bit width, then the hybrid runs.
pub(super) fn values_rle(ids: &[u32], entries: usize, out: &mut Vec<u8>, runs: &mut Vec<u64>) {
    let bw = bit_width(entries.saturating_sub(1) as u32);
    out.push(bw);
    hybrid(ids, bw, out, runs);
}

pub(super) fn bit_width(max: u32) -> u8 {
    (32 - max.leading_zeros()) as u8
}

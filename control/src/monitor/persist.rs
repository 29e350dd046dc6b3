//! The baselines file: every series' learnt state as bytes, so a restart
//! does not forget the week. Pure: the gateway writes the bytes atomically
//! (a temporary file renamed over the old) and reads them back at start;
//! bytes that do not decode are ignored with a warning.
//!
//! Layout, little-endian:
//!
//! ```text
//! magic "LGBL" | version u16 | bucket_s u32 | week buckets u32 | day buckets u32 | series u32
//! per series: name length u16 | name (UTF-8)
//!             level f64 | abs_dev f64 | interval_s f64 | last time i64 (i64::MIN: none)
//!             samples u64 | tail f64
//!             per bucket, weekly then daily: offset f64 | abs_dev f64 | samples u32
//! FNV-1a 64 of everything before it, u64
//! ```
//!
//! Decoding checks the checksum first, then every length against the bytes
//! left and the configuration (a file from another `season_bucket_s` is
//! refused, not reinterpreted), and every number for finiteness. Only the
//! learnt state is saved: a restarted series has no alert raised.

use lanegate_common::config::MonitorConfig;

use super::model::{Learnt, SeriesModel};
use super::season::Bucket;

/// The file's first bytes.
pub const MAGIC: [u8; 4] = *b"LGBL";

/// The layout's version; bumped when it changes.
pub const VERSION: u16 = 1;

/// Longest series name, in bytes.
pub const NAME_BYTES_MAX: usize = 256;

/// Why bytes are not baselines.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// Too short, or the checksum does not match: truncated or damaged.
    #[error("truncated or damaged (checksum mismatch)")]
    Damaged,
    /// Not a baselines file.
    #[error("not a baselines file (bad magic)")]
    Magic,
    /// Written by another version.
    #[error("version {0}, this build reads {VERSION}")]
    Version(u16),
    /// Written with other buckets than the configuration's.
    #[error("written with {0} s buckets ({1} a week), the configuration has {2} s")]
    Buckets(u32, u32, u32),
    /// More series than `series_max`.
    #[error("{0} series, more than monitor.series_max ({1})")]
    TooMany(u32, u32),
    /// A length or value is out of range.
    #[error("malformed: {0}")]
    Malformed(&'static str),
}

/// Encodes `series` (name, model) as the baselines file's bytes.
pub fn encode<'a>(
    cfg: &MonitorConfig,
    series: impl IntoIterator<Item = (&'a str, &'a SeriesModel)>,
) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&cfg.season_bucket_s.to_le_bytes());
    put_u32(&mut out, cfg.week_buckets());
    put_u32(&mut out, cfg.day_buckets());
    let count_at = out.len();
    out.extend_from_slice(&0u32.to_le_bytes());
    let mut count = 0u32;
    for (name, m) in series {
        let name = truncate(name);
        // At most NAME_BYTES_MAX (256) bytes: fits.
        let len = u16::try_from(name.len()).unwrap_or(u16::MAX);
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(name.as_bytes());
        let l = &m.learnt;
        for v in [l.level, l.abs_dev, l.interval_s] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        out.extend_from_slice(&l.last_unix_s.unwrap_or(i64::MIN).to_le_bytes());
        out.extend_from_slice(&l.samples.to_le_bytes());
        out.extend_from_slice(&l.tail.to_le_bytes());
        for b in m.profile.week.iter().chain(m.profile.day.iter()) {
            out.extend_from_slice(&b.offset.to_le_bytes());
            out.extend_from_slice(&b.abs_dev.to_le_bytes());
            out.extend_from_slice(&b.samples.to_le_bytes());
        }
        count += 1;
    }
    out[count_at..count_at + 4].copy_from_slice(&count.to_le_bytes());
    let sum = fnv1a(&out);
    out.extend_from_slice(&sum.to_le_bytes());
    out
}

/// Decodes the baselines file's bytes into (name, model) pairs built with
/// `cfg`. Any bytes at all: an error, never a panic.
pub fn decode(
    cfg: &MonitorConfig,
    bytes: &[u8],
) -> Result<Vec<(String, SeriesModel)>, DecodeError> {
    let Some(body_len) = bytes.len().checked_sub(8) else {
        return Err(DecodeError::Damaged);
    };
    let (body, sum) = bytes.split_at(body_len);
    if fnv1a(body).to_le_bytes() != sum {
        return Err(DecodeError::Damaged);
    }
    let mut r = Reader(body);
    if r.take(4)? != MAGIC {
        return Err(DecodeError::Magic);
    }
    let version = r.u16()?;
    if version != VERSION {
        return Err(DecodeError::Version(version));
    }
    let (bucket_s, week, day) = (r.u32()?, r.u32()?, r.u32()?);
    if bucket_s != cfg.season_bucket_s
        || week as usize != cfg.week_buckets()
        || day as usize != cfg.day_buckets()
    {
        return Err(DecodeError::Buckets(bucket_s, week, cfg.season_bucket_s));
    }
    let count = r.u32()?;
    if count > cfg.series_max {
        return Err(DecodeError::TooMany(count, cfg.series_max));
    }
    let mut out = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let len = usize::from(r.u16()?);
        if len > NAME_BYTES_MAX {
            return Err(DecodeError::Malformed("series name too long"));
        }
        let name = std::str::from_utf8(r.take(len)?)
            .map_err(|_| DecodeError::Malformed("series name not UTF-8"))?
            .to_owned();
        let mut m = SeriesModel::new(cfg);
        let (level, abs_dev, interval_s) = (r.f64()?, r.f64()?, r.f64()?);
        let last = r.i64()?;
        let samples = r.u64()?;
        let tail = r.f64()?;
        let sane = level.is_finite()
            && abs_dev.is_finite()
            && abs_dev >= 0.0
            && interval_s.is_finite()
            && interval_s >= 0.0
            && tail.is_finite()
            && tail > 0.0;
        if !sane {
            return Err(DecodeError::Malformed("model state out of range"));
        }
        m.learnt = Learnt {
            level,
            abs_dev,
            interval_s,
            last_unix_s: (last != i64::MIN).then_some(last),
            samples,
            tail,
        };
        let profile = &mut m.profile;
        for b in profile.week.iter_mut().chain(profile.day.iter_mut()) {
            *b = Bucket {
                offset: r.f64()?,
                abs_dev: r.f64()?,
                samples: r.u32()?,
            };
        }
        if !m.profile.is_sane() {
            return Err(DecodeError::Malformed("bucket out of range"));
        }
        out.push((name, m));
    }
    if !r.0.is_empty() {
        return Err(DecodeError::Malformed("bytes after the last series"));
    }
    Ok(out)
}

fn put_u32(out: &mut Vec<u8>, v: usize) {
    out.extend_from_slice(&u32::try_from(v).unwrap_or(u32::MAX).to_le_bytes());
}

/// At most [`NAME_BYTES_MAX`] bytes, cut at a character boundary.
fn truncate(name: &str) -> &str {
    let mut end = name.len().min(NAME_BYTES_MAX);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}

/// FNV-1a, 64 bits: enough to tell a torn or damaged file, not a defence
/// against a forger (whoever can write the file can write the sum).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if self.0.len() < n {
            return Err(DecodeError::Malformed("truncated"));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], DecodeError> {
        let mut a = [0; N];
        a.copy_from_slice(self.take(N)?);
        Ok(a)
    }

    fn u16(&mut self) -> Result<u16, DecodeError> {
        self.array().map(u16::from_le_bytes)
    }

    fn u32(&mut self) -> Result<u32, DecodeError> {
        self.array().map(u32::from_le_bytes)
    }

    fn u64(&mut self) -> Result<u64, DecodeError> {
        self.array().map(u64::from_le_bytes)
    }

    fn i64(&mut self) -> Result<i64, DecodeError> {
        self.array().map(i64::from_le_bytes)
    }

    fn f64(&mut self) -> Result<f64, DecodeError> {
        self.array().map(f64::from_le_bytes)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn trained(cfg: &MonitorConfig, base: f64) -> SeriesModel {
        let mut m = SeriesModel::new(cfg);
        for i in 0..2_000i64 {
            m.observe(i * 300, base + (i % 24) as f64);
        }
        m
    }

    #[test]
    fn a_round_trip_keeps_what_was_learnt() {
        let cfg = MonitorConfig::default();
        let a = trained(&cfg, 10.0);
        let b = trained(&cfg, 500.0);
        let bytes = encode(
            &cfg,
            [("connections", &a), ("messages_in{lane=\"bulk\"}", &b)],
        );
        let back = decode(&cfg, &bytes).unwrap();
        assert_eq!(back.len(), 2);
        assert_eq!(back[0].0, "connections");
        assert_eq!(back[1].0, "messages_in{lane=\"bulk\"}");
        assert_eq!(back[0].1.learnt, a.learnt);
        assert_eq!(back[1].1.profile, b.profile);
        // The restored model carries on as the original does.
        let (mut x, mut y) = (a.clone(), back[0].1.clone());
        for i in 2_000..2_100i64 {
            let v = 10.0 + (i % 24) as f64;
            assert_eq!(x.observe(i * 300, v), y.observe(i * 300, v));
        }
        assert_eq!(decode(&cfg, &encode(&cfg, [])).unwrap().len(), 0);
    }

    #[test]
    fn damage_and_mismatches_are_refused() {
        let cfg = MonitorConfig::default();
        let m = trained(&cfg, 1.0);
        let bytes = encode(&cfg, [("s", &m)]);
        let mut bad = bytes.clone();
        bad[40] ^= 1;
        assert_eq!(decode(&cfg, &bad).unwrap_err(), DecodeError::Damaged);
        assert_eq!(
            decode(&cfg, &bytes[..bytes.len() - 1]).unwrap_err(),
            DecodeError::Damaged
        );
        assert_eq!(decode(&cfg, &[]).unwrap_err(), DecodeError::Damaged);
        let other = MonitorConfig {
            season_bucket_s: 1_800,
            ..MonitorConfig::default()
        };
        assert!(matches!(
            decode(&other, &bytes),
            Err(DecodeError::Buckets(3_600, 168, 1_800))
        ));
        let small = MonitorConfig {
            series_max: 0,
            ..MonitorConfig::default()
        };
        assert_eq!(
            decode(&small, &bytes).unwrap_err(),
            DecodeError::TooMany(1, 0)
        );
        // A NaN that passes the checksum is still refused.
        let mut nan = SeriesModel::new(&cfg);
        nan.learnt.level = f64::NAN;
        assert!(matches!(
            decode(&cfg, &encode(&cfg, [("n", &nan)])),
            Err(DecodeError::Malformed(_))
        ));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4_096)) {
            let _ = decode(&MonitorConfig::default(), &bytes);
        }

        /// Valid framing and checksum around arbitrary contents: the
        /// checks past the checksum are exercised too.
        #[test]
        fn arbitrary_bodies_with_a_valid_sum_never_panic(
            body in proptest::collection::vec(any::<u8>(), 0..8_192),
            count in 0u32..4,
        ) {
            let mut b = MAGIC.to_vec();
            b.extend_from_slice(&VERSION.to_le_bytes());
            b.extend_from_slice(&3_600u32.to_le_bytes());
            b.extend_from_slice(&168u32.to_le_bytes());
            b.extend_from_slice(&24u32.to_le_bytes());
            b.extend_from_slice(&count.to_le_bytes());
            b.extend_from_slice(&body);
            let sum = fnv1a(&b);
            b.extend_from_slice(&sum.to_le_bytes());
            let _ = decode(&MonitorConfig::default(), &b);
        }
    }
}

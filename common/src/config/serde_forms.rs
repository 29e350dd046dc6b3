//! How values are written in the file where serde's derived form does not
//! fit: core sets (`"auto"` or a list), buffer counts (`"auto"` or a
//! number), addresses that may be `"off"` (TOML has no null), and lane
//! limits whose missing fields keep their own lane's default.

use std::fmt;

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use super::{BufCount, CoreSet, LaneLimit, LaneLimits};

impl Serialize for CoreSet {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            CoreSet::Auto => s.serialize_str("auto"),
            CoreSet::List(cores) => cores.serialize(s),
        }
    }
}

impl<'de> Deserialize<'de> for CoreSet {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct CoreSetVisitor;

        impl<'de> Visitor<'de> for CoreSetVisitor {
            type Value = CoreSet;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("\"auto\" or a list of core indices such as [0, 1]")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<CoreSet, E> {
                if v == "auto" {
                    Ok(CoreSet::Auto)
                } else {
                    Err(E::invalid_value(de::Unexpected::Str(v), &self))
                }
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<CoreSet, A::Error> {
                let mut cores = Vec::new();
                while let Some(core) = seq.next_element()? {
                    cores.push(core);
                }
                Ok(CoreSet::List(cores))
            }
        }

        d.deserialize_any(CoreSetVisitor)
    }
}

impl Serialize for BufCount {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            BufCount::Auto => s.serialize_str("auto"),
            BufCount::Count(n) => s.serialize_u32(*n),
        }
    }
}

impl<'de> Deserialize<'de> for BufCount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct BufCountVisitor;

        impl Visitor<'_> for BufCountVisitor {
            type Value = BufCount;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("\"auto\" or a number of buffers")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<BufCount, E> {
                if v == "auto" {
                    Ok(BufCount::Auto)
                } else {
                    Err(E::invalid_value(de::Unexpected::Str(v), &self))
                }
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<BufCount, E> {
                u32::try_from(v)
                    .map(BufCount::Count)
                    .map_err(|_| E::invalid_value(de::Unexpected::Signed(v), &self))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<BufCount, E> {
                u32::try_from(v)
                    .map(BufCount::Count)
                    .map_err(|_| E::invalid_value(de::Unexpected::Unsigned(v), &self))
            }
        }

        d.deserialize_any(BufCountVisitor)
    }
}

/// `LaneLimits` as written in the file: each lane's fields optional, filled
/// from that lane's own default.
#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub(super) struct LaneLimitsPatch {
    critical: LaneLimitPatch,
    high: LaneLimitPatch,
    normal: LaneLimitPatch,
    bulk: LaneLimitPatch,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct LaneLimitPatch {
    rate_per_s: Option<u32>,
    burst: Option<u32>,
}

impl LaneLimitPatch {
    fn over(self, default: LaneLimit) -> LaneLimit {
        LaneLimit {
            rate_per_s: self.rate_per_s.unwrap_or(default.rate_per_s),
            burst: self.burst.unwrap_or(default.burst),
        }
    }
}

impl From<LaneLimitsPatch> for LaneLimits {
    fn from(p: LaneLimitsPatch) -> Self {
        let d = LaneLimits::default();
        LaneLimits {
            critical: p.critical.over(d.critical),
            high: p.high.over(d.high),
            normal: p.normal.over(d.normal),
            bulk: p.bulk.over(d.bulk),
        }
    }
}

/// `Option<SocketAddr>` written as an address or `"off"`, since TOML has
/// no null.
pub(super) mod addr_or_off {
    use std::net::SocketAddr;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(
        v: &Option<SocketAddr>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match v {
            Some(addr) => s.collect_str(addr),
            None => s.serialize_str("off"),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<SocketAddr>, D::Error> {
        let text = String::deserialize(d)?;
        if text == "off" {
            return Ok(None);
        }
        text.parse().map(Some).map_err(|_| {
            serde::de::Error::custom(format!(
                "`{text}` is not an address; write \"127.0.0.1:9464\" or \"off\""
            ))
        })
    }
}

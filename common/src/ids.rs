//! Identifiers that cross component boundaries.
//!
//! Each is a newtype so that a zone id can never be passed where a player id
//! is expected. Widths are part of the wire protocol (`docs/protocol.md`):
//! player and session ids are 64-bit, zone ids 32-bit, key ids 32-bit.

use std::fmt;

use serde::{Deserialize, Serialize};

macro_rules! id_type {
    ($(#[$meta:meta])* $name:ident($inner:ty)) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub $inner);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "{}", self.0)
            }
        }

        impl From<$inner> for $name {
            fn from(v: $inner) -> Self {
                Self(v)
            }
        }
    };
}

id_type!(
    /// A player, as named by the game's login backend in the ticket.
    PlayerId(u64)
);
id_type!(
    /// A zone: a world region, a match or a room. Owned by one shard at a time.
    ZoneId(u32)
);
id_type!(
    /// One QUIC session on the gateway, unique for the life of the process.
    SessionId(u64)
);
id_type!(
    /// A ticket signing key, so that several keys can be live during rotation.
    KeyId(u32)
);
id_type!(
    /// A shard worker (one per shard core).
    ShardId(u16)
);
id_type!(
    /// A gateway core (one pinned thread, one socket, one QUIC endpoint).
    CoreId(u16)
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_display_their_number() {
        assert_eq!(PlayerId(42).to_string(), "42");
        assert_eq!(ZoneId::from(7).to_string(), "7");
    }

    #[test]
    fn ids_serialize_as_bare_numbers() {
        #[derive(Serialize, Deserialize, PartialEq, Debug)]
        struct W {
            zone: ZoneId,
        }
        let text = toml::to_string(&W { zone: ZoneId(9) }).unwrap();
        assert_eq!(text.trim(), "zone = 9");
        assert_eq!(toml::from_str::<W>(&text).unwrap(), W { zone: ZoneId(9) });
    }
}

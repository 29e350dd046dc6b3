//! `lanegate ticket`: mints a session ticket, as a game backend would, with
//! the same [`KeySet`] code the gateway verifies with.

use std::time::{SystemTime, UNIX_EPOCH};

use lanegate_common::ids::{KeyId, PlayerId, ZoneId};
use lanegate_common::ticket::{DEV_KEY_ID, KeySet, LIFETIME_S_MAX_DEFAULT, Ticket};
use tracing::warn;

use super::CliError;
use super::args::TicketArgs;
use crate::load;

const KEY_ID_DEFAULT: KeyId = KeyId(1);

/// Mints the ticket `args` describe and prints it.
pub fn run(args: &TicketArgs) -> Result<(), CliError> {
    let ttl_s = args.ttl.as_secs();
    if ttl_s == 0 {
        return Err(CliError::Flag {
            flag: "--ttl".to_owned(),
            message: "--ttl must be at least 1s".to_owned(),
        });
    }
    if ttl_s > LIFETIME_S_MAX_DEFAULT {
        warn!(
            ttl_s,
            "the ticket lives longer than {LIFETIME_S_MAX_DEFAULT} s: gateways with the default \
             tickets.ttl_max_s will refuse it"
        );
    }
    let now_s = match args.now {
        Some(now) => now,
        None => unix_now_s()?,
    };
    let (keys, key_id) = match &args.secret_file {
        Some(path) => {
            let key_id = args.key_id.map_or(KEY_ID_DEFAULT, KeyId);
            let secret = load::secret(path, "--secret-file")?;
            (KeySet::new(vec![(key_id, secret)])?, key_id)
        }
        None => {
            warn!(
                "signing with the built-in DEV key (id {DEV_KEY_ID}): its secret is public, so \
                 only gateways running without [tickets] keys accept this ticket"
            );
            (KeySet::dev(), DEV_KEY_ID)
        }
    };
    let expires_at_s = now_s.checked_add(ttl_s).ok_or_else(|| CliError::Flag {
        flag: "--ttl".to_owned(),
        message: "--now plus --ttl overflows".to_owned(),
    })?;
    let ticket = Ticket {
        key_id,
        player: PlayerId(args.player),
        zone: ZoneId(args.zone),
        issued_at_s: now_s,
        expires_at_s,
    };
    println!("{}", keys.mint(&ticket)?);
    Ok(())
}

/// Seconds since the Unix epoch, by the system clock.
pub(super) fn unix_now_s() -> Result<u64, CliError> {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .map_err(|_| CliError::ClockBefore1970)
}

//! `lanegate ticket`: mints a session ticket, as a game backend would, with
//! the same [`KeySet`] code the gateway verifies with.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use lanegate_common::ids::{KeyId, PlayerId, ZoneId};
use lanegate_common::ticket::{DEV_KEY_ID, KeySet, LIFETIME_S_MAX_DEFAULT, Ticket};
use tracing::warn;

use crate::cli::TicketArgs;
use lanegate_gateway::load;

/// Key id used with `--secret-file` when `--key-id` is not given: real key
/// ids start at 1, as `[[tickets.keys]]` requires.
const KEY_ID_DEFAULT: KeyId = KeyId(1);

/// Mints the ticket `args` describe and prints its text form on stdout.
pub fn run(args: &TicketArgs) -> anyhow::Result<()> {
    let ttl_s = args.ttl.as_secs();
    if ttl_s == 0 {
        bail!("--ttl must be at least 1s");
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
        None => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .context("the system clock is before 1970")?
            .as_secs(),
    };
    let (keys, key_id) = match &args.secret_file {
        Some(path) => {
            let key_id = args.key_id.map_or(KEY_ID_DEFAULT, KeyId);
            let secret = load::secret(path, "--secret-file")?;
            let keys = KeySet::new(vec![(key_id, secret)]).context("building the key set")?;
            (keys, key_id)
        }
        None => {
            warn!(
                "signing with the built-in DEV key (id {DEV_KEY_ID}): its secret is public, so \
                 only gateways running without [tickets] keys accept this ticket"
            );
            (KeySet::dev(), DEV_KEY_ID)
        }
    };
    let ticket = Ticket {
        key_id,
        player: PlayerId(args.player),
        zone: ZoneId(args.zone),
        issued_at_s: now_s,
        expires_at_s: now_s
            .checked_add(ttl_s)
            .context("--now plus --ttl overflows")?,
    };
    println!("{}", keys.mint(&ticket)?);
    Ok(())
}

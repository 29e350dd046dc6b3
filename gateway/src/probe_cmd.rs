//! `lanegate probe`: per-lane round-trip time and loss against a running
//! gateway, with the client SDK's diagnostic echo probe.
//!
//! Without `--ticket` a dev ticket is minted (public dev key, one hour),
//! which only gateways without `[tickets]` keys accept: the quick start's
//! `lanegate serve` on one terminal, `lanegate probe --server ADDR
//! --fingerprint HEX` on another. Exits 0 only if every lane answered.

use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail};
use lanegate_client::{ConnectOptions, ServerVerify};
use lanegate_common::ids::{PlayerId, ZoneId};
use lanegate_common::ticket::{DEV_KEY_ID, KeySet, Ticket};

use crate::cli::ProbeArgs;

/// Lifetime of a minted dev ticket, in seconds: far beyond one probe.
const DEV_TICKET_TTL_S: u64 = 3600;

/// Runs the probe `args` describe and prints its report.
pub fn run(args: &ProbeArgs) -> anyhow::Result<()> {
    let ticket = match &args.ticket {
        Some(ticket) => ticket.clone(),
        None => dev_ticket(args.player, args.zone)?,
    };
    let verify = match &args.fingerprint {
        Some(hex) => ServerVerify::fingerprint_hex(hex).context("--fingerprint")?,
        None => ServerVerify::InsecureNoVerify,
    };
    let opts = ConnectOptions::new(args.server, args.server_name.clone(), ticket, verify);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the probe's runtime")?;
    let report = runtime
        .block_on(lanegate_client::probe(opts, args.count, args.interval))
        .with_context(|| format!("probing {}", args.server))?;
    print!("{report}");
    if !report.all_lanes_answered() {
        bail!("not every lane answered");
    }
    Ok(())
}

fn dev_ticket(player: u64, zone: u32) -> anyhow::Result<String> {
    let now_s = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .context("the system clock is before 1970")?
        .as_secs();
    let ticket = Ticket {
        key_id: DEV_KEY_ID,
        player: PlayerId(player),
        zone: ZoneId(zone),
        issued_at_s: now_s,
        expires_at_s: now_s + DEV_TICKET_TTL_S,
    };
    Ok(KeySet::dev().mint(&ticket)?)
}

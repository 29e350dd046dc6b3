//! `lanegate probe`: per-lane round-trip time and loss against a running
//! gateway, with the client SDK's diagnostic echo probe.
//!
//! Without `--ticket` a dev ticket is minted (public dev key, one hour),
//! which only gateways without `[tickets]` keys accept: the quick start's
//! `lanegate serve` on one terminal, `lanegate probe --server ADDR
//! --fingerprint HEX` on another. Exits 0 only if every lane answered.

use lanegate_client::{ConnectOptions, ServerVerify};
use lanegate_common::ids::{PlayerId, ZoneId};
use lanegate_common::ticket::{DEV_KEY_ID, KeySet, Ticket};

use super::CliError;
use super::args::ProbeArgs;
use super::ticket::unix_now_s;

const DEV_TICKET_TTL_S: u64 = 3600;

/// Probes the gateway `args` name and prints the per-lane report.
pub fn run(args: &ProbeArgs) -> Result<(), CliError> {
    let ticket = match &args.ticket {
        Some(ticket) => ticket.clone(),
        None => dev_ticket(args.player, args.zone)?,
    };
    let verify = match &args.fingerprint {
        Some(hex) => ServerVerify::fingerprint_hex(hex).map_err(|e| CliError::FlagValue {
            flag: "--fingerprint".to_owned(),
            source: Box::new(e),
        })?,
        None => ServerVerify::InsecureNoVerify,
    };
    let opts = ConnectOptions::new(args.server, args.server_name.clone(), ticket, verify);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|source| CliError::Io {
            what: "starting the probe's runtime".to_owned(),
            source,
        })?;
    let report = runtime
        .block_on(lanegate_client::probe(opts, args.count, args.interval))
        .map_err(|source| CliError::Probe {
            server: args.server,
            source,
        })?;
    print!("{report}");
    if !report.all_lanes_answered() {
        return Err(CliError::LanesSilent);
    }
    Ok(())
}

fn dev_ticket(player: u64, zone: u32) -> Result<String, CliError> {
    let now_s = unix_now_s()?;
    let ticket = Ticket {
        key_id: DEV_KEY_ID,
        player: PlayerId(player),
        zone: ZoneId(zone),
        issued_at_s: now_s,
        expires_at_s: now_s + DEV_TICKET_TTL_S,
    };
    Ok(KeySet::dev().mint(&ticket)?)
}

//! Everything `serve` and `config check` read from the host: the config
//! file, the number of cores, the ticket secrets. The schema and its checks
//! live in `lanegate_common::config`; this module only does the IO and
//! attaches file names to errors.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use lanegate_common::config::{
    Config, ConfigError, GameConfig, HostInfo, LogFormat, StateDir, TicketsConfig,
    parse_game_config,
};
use lanegate_common::ticket::{KeySet, Secret, TicketError};

/// Why configuration (or a file it names) could not be loaded. `Display`
/// gives the context (the file); the cause is the `source`, so report it
/// with its chain (`lanegate_gateway::cli` prints every cause).
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// A file could not be read.
    #[error("cannot read {}", path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// What the OS said.
        source: io::Error,
    },
    /// The configuration is invalid; `source` names the field.
    #[error("{origin}")]
    Invalid {
        /// The file name, or "built-in defaults".
        origin: String,
        /// The field and the fix.
        source: ConfigError,
    },
    /// A ticket secret file holds no usable secret.
    #[error("{field} ({})", path.display())]
    BadSecret {
        /// Dotted field naming the file, or the command-line flag.
        field: String,
        /// The file.
        path: PathBuf,
        /// Why the secret was refused.
        source: TicketError,
    },
}

impl LoadError {
    /// Process exit code: 1 for IO, 2 for content that must be fixed.
    pub fn exit_code(&self) -> u8 {
        match self {
            LoadError::Unreadable { .. } => 1,
            LoadError::Invalid { .. } | LoadError::BadSecret { .. } => 2,
        }
    }
}

/// The host as the configuration sees it.
pub fn host_info() -> HostInfo {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    HostInfo { cores }
}

/// Command-line settings that override the file.
#[derive(Clone, Copy, Debug, Default)]
pub struct Overrides {
    /// `--listen`: `gateway.listen`.
    pub listen: Option<SocketAddr>,
    /// `--metrics-listen`: `observability.metrics_listen` (inner `None` is
    /// `off`).
    pub metrics_listen: Option<Option<SocketAddr>>,
    /// `--log-format`: `observability.log_format`.
    pub log_format: Option<LogFormat>,
}

/// Reads (or takes the embedded default), applies `overrides`, and
/// validates for `host`.
pub fn config(
    path: Option<&Path>,
    overrides: Overrides,
    host: &HostInfo,
) -> Result<Config, LoadError> {
    let (origin, mut config) = match path {
        None => ("built-in defaults".to_owned(), Config::default()),
        Some(path) => {
            let origin = path.display().to_string();
            let text = std::fs::read_to_string(path).map_err(|source| LoadError::Unreadable {
                path: path.to_owned(),
                source,
            })?;
            let config = Config::from_toml_str(&text).map_err(|source| LoadError::Invalid {
                origin: origin.clone(),
                source,
            })?;
            (origin, config)
        }
    };
    if let Some(listen) = overrides.listen {
        config.gateway.listen = listen;
    }
    if let Some(metrics_listen) = overrides.metrics_listen {
        config.observability.metrics_listen = metrics_listen;
    }
    if let Some(log_format) = overrides.log_format {
        config.observability.log_format = log_format;
    }
    config
        .validate(host)
        .map_err(|source| LoadError::Invalid { origin, source })?;
    Ok(config)
}

/// The game's `[game]` table of the file at `path` (the game's defaults
/// without a file), read into its own type and validated; errors name the
/// field like every other section's.
pub fn game_config<C: GameConfig>(path: Option<&Path>) -> Result<C, LoadError> {
    let (origin, text) = match path {
        None => ("built-in defaults".to_owned(), String::new()),
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|source| LoadError::Unreadable {
                path: path.to_owned(),
                source,
            })?;
            (path.display().to_string(), text)
        }
    };
    parse_game_config(&text).map_err(|source| LoadError::Invalid { origin, source })
}

/// The directory `gateway.state_dir` names on this host, and whether the
/// operator named it (an error there is fatal) or it came from `"auto"` (an
/// error there only costs persistence). `None` for `"off"`, or for
/// `"auto"` with none of `$STATE_DIRECTORY`, `$XDG_STATE_HOME`, `$HOME`.
pub fn state_dir(dir: &StateDir) -> Option<(PathBuf, bool)> {
    let var = |name| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    match dir {
        StateDir::Off => None,
        StateDir::Path(path) => Some((path.clone(), true)),
        StateDir::Auto => {
            // systemd's StateDirectory= may list several, colon-separated.
            let systemd = var("STATE_DIRECTORY").and_then(|v| {
                let text = v.to_string_lossy().into_owned();
                text.split(':').next().map(PathBuf::from)
            });
            let xdg = || var("XDG_STATE_HOME").map(|d| d.join("lanegate"));
            let home = || var("HOME").map(|h| h.join(".local/state/lanegate"));
            systemd.or_else(xdg).or_else(home).map(|d| (d, false))
        }
    }
}

/// The ticket key set `tickets` describes: its key files read, or the dev
/// key set when it names none. `tickets` must have passed
/// [`Config::validate`].
pub fn ticket_keys(tickets: &TicketsConfig) -> Result<KeySet, LoadError> {
    if tickets.keys.is_empty() {
        return Ok(KeySet::dev().with_lifetime_s_max(tickets.ttl_max_s));
    }
    let mut keys = Vec::with_capacity(tickets.keys.len());
    for (i, key) in tickets.keys.iter().enumerate() {
        let field = format!("tickets.keys[{i}].secret_file");
        keys.push((key.id, secret(&key.secret_file, &field)?));
    }
    let set = KeySet::new(keys).expect("Config::validate refuses duplicate key ids");
    Ok(set.with_lifetime_s_max(tickets.ttl_max_s))
}

/// Reads a secret file; `field` names it in errors.
pub fn secret(path: &Path, field: &str) -> Result<Secret, LoadError> {
    let bytes = std::fs::read(path).map_err(|source| LoadError::Unreadable {
        path: path.to_owned(),
        source,
    })?;
    Secret::from_file_bytes(&bytes).map_err(|source| LoadError::BadSecret {
        field: field.to_owned(),
        path: path.to_owned(),
        source,
    })
}

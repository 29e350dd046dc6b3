//! Why a configuration was refused: every error names the dotted field at
//! fault, and validation errors say how to fix it.

/// Why a configuration was refused. Every variant names the dotted field.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The text is not TOML, a value has the wrong type, or a field is
    /// unknown.
    #[error("{}{message} (line {line}, column {column})", field_prefix(.field))]
    Parse {
        /// Dotted path of the offending field, e.g. `gateway.cores`; empty
        /// when the error is not inside any field.
        field: String,
        /// 1-based line of the error.
        line: usize,
        /// 1-based column (in characters) of the error.
        column: usize,
        /// What is wrong, from the TOML parser.
        message: String,
    },
    /// A value is out of range, or contradicts another value or the host.
    #[error("{field}: {message}")]
    Invalid {
        /// Dotted path of the offending field, e.g. `shards.tick_budget_us`.
        field: String,
        /// What is wrong and how to fix it.
        message: String,
    },
}

impl ConfigError {
    /// The dotted path of the field at fault (empty for a syntax error
    /// outside any field).
    pub fn field(&self) -> &str {
        match self {
            ConfigError::Parse { field, .. } | ConfigError::Invalid { field, .. } => field,
        }
    }

    pub(crate) fn invalid(field: &str, message: impl Into<String>) -> Self {
        ConfigError::Invalid {
            field: field.to_owned(),
            message: message.into(),
        }
    }
}

/// Refuses 0 for a count, rate or duration that must be positive.
pub(super) fn non_zero(field: &str, value: u64) -> Result<(), ConfigError> {
    if value == 0 {
        Err(ConfigError::invalid(field, "must be at least 1"))
    } else {
        Ok(())
    }
}

fn field_prefix(field: &str) -> String {
    if field.is_empty() {
        String::new()
    } else {
        format!("{field}: ")
    }
}

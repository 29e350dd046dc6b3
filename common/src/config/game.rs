//! `[game]`: the table a game owns. The gateway's schema does not know its
//! fields; it accepts any table there ([`GameSection`]), and the game's own
//! binary reads it into the game's own type with [`parse_game_config`],
//! with the same errors as every other section (the dotted field and the
//! line, or the field and the fix).

use serde::de::{DeserializeOwned, IgnoredAny};
use serde::{Deserialize, Deserializer};

use super::ConfigError;
use super::span;

/// The `[game]` table as the gateway's schema sees it: opaque. Its contents
/// are checked by the game's own [`GameConfig`], not here.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GameSection;

impl<'de> Deserialize<'de> for GameSection {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        IgnoredAny::deserialize(d).map(|_| GameSection)
    }
}

/// A game's own configuration, read from `[game]`: serde decides the form
/// (use `#[serde(deny_unknown_fields, default)]` so a typo is refused and
/// every field is optional), [`GameConfig::validate`] the ranges.
pub trait GameConfig: DeserializeOwned + Default + Send + Sync + 'static {
    /// Checks ranges and relations between fields. The error names the
    /// field (without the `game.` prefix) and says how to fix it.
    fn validate(&self) -> Result<(), GameConfigError> {
        Ok(())
    }
}

/// Why a game refused its `[game]` table.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct GameConfigError {
    /// The field inside `[game]`, e.g. `arena_size`.
    pub field: String,
    /// What is wrong and how to fix it.
    pub message: String,
}

/// No fields: what the built-in games take. A `[game]` table with any
/// field in it is refused.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoGameConfig {}

impl GameConfig for NoGameConfig {}

/// Reads `text`'s `[game]` table into `C` (its `Default` when the file has
/// none) and validates it. Other sections are not looked at: parse them
/// with [`Config::from_toml_str`](super::Config::from_toml_str).
pub fn parse_game_config<C: GameConfig>(text: &str) -> Result<C, ConfigError> {
    #[derive(Deserialize)]
    #[serde(bound = "C: GameConfig")]
    struct File<C> {
        #[serde(default)]
        game: C,
    }
    let file: File<C> = toml::from_str(text).map_err(|e| span::parse_error(text, &e))?;
    file.game.validate().map_err(|e| ConfigError::Invalid {
        field: format!("game.{}", e.field),
        message: e.message,
    })?;
    Ok(file.game)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    #[derive(Debug, Default, PartialEq, Deserialize)]
    #[serde(deny_unknown_fields, default)]
    struct Tag {
        arena_m: u32,
        rounds: u32,
    }

    impl GameConfig for Tag {
        fn validate(&self) -> Result<(), GameConfigError> {
            if self.arena_m == 0 {
                return Err(GameConfigError {
                    field: "arena_m".to_owned(),
                    message: "must be at least 1; try 100".to_owned(),
                });
            }
            Ok(())
        }
    }

    const FILE: &str = "[gateway]\nlisten = \"127.0.0.1:0\"\n\n[game]\narena_m = 80\n";

    #[test]
    fn the_gateway_schema_accepts_a_game_table_and_the_game_reads_it() {
        assert!(Config::from_toml_str(FILE).is_ok());
        let tag: Tag = parse_game_config(FILE).unwrap();
        assert_eq!(
            tag,
            Tag {
                arena_m: 80,
                rounds: 0
            }
        );
    }

    #[test]
    fn game_errors_name_the_field() {
        let typo = "[game]\narena_m = 80\nrouns = 3\n";
        let err = parse_game_config::<Tag>(typo).unwrap_err();
        assert_eq!(err.field(), "game.rouns", "{err}");
        assert!(err.to_string().contains("line 3"), "{err}");
        let zero = "[game]\narena_m = 0\n";
        let err = parse_game_config::<Tag>(zero).unwrap_err();
        assert_eq!(err.to_string(), "game.arena_m: must be at least 1; try 100");
    }

    #[test]
    fn built_in_games_take_no_fields() {
        assert!(parse_game_config::<NoGameConfig>("[gateway]\n").is_ok());
        assert!(parse_game_config::<NoGameConfig>("[game]\n").is_ok());
        let err = parse_game_config::<NoGameConfig>("[game]\nspeed = 2\n").unwrap_err();
        assert_eq!(err.field(), "game.speed", "{err}");
    }
}

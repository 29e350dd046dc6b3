//! `[game]` for Tag: the rules, in the same TOML file as the gateway's
//! sections. The zones are the gateway's (`shards.zones`), which the game
//! learns from `GameStart`: each zone's portal leads to the next zone of
//! that set, the last one's back to the first. Every field is optional; a typo is refused with its name and
//! line, a value out of range with its name and the fix.

use lanegate_common::config::{GameConfig, GameConfigError};
use serde::Deserialize;

/// Tag's rules.
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TagConfig {
    /// The side of a zone's square, in metres. Default 40: a few seconds
    /// to cross at `speed_mps`. At most 600 (positions travel in
    /// centimetres as `u16`).
    pub arena_m: f32,
    /// Top running speed, metres per second. Default 6.
    pub speed_mps: f32,
    /// How far a player sees: others within this distance are in their
    /// positions message. Default 15 m.
    pub view_m: f32,
    /// "It" tags a player this close. Default 1 m.
    pub tag_radius_m: f32,
    /// Width of the portal strip along the east edge. Default 2 m.
    pub portal_m: f32,
    /// After a tag, the new "it" cannot tag for this long (no tag-backs).
    /// Default 1000 ms.
    pub tag_cooldown_ms: u32,
}

impl Default for TagConfig {
    fn default() -> Self {
        Self {
            arena_m: 40.0,
            speed_mps: 6.0,
            view_m: 15.0,
            tag_radius_m: 1.0,
            portal_m: 2.0,
            tag_cooldown_ms: 1000,
        }
    }
}

/// The largest arena: positions are `u16` centimetres.
pub const ARENA_M_MAX: f32 = 600.0;

impl GameConfig for TagConfig {
    fn validate(&self) -> Result<(), GameConfigError> {
        let err = |field: &str, message: String| {
            Err(GameConfigError {
                field: field.to_owned(),
                message,
            })
        };
        if !(self.arena_m.is_finite() && (10.0..=ARENA_M_MAX).contains(&self.arena_m)) {
            return err("arena_m", format!("must be 10 to {ARENA_M_MAX} metres"));
        }
        for (field, v) in [("speed_mps", self.speed_mps), ("view_m", self.view_m)] {
            if !(v.is_finite() && v > 0.0) {
                return err(field, "must be a positive number".to_owned());
            }
        }
        if !(self.tag_radius_m.is_finite()
            && self.tag_radius_m > 0.0
            && self.tag_radius_m < self.arena_m)
        {
            return err(
                "tag_radius_m",
                "must be above 0 and below arena_m".to_owned(),
            );
        }
        if !(self.portal_m.is_finite()
            && self.portal_m > 0.0
            && self.portal_m <= self.arena_m / 4.0)
        {
            return err(
                "portal_m",
                format!(
                    "must be above 0 and at most arena_m / 4 ({})",
                    self.arena_m / 4.0
                ),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lanegate_common::config::parse_game_config;

    #[test]
    fn the_defaults_are_valid_and_a_file_overrides_what_it_names() {
        assert_eq!(TagConfig::default().validate(), Ok(()));
        let c: TagConfig = parse_game_config("[game]\narena_m = 80\n").unwrap();
        assert_eq!(c.arena_m, 80.0);
        assert_eq!(c.speed_mps, 6.0);
    }

    #[test]
    fn errors_name_the_field() {
        let e = parse_game_config::<TagConfig>("[game]\nportal_m = 30\n").unwrap_err();
        assert_eq!(e.field(), "game.portal_m", "{e}");
        let e = parse_game_config::<TagConfig>("[game]\nspeed = 3\n").unwrap_err();
        assert_eq!(e.field(), "game.speed", "{e}");
    }
}

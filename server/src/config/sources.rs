//! The readers: the raw text of each declared setting from the
//! environment and the settings file (TOML), with the place it came from,
//! so that every message names the variable or the file and key.

use std::collections::BTreeMap;
use std::path::Path;

use super::ConfigError;
use super::settings::{Kind, PASSPHRASE_VARIABLES, SETTINGS, Setting, Unset, declared, env_name};
use super::values::parse_duration;

/// One raw value with the place it came from, for messages.
pub(super) struct Raw {
    pub(super) value: String,
    pub(super) origin: String,
}

/// The raw values of the declared settings: the environment wins over the file.
pub(super) struct Sources {
    values: BTreeMap<&'static str, Raw>,
}

impl Sources {
    /// The declared settings set in `env` (the process environment in
    /// production) over those of the optional TOML file, and a warning
    /// for each unknown `QUIVER_*` variable.
    pub(super) fn read(
        config_file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<(Self, Vec<String>), ConfigError> {
        let mut values = match config_file {
            Some(path) => read_file(path)?,
            None => BTreeMap::new(),
        };
        let mut warnings = Vec::new();
        for (name, value) in env {
            let Some(rest) = name.strip_prefix("QUIVER_") else {
                continue;
            };
            let lower = rest.to_ascii_lowercase();
            match SETTINGS.iter().find(|setting| setting.key == lower) {
                Some(setting) => {
                    values.insert(
                        setting.key,
                        Raw {
                            value,
                            origin: name,
                        },
                    );
                }
                None if rest.starts_with("TEST_")
                    || PASSPHRASE_VARIABLES.contains(&name.as_str()) => {}
                None => warnings.push(format!(
                    "unknown setting {name} is ignored (known: {})",
                    SETTINGS
                        .iter()
                        .map(Setting::env_name)
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            }
        }
        Ok((Self { values }, warnings))
    }

    pub(super) fn get(&self, key: &str) -> Option<&Raw> {
        self.values.get(key)
    }

    pub(super) fn error(&self, key: &str, problem: impl Into<String>) -> ConfigError {
        let setting = self
            .get(key)
            .map_or_else(|| env_name(key), |raw| raw.origin.clone());
        ConfigError {
            setting,
            problem: problem.into(),
        }
    }

    /// The trimmed text set for `key`, if any; set but empty is an error.
    pub(super) fn text(&self, key: &str) -> Result<Option<String>, ConfigError> {
        declared(key);
        match self.get(key).map(|raw| raw.value.trim().to_owned()) {
            Some(value) if value.is_empty() => Err(self.error(key, "is empty")),
            other => Ok(other),
        }
    }

    /// The text set for `key`, else its declared default value.
    pub(super) fn text_or_default(&self, key: &str) -> Result<Option<String>, ConfigError> {
        Ok(self.text(key)?.or(match declared(key).default {
            Unset::Value(value) => Some(value.to_owned()),
            Unset::Described(_) => None,
        }))
    }

    /// A setting with a default value: its text, set or default.
    pub(super) fn required(&self, key: &str) -> Result<String, ConfigError> {
        Ok(self
            .text_or_default(key)?
            .unwrap_or_else(|| panic!("the setting {key} is declared without a default value")))
    }

    pub(super) fn duration(&self, key: &str) -> Result<chrono::Duration, ConfigError> {
        debug_assert_eq!(declared(key).kind, Kind::Duration, "{key}");
        let text = self.required(key)?;
        parse_duration(&text).ok_or_else(|| {
            self.error(
                key,
                format!(
                    "{text:?} is not a duration (expected a number and s, m, h or d, e.g. 12h)"
                ),
            )
        })
    }

    pub(super) fn flag(&self, key: &str) -> Result<bool, ConfigError> {
        debug_assert_eq!(declared(key).kind, Kind::Flag, "{key}");
        match self.required(key)?.as_str() {
            "false" | "0" | "no" | "off" => Ok(false),
            "true" | "1" | "yes" | "on" => Ok(true),
            other => Err(self.error(
                key,
                format!("{other:?} is not a yes/no value (expected true or false)"),
            )),
        }
    }
}

/// The settings file's values: every key declared, each value text, a
/// number or true/false.
fn read_file(path: &Path) -> Result<BTreeMap<&'static str, Raw>, ConfigError> {
    let whole_file = |problem: String| ConfigError {
        setting: format!("--config {}", path.display()),
        problem,
    };
    let text = std::fs::read_to_string(path)
        .map_err(|e| whole_file(format!("cannot read the file: {e}")))?;
    let table: toml::Table = toml::from_str(&text).map_err(|e| {
        whole_file(format!(
            "is not a valid Quiver settings file: {}",
            e.message()
        ))
    })?;
    let mut values = BTreeMap::new();
    for (key, value) in table {
        let Some(setting) = SETTINGS.iter().find(|setting| setting.key == key) else {
            return Err(whole_file(format!(
                "is not a valid Quiver settings file: unknown setting `{key}` (known: {})",
                SETTINGS
                    .iter()
                    .map(|setting| setting.key)
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        };
        let origin = format!("{key} (in {})", path.display());
        let value = match value {
            toml::Value::String(text) => text,
            toml::Value::Integer(number) => number.to_string(),
            toml::Value::Boolean(flag) => flag.to_string(),
            other => {
                return Err(ConfigError {
                    setting: origin,
                    problem: format!(
                        "is {}; expected text, a whole number or true/false",
                        other.type_str()
                    ),
                });
            }
        };
        values.insert(setting.key, Raw { value, origin });
    }
    Ok(values)
}

//! Form pieces several pages share.

use serde::Deserialize;

/// A form's optional time (`datetime-local`, read as UTC): `Ok(None)` when empty, `Err` when it
/// is no time.
pub fn optional_utc_time(raw: &str) -> Result<Option<u64>, ()> {
    match raw.trim() {
        "" => Ok(None),
        raw => crate::timestamps::parse_utc_minute(raw).map(Some).ok_or(()),
    }
}

/// An on/off switch button.
#[derive(Deserialize)]
pub struct ToggleForm {
    #[serde(default)]
    pub enabled: String,
}

impl ToggleForm {
    /// `on` or `off`, as the toggle buttons send it; anything else is a tampered form.
    pub fn parse(&self) -> Option<bool> {
        match self.enabled.as_str() {
            "on" => Some(true),
            "off" => Some(false),
            _ => None,
        }
    }
}

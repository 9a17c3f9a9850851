//! Form pieces several pages share.

use serde::Deserialize;

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

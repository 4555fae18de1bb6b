//! What `configure` accepts: business hours and GPU families, as a JSON object.
//!
//! Settings are partial: a missing key keeps its default, an unknown key is an error,
//! and every error names the offending setting. The host shows `describe`'s
//! `default-settings` (the JSON of [`Settings::default`]) in `minewatch detections --json`.

use serde::{Deserialize, Serialize};

/// The settings of `ec2-gpu-off-hours`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// First business hour, UTC (0-23).
    pub start_hour: u32,
    /// Hour at which business hours end, UTC (1-24, after `start_hour`).
    pub end_hour: u32,
    /// Business days: `mon`, `tue`, `wed`, `thu`, `fri`, `sat`, `sun`.
    pub business_days: Vec<String>,
    /// Instance families that count as GPU or ML accelerators: the letters before the
    /// generation digit of an instance type (`g` for `g4dn.xlarge`).
    pub gpu_families: Vec<String>,
}

/// Day names in the order of `chrono::Weekday::num_days_from_monday`.
pub const DAY_NAMES: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

impl Default for Settings {
    fn default() -> Self {
        let strings = |list: &[&str]| list.iter().map(|s| s.to_string()).collect();
        Settings {
            start_hour: 8,
            end_hour: 18,
            business_days: strings(&DAY_NAMES[..5]),
            gpu_families: strings(&["p", "g", "inf", "trn", "dl"]),
        }
    }
}

impl Settings {
    /// Parses and checks a (partial) settings object.
    ///
    /// # Errors
    /// A message naming the offending setting.
    pub fn from_json(json: &str) -> Result<Settings, String> {
        // Step 1: let serde fill in defaults and reject unknown keys and wrong types.
        let settings: Settings =
            serde_json::from_str(json).map_err(|e| format!("invalid settings: {e}"))?;
        // Step 2: the checks serde cannot express.
        if settings.start_hour > 23 {
            return Err(format!(
                "start_hour: must be 0-23, not {}",
                settings.start_hour
            ));
        }
        if settings.end_hour <= settings.start_hour || settings.end_hour > 24 {
            return Err(format!(
                "end_hour: must be after start_hour ({}) and at most 24, not {}",
                settings.start_hour, settings.end_hour
            ));
        }
        if let Some(day) = settings
            .business_days
            .iter()
            .find(|d| !DAY_NAMES.contains(&d.as_str()))
        {
            return Err(format!(
                "business_days: {day:?} is not one of {}",
                DAY_NAMES.join(", ")
            ));
        }
        if let Some(family) = settings
            .gpu_families
            .iter()
            .find(|f| f.is_empty() || !f.bytes().all(|b| b.is_ascii_lowercase()))
        {
            return Err(format!(
                "gpu_families: {family:?} is not a family name (lowercase letters, like \"g\")"
            ));
        }
        Ok(settings)
    }

    /// The settings as the JSON object `configure` accepts.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("settings serialize")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_object_gives_the_defaults() {
        assert_eq!(Settings::from_json("{}").unwrap(), Settings::default());
        let json = Settings::default().to_json();
        assert_eq!(Settings::from_json(&json).unwrap(), Settings::default());
    }

    #[test]
    fn missing_keys_keep_their_defaults() {
        let s = Settings::from_json(r#"{"end_hour": 20, "business_days": ["sat"]}"#).unwrap();
        assert_eq!((s.start_hour, s.end_hour), (8, 20));
        assert_eq!(s.business_days, ["sat"]);
        assert_eq!(s.gpu_families, Settings::default().gpu_families);
    }

    #[test]
    fn errors_name_the_setting() {
        for (json, setting) in [
            (r#"{"start_hour": 24}"#, "start_hour"),
            (r#"{"start_hour": 9, "end_hour": 9}"#, "end_hour"),
            (r#"{"end_hour": 25}"#, "end_hour"),
            (r#"{"business_days": ["monday"]}"#, "business_days"),
            (r#"{"gpu_families": ["G"]}"#, "gpu_families"),
            (r#"{"gpu_families": [""]}"#, "gpu_families"),
            (r#"{"start_hours": 8}"#, "start_hours"),
            (r#"{"end_hour": "18"}"#, "invalid type"),
        ] {
            let error = Settings::from_json(json).unwrap_err();
            assert!(error.contains(setting), "{json}: {error}");
        }
    }
}

//! Detector settings: what `configure` accepts, with defaults and validation.
//!
//! Settings arrive as a JSON object (the host converts its TOML config). Every key is
//! optional; unknown keys and out-of-range values are errors naming the setting.

use serde::{Deserialize, Serialize};

use crate::catalog::Cloud;

/// How a principal is named.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Identity {
    /// IAM user ARN; for assumed roles the role ARN, so sessions are one principal.
    Role,
    /// `userIdentity.arn` exactly as logged (Splunk parity: every session is a user).
    Arn,
}

/// Whether baselines are shared by all accounts or kept per account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// One baseline for every account (Splunk parity).
    Global,
    /// One baseline per account: `recipientAccountId`, Google project, Azure subscription.
    Account,
}

/// What a launch-rate window counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CountMode {
    /// Successful RunInstances calls (Splunk parity).
    Calls,
    /// Instances launched (response items).
    Instances,
}

/// Which windows a rate rule compares a count with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Population {
    /// Every (window, principal) count (Splunk parity).
    Global,
    /// Only the same principal's windows.
    Principal,
}

/// All settings of the detector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// The clouds whose audit logs are judged (`aws`, `gcp`, `azure`); events of the
    /// others are passed over. Each detection setting below applies to its kind in
    /// every cloud (`unseen_region` to `ec2-unseen-region`, `gcp-unseen-region` and
    /// `azure-unseen-region`).
    pub clouds: Vec<Cloud>,
    /// How principals are named.
    pub identity: Identity,
    /// Global or per-account baselines.
    pub scope: Scope,
    /// Instance type assumed when an event has none (Splunk fills `m1.small`); off when absent.
    pub fill_instance_type: Option<String>,
    /// How launches are counted for the rate rules.
    pub rate: RateSettings,
    /// `ec2-unseen-region`.
    pub unseen_region: UnseenSettings,
    /// `ec2-unseen-ami`.
    pub unseen_ami: UnseenSettings,
    /// `ec2-unseen-instance-type`.
    pub unseen_instance_type: UnseenSettings,
    /// `ec2-unseen-user`.
    pub unseen_user: UnseenSettings,
    /// `ec2-launch-spike`.
    pub launch_spike: SpikeSettings,
    /// `ec2-launch-spike-density`.
    pub launch_spike_density: DensitySettings,
}

/// Settings shared by both launch-rate rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RateSettings {
    /// Calls or instances.
    pub count: CountMode,
    /// Width of the aligned UTC windows.
    pub window_minutes: u32,
    /// How long an `eventID` is remembered to drop CloudTrail's duplicate deliveries.
    pub dedup_hours: u32,
}

/// Settings of one previously-unseen-value detection.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UnseenSettings {
    /// Off disables alerting and learning.
    pub enabled: bool,
    /// The set must have learned this long before a new key alerts.
    pub learning_days: u32,
    /// A key unseen this long is new again; 0 never forgets.
    pub forget_days: u32,
    /// Keys that never alert (still learned).
    pub allow_keys: Vec<String>,
    /// Principals whose launches never alert (still learned).
    pub allow_principals: Vec<String>,
}

/// Settings of the standard-deviation launch-rate rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SpikeSettings {
    /// Off disables the rule.
    pub enabled: bool,
    /// Trailing history the statistics come from.
    pub history_days: u32,
    /// Standard deviations above the mean.
    pub k: f64,
    /// A window count below this never alerts (guards near-zero deviations).
    pub min_count: u64,
    /// Windows of history needed before the rule alerts.
    pub min_history_windows: u64,
    /// Which windows form the history.
    pub population: Population,
    /// Principals that never alert.
    pub allow_principals: Vec<String>,
}

/// Settings of the density (MLTK DensityFunction) launch-rate rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DensitySettings {
    /// Off disables the rule.
    pub enabled: bool,
    /// Trailing history the distribution is fitted on.
    pub history_days: u32,
    /// Alert when the upper-tail probability of the count is below this.
    pub tail_probability: f64,
    /// A window count below this never alerts.
    pub min_count: u64,
    /// Windows of history needed before the rule alerts.
    pub min_history_windows: u64,
    /// From this many history windows on, the empirical distribution is used instead
    /// of the exponential fit.
    pub empirical_min_windows: u64,
    /// Which windows form the history.
    pub population: Population,
    /// Principals that never alert.
    pub allow_principals: Vec<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            clouds: Cloud::ALL.to_vec(),
            identity: Identity::Role,
            scope: Scope::Global,
            fill_instance_type: None,
            rate: RateSettings::default(),
            unseen_region: UnseenSettings::learning(14),
            unseen_ami: UnseenSettings::learning(7),
            unseen_instance_type: UnseenSettings::learning(14),
            unseen_user: UnseenSettings::learning(7),
            launch_spike: SpikeSettings::default(),
            launch_spike_density: DensitySettings::default(),
        }
    }
}

impl Default for RateSettings {
    fn default() -> Self {
        RateSettings {
            count: CountMode::Calls,
            window_minutes: 10,
            dedup_hours: 24,
        }
    }
}

impl UnseenSettings {
    fn learning(days: u32) -> Self {
        UnseenSettings {
            enabled: true,
            learning_days: days,
            forget_days: 90,
            allow_keys: Vec::new(),
            allow_principals: Vec::new(),
        }
    }
}

impl Default for UnseenSettings {
    fn default() -> Self {
        UnseenSettings::learning(14)
    }
}

impl Default for SpikeSettings {
    fn default() -> Self {
        SpikeSettings {
            enabled: true,
            history_days: 30,
            k: 4.0,
            min_count: 10,
            min_history_windows: 24,
            population: Population::Global,
            allow_principals: Vec::new(),
        }
    }
}

impl Default for DensitySettings {
    fn default() -> Self {
        DensitySettings {
            enabled: true,
            history_days: 90,
            tail_probability: 0.0005,
            min_count: 10,
            min_history_windows: 24,
            empirical_min_windows: 2000,
            population: Population::Global,
            allow_principals: Vec::new(),
        }
    }
}

impl Settings {
    /// Parses and validates a JSON settings object; the error starts with the setting's
    /// dotted path (`launch_spike.k: ...`).
    pub fn from_json(json: &str) -> Result<Settings, String> {
        let settings: Settings = if json.trim().is_empty() {
            Settings::default()
        } else {
            let de = &mut serde_json::Deserializer::from_str(json);
            serde_path_to_error::deserialize(de).map_err(|e| {
                // The setting's path, and serde's message without its position in the
                // JSON the host made from the TOML table (meaningless to the user).
                let message = e.inner().to_string();
                let message = message
                    .split(" at line ")
                    .next()
                    .unwrap_or(&message)
                    .to_string();
                match e.path().to_string().as_str() {
                    "." => message,
                    path => format!("{path}: {message}"),
                }
            })?
        };
        settings.validate()?;
        Ok(settings)
    }

    /// The settings as a JSON object.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("settings serialize")
    }

    fn validate(&self) -> Result<(), String> {
        if self.clouds.is_empty() {
            return Err("clouds must name at least one of aws, gcp, azure".into());
        }
        let rate = &self.rate;
        if rate.window_minutes == 0 || 1440 % rate.window_minutes != 0 {
            return Err(format!(
                "rate.window_minutes must divide a day (1440) evenly, got {}",
                rate.window_minutes
            ));
        }
        let spike = &self.launch_spike;
        if !(spike.k.is_finite() && spike.k > 0.0) {
            return Err(format!("launch_spike.k must be positive, got {}", spike.k));
        }
        if spike.history_days == 0 {
            return Err("launch_spike.history_days must be at least 1".into());
        }
        let density = &self.launch_spike_density;
        if !(density.tail_probability > 0.0 && density.tail_probability < 1.0) {
            return Err(format!(
                "launch_spike_density.tail_probability must be between 0 and 1, got {}",
                density.tail_probability
            ));
        }
        if density.history_days == 0 {
            return Err("launch_spike_density.history_days must be at least 1".into());
        }
        if let Some(fill) = &self.fill_instance_type
            && fill.trim().is_empty()
        {
            return Err("fill_instance_type must not be empty (leave it out to disable)".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_object_gives_defaults() {
        assert_eq!(Settings::from_json("{}").unwrap(), Settings::default());
        assert_eq!(Settings::from_json("").unwrap(), Settings::default());
    }

    #[test]
    fn partial_settings_keep_other_defaults() {
        let s = Settings::from_json(r#"{"identity":"arn","launch_spike":{"k":3.5}}"#).unwrap();
        assert_eq!(s.identity, Identity::Arn);
        assert_eq!(s.launch_spike.k, 3.5);
        assert_eq!(s.launch_spike.min_count, 10);
        assert_eq!(s.unseen_ami.learning_days, 7);
    }

    #[test]
    fn errors_name_the_setting() {
        let e = Settings::from_json(r#"{"unseen_region":{"learning_dayz":3}}"#).unwrap_err();
        assert!(e.contains("learning_dayz"), "{e}");
        let e =
            Settings::from_json(r#"{"launch_spike_density":{"tail_probability":2}}"#).unwrap_err();
        assert!(e.contains("launch_spike_density.tail_probability"), "{e}");
        let e = Settings::from_json(r#"{"rate":{"window_minutes":7}}"#).unwrap_err();
        assert!(e.contains("rate.window_minutes"), "{e}");
    }

    #[test]
    fn round_trips_through_json() {
        let s = Settings::default();
        assert_eq!(Settings::from_json(&s.to_json()).unwrap(), s);
    }
}

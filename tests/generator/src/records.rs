//! CloudTrail record plumbing: seeded identifiers, timestamps, the resolved
//! caller of one API call and the common record envelope every event shares.

use chrono::{DateTime, Datelike, Timelike, Utc};
use rand::RngExt;
use rand_chacha::ChaCha8Rng;
use serde_json::{Map, Value, json};

/// The generator's random source.
pub(crate) type Rng = ChaCha8Rng;

const HEX: &[u8] = b"0123456789abcdef";
const HEX_UPPER: &[u8] = b"0123456789ABCDEF";
/// Alphabet of IAM unique ids and access key ids.
pub(crate) const KEY_CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
/// Alphabet of base64 text.
pub(crate) const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
/// Alphabet of S3 object-name suffixes.
pub(crate) const ALNUM: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// Seconds in a day.
pub(crate) const DAY: i64 = 86_400;
/// Seconds in an hour.
pub(crate) const HOUR: i64 = 3_600;
/// Seconds in a minute.
pub(crate) const MINUTE: i64 = 60;

/// `n` random characters of `alphabet`.
pub(crate) fn chars(rng: &mut Rng, alphabet: &[u8], n: usize) -> String {
    (0..n)
        .map(|_| alphabet[rng.random_range(0..alphabet.len())] as char)
        .collect()
}

/// `n` random lowercase hex digits.
pub(crate) fn hex(rng: &mut Rng, n: usize) -> String {
    chars(rng, HEX, n)
}

/// An EC2-style resource id such as `i-0123456789abcdef0` (prefix, dash, 17 hex digits).
pub(crate) fn aws_id(rng: &mut Rng, prefix: &str) -> String {
    format!("{prefix}-0{}", hex(rng, 16))
}

/// A random (version 4) UUID.
pub(crate) fn uuid(rng: &mut Rng) -> String {
    let mut a: u128 = rng.random();
    a = (a & !(0xF << 76)) | (0x4 << 76);
    a = (a & !(0x3 << 62)) | (0x2 << 62);
    let s = format!("{a:032x}");
    format!(
        "{}-{}-{}-{}-{}",
        &s[0..8],
        &s[8..12],
        &s[12..16],
        &s[16..20],
        &s[20..32]
    )
}

/// A stable 64-bit hash of some strings (FNV-1a followed by a splitmix finaliser).
pub(crate) fn hash(parts: &[&str]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in part.bytes().chain([0xff]) {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    splitmix(h)
}

fn splitmix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// `n` characters of `alphabet` derived deterministically from `seed` (no RNG draw).
pub(crate) fn derived(seed: u64, alphabet: &[u8], n: usize) -> String {
    let mut x = seed;
    (0..n)
        .map(|_| {
            x = splitmix(x);
            alphabet[(x % alphabet.len() as u64) as usize] as char
        })
        .collect()
}

/// Formats epoch seconds as CloudTrail's `YYYY-MM-DDTHH:MM:SSZ`.
pub(crate) fn fmt_time(t: i64) -> String {
    let d = datetime(t);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z",
        d.year(),
        d.month(),
        d.day(),
        d.hour(),
        d.minute(),
        d.second()
    )
}

/// Epoch seconds as a UTC date-time.
pub(crate) fn datetime(t: i64) -> DateTime<Utc> {
    DateTime::<Utc>::from_timestamp(t, 0).expect("scenario time within chrono's range")
}

/// Formats epoch seconds the way STS prints credential expirations (`Jan 6, 2026, 3:04:05 AM`).
pub(crate) fn fmt_expiration(t: i64) -> String {
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let d = datetime(t);
    let (pm, h12) = d.hour12();
    format!(
        "{} {}, {}, {}:{:02}:{:02} {}",
        MONTHS[d.month0() as usize],
        d.day(),
        d.year(),
        h12,
        d.minute(),
        d.second(),
        if pm { "PM" } else { "AM" }
    )
}

/// `RunInstances` → `run-instances`, as the AWS CLI names commands.
pub(crate) fn kebab(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('-');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// The resolved caller of one API call: identity block, source address and user agent.
#[derive(Clone)]
pub(crate) struct Caller {
    /// The `userIdentity` object.
    pub identity: Value,
    /// `sourceIPAddress`.
    pub ip: String,
    /// `userAgent`; an AWS CLI agent ending in `md/command#` gets the command appended.
    pub agent: String,
    /// Whether the call came through the console (adds `sessionCredentialFromConsole`).
    pub console: bool,
    /// Whether an AWS service made the call (no `tlsDetails`).
    pub service: bool,
}

impl Caller {
    /// A call made by an AWS service on the account's behalf (`userIdentity` without an ARN).
    pub(crate) fn aws_service(invoked_by: &str) -> Self {
        Self {
            identity: json!({"type": "AWSService", "invokedBy": invoked_by}),
            ip: invoked_by.to_string(),
            agent: invoked_by.to_string(),
            console: false,
            service: true,
        }
    }
}

/// One API call being turned into a CloudTrail record.
pub(crate) struct Call {
    /// Event time, epoch seconds.
    pub t: i64,
    /// `eventSource`, e.g. `ec2.amazonaws.com`.
    pub source: &'static str,
    /// `eventName`.
    pub name: &'static str,
    /// `awsRegion`.
    pub region: &'static str,
    /// `recipientAccountId`.
    pub account: &'static str,
    /// `requestParameters`.
    pub request: Value,
    /// `responseElements`.
    pub response: Value,
    /// `readOnly`.
    pub read_only: bool,
    /// Data event (S3 object, Lambda invoke) rather than management event.
    pub data: bool,
    /// `errorCode` and `errorMessage` of a failed call.
    pub error: Option<(&'static str, String)>,
    /// Further top-level fields (resources, additionalEventData, ...).
    pub extra: Vec<(&'static str, Value)>,
}

impl Call {
    /// A successful management call with no parameters.
    pub(crate) fn new(
        t: i64,
        source: &'static str,
        name: &'static str,
        region: &'static str,
        account: &'static str,
    ) -> Self {
        Self {
            t,
            source,
            name,
            region,
            account,
            request: Value::Null,
            response: Value::Null,
            read_only: false,
            data: false,
            error: None,
            extra: Vec::new(),
        }
    }

    /// Sets `requestParameters`.
    pub(crate) fn req(mut self, v: Value) -> Self {
        self.request = v;
        self
    }

    /// Sets `responseElements`.
    pub(crate) fn resp(mut self, v: Value) -> Self {
        self.response = v;
        self
    }

    /// Marks the call read-only.
    pub(crate) fn read(mut self) -> Self {
        self.read_only = true;
        self
    }

    /// Marks the call a data event.
    pub(crate) fn data_event(mut self) -> Self {
        self.data = true;
        self
    }

    /// Makes the call a failure with the given code and message.
    pub(crate) fn fail(mut self, code: &'static str, message: impl Into<String>) -> Self {
        self.error = Some((code, message.into()));
        self
    }

    /// Adds a top-level field.
    pub(crate) fn with(mut self, key: &'static str, v: Value) -> Self {
        self.extra.push((key, v));
        self
    }

    /// Builds the CloudTrail record (draws requestID and eventID from `rng`).
    pub(crate) fn build(self, caller: Caller, rng: &mut Rng) -> Value {
        let service = self.source.split('.').next().unwrap_or(self.source);
        let mut m = Map::new();
        let version = match service {
            "ec2" | "s3" | "iam" | "monitoring" | "ssm" | "signin" => "1.09",
            _ => "1.08",
        };
        m.insert("eventVersion".into(), version.into());
        m.insert("userIdentity".into(), caller.identity);
        m.insert("eventTime".into(), fmt_time(self.t).into());
        m.insert("eventSource".into(), self.source.into());
        m.insert("eventName".into(), self.name.into());
        m.insert("awsRegion".into(), self.region.into());
        m.insert("sourceIPAddress".into(), caller.ip.into());
        let agent = if caller.agent.ends_with("md/command#") {
            format!("{}{service}.{}", caller.agent, kebab(self.name))
        } else {
            caller.agent
        };
        m.insert("userAgent".into(), agent.into());
        if let Some((code, message)) = self.error {
            m.insert("errorCode".into(), code.into());
            m.insert("errorMessage".into(), message.into());
        }
        let host = match service {
            "iam" | "signin" => format!("{service}.amazonaws.com"),
            "s3" => self
                .request
                .get("Host")
                .and_then(Value::as_str)
                .map_or_else(
                    || format!("s3.{}.amazonaws.com", self.region),
                    str::to_string,
                ),
            _ => format!("{service}.{}.amazonaws.com", self.region),
        };
        m.insert("requestParameters".into(), self.request);
        m.insert("responseElements".into(), self.response);
        let request_id = if service == "s3" {
            chars(rng, HEX_UPPER, 16)
        } else {
            uuid(rng)
        };
        m.insert("requestID".into(), request_id.into());
        m.insert("eventID".into(), uuid(rng).into());
        m.insert("readOnly".into(), self.read_only.into());
        let event_type = if service == "signin" {
            "AwsConsoleSignIn"
        } else {
            "AwsApiCall"
        };
        m.insert("eventType".into(), event_type.into());
        m.insert("managementEvent".into(), (!self.data).into());
        m.insert("recipientAccountId".into(), self.account.into());
        m.insert(
            "eventCategory".into(),
            if self.data { "Data" } else { "Management" }.into(),
        );
        if !caller.service {
            m.insert(
                "tlsDetails".into(),
                json!({
                    "tlsVersion": "TLSv1.3",
                    "cipherSuite": "TLS_AES_128_GCM_SHA256",
                    "clientProvidedHostHeader": host,
                }),
            );
        }
        if caller.console {
            m.insert("sessionCredentialFromConsole".into(), "true".into());
        }
        for (k, v) in self.extra {
            m.insert(k.into(), v);
        }
        Value::Object(m)
    }
}

//! The injected incidents and the expected alerts they imply.
//!
//! 1. Alice's stolen access key probes GPU quotas, then bursts 45 GPU
//!    launches (never-seen region, AMI and type) in one aligned 10-minute
//!    window: unseen region, AMI and type, plus both rate detections.
//! 2. The attacker creates a backdoor IAM user that launches one ordinary
//!    instance: unseen user only.
//! 3. The backdoor user assumes a never-used role in dev across several
//!    sessions that launch ordinary instances: one unseen user (the role).
//! 4. Carol tries a GPU family only with DryRun and refused calls: nothing.
//! 5. CI rolls out a new golden AMI: one unseen AMI (a benign positive).
//!
//! Every expected alert is pushed next to the records that cause it: incident 1 in
//! [`stolen_key`], 2 and 3 in [`persistence`], 4 and 5 in [`benign`].

mod benign;
mod persistence;
mod stolen_key;

use serde_json::{Value, json};

use super::ExpectedAlert;
use super::actors::{GOLDEN_V2_USE1, Principal, World};
use super::records::{Call, Caller, DAY, HOUR, MINUTE, Rng};

/// Source address of the attacker.
pub(crate) const ATTACKER_IP: &str = "198.18.42.77";
/// Region the attacker mines in (never used by the organisation).
pub(crate) const ATTACK_REGION: &str = "ap-northeast-3";
/// GPU instance type the attacker launches.
pub(crate) const ATTACK_TYPE: &str = "p3.16xlarge";
/// Successful RunInstances calls in the attacker's burst.
pub(crate) const BURST_CALLS: u32 = 45;
/// Name of the backdoor IAM user.
pub(crate) const BACKDOOR_USER: &str = "svc-backup-ops";
/// Name of the role the attacker pivots into.
pub(crate) const PIVOT_ROLE: &str = "OrganizationAccountAccessRole";

const ATTACKER_AGENT: &str = "Boto3/1.35.24 md/Botocore#1.35.24 ua/2.0 os/linux#6.1.0-25-cloud-amd64 \
     md/arch#x86_64 lang/python#3.11.2 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.35.24";

/// The golden AMI v2 rollout: from `t` on, normal CI launches in us-east-1 use `ami`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Rollout {
    /// Time of the first launch of the new image.
    pub t: i64,
    /// AMI index of the new image.
    pub ami: usize,
}

/// When the incidents happen: days after day 20, scaled to the scenario length.
pub(crate) struct Schedule {
    start: i64,
    probe_day: u32,
    breach_day: u32,
    pivot_day: u32,
    rollout_day: u32,
}

impl Schedule {
    /// The schedule for a scenario of `days` days (at least 21) starting at `start`.
    pub(crate) fn new(start: i64, days: u32) -> Self {
        assert!(days >= 21, "incidents need days >= 21");
        let span = f64::from(days - 20);
        let at = |f: f64| 20 + (f * span) as u32;
        Self {
            start,
            probe_day: at(0.08),
            breach_day: at(0.18),
            pivot_day: at(0.30),
            rollout_day: at(0.45),
        }
    }

    fn at(&self, day: u32, hour: i64, minute: i64) -> i64 {
        self.start + i64::from(day) * DAY + hour * HOUR + minute * MINUTE
    }

    /// When and what the golden image rollout is.
    pub(crate) fn rollout(&self) -> Rollout {
        Rollout {
            t: self.at(self.rollout_day, 16, 20) + 13,
            ami: GOLDEN_V2_USE1,
        }
    }
}

struct Injector<'a> {
    world: &'a World,
    rng: Rng,
    recs: &'a mut Vec<(i64, Value)>,
    expected: Vec<ExpectedAlert>,
}

/// Appends the incidents' records to `recs` and returns the alerts they must raise.
pub(crate) fn inject(
    world: &World,
    rng: Rng,
    s: &Schedule,
    recs: &mut Vec<(i64, Value)>,
) -> Vec<ExpectedAlert> {
    let mut inj = Injector {
        world,
        rng,
        recs,
        expected: Vec::new(),
    };
    inj.gpu_dry_runs(s);
    let burst_ids = inj.stolen_key(s);
    let backdoor = inj.backdoor_user(s);
    inj.containment(s, &burst_ids);
    inj.role_pivot(s, &backdoor);
    inj.golden_rollout(s);
    inj.expected
}

impl Injector<'_> {
    fn push(&mut self, t: i64, v: Value) {
        self.recs.push((t, v));
    }

    fn expect(&mut self, detection: &str, key: impl Into<String>) {
        self.expected.push(ExpectedAlert::new(detection, key));
    }

    fn attacker(&self, p: &Principal, t: i64, session: &str) -> Caller {
        let mut c = p.caller_from(t, session, ATTACKER_IP);
        c.agent = ATTACKER_AGENT.to_string();
        c
    }

    fn call(&mut self, caller: &Caller, call: Call) {
        let t = call.t;
        let rec = call.build(caller.clone(), &mut self.rng);
        self.push(t, rec);
    }

    fn quota(
        &mut self,
        caller: &Caller,
        t: i64,
        account: &'static str,
        region: &'static str,
        code: &str,
    ) {
        let call = Call::new(
            t,
            "servicequotas.amazonaws.com",
            "GetServiceQuota",
            region,
            account,
        )
        .req(json!({"serviceCode": "ec2", "quotaCode": code}))
        .read();
        self.call(caller, call);
    }
}

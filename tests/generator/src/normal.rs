//! Normal activity: a warm-up that shows every launch value in the first
//! days, daily launches from the recipes (capped per principal and aligned
//! 10-minute window), failed and DryRun launches with arbitrary values,
//! instance lifecycle (terminations, workstation start/stop) and background
//! traffic filling each day up to the requested volume.
//!
//! By construction nothing here is ever expected to alert: every principal,
//! region, AMI and instance type of a successful launch first appears within
//! [`WARM_DAYS`] days, and no principal makes more than [`WINDOW_CAP`]
//! successful launches in one aligned 10-minute window. The one exception is
//! the golden-image rollout handed in as [`Rollout`] (incident 5).

use std::collections::HashMap;

use rand::RngExt;
use rand::seq::SliceRandom;
use serde_json::Value;

use super::actors::{
    ALICE, ASG_DEV, ASG_PROD, Agent, BOB, CAROL, CI, CONTRACTOR, DAVE, GHA, GOLDEN_USE1, How,
    PACKER, USE1, USW2, World,
};
use super::background;
use super::ec2::{self, Change, DRY_RUN_MESSAGE, Denial, Launch};
use super::incidents::Rollout;
use super::records::{DAY, HOUR, MINUTE, Rng, aws_id, datetime, hex};
use chrono::Datelike;

/// Most successful RunInstances calls one principal makes in one aligned 10-minute window.
pub(crate) const WINDOW_CAP: u32 = 3;
/// Length of the rate detections' aligned windows, in seconds.
pub(crate) const WINDOW: i64 = 600;
/// Days within which every normal launch value first appears.
pub(crate) const WARM_DAYS: u32 = 5;

/// The time span and volume of normal activity.
pub(crate) struct Window {
    /// Start of day 0, epoch seconds.
    pub start: i64,
    /// Number of days.
    pub days: u32,
    /// Target records per day.
    pub events_per_day: u32,
}

struct Launched {
    t: i64,
    recipe: usize,
    ids: Vec<String>,
}

struct Gen<'w> {
    world: &'w World,
    rng: Rng,
    win: Window,
    rollout: Option<Rollout>,
    windows: HashMap<(usize, i64), u32>,
    recs: Vec<(i64, Value)>,
    per_day: Vec<u32>,
    launched: Vec<Launched>,
}

/// Generates normal activity as `(eventTime, record)` pairs in no particular order.
pub(crate) fn generate(
    world: &World,
    rng: Rng,
    win: Window,
    rollout: Option<Rollout>,
) -> Vec<(i64, Value)> {
    let days = win.days as usize;
    let mut g = Gen {
        world,
        rng,
        win,
        rollout,
        windows: HashMap::new(),
        recs: Vec::with_capacity(days * 1100),
        per_day: vec![0; days],
        launched: Vec::new(),
    };
    if days == 0 {
        return g.recs;
    }
    let warm = g.warm_up();
    g.daily_launches(&warm);
    g.lifecycle();
    g.workstations();
    g.background();
    g.recs
}

impl Gen<'_> {
    fn push(&mut self, t: i64, v: Value) {
        let day = (t - self.win.start).div_euclid(DAY);
        if let Some(n) = usize::try_from(day)
            .ok()
            .and_then(|d| self.per_day.get_mut(d))
        {
            *n += 1;
        }
        self.recs.push((t, v));
    }

    fn day_start(&self, day: u32) -> i64 {
        self.win.start + i64::from(day) * DAY
    }

    fn end(&self) -> i64 {
        self.day_start(self.win.days)
    }

    /// One launch of every recipe's AMIs and types, spread over the first days; returns launches per day.
    fn warm_up(&mut self) -> Vec<u32> {
        let world = self.world;
        let mut plan = Vec::new();
        for (ri, r) in world.recipes.iter().enumerate() {
            match &r.how {
                How::Direct { amis, types } => {
                    for k in 0..amis.len().max(types.len()) {
                        plan.push((ri, Some((k % amis.len(), k % types.len()))));
                    }
                }
                How::Template(_) => plan.push((ri, None)),
            }
        }
        plan.shuffle(&mut self.rng);
        let warm_days = WARM_DAYS.min(self.win.days).max(1);
        let mut per_day = vec![0; self.win.days as usize];
        for (i, (ri, pick)) in plan.into_iter().enumerate() {
            let day = i as u32 % warm_days;
            let pick = pick.or(Some((0, 0)));
            assert!(
                self.launch(ri, day, pick, 500),
                "warm-up launch could not be scheduled"
            );
            per_day[day as usize] += 1;
        }
        per_day
    }

    fn daily_launches(&mut self, warm: &[u32]) {
        let world = self.world;
        let total: u32 = world.recipes.iter().map(|r| r.weight).sum();
        for day in 0..self.win.days {
            let share = self.rng.random_range(0.011..0.0155);
            let budget = (f64::from(self.win.events_per_day) * share).round() as u32;
            for _ in warm[day as usize]..budget {
                if self.rng.random_bool(0.07) {
                    self.failed_launch(day);
                    continue;
                }
                let mut x = self.rng.random_range(0..total);
                let mut ri = 0;
                for (i, r) in world.recipes.iter().enumerate() {
                    if x < r.weight {
                        ri = i;
                        break;
                    }
                    x -= r.weight;
                }
                self.launch(ri, day, None, 12);
            }
        }
    }

    fn launch_time(&mut self, who: usize, day: u32) -> i64 {
        let base = self.day_start(day);
        let rng = &mut self.rng;
        let secs = match self.world.p(who).agent {
            Agent::Packer => rng.random_range(2 * HOUR..4 * HOUR),
            Agent::AutoScaling if rng.random_bool(0.65) => rng.random_range(11 * HOUR..20 * HOUR),
            Agent::GithubCli | Agent::Terraform if rng.random_bool(0.8) => {
                rng.random_range(13 * HOUR..DAY)
            }
            Agent::AutoScaling | Agent::GithubCli | Agent::Terraform => rng.random_range(0..DAY),
            _ => rng.random_range(13 * HOUR..23 * HOUR + 30 * MINUTE),
        };
        base + secs
    }

    /// The AMI actually used: after the rollout, CI moves to golden v2 and humans half of the time.
    fn rolled(&mut self, ami: usize, who: usize, t: i64) -> usize {
        match self.rollout {
            Some(r) if ami == GOLDEN_USE1 && t >= r.t => match who {
                GHA | CI => r.ami,
                ALICE | DAVE if self.rng.random_bool(0.5) => r.ami,
                _ => ami,
            },
            _ => ami,
        }
    }

    fn session(&mut self, who: usize) -> String {
        let rng = &mut self.rng;
        match who {
            GHA => format!(
                "gha-deploy-{}",
                rng.random_range(12_000_000_000u64..13_000_000_000)
            ),
            CI => format!("terraform-{}", rng.random_range(100_000u32..999_999)),
            PACKER => format!("packer-build-{}", rng.random_range(1000u32..9999)),
            ASG_PROD | ASG_DEV => "AutoScaling".to_string(),
            _ => String::new(),
        }
    }

    /// Schedules one successful launch of recipe `ri` on `day`, within the window cap.
    fn launch(&mut self, ri: usize, day: u32, pick: Option<(usize, usize)>, tries: u32) -> bool {
        let world = self.world;
        let recipe = &world.recipes[ri];
        let who = recipe.who;
        let mut slot = None;
        for _ in 0..tries {
            let t = self.launch_time(who, day);
            let used = self.windows.entry((who, t.div_euclid(WINDOW))).or_insert(0);
            if *used < WINDOW_CAP {
                *used += 1;
                slot = Some(t);
                break;
            }
        }
        let Some(t) = slot else {
            return false;
        };
        let p = world.p(who);
        let session = self.session(who);
        let caller = p.caller(t, &session);
        let net = world.net(p.account, recipe.region);
        let count = self.rng.random_range(1..=recipe.max_count);
        let launch = match &recipe.how {
            How::Direct { amis, types } => {
                let (ai, ti) = pick.unwrap_or_else(|| {
                    (
                        self.rng.random_range(0..amis.len()),
                        self.rng.random_range(0..types.len()),
                    )
                });
                let ami = self.rolled(amis[ai], who, t);
                let mut l = Launch::direct(
                    t,
                    caller,
                    p.account,
                    recipe.region,
                    net,
                    &world.amis[ami].id,
                    types[ti],
                );
                l.images[0].1 = count;
                if pick.is_none() && amis.len() >= 2 && self.rng.random_bool(0.12) {
                    // One request item per image, as CloudTrail's instancesSet allows.
                    let other = self.rolled(amis[(ai + 1) % amis.len()], who, t);
                    if other != ami {
                        l.images.push((world.amis[other].id.clone(), 1));
                    }
                }
                l.key_name = Some(match who {
                    GHA => "deploy".to_string(),
                    CI => "ci-ephemeral".to_string(),
                    PACKER => format!("packer_{}", hex(&mut self.rng, 24)),
                    _ => format!("{}-laptop", p.name),
                });
                l.name_tag = Some(match who {
                    GHA => "web-prod".to_string(),
                    CI => format!("ci-{}", hex(&mut self.rng, 6)),
                    PACKER => "Packer Builder".to_string(),
                    _ => format!("{}-scratch", p.name),
                });
                l.user_data = matches!(who, GHA | CI);
                l
            }
            How::Template(ti) => {
                let tpl = &world.templates[*ti];
                let (ami, version) = match self.rollout {
                    Some(r) if *ti == 0 && t >= r.t => (r.ami, tpl.version + 1),
                    _ => (tpl.ami, tpl.version),
                };
                let mut l = Launch::direct(
                    t,
                    caller,
                    p.account,
                    recipe.region,
                    net,
                    &world.amis[ami].id,
                    tpl.itype,
                );
                l.images[0].1 = count;
                l.template = Some((tpl.id.clone(), version, tpl.group));
                l
            }
        };
        let (rec, ids) = ec2::run_instances(&mut self.rng, launch);
        self.push(t, rec);
        self.launched.push(Launched { t, recipe: ri, ids });
        true
    }

    /// A refused or DryRun launch: new regions, types and principals are fine here.
    fn failed_launch(&mut self, day: u32) {
        let world = self.world;
        let rng = &mut self.rng;
        let (who, region, image, itype, code, message): (_, &'static str, _, _, _, String) =
            match rng.random_range(0..5) {
                0 => (
                    CI,
                    USE1,
                    world.amis[GOLDEN_USE1].id.clone(),
                    ["m7i.large", "c7i.xlarge", "m5.large"][rng.random_range(0..3)],
                    "Client.DryRunOperation",
                    DRY_RUN_MESSAGE.to_string(),
                ),
                1 => {
                    let region =
                        ["ap-south-1", "eu-central-1", "ca-central-1"][rng.random_range(0..3)];
                    let msg = ec2::unauthorized_message(
                        rng,
                        &world.p(DAVE).arn(),
                        (world.p(DAVE).account, region),
                        Denial::Scp,
                    );
                    (
                        DAVE,
                        region,
                        aws_id(rng, "ami"),
                        "t3.small",
                        "Client.UnauthorizedOperation",
                        msg,
                    )
                }
                2 => (
                    CAROL,
                    USW2,
                    world.amis[super::actors::UBUNTU_USW2].id.clone(),
                    ["c5.18xlarge", "r5.16xlarge"][rng.random_range(0..2)],
                    "Client.VcpuLimitExceeded",
                    ec2::vcpu_message(64),
                ),
                3 => {
                    let typo = ["t3.mirco", "t2.mirco", "t3.smal"][rng.random_range(0..3)];
                    (
                        BOB,
                        USE1,
                        world.amis[super::actors::AL_USE1].id.clone(),
                        typo,
                        "Client.InvalidParameterValue",
                        format!("Invalid value '{typo}' for InstanceType."),
                    )
                }
                _ => {
                    let p = world.p(CONTRACTOR);
                    let msg = ec2::unauthorized_message(
                        rng,
                        &p.arn(),
                        (p.account, USE1),
                        Denial::NoPolicy,
                    );
                    (
                        CONTRACTOR,
                        USE1,
                        world.amis[super::actors::AL_USE1].id.clone(),
                        "t3.large",
                        "Client.UnauthorizedOperation",
                        msg,
                    )
                }
            };
        let t = self.launch_time(who, day);
        let p = world.p(who);
        let session = self.session(who);
        let mut l = Launch::direct(
            t,
            p.caller(t, &session),
            p.account,
            region,
            world.net(p.account, region),
            &image,
            itype,
        );
        l.error = Some((code, message));
        l.key_name = Some(format!("{}-laptop", p.name));
        let (rec, _) = ec2::run_instances(&mut self.rng, l);
        self.push(t, rec);
    }

    /// Terminations of launched instances by whoever launched them.
    fn lifecycle(&mut self) {
        let world = self.world;
        let end = self.end();
        for l in std::mem::take(&mut self.launched) {
            let recipe = &world.recipes[l.recipe];
            let who = recipe.who;
            let (p, lo, hi) = match who {
                ASG_PROD | ASG_DEV => (0.8, 2 * HOUR, 2 * DAY),
                CI => (0.9, 15 * MINUTE, 4 * HOUR),
                GHA => (0.5, DAY, 4 * DAY),
                PACKER => (1.0, 20 * MINUTE, 50 * MINUTE),
                _ => (0.5, HOUR, 2 * DAY),
            };
            if !self.rng.random_bool(p) {
                continue;
            }
            let t = l.t + self.rng.random_range(lo..hi);
            if t >= end {
                continue;
            }
            let principal = world.p(who);
            let session = self.session(who);
            let caller = principal.caller(t, &session);
            let rec = ec2::change_state(
                &mut self.rng,
                t,
                &caller,
                (principal.account, recipe.region),
                Change::Terminate,
                &l.ids,
            );
            self.push(t, rec);
        }
    }

    /// Developers start their workstations in the morning and stop them at night, on weekdays.
    fn workstations(&mut self) {
        let world = self.world;
        let end = self.end();
        for day in 0..self.win.days {
            let base = self.day_start(day);
            if datetime(base + 12 * HOUR).weekday().number_from_monday() > 5 {
                continue;
            }
            for ws in &world.workstations {
                if !self.rng.random_bool(0.9) {
                    continue;
                }
                let p = world.p(ws.who);
                let ids = [ws.instance.clone()];
                let on = base + 13 * HOUR + 30 * MINUTE + self.rng.random_range(0..90 * MINUTE);
                let off = base + 22 * HOUR + 30 * MINUTE + self.rng.random_range(0..150 * MINUTE);
                for (t, change) in [(on, Change::Start), (off, Change::Stop)] {
                    if t < end {
                        let rec = ec2::change_state(
                            &mut self.rng,
                            t,
                            &p.caller(t, ""),
                            (p.account, ws.region),
                            change,
                            &ids,
                        );
                        self.push(t, rec);
                    }
                }
            }
        }
    }

    /// Fills every day up to the requested volume with background traffic.
    fn background(&mut self) {
        for day in 0..self.win.days {
            let target = self.win.events_per_day;
            let n = target
                .saturating_sub(self.per_day[day as usize])
                .max(target / 2);
            let base = self.day_start(day);
            for _ in 0..n {
                let t = base + background::time_of_day(&mut self.rng);
                let rec = background::event(self.world, &mut self.rng, t);
                self.push(t, rec);
            }
        }
    }
}

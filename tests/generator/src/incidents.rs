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
//! Every expected alert is pushed here, next to the records that cause it.

use rand::RngExt;
use serde_json::{Value, json};

use super::actors::{
    AL_USE1, ALICE, Agent, BOB, CAROL, DEV, GHA, GOLDEN_USE1, GOLDEN_USW2, GOLDEN_V2_USE1, Kind,
    Net, PACKER, PROD, Principal, REDACTED, UBUNTU_USW2, USE1, USW2, World, aws_account_identity,
};
use super::ec2::{self, Change, DRY_RUN_MESSAGE, Denial, EC2, Launch};
use super::normal::WINDOW;
use super::records::{
    B64, Call, Caller, DAY, HOUR, KEY_CHARS, MINUTE, Rng, aws_id, chars, fmt_expiration, hex,
};
use super::{
    ExpectedAlert, LAUNCH_SPIKE, LAUNCH_SPIKE_DENSITY, UNSEEN_AMI, UNSEEN_INSTANCE_TYPE,
    UNSEEN_REGION, UNSEEN_USER,
};

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

    /// Incident 4: GPU capacity tried only with DryRun and refused calls (expected: nothing).
    fn gpu_dry_runs(&mut self, s: &Schedule) {
        let world = self.world;
        let carol = world.p(CAROL);
        let region = "sa-east-1";
        let dlami = aws_id(&mut self.rng, "ami");
        let net = Net::fresh(&mut self.rng, carol.account, region);
        let t0 = s.at(s.probe_day, 16, 20) + self.rng.random_range(0..600);
        let caller = carol.caller(t0, "");
        self.quota(&caller, t0, carol.account, region, "L-DB2E81BA");
        let attempts: [(i64, &'static str, String); 4] = [
            (40, "Client.DryRunOperation", DRY_RUN_MESSAGE.to_string()),
            (95, "Client.DryRunOperation", DRY_RUN_MESSAGE.to_string()),
            (160, "Client.VcpuLimitExceeded", ec2::vcpu_message(32)),
            (
                300,
                "Client.InvalidParameterValue",
                format!("Invalid availability zone: [{region}d]"),
            ),
        ];
        for (dt, code, message) in attempts {
            let t = t0 + dt;
            let mut l = Launch::direct(
                t,
                carol.caller(t, ""),
                carol.account,
                region,
                Some(&net),
                &dlami,
                "g5.12xlarge",
            );
            l.error = Some((code, message));
            l.key_name = Some("carol-laptop".to_string());
            let (rec, _) = ec2::run_instances(&mut self.rng, l);
            self.push(t, rec);
        }
        let t = t0 + 420;
        let call = Call::new(
            t,
            "servicequotas.amazonaws.com",
            "RequestServiceQuotaIncrease",
            region,
            carol.account,
        )
        .req(json!({"serviceCode": "ec2", "quotaCode": "L-DB2E81BA", "desiredValue": 96.0}))
        .resp(json!({"requestedQuota": {
            "id": hex(&mut self.rng, 32),
            "serviceCode": "ec2",
            "quotaCode": "L-DB2E81BA",
            "desiredValue": 96.0,
            "status": "PENDING",
            "requester": carol.arn(),
            "quotaName": "Running On-Demand G and VT instances",
        }}));
        self.call(&carol.caller(t, ""), call);
    }

    /// Incident 1: reconnaissance, probes and a GPU launch burst with Alice's stolen key.
    fn stolen_key(&mut self, s: &Schedule) -> Vec<String> {
        let world = self.world;
        let alice = world.p(ALICE);
        let acct = alice.account;
        let t0 = s.at(s.breach_day, 2, 47) + self.rng.random_range(0..60);
        let c = self.attacker(alice, t0, "");

        self.call(
            &c,
            Call::new(t0, "sts.amazonaws.com", "GetCallerIdentity", USE1, acct).read(),
        );
        self.call(
            &c,
            Call::new(
                t0 + 40,
                "iam.amazonaws.com",
                "ListAttachedUserPolicies",
                USE1,
                acct,
            )
            .req(json!({"userName": alice.name}))
            .read(),
        );
        self.call(
            &c,
            Call::new(t0 + 75, "iam.amazonaws.com", "ListUsers", USE1, acct)
                .req(json!({"maxItems": 100}))
                .read(),
        );
        let rec = ec2::describe(&mut self.rng, t0 + 110, &c, (acct, USE1), "DescribeRegions");
        self.push(t0 + 110, rec);
        for (i, region) in [USE1, ATTACK_REGION, "eu-north-1"].into_iter().enumerate() {
            self.quota(&c, t0 + 150 + 20 * i as i64, acct, region, "L-417A185B");
        }

        // Probes: every one fails, so none may alert.
        let t = t0 + 15 * MINUTE;
        let image = aws_id(&mut self.rng, "ami");
        let mut l = Launch::direct(
            t,
            c.clone(),
            acct,
            USE1,
            world.net(acct, USE1),
            &image,
            "p4d.24xlarge",
        );
        l.error = Some(("Client.VcpuLimitExceeded", ec2::vcpu_message(0)));
        let (rec, _) = ec2::run_instances(&mut self.rng, l);
        self.push(t, rec);

        let t = t0 + 18 * MINUTE;
        let message = ec2::unauthorized_message(
            &mut self.rng,
            &alice.arn(),
            (acct, "eu-north-1"),
            Denial::Scp,
        );
        let mut l = Launch::direct(t, c.clone(), acct, "eu-north-1", None, &image, ATTACK_TYPE);
        l.error = Some(("Client.UnauthorizedOperation", message));
        let (rec, _) = ec2::run_instances(&mut self.rng, l);
        self.push(t, rec);

        let ami = aws_id(&mut self.rng, "ami");
        let net = Net::fresh(&mut self.rng, acct, ATTACK_REGION);
        let key_name = format!("node-{}", hex(&mut self.rng, 4));
        let t = t0 + 21 * MINUTE;
        self.call(
            &c,
            Call::new(t, EC2, "DescribeImages", ATTACK_REGION, acct)
                .req(json!({"imagesSet": {"items": [{"imageId": ami}]}, "filterSet": {}}))
                .read(),
        );
        let call = Call::new(t + 60, EC2, "ImportKeyPair", ATTACK_REGION, acct)
            .req(json!({"keyName": key_name, "publicKeyMaterial": REDACTED}))
            .resp(json!({
                "requestId": super::records::uuid(&mut self.rng),
                "keyName": key_name,
                "keyFingerprint": (0..16).map(|_| hex(&mut self.rng, 2)).collect::<Vec<_>>().join(":"),
                "keyPairId": aws_id(&mut self.rng, "key"),
            }));
        self.call(&c, call);
        let call = Call::new(t + 100, EC2, "CreateSecurityGroup", ATTACK_REGION, acct)
            .req(json!({"groupName": "launch-wizard-1", "groupDescription": "launch-wizard-1", "vpcId": net.vpc}))
            .resp(json!({"requestId": super::records::uuid(&mut self.rng), "_return": true, "groupId": net.sg}));
        self.call(&c, call);
        let call = Call::new(
            t + 130,
            EC2,
            "AuthorizeSecurityGroupIngress",
            ATTACK_REGION,
            acct,
        )
        .req(json!({"groupId": net.sg, "ipPermissions": {"items": [{
            "ipProtocol": "tcp", "fromPort": 22, "toPort": 22,
            "groups": {}, "ipRanges": {"items": [{"cidrIp": "0.0.0.0/0"}]},
            "ipv6Ranges": {}, "prefixListIds": {},
        }]}}))
        .resp(json!({"requestId": super::records::uuid(&mut self.rng), "_return": true}));
        self.call(&c, call);

        let t = t0 + 26 * MINUTE;
        let mut l = Launch::direct(
            t,
            c.clone(),
            acct,
            ATTACK_REGION,
            Some(&net),
            &ami,
            ATTACK_TYPE,
        );
        l.error = Some(("Client.DryRunOperation", DRY_RUN_MESSAGE.to_string()));
        l.key_name = Some(key_name.clone());
        let (rec, _) = ec2::run_instances(&mut self.rng, l);
        self.push(t, rec);

        let t = t0 + 29 * MINUTE;
        let mut l = Launch::direct(
            t,
            c.clone(),
            acct,
            ATTACK_REGION,
            Some(&net),
            &ami,
            "p3dn.24xlarge",
        );
        l.error = Some((
            "Client.InvalidParameterValue",
            format!("Invalid availability zone: [{ATTACK_REGION}d]"),
        ));
        let (rec, _) = ec2::run_instances(&mut self.rng, l);
        self.push(t, rec);

        // The burst: all calls inside one aligned 10-minute window, from :x1 to before :x9.
        let window = (s.at(s.breach_day, 3, 30)).div_euclid(WINDOW) * WINDOW;
        let mut ids = Vec::new();
        for k in 0..i64::from(BURST_CALLS) {
            let t =
                window + 60 + k * 460 / i64::from(BURST_CALLS - 1) + self.rng.random_range(0..6);
            let mut l = Launch::direct(
                t,
                self.attacker(alice, t, ""),
                acct,
                ATTACK_REGION,
                Some(&net),
                &ami,
                ATTACK_TYPE,
            );
            l.images[0].1 = self.rng.random_range(1..=2);
            l.key_name = Some(key_name.clone());
            l.user_data = true;
            let (rec, launched) = ec2::run_instances(&mut self.rng, l);
            self.push(t, rec);
            ids.extend(launched);
        }
        self.expect(UNSEEN_REGION, ATTACK_REGION);
        self.expect(UNSEEN_AMI, ami);
        self.expect(UNSEEN_INSTANCE_TYPE, ATTACK_TYPE);
        self.expect(LAUNCH_SPIKE, alice.arn());
        self.expect(LAUNCH_SPIKE_DENSITY, alice.arn());
        ids
    }

    /// Incident 2: a backdoor IAM user launching one ordinary instance.
    fn backdoor_user(&mut self, s: &Schedule) -> Principal {
        let world = self.world;
        let alice = world.p(ALICE);
        let user = Principal::new(
            &mut self.rng,
            PROD,
            BACKDOOR_USER,
            Kind::User,
            Agent::Boto3,
            ATTACKER_IP,
        );
        let t0 = s.at(s.breach_day, 5, 40) + self.rng.random_range(0..120);
        let c = self.attacker(alice, t0, "");
        let created = fmt_expiration(t0);
        let call = Call::new(t0, "iam.amazonaws.com", "CreateUser", USE1, PROD)
            .req(json!({"userName": user.name}))
            .resp(json!({"user": {
                "path": "/",
                "userName": user.name,
                "userId": user.unique_id,
                "arn": user.arn(),
                "createDate": created,
            }}));
        self.call(&c, call);
        let call = Call::new(t0 + 25, "iam.amazonaws.com", "CreateAccessKey", USE1, PROD)
            .req(json!({"userName": user.name}))
            .resp(json!({"accessKey": {
                "userName": user.name,
                "accessKeyId": user.access_key,
                "status": "Active",
                "createDate": fmt_expiration(t0 + 25),
            }}));
        self.call(&c, call);
        let call =
            Call::new(t0 + 50, "iam.amazonaws.com", "AttachUserPolicy", USE1, PROD).req(json!({
                "userName": user.name,
                "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess",
            }));
        self.call(&c, call);

        let t = t0 + 23 * MINUTE;
        let uc = self.attacker(&user, t, "");
        self.call(
            &uc,
            Call::new(t, "sts.amazonaws.com", "GetCallerIdentity", USE1, PROD).read(),
        );
        let t = t + 2 * MINUTE;
        let mut l = Launch::direct(
            t,
            self.attacker(&user, t, ""),
            PROD,
            USE1,
            world.net(PROD, USE1),
            &world.amis[AL_USE1].id,
            "m5.xlarge",
        );
        l.user_data = true;
        let (rec, _) = ec2::run_instances(&mut self.rng, l);
        self.push(t, rec);
        self.expect(UNSEEN_USER, user.arn());
        user
    }

    /// Bob notices the bill: terminates the GPU fleet and disables Alice's key (no launches).
    fn containment(&mut self, s: &Schedule, burst_ids: &[String]) {
        let world = self.world;
        let bob = world.p(BOB);
        let alice = world.p(ALICE);
        let t = s.at(s.breach_day, 14, 30) + self.rng.random_range(0..300);
        let rec = ec2::describe(
            &mut self.rng,
            t,
            &bob.caller(t, ""),
            (PROD, ATTACK_REGION),
            "DescribeInstances",
        );
        self.push(t, rec);
        let t = t + 2 * MINUTE;
        let rec = ec2::change_state(
            &mut self.rng,
            t,
            &bob.caller(t, ""),
            (PROD, ATTACK_REGION),
            Change::Terminate,
            burst_ids,
        );
        self.push(t, rec);
        let t = t + 3 * MINUTE;
        let call = Call::new(t, "iam.amazonaws.com", "UpdateAccessKey", USE1, PROD).req(json!({
            "userName": alice.name,
            "accessKeyId": alice.access_key,
            "status": "Inactive",
        }));
        self.call(&bob.caller(t, ""), call);
    }

    /// Incident 3: the backdoor user assumes a never-used role in dev, several sessions.
    fn role_pivot(&mut self, s: &Schedule, backdoor: &Principal) {
        let world = self.world;
        let role = Principal::new(
            &mut self.rng,
            DEV,
            PIVOT_ROLE,
            Kind::Role,
            Agent::Boto3,
            ATTACKER_IP,
        );
        let plans: [(i64, i64, &'static str, usize, &'static str); 4] = [
            (8, 5, USW2, UBUNTU_USW2, "c5.xlarge"),
            (9, 40, USE1, AL_USE1, "t3.medium"),
            (11, 15, USW2, GOLDEN_USW2, "c5.xlarge"),
            (13, 50, USE1, GOLDEN_USE1, "m5.large"),
        ];
        for (hour, minute, region, ami, itype) in plans {
            let t = s.at(s.pivot_day, hour, minute) + self.rng.random_range(0..240);
            let session = format!("botocore-session-{t}");
            let creds = json!({
                "accessKeyId": format!("ASIA{}", chars(&mut self.rng, KEY_CHARS, 16)),
                "sessionToken": chars(&mut self.rng, B64, 96),
                "expiration": fmt_expiration(t + HOUR),
            });
            let response = json!({
                "credentials": creds,
                "assumedRoleUser": {
                    "assumedRoleId": format!("{}:{session}", role.unique_id),
                    "arn": format!("arn:aws:sts::{DEV}:assumed-role/{PIVOT_ROLE}/{session}"),
                },
            });
            let request = json!({"roleArn": role.arn(), "roleSessionName": session});
            let resources =
                json!([{"accountId": DEV, "type": "AWS::IAM::Role", "ARN": role.arn()}]);
            let shared = super::records::uuid(&mut self.rng);
            // The caller's trail (prod) and the role owner's trail (dev) both record the call.
            let bc = self.attacker(backdoor, t, "");
            let call = Call::new(t, "sts.amazonaws.com", "AssumeRole", USE1, PROD)
                .req(request.clone())
                .resp(response.clone())
                .read()
                .with("resources", resources.clone())
                .with("sharedEventID", shared.clone().into());
            self.call(&bc, call);
            let mut dc = bc.clone();
            dc.identity = aws_account_identity(backdoor);
            let call = Call::new(t, "sts.amazonaws.com", "AssumeRole", USE1, DEV)
                .req(request)
                .resp(response)
                .read()
                .with("resources", resources)
                .with("sharedEventID", shared.into());
            self.call(&dc, call);

            let calls = self.rng.random_range(1..=2);
            for k in 0..calls {
                let t = t + MINUTE + 40 * k;
                let mut l = Launch::direct(
                    t,
                    self.attacker(&role, t, &session),
                    DEV,
                    region,
                    world.net(DEV, region),
                    &world.amis[ami].id,
                    itype,
                );
                l.user_data = true;
                let (rec, _) = ec2::run_instances(&mut self.rng, l);
                self.push(t, rec);
            }
        }
        self.expect(UNSEEN_USER, role.arn());

        // Clean-up of the backdoor user later that day (IAM writes only).
        let bob = world.p(BOB);
        let t = s.at(s.pivot_day, 19, 10) + self.rng.random_range(0..300);
        let steps: [(&'static str, Value); 3] = [
            (
                "DeleteAccessKey",
                json!({"userName": backdoor.name, "accessKeyId": backdoor.access_key}),
            ),
            (
                "DetachUserPolicy",
                json!({"userName": backdoor.name, "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"}),
            ),
            ("DeleteUser", json!({"userName": backdoor.name})),
        ];
        for (i, (name, request)) in steps.into_iter().enumerate() {
            let t = t + 30 * i as i64;
            let call = Call::new(t, "iam.amazonaws.com", name, USE1, PROD).req(request);
            self.call(&bob.caller(t, ""), call);
        }
    }

    /// Incident 5: Packer bakes golden image v2 and CI deploys it (a new AMI, expected once).
    fn golden_rollout(&mut self, s: &Schedule) {
        let world = self.world;
        let packer = world.p(PACKER);
        let gha = world.p(GHA);
        let v2 = &world.amis[GOLDEN_V2_USE1];
        let t = s.at(s.rollout_day, 14, 5) + self.rng.random_range(0..240);
        let session = format!("packer-build-{}", self.rng.random_range(1000u32..9999));
        let pc = packer.caller(t, &session);
        let mut l = Launch::direct(
            t,
            pc.clone(),
            packer.account,
            USE1,
            world.net(packer.account, USE1),
            &world.amis[AL_USE1].id,
            "c5.xlarge",
        );
        l.key_name = Some(format!("packer_{}", hex(&mut self.rng, 24)));
        l.name_tag = Some("Packer Builder".to_string());
        let (rec, builder) = ec2::run_instances(&mut self.rng, l);
        self.push(t, rec);

        let t = t + 36 * MINUTE;
        let call = Call::new(t, EC2, "CreateImage", USE1, packer.account)
            .req(json!({
                "instanceId": builder[0],
                "name": v2.name,
                "description": "ACME golden image (AL2023, CIS level 1)",
                "noReboot": true,
                "blockDeviceMapping": {},
            }))
            .resp(json!({"requestId": super::records::uuid(&mut self.rng), "imageId": v2.id}));
        self.call(&pc, call);
        let t = t + 4 * MINUTE;
        let rec = ec2::change_state(
            &mut self.rng,
            t,
            &pc,
            (packer.account, USE1),
            Change::Terminate,
            &builder,
        );
        self.push(t, rec);
        let t = t + 14 * MINUTE;
        let call = Call::new(t, EC2, "ModifyImageAttribute", USE1, packer.account)
            .req(json!({
                "imageId": v2.id,
                "launchPermission": {"add": {"items": [{"userId": PROD}, {"userId": DEV}]}},
                "attributeType": "launchPermission",
            }))
            .resp(json!({"requestId": super::records::uuid(&mut self.rng), "_return": true}));
        self.call(&pc, call);

        let rollout = s.rollout();
        let session = format!(
            "gha-deploy-{}",
            self.rng.random_range(12_000_000_000u64..13_000_000_000)
        );
        let tpl = &world.templates[0];
        let t = rollout.t - 8 * MINUTE;
        let gc = gha.caller(t, &session);
        let call = Call::new(t, EC2, "CreateLaunchTemplateVersion", USE1, gha.account)
            .req(json!({"CreateLaunchTemplateVersionRequest": {
                "LaunchTemplateId": tpl.id,
                "SourceVersion": tpl.version.to_string(),
                "LaunchTemplateData": {"ImageId": v2.id},
            }}))
            .resp(json!({"CreateLaunchTemplateVersionResponse": {
                "requestId": super::records::uuid(&mut self.rng),
                "launchTemplateVersion": {
                    "launchTemplateId": tpl.id,
                    "launchTemplateName": tpl.group.trim_end_matches("-asg"),
                    "versionNumber": tpl.version + 1,
                    "createTime": super::records::fmt_time(t),
                    "createdBy": format!("arn:aws:sts::{}:assumed-role/{}/{session}", gha.account, gha.name),
                    "defaultVersion": false,
                },
            }}));
        self.call(&gc, call);
        let t = rollout.t;
        let mut l = Launch::direct(
            t,
            gha.caller(t, &session),
            gha.account,
            USE1,
            world.net(gha.account, USE1),
            &v2.id,
            "m5.large",
        );
        l.images[0].1 = 2;
        l.key_name = Some("deploy".to_string());
        l.name_tag = Some("web-prod".to_string());
        l.user_data = true;
        let (rec, _) = ec2::run_instances(&mut self.rng, l);
        self.push(t, rec);
        self.expect(UNSEEN_AMI, v2.id.clone());
    }
}

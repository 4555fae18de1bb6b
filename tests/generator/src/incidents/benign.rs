//! Incidents 4 and 5, the ones that are not attacks: Carol tries a GPU family only with
//! DryRun and refused calls (nothing expected), and CI rolls out a new golden AMI (one
//! unseen AMI, a benign positive).

use rand::RngExt;
use serde_json::json;

use crate::UNSEEN_AMI;
use crate::actors::{AL_USE1, CAROL, DEV, GHA, GOLDEN_V2_USE1, Net, PACKER, PROD, USE1};
use crate::ec2::{self, Change, DRY_RUN_MESSAGE, EC2, Launch};
use crate::records::{Call, MINUTE, aws_id, hex};

use super::{Injector, Schedule};

impl Injector<'_> {
    /// Incident 4: GPU capacity tried only with DryRun and refused calls (expected: nothing).
    pub(super) fn gpu_dry_runs(&mut self, s: &Schedule) {
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

    /// Incident 5: Packer bakes golden image v2 and CI deploys it (a new AMI, expected once).
    pub(super) fn golden_rollout(&mut self, s: &Schedule) {
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
            .resp(json!({"requestId": crate::records::uuid(&mut self.rng), "imageId": v2.id}));
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
            .resp(json!({"requestId": crate::records::uuid(&mut self.rng), "_return": true}));
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
                "requestId": crate::records::uuid(&mut self.rng),
                "launchTemplateVersion": {
                    "launchTemplateId": tpl.id,
                    "launchTemplateName": tpl.group.trim_end_matches("-asg"),
                    "versionNumber": tpl.version + 1,
                    "createTime": crate::records::fmt_time(t),
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

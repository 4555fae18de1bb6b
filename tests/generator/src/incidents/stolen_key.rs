//! Incident 1 and its containment: Alice's stolen access key probes GPU quotas and
//! bursts GPU launches in a never-used region (unseen region, AMI and type, both rate
//! detections); then Bob terminates the fleet and disables the key (no launches).

use rand::RngExt;
use serde_json::json;

use crate::actors::{ALICE, BOB, Net, PROD, REDACTED, USE1};
use crate::ec2::{self, Change, DRY_RUN_MESSAGE, Denial, EC2, Launch};
use crate::normal::WINDOW;
use crate::records::{Call, MINUTE, aws_id, hex};
use crate::{LAUNCH_SPIKE, LAUNCH_SPIKE_DENSITY, UNSEEN_AMI, UNSEEN_INSTANCE_TYPE, UNSEEN_REGION};

use super::{ATTACK_REGION, ATTACK_TYPE, BURST_CALLS, Injector, Schedule};

impl Injector<'_> {
    /// Incident 1: reconnaissance, probes and a GPU launch burst with Alice's stolen key.
    pub(super) fn stolen_key(&mut self, s: &Schedule) -> Vec<String> {
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
                "requestId": crate::records::uuid(&mut self.rng),
                "keyName": key_name,
                "keyFingerprint": (0..16).map(|_| hex(&mut self.rng, 2)).collect::<Vec<_>>().join(":"),
                "keyPairId": aws_id(&mut self.rng, "key"),
            }));
        self.call(&c, call);
        let call = Call::new(t + 100, EC2, "CreateSecurityGroup", ATTACK_REGION, acct)
            .req(json!({"groupName": "launch-wizard-1", "groupDescription": "launch-wizard-1", "vpcId": net.vpc}))
            .resp(json!({"requestId": crate::records::uuid(&mut self.rng), "_return": true, "groupId": net.sg}));
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
        .resp(json!({"requestId": crate::records::uuid(&mut self.rng), "_return": true}));
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

    /// Bob notices the bill: terminates the GPU fleet and disables Alice's key (no launches).
    pub(super) fn containment(&mut self, s: &Schedule, burst_ids: &[String]) {
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
}

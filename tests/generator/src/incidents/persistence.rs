//! Incidents 2 and 3: the attacker's backdoor IAM user launches one ordinary instance
//! (unseen user), then assumes a never-used role in dev across several sessions that
//! launch ordinary instances (one unseen user: the role).

use rand::RngExt;
use serde_json::{Value, json};

use crate::UNSEEN_USER;
use crate::actors::{
    AL_USE1, ALICE, Agent, BOB, DEV, GOLDEN_USE1, GOLDEN_USW2, Kind, PROD, Principal, UBUNTU_USW2,
    USE1, USW2, aws_account_identity,
};
use crate::ec2::{self, Launch};
use crate::records::{B64, Call, HOUR, KEY_CHARS, MINUTE, chars, fmt_expiration};

use super::{ATTACKER_IP, BACKDOOR_USER, Injector, PIVOT_ROLE, Schedule};

impl Injector<'_> {
    /// Incident 2: a backdoor IAM user launching one ordinary instance.
    pub(super) fn backdoor_user(&mut self, s: &Schedule) -> Principal {
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

    /// Incident 3: the backdoor user assumes a never-used role in dev, several sessions.
    pub(super) fn role_pivot(&mut self, s: &Schedule, backdoor: &Principal) {
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
            let shared = crate::records::uuid(&mut self.rng);
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
}

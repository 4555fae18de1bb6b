//! The cast and the estate of the simulated organisation: accounts, regions,
//! AMIs, instance types, principals (humans, CI roles, autoscaling, apps,
//! monitoring), launch recipes and pre-existing infrastructure.
//!
//! Every value a normal successful launch can use (principal, region, AMI,
//! instance type) is listed in [`World::recipes`], so the warm-up in
//! `normal` can show each of them before any learning period ends.

use rand::RngExt;
use serde_json::{Value, json};

use super::records::{Caller, KEY_CHARS, Rng, aws_id, chars, derived, fmt_time, hash, uuid};

/// Production account.
pub(crate) const PROD: &str = "111122223333";
/// Development account.
pub(crate) const DEV: &str = "444455556666";
/// Shared-services account (CI cache, golden image builds, security).
pub(crate) const SHARED: &str = "777788889999";

/// US East (N. Virginia).
pub(crate) const USE1: &str = "us-east-1";
/// US West (Oregon).
pub(crate) const USW2: &str = "us-west-2";
/// Europe (Ireland).
pub(crate) const EUW1: &str = "eu-west-1";

/// How a principal's client identifies itself.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Agent {
    /// AWS CLI on a laptop.
    Cli,
    /// AWS Management Console in a browser.
    Console,
    /// A Python script using boto3.
    Boto3,
    /// AWS CLI on a GitHub Actions runner.
    GithubCli,
    /// Terraform's AWS provider.
    Terraform,
    /// HashiCorp Packer.
    Packer,
    /// EC2 Auto Scaling.
    AutoScaling,
    /// A Java service on EC2.
    AppSdk,
    /// A Python Lambda function.
    Lambda,
    /// The Datadog AWS integration.
    Datadog,
}

impl Agent {
    /// The `userAgent` string (CLI agents end in `md/command#`, completed per call).
    pub(crate) fn user_agent(self) -> &'static str {
        match self {
            Agent::Cli => {
                "aws-cli/2.22.35 md/awscrt#0.23.4 ua/2.0 os/macos#24.2.0 md/arch#arm64 \
                 lang/python#3.12.6 md/pyimpl#CPython cfg/retry-mode#standard \
                 md/installer#exe md/prompt#off md/command#"
            }
            Agent::Console => "AWS Internal",
            Agent::Boto3 => {
                "Boto3/1.35.92 md/Botocore#1.35.92 ua/2.0 os/linux#6.8.0-1021-aws \
                 md/arch#x86_64 lang/python#3.12.3 md/pyimpl#CPython \
                 cfg/retry-mode#legacy Botocore/1.35.92"
            }
            Agent::GithubCli => {
                "aws-cli/2.22.35 md/awscrt#0.23.4 ua/2.0 os/linux#6.8.0-1017-azure \
                 md/arch#x86_64 lang/python#3.12.6 md/pyimpl#CPython \
                 cfg/retry-mode#standard md/installer#exe md/distrib#ubuntu.24 \
                 md/prompt#off md/command#"
            }
            Agent::Terraform => {
                "APN/1.0 HashiCorp/1.0 Terraform/1.10.3 (+https://www.terraform.io) \
                 terraform-provider-aws/5.82.2 (+https://registry.terraform.io/providers/hashicorp/aws) \
                 aws-sdk-go-v2/1.32.7 ua/2.1 os/linux lang/go#1.23.3 md/GOOS#linux \
                 md/GOARCH#amd64 api/ec2#1.198.1"
            }
            Agent::Packer => {
                "APN/1.0 HashiCorp/1.0 Packer/1.11.2 (+https://www.packer.io) \
                 aws-sdk-go/1.55.5 (go1.22.7; linux; amd64)"
            }
            Agent::AutoScaling => "autoscaling.amazonaws.com",
            Agent::AppSdk => {
                "aws-sdk-java/2.29.43 Linux/6.1.119-129.201.amzn2023.x86_64 \
                 OpenJDK_64-Bit_Server_VM/21.0.5+11-LTS Java/21.0.5 vendor/Amazon.com_Inc. \
                 md/io#sync md/http#Apache ua/2.1 cfg/retry-mode#legacy"
            }
            Agent::Lambda => {
                "Boto3/1.34.145 md/Botocore#1.34.145 ua/2.0 os/linux#5.10.230-244.909.amzn2.x86_64 \
                 md/arch#x86_64 lang/python#3.12.8 md/pyimpl#CPython \
                 exec-env/AWS_Lambda_python3.12 cfg/retry-mode#legacy Botocore/1.34.145"
            }
            Agent::Datadog => "aws-sdk-go/1.55.5 (go1.22.9; linux; amd64) Datadog-AWS-Integration",
        }
    }
}

/// What kind of IAM principal this is.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Kind {
    /// An IAM user (`arn:aws:iam::ACCT:user/NAME`).
    User,
    /// An IAM role assumed into sessions (`arn:aws:iam::ACCT:role/NAME`).
    Role,
    /// The EC2 Auto Scaling service-linked role.
    AutoScaling,
}

/// An IAM user or role of the organisation.
pub(crate) struct Principal {
    /// Owning account.
    pub account: &'static str,
    /// User or role name.
    pub name: &'static str,
    /// User, role or service-linked role.
    pub kind: Kind,
    /// `AIDA...` or `AROA...` unique id.
    pub unique_id: String,
    /// Long-term `AKIA...` access key (users only).
    pub access_key: String,
    /// Client the principal uses.
    pub agent: Agent,
    /// Usual source address.
    pub ip: String,
    /// Whether role sessions come from GitHub's OIDC provider.
    pub web_identity: bool,
}

impl Principal {
    /// A principal with fresh ids drawn from `rng`.
    pub(crate) fn new(
        rng: &mut Rng,
        account: &'static str,
        name: &'static str,
        kind: Kind,
        agent: Agent,
        ip: &str,
    ) -> Self {
        let prefix = if kind == Kind::User { "AIDA" } else { "AROA" };
        Self {
            account,
            name,
            kind,
            unique_id: format!("{prefix}{}", chars(rng, KEY_CHARS, 17)),
            access_key: format!("AKIA{}", chars(rng, KEY_CHARS, 16)),
            agent,
            ip: ip.to_string(),
            web_identity: false,
        }
    }

    /// The principal ARN the detectors key on (for roles: the role, not the session).
    pub(crate) fn arn(&self) -> String {
        match self.kind {
            Kind::User => format!("arn:aws:iam::{}:user/{}", self.account, self.name),
            Kind::Role => format!("arn:aws:iam::{}:role/{}", self.account, self.name),
            Kind::AutoScaling => format!(
                "arn:aws:iam::{}:role/aws-service-role/autoscaling.amazonaws.com/{}",
                self.account, self.name
            ),
        }
    }

    /// The caller of one call at time `t`; `session` names the role session (ignored for users).
    pub(crate) fn caller(&self, t: i64, session: &str) -> Caller {
        let console = self.agent == Agent::Console;
        let service = self.kind == Kind::AutoScaling;
        let identity = match self.kind {
            Kind::User if console => {
                // Console sessions: temporary credentials minted at sign-in.
                let h = hash(&[self.name, "console"]);
                let signed_in = t - (t - (h % 28_800) as i64).rem_euclid(28_800);
                json!({
                    "type": "IAMUser",
                    "principalId": self.unique_id,
                    "arn": self.arn(),
                    "accountId": self.account,
                    "accessKeyId": format!("ASIA{}", derived(h ^ signed_in as u64, KEY_CHARS, 16)),
                    "userName": self.name,
                    "sessionContext": {
                        "sessionIssuer": {},
                        "webIdFederationData": {},
                        "attributes": {
                            "creationDate": fmt_time(signed_in),
                            "mfaAuthenticated": "true",
                        },
                    },
                })
            }
            Kind::User => json!({
                "type": "IAMUser",
                "principalId": self.unique_id,
                "arn": self.arn(),
                "accountId": self.account,
                "accessKeyId": self.access_key,
                "userName": self.name,
            }),
            Kind::Role | Kind::AutoScaling => {
                // Sessions last an hour; the creation time is stable within one.
                let h = hash(&[self.name, session]);
                let created = t - (t - (h % 3_600) as i64).rem_euclid(3_600);
                let federation = if self.web_identity {
                    json!({
                        "federatedProvider": format!(
                            "arn:aws:iam::{}:oidc-provider/token.actions.githubusercontent.com",
                            self.account
                        ),
                        "attributes": {},
                    })
                } else {
                    json!({})
                };
                let mut id = json!({
                    "type": "AssumedRole",
                    "principalId": format!("{}:{session}", self.unique_id),
                    "arn": format!("arn:aws:sts::{}:assumed-role/{}/{session}", self.account, self.name),
                    "accountId": self.account,
                    "accessKeyId": format!("ASIA{}", derived(h ^ created as u64, KEY_CHARS, 16)),
                    "sessionContext": {
                        "sessionIssuer": {
                            "type": "Role",
                            "principalId": self.unique_id,
                            "arn": self.arn(),
                            "accountId": self.account,
                            "userName": self.name,
                        },
                        "webIdFederationData": federation,
                        "attributes": {
                            "creationDate": fmt_time(created),
                            "mfaAuthenticated": "false",
                        },
                    },
                });
                if service {
                    id["invokedBy"] = "autoscaling.amazonaws.com".into();
                }
                id
            }
        };
        Caller {
            identity,
            ip: self.ip.clone(),
            agent: self.agent.user_agent().to_string(),
            console,
            service,
        }
    }

    /// Like [`Principal::caller`] but from another source address.
    pub(crate) fn caller_from(&self, t: i64, session: &str, ip: &str) -> Caller {
        let mut c = self.caller(t, session);
        c.ip = ip.to_string();
        c
    }
}

/// Alice, prod operator (AWS CLI); her key is stolen in incident 1.
pub(crate) const ALICE: usize = 0;
/// Bob, prod operator (console); responds to the incident.
pub(crate) const BOB: usize = 1;
/// Carol, dev engineer (boto3 scripts).
pub(crate) const CAROL: usize = 2;
/// Dave, dev engineer (AWS CLI).
pub(crate) const DAVE: usize = 3;
/// Erin, shared-services admin (console, read-mostly).
pub(crate) const ERIN: usize = 4;
/// Frank, security auditor (AWS CLI, reads only).
pub(crate) const FRANK: usize = 5;
/// GitHub Actions deploy role in prod.
pub(crate) const GHA: usize = 6;
/// Terraform CI runner role in dev.
pub(crate) const CI: usize = 7;
/// Packer image-build role in shared.
pub(crate) const PACKER: usize = 8;
/// Auto Scaling service-linked role in prod.
pub(crate) const ASG_PROD: usize = 9;
/// Auto Scaling service-linked role in dev.
pub(crate) const ASG_DEV: usize = 10;
/// Application instance-profile role in prod.
pub(crate) const APP_PROD: usize = 11;
/// Application instance-profile role in dev.
pub(crate) const APP_DEV: usize = 12;
/// Lambda execution role in prod.
pub(crate) const LAMBDA: usize = 13;
/// Datadog integration role in prod.
pub(crate) const DD_PROD: usize = 14;
/// Datadog integration role in dev.
pub(crate) const DD_DEV: usize = 15;
/// Datadog integration role in shared.
pub(crate) const DD_SHARED: usize = 16;
/// A contractor user in dev with no EC2 permissions (only failed launches).
pub(crate) const CONTRACTOR: usize = 17;

/// Golden image v1 in us-east-1.
pub(crate) const GOLDEN_USE1: usize = 0;
/// Golden image v1 in eu-west-1.
pub(crate) const GOLDEN_EUW1: usize = 1;
/// Golden image v1 in us-west-2.
pub(crate) const GOLDEN_USW2: usize = 2;
/// Amazon Linux 2023 in us-east-1.
pub(crate) const AL_USE1: usize = 3;
/// Amazon Linux 2023 in us-west-2.
pub(crate) const AL_USW2: usize = 4;
/// Ubuntu 24.04 in us-west-2.
pub(crate) const UBUNTU_USW2: usize = 5;
/// Golden image v2 in us-east-1, rolled out in incident 5 only.
pub(crate) const GOLDEN_V2_USE1: usize = 6;

/// An AMI known to the organisation.
pub(crate) struct Ami {
    /// `ami-...` id.
    pub id: String,
    /// Name of the image.
    pub name: &'static str,
}

/// An EC2 launch template used by an Auto Scaling group.
pub(crate) struct Template {
    /// `lt-...` id.
    pub id: String,
    /// Auto Scaling group name.
    pub group: &'static str,
    /// Default version number.
    pub version: u32,
    /// AMI index of that version.
    pub ami: usize,
    /// Instance type of that version.
    pub itype: &'static str,
}

/// How a recipe launches.
pub(crate) enum How {
    /// Explicit image and instance type.
    Direct {
        /// AMI indices usable in the recipe's region.
        amis: Vec<usize>,
        /// Instance types.
        types: Vec<&'static str>,
    },
    /// Through a launch template (index into [`World::templates`]).
    Template(usize),
}

/// One way a principal launches instances in one region.
pub(crate) struct Recipe {
    /// Principal index.
    pub who: usize,
    /// Region.
    pub region: &'static str,
    /// Direct or launch-template launch.
    pub how: How,
    /// Relative frequency.
    pub weight: u32,
    /// Largest instance count per call.
    pub max_count: u32,
}

/// Network resources of one account and region.
pub(crate) struct Net {
    /// Account.
    pub account: &'static str,
    /// Region.
    pub region: &'static str,
    /// `vpc-...`.
    pub vpc: String,
    /// Three `subnet-...` ids, one per availability zone a, b, c.
    pub subnets: Vec<String>,
    /// Default security group `sg-...`.
    pub sg: String,
    /// S3 gateway endpoint `vpce-...`.
    pub vpce: String,
    /// KMS key id (a UUID).
    pub kms: String,
}

impl Net {
    /// Fresh network resources (for a region the organisation never used).
    pub(crate) fn fresh(rng: &mut Rng, account: &'static str, region: &'static str) -> Self {
        Self {
            account,
            region,
            vpc: aws_id(rng, "vpc"),
            subnets: (0..3).map(|_| aws_id(rng, "subnet")).collect(),
            sg: aws_id(rng, "sg"),
            vpce: aws_id(rng, "vpce"),
            kms: uuid(rng),
        }
    }
}

/// A long-running application instance (source of app-role traffic).
pub(crate) struct Host {
    /// Account.
    pub account: &'static str,
    /// Region.
    pub region: &'static str,
    /// `i-...`.
    pub instance: String,
    /// Private address.
    pub ip: String,
}

/// A developer's workstation instance, started and stopped every working day.
pub(crate) struct Workstation {
    /// Owner (principal index).
    pub who: usize,
    /// Region.
    pub region: &'static str,
    /// `i-...`.
    pub instance: String,
}

/// Everything that exists before day 0.
pub(crate) struct World {
    /// Principals, indexed by the constants above.
    pub principals: Vec<Principal>,
    /// AMIs, indexed by the constants above.
    pub amis: Vec<Ami>,
    /// Launch templates.
    pub templates: Vec<Template>,
    /// Normal launch recipes.
    pub recipes: Vec<Recipe>,
    /// VPCs per account and region.
    pub nets: Vec<Net>,
    /// Application hosts.
    pub hosts: Vec<Host>,
    /// Developer workstations.
    pub workstations: Vec<Workstation>,
}

/// The regions each account uses, with the share of its traffic.
pub(crate) fn account_regions(account: &str) -> &'static [(&'static str, u32)] {
    match account {
        PROD => &[(USE1, 7), (EUW1, 3)],
        DEV => &[(USE1, 6), (USW2, 4)],
        _ => &[(USE1, 1)],
    }
}

impl World {
    /// Builds the estate, drawing every id from `rng`.
    pub(crate) fn new(rng: &mut Rng) -> Self {
        let office = |rng: &mut Rng| format!("203.0.113.{}", rng.random_range(10..250));
        let mut principals = Vec::new();
        let users: [(&str, &'static str, Agent); 6] = [
            (PROD, "alice", Agent::Cli),
            (PROD, "bob", Agent::Console),
            (DEV, "carol", Agent::Boto3),
            (DEV, "dave", Agent::Cli),
            (SHARED, "erin", Agent::Console),
            (SHARED, "frank", Agent::Cli),
        ];
        for (account, name, agent) in users {
            let ip = office(rng);
            principals.push(Principal::new(rng, account, name, Kind::User, agent, &ip));
        }
        let mut gha = Principal::new(
            rng,
            PROD,
            "github-actions-deploy",
            Kind::Role,
            Agent::GithubCli,
            "192.0.2.44",
        );
        gha.web_identity = true;
        principals.push(gha);
        let roles: [(&'static str, &'static str, Kind, Agent, &str); 10] = [
            (
                DEV,
                "ci-runner",
                Kind::Role,
                Agent::Terraform,
                "198.51.100.23",
            ),
            (
                SHARED,
                "packer-build",
                Kind::Role,
                Agent::Packer,
                "198.51.100.24",
            ),
            (
                PROD,
                "AWSServiceRoleForAutoScaling",
                Kind::AutoScaling,
                Agent::AutoScaling,
                "autoscaling.amazonaws.com",
            ),
            (
                DEV,
                "AWSServiceRoleForAutoScaling",
                Kind::AutoScaling,
                Agent::AutoScaling,
                "autoscaling.amazonaws.com",
            ),
            (PROD, "app-backend", Kind::Role, Agent::AppSdk, "10.20.0.1"),
            (DEV, "app-backend", Kind::Role, Agent::AppSdk, "10.40.0.1"),
            (
                PROD,
                "order-processor-role",
                Kind::Role,
                Agent::Lambda,
                "3.236.14.77",
            ),
            (
                PROD,
                "DatadogIntegrationRole",
                Kind::Role,
                Agent::Datadog,
                "3.233.144.20",
            ),
            (
                DEV,
                "DatadogIntegrationRole",
                Kind::Role,
                Agent::Datadog,
                "3.233.144.21",
            ),
            (
                SHARED,
                "DatadogIntegrationRole",
                Kind::Role,
                Agent::Datadog,
                "3.233.144.22",
            ),
        ];
        for (account, name, kind, agent, ip) in roles {
            principals.push(Principal::new(rng, account, name, kind, agent, ip));
        }
        let contractor_ip = format!("198.51.100.{}", rng.random_range(100..200));
        principals.push(Principal::new(
            rng,
            DEV,
            "temp-contractor",
            Kind::User,
            Agent::Cli,
            &contractor_ip,
        ));

        let ami_names = [
            "acme-golden-al2023-2025-12-01",
            "acme-golden-al2023-2025-12-01",
            "acme-golden-al2023-2025-12-01",
            "al2023-ami-2023.6.20241212.0-kernel-6.1-x86_64",
            "al2023-ami-2023.6.20241212.0-kernel-6.1-x86_64",
            "ubuntu/images/hvm-ssd-gp3/ubuntu-noble-24.04-amd64-server-20241206",
            "acme-golden-al2023-2026-02-01",
        ];
        let amis = ami_names
            .iter()
            .map(|&name| Ami {
                id: aws_id(rng, "ami"),
                name,
            })
            .collect();

        let templates = vec![
            Template {
                id: aws_id(rng, "lt"),
                group: "web-prod-asg",
                version: 12,
                ami: GOLDEN_USE1,
                itype: "m6i.large",
            },
            Template {
                id: aws_id(rng, "lt"),
                group: "web-prod-eu-asg",
                version: 7,
                ami: GOLDEN_EUW1,
                itype: "m6i.large",
            },
            Template {
                id: aws_id(rng, "lt"),
                group: "api-dev-asg",
                version: 3,
                ami: AL_USE1,
                itype: "t3.medium",
            },
        ];

        let direct =
            |who, region, amis: &[usize], types: &[&'static str], weight, max_count| Recipe {
                who,
                region,
                how: How::Direct {
                    amis: amis.to_vec(),
                    types: types.to_vec(),
                },
                weight,
                max_count,
            };
        let template = |who, region, t, weight| Recipe {
            who,
            region,
            how: How::Template(t),
            weight,
            max_count: 2,
        };
        let recipes = vec![
            direct(
                ALICE,
                USE1,
                &[GOLDEN_USE1, AL_USE1],
                &["m5.large", "t3.medium"],
                2,
                2,
            ),
            direct(ALICE, EUW1, &[GOLDEN_EUW1], &["m5.large"], 1, 1),
            direct(BOB, USE1, &[AL_USE1], &["t3.micro", "t3.small"], 2, 1),
            direct(
                CAROL,
                USW2,
                &[UBUNTU_USW2, AL_USW2],
                &["c5.xlarge", "t3.medium"],
                3,
                2,
            ),
            direct(
                DAVE,
                USE1,
                &[AL_USE1, GOLDEN_USE1],
                &["t3.small", "t3.micro"],
                2,
                1,
            ),
            direct(GHA, USE1, &[GOLDEN_USE1], &["m5.large", "m5.xlarge"], 4, 3),
            direct(GHA, EUW1, &[GOLDEN_EUW1], &["m5.large"], 2, 2),
            direct(
                CI,
                USE1,
                &[GOLDEN_USE1, AL_USE1],
                &["t3.medium", "c5.xlarge"],
                4,
                2,
            ),
            direct(CI, USW2, &[GOLDEN_USW2], &["t3.medium"], 2, 2),
            direct(PACKER, USE1, &[AL_USE1], &["c5.xlarge"], 1, 1),
            template(ASG_PROD, USE1, 0, 5),
            template(ASG_PROD, EUW1, 1, 3),
            template(ASG_DEV, USE1, 2, 3),
        ];

        let mut nets = Vec::new();
        for account in [PROD, DEV, SHARED] {
            for &(region, _) in account_regions(account) {
                nets.push(Net::fresh(rng, account, region));
            }
        }

        let mut hosts = Vec::new();
        for (account, octet) in [(PROD, 20), (DEV, 40)] {
            for &(region, share) in account_regions(account) {
                for _ in 0..share {
                    let instance = aws_id(rng, "i");
                    let ip = format!(
                        "10.{octet}.{}.{}",
                        rng.random_range(0..64),
                        rng.random_range(4..250)
                    );
                    hosts.push(Host {
                        account,
                        region,
                        instance,
                        ip,
                    });
                }
            }
        }

        let workstations = vec![
            Workstation {
                who: CAROL,
                region: USW2,
                instance: aws_id(rng, "i"),
            },
            Workstation {
                who: DAVE,
                region: USE1,
                instance: aws_id(rng, "i"),
            },
        ];

        Self {
            principals,
            amis,
            templates,
            recipes,
            nets,
            hosts,
            workstations,
        }
    }

    /// The principal with index `i`.
    pub(crate) fn p(&self, i: usize) -> &Principal {
        &self.principals[i]
    }

    /// The network of an account and region the organisation uses.
    pub(crate) fn net(&self, account: &str, region: &str) -> Option<&Net> {
        self.nets
            .iter()
            .find(|n| n.account == account && n.region == region)
    }
}

/// Buckets of an account as `(bucket, region)`.
pub(crate) fn buckets(account: &str) -> &'static [(&'static str, &'static str)] {
    match account {
        PROD => &[
            ("acme-prod-orders", USE1),
            ("acme-prod-assets", USE1),
            ("acme-prod-eu-orders", EUW1),
        ],
        DEV => &[("acme-dev-artifacts", USE1), ("acme-dev-scratch", USW2)],
        _ => &[("acme-shared-ci-cache", USE1)],
    }
}

/// A placeholder for large redacted payloads, as CloudTrail writes them.
pub(crate) const REDACTED: &str = "<sensitiveDataRemoved>";

/// A `userIdentity` for a cross-account caller as the callee's trail shows it (no ARN).
pub(crate) fn aws_account_identity(p: &Principal) -> Value {
    json!({
        "type": "AWSAccount",
        "principalId": p.unique_id,
        "accountId": p.account,
    })
}

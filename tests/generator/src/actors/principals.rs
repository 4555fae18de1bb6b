//! The principals of the simulated organisation: IAM users and roles, the clients
//! they call from, their indices in [`World::principals`](super::World::principals),
//! and the `userIdentity` each call of theirs carries.

use serde_json::{Value, json};

use crate::records::{Caller, KEY_CHARS, Rng, chars, derived, fmt_time, hash};

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

/// A `userIdentity` for a cross-account caller as the callee's trail shows it (no ARN).
pub(crate) fn aws_account_identity(p: &Principal) -> Value {
    json!({
        "type": "AWSAccount",
        "principalId": p.unique_id,
        "accountId": p.account,
    })
}

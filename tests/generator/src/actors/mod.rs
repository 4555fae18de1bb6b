//! The cast and the estate of the simulated organisation: accounts, regions,
//! AMIs, instance types, principals (humans, CI roles, autoscaling, apps,
//! monitoring), launch recipes and pre-existing infrastructure.
//!
//! Every value a normal successful launch can use (principal, region, AMI,
//! instance type) is listed in [`World::recipes`], so the warm-up in
//! `normal` can show each of them before any learning period ends.
//!
//! [`principals`] holds who acts and how their calls look; [`estate`] what they
//! launch from and into; this module builds the [`World`] from both.

mod estate;
mod principals;

use rand::RngExt;

pub(crate) use estate::*;
pub(crate) use principals::*;

use super::records::{Rng, aws_id};

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

/// Everything that exists before day 0.
pub(crate) struct World {
    /// Principals, indexed by the constants of [`principals`] (`ALICE`, `GHA`, ...).
    pub principals: Vec<Principal>,
    /// AMIs, indexed by the constants of [`estate`] (`GOLDEN_USE1`, ...).
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

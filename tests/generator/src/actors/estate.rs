//! What the organisation launches from and into: AMIs (and their indices in
//! [`World::amis`](super::World::amis)), launch templates, launch recipes, networks,
//! application hosts and developer workstations.

use crate::records::{Rng, aws_id, uuid};

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
    /// Through a launch template (index into [`World::templates`](super::World::templates)).
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

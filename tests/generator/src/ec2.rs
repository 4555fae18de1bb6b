//! EC2 record builders: RunInstances (direct and launch-template, success
//! and failure), instance state changes and the few other EC2 calls the
//! scenario needs, in CloudTrail's real shapes.

use rand::RngExt;
use serde_json::{Map, Value, json};

use super::actors::{Net, REDACTED};
use super::records::{Call, Caller, Rng, aws_id, hex, uuid};

/// EC2's event source.
pub(crate) const EC2: &str = "ec2.amazonaws.com";

/// Message of `Client.DryRunOperation`.
pub(crate) const DRY_RUN_MESSAGE: &str = "Request would have succeeded, but DryRun flag is set.";

/// Why a RunInstances call was refused.
#[derive(Clone, Copy)]
pub(crate) enum Denial {
    /// A service control policy denies the region.
    Scp,
    /// The principal has no EC2 permission at all.
    NoPolicy,
}

/// A `Client.UnauthorizedOperation` message for RunInstances.
pub(crate) fn unauthorized_message(
    rng: &mut Rng,
    arn: &str,
    (account, region): (&str, &str),
    denial: Denial,
) -> String {
    let reason = match denial {
        Denial::Scp => "with an explicit deny in a service control policy",
        Denial::NoPolicy => "because no identity-based policy allows the ec2:RunInstances action",
    };
    format!(
        "You are not authorized to perform this operation. User: {arn} is not authorized to \
         perform: ec2:RunInstances on resource: arn:aws:ec2:{region}:{account}:instance/* \
         {reason}. Encoded authorization failure message: {}",
        super::records::chars(rng, super::records::B64, 120)
    )
}

/// A `Client.VcpuLimitExceeded` message.
pub(crate) fn vcpu_message(limit: u32) -> String {
    format!(
        "You have requested more vCPU capacity than your current vCPU limit of {limit} allows \
         for the instance bucket that the specified instance type belongs to. Please visit \
         http://aws.amazon.com/contact-us/ec2-request to request an adjustment to this limit."
    )
}

/// A RunInstances call to turn into a record.
pub(crate) struct Launch<'a> {
    /// Event time.
    pub t: i64,
    /// Who calls.
    pub caller: Caller,
    /// Account the instances land in.
    pub account: &'static str,
    /// Region.
    pub region: &'static str,
    /// Network (None: a default VPC is made up).
    pub net: Option<&'a Net>,
    /// `(imageId, count)` per request item; for a template launch, the template's image.
    pub images: Vec<(String, u32)>,
    /// Instance type (for a template launch, the template's).
    pub itype: &'static str,
    /// `(launchTemplateId, version, group)` for an Auto Scaling launch.
    pub template: Option<(String, u32, &'static str)>,
    /// `errorCode` and `errorMessage` of a failed call.
    pub error: Option<(&'static str, String)>,
    /// Key pair name.
    pub key_name: Option<String>,
    /// `Name` tag.
    pub name_tag: Option<String>,
    /// Whether user data was passed (redacted in the record).
    pub user_data: bool,
}

impl<'a> Launch<'a> {
    /// A direct launch of `count` instances of one image.
    pub(crate) fn direct(
        t: i64,
        caller: Caller,
        account: &'static str,
        region: &'static str,
        net: Option<&'a Net>,
        image: &str,
        itype: &'static str,
    ) -> Self {
        Self {
            t,
            caller,
            account,
            region,
            net,
            images: vec![(image.to_string(), 1)],
            itype,
            template: None,
            error: None,
            key_name: None,
            name_tag: None,
            user_data: false,
        }
    }
}

fn vcpus(itype: &str) -> u32 {
    match itype.split('.').nth(1).unwrap_or("") {
        "nano" | "micro" | "small" | "medium" | "large" => 2,
        "xlarge" => 4,
        "2xlarge" => 8,
        "4xlarge" => 16,
        "12xlarge" => 48,
        "16xlarge" => 64,
        "18xlarge" => 72,
        "24xlarge" => 96,
        _ => 2,
    }
}

/// Builds the RunInstances record; returns it with the launched instance ids (none on failure).
pub(crate) fn run_instances(rng: &mut Rng, l: Launch<'_>) -> (Value, Vec<String>) {
    let fresh;
    let net = match l.net {
        Some(n) => n,
        None => {
            fresh = Net::fresh(rng, l.account, l.region);
            &fresh
        }
    };
    let zone = rng.random_range(0..3usize);
    let az = format!("{}{}", l.region, ['a', 'b', 'c'][zone]);
    let subnet = net.subnets[zone].clone();

    let mut req = Map::new();
    if let Some((lt, version, group)) = &l.template {
        let count: u32 = l.images.iter().map(|i| i.1).sum();
        req.insert(
            "instancesSet".into(),
            json!({"items": [{"minCount": count, "maxCount": count}]}),
        );
        req.insert(
            "launchTemplate".into(),
            json!({"launchTemplateId": lt, "version": version.to_string()}),
        );
        req.insert("subnetId".into(), subnet.clone().into());
        req.insert("clientToken".into(), format!("fleet-{}", uuid(rng)).into());
        req.insert(
            "tagSpecificationSet".into(),
            json!({"items": [{"resourceType": "instance", "tags": [
                {"key": "aws:autoscaling:groupName", "value": group},
            ]}]}),
        );
    } else {
        let items: Vec<Value> = l
            .images
            .iter()
            .map(|(ami, n)| {
                let mut item = json!({"imageId": ami, "minCount": n, "maxCount": n});
                if let Some(k) = &l.key_name {
                    item["keyName"] = k.clone().into();
                }
                item
            })
            .collect();
        req.insert("instancesSet".into(), json!({ "items": items }));
        if l.user_data {
            req.insert("userData".into(), REDACTED.into());
        }
        req.insert("instanceType".into(), l.itype.into());
        req.insert("blockDeviceMapping".into(), json!({}));
        req.insert("monitoring".into(), json!({"enabled": false}));
        req.insert("disableApiTermination".into(), false.into());
        req.insert("disableApiStop".into(), false.into());
        req.insert("clientToken".into(), uuid(rng).into());
        req.insert(
            "networkInterfaceSet".into(),
            json!({"items": [{
                "deviceIndex": 0,
                "subnetId": subnet,
                "associatePublicIpAddress": false,
                "groupSet": {"items": [{"groupId": net.sg}]},
            }]}),
        );
        if let Some(name) = &l.name_tag {
            req.insert(
                "tagSpecificationSet".into(),
                json!({"items": [{"resourceType": "instance", "tags": [
                    {"key": "Name", "value": name},
                ]}]}),
            );
        }
        req.insert(
            "metadataOptions".into(),
            json!({"httpTokens": "required", "httpPutResponseHopLimit": 2, "httpEndpoint": "enabled"}),
        );
    }

    let call = Call::new(l.t, EC2, "RunInstances", l.region, l.account).req(Value::Object(req));
    if let Some((code, message)) = l.error {
        return (call.fail(code, message).build(l.caller, rng), Vec::new());
    }

    let launch_ms = l.t * 1000 + rng.random_range(0..1000);
    let mut ids = Vec::new();
    let mut items = Vec::new();
    let cores = vcpus(l.itype) / 2;
    for (ami, n) in &l.images {
        for index in 0..*n {
            let id = aws_id(rng, "i");
            let ip = format!(
                "10.{}.{}.{}",
                rng.random_range(16..80),
                rng.random_range(0..64),
                rng.random_range(4..250)
            );
            let dns = if l.region == "us-east-1" {
                format!("ip-{}.ec2.internal", ip.replace('.', "-"))
            } else {
                format!("ip-{}.{}.compute.internal", ip.replace('.', "-"), l.region)
            };
            let eni = json!({
                "networkInterfaceId": aws_id(rng, "eni"),
                "subnetId": net.subnets[zone],
                "vpcId": net.vpc,
                "ownerId": l.account,
                "status": "in-use",
                "macAddress": format!("0e:{}:{}:{}:{}:{}", hex(rng, 2), hex(rng, 2), hex(rng, 2), hex(rng, 2), hex(rng, 2)),
                "privateIpAddress": ip,
                "sourceDestCheck": true,
                "interfaceType": "interface",
                "attachment": {
                    "attachmentId": aws_id(rng, "eni-attach"),
                    "deviceIndex": 0,
                    "networkCardIndex": 0,
                    "status": "attaching",
                    "attachTime": launch_ms,
                    "deleteOnTermination": true,
                },
            });
            let mut item = json!({
                "instanceId": id,
                "imageId": ami,
                "currentInstanceBootMode": "legacy-bios",
                "instanceState": {"code": 0, "name": "pending"},
                "privateDnsName": dns,
                "amiLaunchIndex": index,
                "productCodes": {},
                "instanceType": l.itype,
                "launchTime": launch_ms,
                "placement": {"availabilityZone": az, "tenancy": "default"},
                "monitoring": {"state": "disabled"},
                "subnetId": net.subnets[zone],
                "vpcId": net.vpc,
                "privateIpAddress": ip,
                "stateReason": {"code": "pending", "message": "pending"},
                "architecture": "x86_64",
                "rootDeviceType": "ebs",
                "rootDeviceName": "/dev/xvda",
                "blockDeviceMapping": {},
                "virtualizationType": "hvm",
                "hypervisor": "xen",
            });
            let more = json!({
                "groupSet": {"items": [{"groupId": net.sg, "groupName": "default"}]},
                "sourceDestCheck": true,
                "networkInterfaceSet": {"items": [eni]},
                "ebsOptimized": false,
                "enaSupport": true,
                "cpuOptions": {"coreCount": cores, "threadsPerCore": 2},
                "capacityReservationSpecification": {"capacityReservationPreference": "open"},
                "enclaveOptions": {"enabled": false},
                "metadataOptions": {
                    "state": "pending",
                    "httpTokens": "required",
                    "httpPutResponseHopLimit": 2,
                    "httpEndpoint": "enabled",
                },
                "maintenanceOptions": {"autoRecovery": "default"},
            });
            if let (Some(m), Value::Object(extra)) = (item.as_object_mut(), more) {
                m.extend(extra);
            }
            if let Some(k) = &l.key_name {
                item["keyName"] = k.clone().into();
            }
            if let Some((lt, version, group)) = &l.template {
                item["tagSet"] = json!({"items": [
                    {"key": "aws:autoscaling:groupName", "value": group},
                    {"key": "aws:ec2launchtemplate:id", "value": lt},
                    {"key": "aws:ec2launchtemplate:version", "value": version.to_string()},
                ]});
            } else if let Some(name) = &l.name_tag {
                item["tagSet"] = json!({"items": [{"key": "Name", "value": name}]});
            }
            ids.push(id);
            items.push(item);
        }
    }
    let response = json!({
        "requestId": uuid(rng),
        "reservationId": aws_id(rng, "r"),
        "ownerId": l.account,
        "groupSet": {},
        "instancesSet": {"items": items},
    });
    (call.resp(response).build(l.caller, rng), ids)
}

/// Which state change an instance call makes.
#[derive(Clone, Copy)]
pub(crate) enum Change {
    /// StartInstances: stopped → pending.
    Start,
    /// StopInstances: running → stopping.
    Stop,
    /// TerminateInstances: running → shutting-down.
    Terminate,
}

/// Builds a StartInstances / StopInstances / TerminateInstances record.
pub(crate) fn change_state(
    rng: &mut Rng,
    t: i64,
    caller: &Caller,
    (account, region): (&'static str, &'static str),
    change: Change,
    ids: &[String],
) -> Value {
    let (name, current, previous) = match change {
        Change::Start => ("StartInstances", (0, "pending"), (80, "stopped")),
        Change::Stop => ("StopInstances", (64, "stopping"), (16, "running")),
        Change::Terminate => ("TerminateInstances", (32, "shutting-down"), (16, "running")),
    };
    let request: Vec<Value> = ids.iter().map(|i| json!({ "instanceId": i })).collect();
    let response: Vec<Value> = ids
        .iter()
        .map(|i| {
            json!({
                "instanceId": i,
                "currentState": {"code": current.0, "name": current.1},
                "previousState": {"code": previous.0, "name": previous.1},
            })
        })
        .collect();
    let mut req = json!({"instancesSet": {"items": request}});
    if matches!(change, Change::Stop) {
        req["force"] = false.into();
    }
    Call::new(t, EC2, name, region, account)
        .req(req)
        .resp(json!({"requestId": uuid(rng), "instancesSet": {"items": response}}))
        .build(caller.clone(), rng)
}

/// Builds a read-only EC2 Describe* record.
pub(crate) fn describe(
    rng: &mut Rng,
    t: i64,
    caller: &Caller,
    (account, region): (&'static str, &'static str),
    name: &'static str,
) -> Value {
    let request = match name {
        "DescribeInstances" => json!({"instancesSet": {}, "filterSet": {}}),
        "DescribeInstanceStatus" => {
            json!({"instancesSet": {}, "filterSet": {}, "includeAllInstances": false})
        }
        "DescribeRegions" => json!({"regionSet": {}, "allRegions": true}),
        "DescribeVolumes" => json!({"volumeSet": {}, "filterSet": {}, "maxResults": 500}),
        "DescribeSecurityGroups" => {
            json!({"securityGroupSet": {}, "securityGroupIdSet": {}, "filterSet": {}})
        }
        _ => json!({"subnetSet": {}, "filterSet": {}}),
    };
    Call::new(t, EC2, name, region, account)
        .req(request)
        .read()
        .build(caller.clone(), rng)
}

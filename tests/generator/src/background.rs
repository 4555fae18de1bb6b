//! Background traffic: the ~98% of a trail that is not an EC2 launch — S3
//! data events, STS, KMS, CloudWatch, Lambda, IAM and EC2 reads, SSM,
//! Secrets Manager, CloudWatch Logs, ECR and console sign-ins, from
//! application roles, humans, CI, monitoring and AWS services.

use rand::RngExt;
use serde_json::{Value, json};

use super::actors::{
    ALICE, APP_DEV, APP_PROD, BOB, CAROL, CI, DAVE, DD_DEV, DD_PROD, DD_SHARED, DEV, ERIN, FRANK,
    GHA, Host, LAMBDA, PROD, SHARED, USE1, World, account_regions, buckets,
};
use super::ec2;
use super::records::{B64, Call, Caller, DAY, KEY_CHARS, Rng, chars, fmt_expiration, hex, uuid};

/// Picks a weighted entry.
fn weighted<T: Copy>(rng: &mut Rng, items: &[(T, u32)]) -> T {
    let total: u32 = items.iter().map(|i| i.1).sum();
    let mut x = rng.random_range(0..total);
    for (item, w) in items {
        if x < *w {
            return *item;
        }
        x -= w;
    }
    items[items.len() - 1].0
}

/// A region of an account, weighted by its traffic share.
pub(crate) fn region_of(rng: &mut Rng, account: &str) -> &'static str {
    weighted(rng, account_regions(account))
}

fn host<'w>(world: &'w World, rng: &mut Rng) -> &'w Host {
    &world.hosts[rng.random_range(0..world.hosts.len())]
}

fn host_caller(world: &World, h: &Host, t: i64) -> Caller {
    let who = if h.account == PROD { APP_PROD } else { APP_DEV };
    world.p(who).caller_from(t, &h.instance, &h.ip)
}

fn lambda_caller(world: &World, t: i64) -> Caller {
    world.p(LAMBDA).caller(t, "order-processor")
}

const HUMANS: [usize; 6] = [ALICE, BOB, CAROL, DAVE, ERIN, FRANK];

fn ci_session(rng: &mut Rng, who: usize) -> String {
    if who == GHA {
        format!(
            "gha-deploy-{}",
            rng.random_range(12_000_000_000u64..13_000_000_000)
        )
    } else {
        format!("terraform-{}", rng.random_range(100_000u32..999_999))
    }
}

/// One background record at time `t`.
pub(crate) fn event(world: &World, rng: &mut Rng, t: i64) -> Value {
    match rng.random_range(0..1000u32) {
        0..300 => s3_object(world, rng, t, false),
        300..440 => s3_object(world, rng, t, true),
        440..540 => kms_decrypt(world, rng, t),
        540..580 => service_assume_role(world, rng, t),
        580..610 => get_caller_identity(world, rng, t),
        610..625 => web_identity_assume(world, rng, t),
        625..695 => put_metric_data(world, rng, t),
        695..725 => get_metric_data(world, rng, t),
        725..790 => lambda_invoke(world, rng, t),
        790..870 => ec2_read(world, rng, t),
        870..905 => iam_read(world, rng, t),
        905..930 => ssm_parameter(world, rng, t),
        930..950 => secret_value(world, rng, t),
        950..970 => log_stream(world, rng, t),
        970..990 => ecr_token(world, rng, t),
        _ => console_login(world, rng, t),
    }
}

fn s3_object(world: &World, rng: &mut Rng, t: i64, put: bool) -> Value {
    let roll = rng.random_range(0..10);
    let (caller, account, vpce) = if roll < 6 {
        let h = host(world, rng);
        let vpce = world.net(h.account, h.region).map(|n| n.vpce.clone());
        (host_caller(world, h, t), h.account, vpce)
    } else if roll < 9 {
        (lambda_caller(world, t), PROD, None)
    } else {
        let s = ci_session(rng, CI);
        (world.p(CI).caller(t, &s), DEV, None)
    };
    let list = buckets(account);
    let (bucket, region) = list[rng.random_range(0..list.len())];
    let key = match bucket {
        "acme-prod-orders" | "acme-prod-eu-orders" => format!(
            "orders/{}/ord-{}.json",
            super::records::fmt_time(t)[..10].replace('-', "/"),
            hex(rng, 12)
        ),
        "acme-prod-assets" => format!("img/{}/{}.webp", hex(rng, 2), hex(rng, 16)),
        "acme-dev-artifacts" => format!(
            "builds/api/{}/api-{}.jar",
            rng.random_range(1000..9999),
            hex(rng, 7)
        ),
        _ => format!("cache/{}.tar.zst", hex(rng, 24)),
    };
    let bytes_out = if put {
        0
    } else {
        rng.random_range(200..2_000_000)
    };
    let bytes_in = if put {
        rng.random_range(200..2_000_000)
    } else {
        0
    };
    let response = if put {
        json!({"x-amz-server-side-encryption": "AES256"})
    } else {
        Value::Null
    };
    let mut call = Call::new(
        t,
        "s3.amazonaws.com",
        if put { "PutObject" } else { "GetObject" },
        region,
        account,
    )
    .req(json!({
        "bucketName": bucket,
        "Host": format!("{bucket}.s3.{region}.amazonaws.com"),
        "key": key,
    }))
    .resp(response)
    .data_event()
    .with(
        "additionalEventData",
        json!({
            "SignatureVersion": "SigV4",
            "CipherSuite": "TLS_AES_128_GCM_SHA256",
            "bytesTransferredIn": bytes_in,
            "SSEApplied": "Default_SSE_S3",
            "AuthenticationMethod": "AuthHeader",
            "x-amz-id-2": chars(rng, B64, 76),
            "bytesTransferredOut": bytes_out,
        }),
    )
    .with(
        "resources",
        json!([
            {"type": "AWS::S3::Object", "ARN": format!("arn:aws:s3:::{bucket}/{key}")},
            {"accountId": account, "type": "AWS::S3::Bucket", "ARN": format!("arn:aws:s3:::{bucket}")},
        ]),
    );
    if !put {
        call = call.read();
    }
    if let Some(v) = vpce {
        call = call
            .with("vpcEndpointId", v.into())
            .with("vpcEndpointAccountId", account.into());
    }
    call.build(caller, rng)
}

fn kms_decrypt(world: &World, rng: &mut Rng, t: i64) -> Value {
    let (caller, account, region, context) = if rng.random_bool(0.7) {
        let h = host(world, rng);
        let (bucket, _) = buckets(h.account)[0];
        let ctx = json!({"aws:s3:arn": format!("arn:aws:s3:::{bucket}/{}", hex(rng, 16))});
        (host_caller(world, h, t), h.account, h.region, ctx)
    } else {
        let ctx = json!({"aws:lambda:FunctionArn": format!("arn:aws:lambda:{USE1}:{PROD}:function:order-processor")});
        (lambda_caller(world, t), PROD, USE1, ctx)
    };
    let key = world
        .net(account, region)
        .map(|n| n.kms.clone())
        .unwrap_or_default();
    Call::new(t, "kms.amazonaws.com", "Decrypt", region, account)
        .req(json!({"encryptionContext": context, "encryptionAlgorithm": "SYMMETRIC_DEFAULT"}))
        .read()
        .with(
            "resources",
            json!([{
                "accountId": account,
                "type": "AWS::KMS::Key",
                "ARN": format!("arn:aws:kms:{region}:{account}:key/{key}"),
            }]),
        )
        .build(caller, rng)
}

fn credentials(rng: &mut Rng, t: i64) -> Value {
    json!({
        "accessKeyId": format!("ASIA{}", chars(rng, KEY_CHARS, 16)),
        "sessionToken": chars(rng, B64, 96),
        "expiration": fmt_expiration(t + 3600),
    })
}

/// Instance-profile and Lambda credential refreshes: made by AWS services, so no ARN.
fn service_assume_role(world: &World, rng: &mut Rng, t: i64) -> Value {
    let (invoked_by, role, session, account, region) = if rng.random_bool(0.8) {
        let h = host(world, rng);
        let who = if h.account == PROD { APP_PROD } else { APP_DEV };
        (
            "ec2.amazonaws.com",
            who,
            h.instance.clone(),
            h.account,
            h.region,
        )
    } else {
        (
            "lambda.amazonaws.com",
            LAMBDA,
            "order-processor".to_string(),
            PROD,
            USE1,
        )
    };
    let p = world.p(role);
    let caller = Caller::aws_service(invoked_by);
    Call::new(t, "sts.amazonaws.com", "AssumeRole", region, account)
        .req(json!({"roleArn": p.arn(), "roleSessionName": session}))
        .resp(json!({
            "credentials": credentials(rng, t),
            "assumedRoleUser": {
                "assumedRoleId": format!("{}:{session}", p.unique_id),
                "arn": format!("arn:aws:sts::{}:assumed-role/{}/{session}", p.account, p.name),
            },
        }))
        .read()
        .with(
            "resources",
            json!([{"accountId": account, "type": "AWS::IAM::Role", "ARN": p.arn()}]),
        )
        .with("sharedEventID", uuid(rng).into())
        .build(caller, rng)
}

fn get_caller_identity(world: &World, rng: &mut Rng, t: i64) -> Value {
    let (caller, account) = if rng.random_bool(0.6) {
        let who = HUMANS[rng.random_range(0..HUMANS.len())];
        (world.p(who).caller(t, ""), world.p(who).account)
    } else {
        let who = if rng.random_bool(0.5) { GHA } else { CI };
        let s = ci_session(rng, who);
        (world.p(who).caller(t, &s), world.p(who).account)
    };
    Call::new(t, "sts.amazonaws.com", "GetCallerIdentity", USE1, account)
        .read()
        .build(caller, rng)
}

/// GitHub's OIDC token exchanged for a deploy-role session (caller has no ARN).
fn web_identity_assume(world: &World, rng: &mut Rng, t: i64) -> Value {
    let p = world.p(GHA);
    let provider = format!(
        "arn:aws:iam::{}:oidc-provider/token.actions.githubusercontent.com",
        p.account
    );
    let subject = "repo:acme/web:ref:refs/heads/main";
    let caller = Caller {
        identity: json!({
            "type": "WebIdentityUser",
            "principalId": format!("{provider}:sts.amazonaws.com:{subject}"),
            "userName": subject,
            "identityProvider": provider,
        }),
        ip: p.ip.clone(),
        agent: p.agent.user_agent().to_string(),
        console: false,
        service: false,
    };
    let session = ci_session(rng, GHA);
    Call::new(
        t,
        "sts.amazonaws.com",
        "AssumeRoleWithWebIdentity",
        USE1,
        p.account,
    )
    .req(json!({"roleArn": p.arn(), "roleSessionName": session, "durationSeconds": 3600}))
    .resp(json!({
        "credentials": credentials(rng, t),
        "subjectFromWebIdentityToken": subject,
        "assumedRoleUser": {
            "assumedRoleId": format!("{}:{session}", p.unique_id),
            "arn": format!("arn:aws:sts::{}:assumed-role/{}/{session}", p.account, p.name),
        },
        "provider": provider,
        "audience": "sts.amazonaws.com",
    }))
    .read()
    .build(caller, rng)
}

fn put_metric_data(world: &World, rng: &mut Rng, t: i64) -> Value {
    let h = host(world, rng);
    let metric =
        ["mem_used_percent", "disk_used_percent", "swap_used_percent"][rng.random_range(0..3)];
    Call::new(
        t,
        "monitoring.amazonaws.com",
        "PutMetricData",
        h.region,
        h.account,
    )
    .req(json!({
        "namespace": "CWAgent",
        "metricData": [{
            "metricName": metric,
            "dimensions": [{"name": "InstanceId", "value": h.instance}],
            "value": (rng.random_range(50..950) as f64) / 10.0,
            "unit": "Percent",
        }],
    }))
    .build(host_caller(world, h, t), rng)
}

fn get_metric_data(world: &World, rng: &mut Rng, t: i64) -> Value {
    let who = [DD_PROD, DD_DEV, DD_SHARED][rng.random_range(0..3)];
    let p = world.p(who);
    let region = region_of(rng, p.account);
    Call::new(
        t,
        "monitoring.amazonaws.com",
        "GetMetricData",
        region,
        p.account,
    )
    .req(json!({
        "metricDataQueries": [{"id": "m0", "metricStat": {"metric": {"namespace": "AWS/EC2", "metricName": "CPUUtilization"}, "period": 60, "stat": "Average"}}],
        "startTime": super::records::fmt_time(t - 600),
        "endTime": super::records::fmt_time(t),
    }))
    .read()
    .build(p.caller(t, "DatadogAWSIntegration"), rng)
}

fn lambda_invoke(world: &World, rng: &mut Rng, t: i64) -> Value {
    let function = format!("arn:aws:lambda:{USE1}:{PROD}:function:order-processor");
    let caller = if rng.random_bool(0.5) {
        Caller::aws_service("events.amazonaws.com")
    } else {
        let hosts: Vec<&Host> = world
            .hosts
            .iter()
            .filter(|h| h.account == PROD && h.region == USE1)
            .collect();
        host_caller(world, hosts[rng.random_range(0..hosts.len())], t)
    };
    Call::new(t, "lambda.amazonaws.com", "Invoke", USE1, PROD)
        .req(json!({"functionName": function, "invocationType": "Event"}))
        .data_event()
        .with(
            "resources",
            json!([{"accountId": PROD, "type": "AWS::Lambda::Function", "ARN": function}]),
        )
        .build(caller, rng)
}

fn ec2_read(world: &World, rng: &mut Rng, t: i64) -> Value {
    let names = [
        ("DescribeInstances", 5),
        ("DescribeInstanceStatus", 2),
        ("DescribeVolumes", 1),
        ("DescribeSecurityGroups", 1),
        ("DescribeSubnets", 1),
    ];
    let name = weighted(rng, &names);
    let roll = rng.random_range(0..10);
    let (caller, account) = if roll < 5 {
        let who = [DD_PROD, DD_DEV, DD_SHARED][rng.random_range(0..3)];
        (
            world.p(who).caller(t, "DatadogAWSIntegration"),
            world.p(who).account,
        )
    } else if roll < 8 {
        let who = HUMANS[rng.random_range(0..HUMANS.len())];
        (world.p(who).caller(t, ""), world.p(who).account)
    } else {
        let who = if rng.random_bool(0.5) { GHA } else { CI };
        let s = ci_session(rng, who);
        (world.p(who).caller(t, &s), world.p(who).account)
    };
    let region = region_of(rng, account);
    ec2::describe(rng, t, &caller, (account, region), name)
}

fn iam_read(world: &World, rng: &mut Rng, t: i64) -> Value {
    let who = [FRANK, ERIN, ALICE, DD_PROD, DD_SHARED, CI][rng.random_range(0..6)];
    let p = world.p(who);
    let session = if who == CI {
        ci_session(rng, CI)
    } else {
        "DatadogAWSIntegration".to_string()
    };
    let caller = p.caller(t, &session);
    let (name, request) = match rng.random_range(0..6) {
        0 => ("ListUsers", json!({"maxItems": 100})),
        1 => ("ListRoles", json!({"maxItems": 1000})),
        2 => ("GetRole", json!({"roleName": "app-backend"})),
        3 => (
            "ListAttachedRolePolicies",
            json!({"roleName": "github-actions-deploy"}),
        ),
        4 => ("ListAccessKeys", json!({"userName": "alice"})),
        _ => ("GetAccountSummary", Value::Null),
    };
    let mut call = Call::new(t, "iam.amazonaws.com", name, USE1, p.account)
        .req(request)
        .read();
    if (who == ERIN || who == ALICE) && rng.random_bool(0.1) {
        call = call.fail(
            "AccessDenied",
            format!(
                "User: {} is not authorized to perform: iam:{name} on resource: arn:aws:iam::{}:user/ because no identity-based policy allows the iam:{name} action",
                p.arn(),
                p.account
            ),
        );
    }
    call.build(caller, rng)
}

fn ssm_parameter(world: &World, rng: &mut Rng, t: i64) -> Value {
    let h = host(world, rng);
    let env = if h.account == PROD { "prod" } else { "dev" };
    let name = ["db/host", "db/port", "feature-flags", "redis/endpoint"][rng.random_range(0..4)];
    Call::new(t, "ssm.amazonaws.com", "GetParameter", h.region, h.account)
        .req(json!({"name": format!("/acme/{env}/{name}"), "withDecryption": true}))
        .read()
        .build(host_caller(world, h, t), rng)
}

fn secret_value(world: &World, rng: &mut Rng, t: i64) -> Value {
    let h = host(world, rng);
    let env = if h.account == PROD { "prod" } else { "dev" };
    Call::new(
        t,
        "secretsmanager.amazonaws.com",
        "GetSecretValue",
        h.region,
        h.account,
    )
    .req(json!({"secretId": format!("arn:aws:secretsmanager:{}:{}:secret:{env}/db-credentials-Xk29Qa", h.region, h.account)}))
    .read()
    .build(host_caller(world, h, t), rng)
}

fn log_stream(world: &World, rng: &mut Rng, t: i64) -> Value {
    let date = super::records::fmt_time(t)[..10].replace('-', "/");
    Call::new(t, "logs.amazonaws.com", "CreateLogStream", USE1, PROD)
        .req(json!({
            "logGroupName": "/aws/lambda/order-processor",
            "logStreamName": format!("{date}/[$LATEST]{}", hex(rng, 32)),
        }))
        .build(lambda_caller(world, t), rng)
}

fn ecr_token(world: &World, rng: &mut Rng, t: i64) -> Value {
    let who = if rng.random_bool(0.5) { GHA } else { CI };
    let p = world.p(who);
    let s = ci_session(rng, who);
    Call::new(
        t,
        "ecr.amazonaws.com",
        "GetAuthorizationToken",
        USE1,
        p.account,
    )
    .req(json!({"registryIds": [SHARED]}))
    .read()
    .build(p.caller(t, &s), rng)
}

fn console_login(world: &World, rng: &mut Rng, t: i64) -> Value {
    let who = [BOB, ERIN][rng.random_range(0..2)];
    let p = world.p(who);
    let mut caller = p.caller(t, "");
    caller.identity["accessKeyId"] = "".into();
    if let Some(m) = caller.identity.as_object_mut() {
        m.remove("sessionContext");
    }
    caller.agent = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 \
                    (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
        .to_string();
    caller.console = false;
    Call::new(t, "signin.amazonaws.com", "ConsoleLogin", USE1, p.account)
        .resp(json!({"ConsoleLogin": "Success"}))
        .with(
            "additionalEventData",
            json!({
                "LoginTo": "https://console.aws.amazon.com/console/home?state=hashArgs%23&isauthcode=true",
                "MobileVersion": "No",
                "MFAIdentifier": format!("arn:aws:iam::{}:mfa/{}", p.account, p.name),
                "MFAUsed": "Yes",
            }),
        )
        .build(caller, rng)
}

/// Seconds into a day for background traffic: busier in US working hours.
pub(crate) fn time_of_day(rng: &mut Rng) -> i64 {
    if rng.random_bool(0.55) {
        rng.random_range(13 * 3600..23 * 3600)
    } else {
        rng.random_range(0..DAY)
    }
}

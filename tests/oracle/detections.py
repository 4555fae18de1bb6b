#!/usr/bin/env python3
"""A deliberately naive reference for minewatch's detections, written from guest/README.md and
DESIGN.md section 4, sharing no code with the guest crate (tests/oracle.rs runs it).

Reads CloudTrail records (NDJSON, one record or a {"Records": [...]} file per line) in file
order and prints one JSON line per alert: {"detection", "key", "event_id"}.

- Only ec2.amazonaws.com RunInstances (all rules) and StartInstances (region only), and
  only successful calls (errorCode absent or empty).
- Unseen values (region 14 d, AMI 7 d, instance type 14 d, user 7 d of learning): a key is
  new when never seen or last seen more than 90 days before; it alerts when new and the
  oldest sighting of its set (this one included) is at least the learning period older.
  Every qualifying event updates the set, alert or not.
- Principal: the ARN; for an assumed role the session issuer's role ARN, else the role ARN
  rebuilt from the session ARN.
- ec2-launch-spike: successful RunInstances with a principal, each eventID counted once,
  per principal in aligned 10-minute UTC windows; alert when the window's running count
  is at least 10 and above mean + 4 sample-stdev of every (window, principal) count whose
  window lies in the 30 days (this one included) up to it, this window left out, over at
  least 24 windows; once per window and principal.

The density rule (ec2-launch-spike-density) is left out: its threshold is an empirical
quantile or an exponential fit chosen by history size, and a second copy of that formula
would check the arithmetic, not the rule.
"""
import json
import math
import sys
from datetime import datetime, timezone

DAY = 86400
WINDOW = 600
LEARNING = {
    "ec2-unseen-region": 14,
    "ec2-unseen-ami": 7,
    "ec2-unseen-instance-type": 14,
    "ec2-unseen-user": 7,
}
FORGET_DAYS = 90
K = 4.0
MIN_COUNT = 10
HISTORY_DAYS = 30
MIN_HISTORY_WINDOWS = 24


def seconds(text):
    """eventTime as (fractional) epoch seconds."""
    text = text.replace("Z", "+00:00")
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def principal(record):
    identity = record.get("userIdentity") or {}
    arn = identity.get("arn") or ""
    if not arn:
        return None
    if identity.get("type") != "AssumedRole" and ":assumed-role/" not in arn:
        return arn
    issuer = ((identity.get("sessionContext") or {}).get("sessionIssuer") or {}).get("arn")
    if issuer and ":role/" in issuer:
        return issuer
    head, _, rest = arn.partition(":assumed-role/")
    parts = head.split(":")
    role = rest.split("/")[0]
    if len(parts) >= 5 and role:
        return "arn:%s:iam::%s:role/%s" % (parts[1], parts[4], role)
    return arn


def items(record, side):
    block = record.get(side) or {}
    if not isinstance(block, dict):
        return []
    found = (block.get("instancesSet") or {}).get("items") or []
    return [i for i in found if isinstance(i, dict)]


def keys(record, name):
    """The keys of each unseen rule this event sights."""
    out = {}
    region = record.get("awsRegion") or ""
    if region:
        out["ec2-unseen-region"] = [region]
    if name != "RunInstances":
        return out
    images = [i.get("imageId") for i in items(record, "requestParameters") if i.get("imageId")]
    if not images:
        images = [i.get("imageId") for i in items(record, "responseElements") if i.get("imageId")]
    seen = []
    for image in images:
        if image not in seen:
            seen.append(image)
    if seen:
        out["ec2-unseen-ami"] = seen
    kind = (record.get("requestParameters") or {}).get("instanceType")
    if not kind:
        kind = next(
            (i.get("instanceType") for i in items(record, "responseElements") if i.get("instanceType")),
            None,
        )
    if kind:
        out["ec2-unseen-instance-type"] = [kind]
    who = principal(record)
    if who:
        out["ec2-unseen-user"] = [who]
    return out


def records(path):
    with open(path, encoding="utf-8") as lines:
        for line in lines:
            line = line.strip()
            if not line:
                continue
            try:
                value = json.loads(line)
            except ValueError:
                continue
            if isinstance(value, dict) and isinstance(value.get("Records"), list):
                yield from (r for r in value["Records"] if isinstance(r, dict))
            elif isinstance(value, dict):
                yield value


def main(path):
    sets = {rule: {} for rule in LEARNING}  # rule -> key -> [first, last]
    oldest = {}  # rule -> oldest sighting
    counts = {}  # (window, principal) -> launches
    counted = set()  # eventIDs counted
    fired = set()  # (window, principal) that alerted
    alerts = []
    for record in records(path):
        if record.get("eventSource") != "ec2.amazonaws.com":
            continue
        name = record.get("eventName")
        if name not in ("RunInstances", "StartInstances"):
            continue
        if record.get("errorCode"):
            continue
        try:
            now = seconds(record["eventTime"])
        except (KeyError, ValueError, AttributeError):
            continue
        event_id = record.get("eventID") or ""
        for rule, found in keys(record, name).items():
            for key in found:
                oldest[rule] = min(oldest.get(rule, now), now)
                state = sets[rule].get(key)
                new = state is None or now - state[1] > FORGET_DAYS * DAY
                if new:
                    sets[rule][key] = [now, now]
                else:
                    state[1] = max(state[1], now)
                if new and now - oldest[rule] >= LEARNING[rule] * DAY:
                    alerts.append((rule, key, event_id))
        who = principal(record)
        if name != "RunInstances" or who is None or event_id in counted:
            continue
        if event_id:
            counted.add(event_id)
        window = math.floor(now / WINDOW) * WINDOW
        counts[(window, who)] = counts.get((window, who), 0) + 1
        count = counts[(window, who)]
        if count < MIN_COUNT or (window, who) in fired:
            continue
        day = math.floor(window / DAY) * DAY
        start = day - (HISTORY_DAYS - 1) * DAY
        history = [
            c
            for (w, p), c in counts.items()
            if start <= math.floor(w / DAY) * DAY <= day and (w, p) != (window, who)
        ]
        if len(history) < MIN_HISTORY_WINDOWS:
            continue
        mean = sum(history) / len(history)
        stdev = math.sqrt(sum((c - mean) ** 2 for c in history) / (len(history) - 1))
        if count > mean + K * stdev:
            fired.add((window, who))
            alerts.append(("ec2-launch-spike", who, event_id))
    for detection, key, event_id in alerts:
        print(json.dumps({"detection": detection, "key": key, "event_id": event_id}))


if __name__ == "__main__":
    main(sys.argv[1])

#!/usr/bin/env python3
"""Sends every record of an NDJSON file to a Forward server with PyPI's fluent-logger.

The library speaks Message mode only and has no acks, so "sent" means the bytes were written
to the socket. Record i (0-based) is sent with time (time-base + i) seconds, or with
--event-time as an EventTime whose nanoseconds are i * 1000 + 7. The last stdout line is a
JSON summary (``{"sent": n, "acked": 0, ...}``); the exit code is 0 only when every record
was sent, 1 otherwise.
"""

import argparse
import json
import sys

from fluent import asyncsender, sender


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--tag", required=True)
    parser.add_argument("--records", required=True, help="NDJSON file, one record per line")
    parser.add_argument("--event-time", action="store_true", help="send EventTime, not seconds")
    parser.add_argument("--async", dest="use_async", action="store_true",
                        help="use fluent.asyncsender instead of fluent.sender")
    parser.add_argument("--time-base", type=int, default=1_700_000_000)
    parser.add_argument("--timeout", type=float, default=10.0, help="socket timeout, seconds")
    args = parser.parse_args()

    with open(args.records, encoding="utf-8") as lines:
        records = [json.loads(line) for line in lines if line.strip()]

    failures = []

    def overflow(pending):
        failures.append(f"{len(pending)} bytes could not be sent")

    kind = asyncsender.FluentSender if args.use_async else sender.FluentSender
    client = kind(args.tag, host=args.host, port=args.port, timeout=args.timeout,
                  nanosecond_precision=args.event_time, buffer_overflow_handler=overflow)
    sent = 0
    for i, record in enumerate(records):
        seconds = args.time_base + i
        time = sender.EventTime(seconds, i * 1000 + 7) if args.event_time else seconds
        if client.emit_with_time(None, time, record):
            sent += 1
        else:
            failures.append(f"record {i}: {client.last_error}")
    client.close()
    if getattr(client, "pendings", None):
        failures.append("bytes were left unsent at close")
    ok = not failures and sent == len(records)
    print(json.dumps({"client": "fluent-logger (python)", "async": args.use_async,
                      "sent": sent, "acked": 0, "failures": failures}))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

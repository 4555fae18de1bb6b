#!/usr/bin/env node
'use strict';
// Sends every record of an NDJSON file to a Forward server with @fluent-org/logger's
// FluentClient (Message, Forward, PackedForward or CompressedPackedForward mode; optional
// acks, EventTime and shared-key authentication). See cli.js for the arguments and the
// exit codes.

const { FluentClient, EventTime } = require('@fluent-org/logger');
const cli = require('./cli');

async function main() {
  const args = cli.parse();
  const records = cli.readRecords(args.records);
  const options = {
    eventMode: args.mode,
    socket: { host: args.host, port: args.port, timeout: args.timeoutMs },
  };
  if (args.ack) {
    options.ack = { ackTimeout: args.timeoutMs };
  }
  if (args.sharedKey !== undefined) {
    options.security = { clientHostname: args.clientHostname, sharedKey: args.sharedKey };
  }
  const client = new FluentClient(args.tag, options);
  client.socketOn('error', (error) => cli.fail(3, `@fluent-org/logger socket error: ${error}`));

  let confirmed = 0;
  cli.deadline(args, () => `${confirmed} of ${records.length} events confirmed`);
  const results = await Promise.allSettled(
    records.map((record, i) => {
      // A number is taken as milliseconds and sent as integer seconds.
      const time = args.eventTime
        ? new EventTime(cli.seconds(args, i), cli.nanos(i))
        : cli.seconds(args, i) * 1000;
      return client.emit(record, time).then(() => {
        confirmed += 1;
      });
    }),
  );
  const failures = results.filter((r) => r.status === 'rejected').map((r) => String(r.reason));
  await client.shutdown();
  cli.report(
    {
      client: '@fluent-org/logger',
      mode: args.mode,
      sent: confirmed,
      acked: args.ack ? confirmed : 0,
      failures,
    },
    failures.length === 0 && confirmed === records.length,
  );
}

main().catch((error) => cli.fail(1, error.stack || String(error)));

#!/usr/bin/env node
'use strict';
// Sends every record of an NDJSON file to a Forward server with the fluent-logger package's
// FluentSender (Message, PackedForward or CompressedPackedForward mode; optional acks via
// requireAckResponse, EventTime and shared-key authentication). See cli.js for the
// arguments and the exit codes.

const fluentLogger = require('fluent-logger');
const cli = require('./cli');

function main() {
  const args = cli.parse();
  const records = cli.readRecords(args.records);
  const options = {
    host: args.host,
    port: args.port,
    timeout: args.timeoutMs,
    eventMode: args.mode,
    requireAckResponse: args.ack,
    ackResponseTimeout: args.timeoutMs,
    reconnectInterval: 600000,
    // Keep the library's own chatter off stdout, where the summary goes.
    internalLogger: { info() {}, error: (...parts) => console.error(...parts) },
  };
  if (args.sharedKey !== undefined) {
    options.security = { clientHostname: args.clientHostname, sharedKey: args.sharedKey };
  }
  const sender = fluentLogger.createFluentSender(args.tag, options);
  sender.on('error', (error) => cli.fail(3, `fluent-logger error: ${error}`));

  let confirmed = 0;
  const failures = [];
  cli.deadline(args, () => `${confirmed} of ${records.length} events confirmed`);
  const settle = () => {
    if (confirmed + failures.length < records.length) {
      return;
    }
    sender.end(null, null, () =>
      cli.report(
        {
          client: 'fluent-logger',
          mode: args.mode,
          sent: confirmed,
          acked: args.ack ? confirmed : 0,
          failures,
        },
        failures.length === 0,
      ),
    );
  };
  records.forEach((record, i) => {
    const time = args.eventTime
      ? new fluentLogger.EventTime(cli.seconds(args, i), cli.nanos(i))
      : cli.seconds(args, i);
    sender.emit(record, time, (error) => {
      if (error) {
        failures.push(String(error));
      } else {
        confirmed += 1;
      }
      settle();
    });
  });
}

main();

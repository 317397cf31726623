#!/usr/bin/env node
// A consumer of the partnership's events in Node.js, written from the published contracts alone:
// amqplib for the broker, ajv for the JSON Schemas. The same behaviour as ../python/consumer.py:
//
// - binds its own durable quorum queue `consumer.<name>.events` to each producer's topic exchange
//   `<producer>.events` with the routing keys it reads, `<type>.v<version>`: a new (breaking)
//   version of an event never reaches code written for the old one;
// - on its first start (no state folder yet) reads every archived event it subscribes to from the
//   producers' archive streams `<producer>.events.archive`, from the first, before consuming its
//   queue. The queue is bound before the archive is read, so nothing published in between is
//   missed; what both carry is dropped as a duplicate;
// - de-duplicates by message id (= the envelope's event_id): delivery is at least once. Applied ids
//   are appended (and fsynced) to `applied.jsonl` before the message is acknowledged;
// - validates each envelope against the producer's published JSON Schema for its type and version
//   (`<type>.v<version>.schema.json`); an invalid one is rejected (nack without requeue).
//
// Every outcome is printed as one JSON line, as the Python example does.
//
//   node consumer.js --amqp amqp://consumer-finance:PASSWORD@broker:5672/ --name finance \
//     --bind membership:member_joined.v1 --schemas ../../../services/membership/contracts --state ./finance-state
'use strict';

const fs = require('node:fs');
const path = require('node:path');
const amqp = require('amqplib');
const Ajv2020 = require('ajv/dist/2020');
const addFormats = require('ajv-formats');

const ARCHIVE_PREFETCH = 200;
const LIVE_PREFETCH = 50;

function parseArgs(argv) {
  const args = { bind: [], schemas: [], archiveIdleSeconds: 2, runSeconds: 0 };
  for (let i = 0; i < argv.length; i += 2) {
    const [flag, value] = [argv[i], argv[i + 1]];
    if (value === undefined) throw new Error(`${flag} needs a value`);
    switch (flag) {
      case '--amqp': args.amqp = value; break;
      case '--name': args.name = value; break;
      case '--bind': args.bind.push(value); break;
      case '--schemas': args.schemas.push(value); break;
      case '--state': args.state = value; break;
      case '--archive-idle-seconds': args.archiveIdleSeconds = Number(value); break;
      case '--run-seconds': args.runSeconds = Number(value); break;
      default: throw new Error(`unknown option ${flag}`);
    }
  }
  for (const required of ['amqp', 'name', 'state']) {
    if (!args[required]) throw new Error(`--${required} is required`);
  }
  if (!args.bind.length || !args.schemas.length) throw new Error('--bind and --schemas are required');
  return args;
}

// AMQP topic matching (`*` one word, `#` zero or more), for filtering what the archive holds.
function topicMatches(pattern, key) {
  const match = (p, k) => {
    if (!p.length) return !k.length;
    if (p[0] === '#') {
      for (let i = 0; i <= k.length; i += 1) if (match(p.slice(1), k.slice(i))) return true;
      return false;
    }
    return k.length > 0 && (p[0] === '*' || p[0] === k[0]) && match(p.slice(1), k.slice(1));
  };
  return match(pattern.split('.'), key.split('.'));
}

// The published JSON Schemas, by "type.vN", read from contract folders.
function loadSchemas(folders) {
  const ajv = new Ajv2020({ allErrors: true, strict: false });
  addFormats(ajv);
  const validators = new Map();
  for (const folder of folders) {
    for (const name of fs.readdirSync(folder).sort()) {
      const found = /^(.+)\.v(\d+)\.schema\.json$/.exec(name);
      if (!found) continue;
      const schema = JSON.parse(fs.readFileSync(path.join(folder, name), 'utf8'));
      validators.set(`${found[1]}.v${Number(found[2])}`, ajv.compile(schema));
    }
  }
  return (envelope) => {
    if (envelope === null || typeof envelope !== 'object' || Array.isArray(envelope)) {
      return ['the body is not a JSON object'];
    }
    const validate = validators.get(`${envelope.type}.v${envelope.version}`);
    if (!validate) return [`no published schema for ${JSON.stringify(envelope.type)} v${envelope.version}`];
    if (validate(envelope)) return [];
    return validate.errors.map((e) => `${e.instancePath || '(envelope)'}: ${e.message}`);
  };
}

// What this consumer applied (its inbox) and whether it has replayed the archive.
class State {
  constructor(folder) {
    this.folder = folder;
    this.firstStart = !fs.existsSync(folder);
    fs.mkdirSync(folder, { recursive: true });
    this.appliedPath = path.join(folder, 'applied.jsonl');
    this.applied = new Set();
    if (fs.existsSync(this.appliedPath)) {
      for (const line of fs.readFileSync(this.appliedPath, 'utf8').split('\n')) {
        if (line) this.applied.add(JSON.parse(line).event_id);
      }
    }
    this.appliedFd = fs.openSync(this.appliedPath, 'a');
  }

  // Record and apply one event; false if its id was applied before. Durable before it returns.
  apply(envelope, via) {
    if (this.applied.has(envelope.event_id)) return false;
    // The effect: a real consumer updates its own store here, in the same write as the id.
    fs.writeSync(this.appliedFd, `${JSON.stringify({ event_id: envelope.event_id, type: envelope.type, via, envelope })}\n`);
    fs.fsyncSync(this.appliedFd);
    this.applied.add(envelope.event_id);
    return true;
  }

  reject(messageId, errors) {
    fs.appendFileSync(path.join(this.folder, 'rejected.jsonl'), `${JSON.stringify({ message_id: messageId, errors })}\n`);
  }

  replayed(producer, lastOffset) {
    fs.appendFileSync(path.join(this.folder, 'replays.jsonl'), `${JSON.stringify({ producer, last_offset: lastOffset })}\n`);
  }
}

function emit(fields) {
  process.stdout.write(`${JSON.stringify(fields)}\n`);
}

function handle(channel, message, { problemsOf, state }, via) {
  const messageId = message.properties.messageId;
  let envelope;
  let problems;
  try {
    envelope = JSON.parse(message.content.toString('utf8'));
    problems = problemsOf(envelope);
  } catch (error) {
    problems = [`not JSON: ${error.message}`];
  }
  if (problems.length) {
    state.reject(messageId, problems);
    emit({ outcome: 'rejected', message_id: messageId, via, errors: problems });
    // A stream keeps its messages whatever we answer; a queue drops a nacked one (no requeue).
    if (via === 'queue') channel.nack(message, false, false); else channel.ack(message);
    return;
  }
  const applied = state.apply(envelope, via);
  channel.ack(message); // only after the write: a crash before it redelivers
  emit({ outcome: applied ? 'applied' : 'duplicate', event_id: envelope.event_id, type: envelope.type,
    version: envelope.version, via });
}

// Every archived event of `producer` matching `keys`, from the first, until the archive is quiet.
async function replayArchive(connection, producer, keys, context, idleSeconds) {
  const channel = await connection.createChannel();
  await channel.prefetch(ARCHIVE_PREFETCH); // a stream consumer needs a prefetch
  let lastOffset = null;
  await new Promise((resolve, reject) => {
    let timer = null;
    const quiet = () => { clearTimeout(timer); timer = setTimeout(resolve, idleSeconds * 1000); };
    quiet();
    channel.consume(`${producer}.events.archive`, (message) => {
      if (message === null) return resolve(); // cancelled by the broker
      quiet();
      const offset = (message.properties.headers || {})['x-stream-offset'];
      if (offset !== undefined) lastOffset = Number(offset);
      if (keys.some((key) => topicMatches(key, message.fields.routingKey))) {
        handle(channel, message, context, 'archive');
      } else {
        channel.ack(message);
      }
      return undefined;
    }, { arguments: { 'x-stream-offset': 'first' } }).catch(reject);
  });
  await channel.close();
  context.state.replayed(producer, lastOffset);
  emit({ outcome: 'archive_replayed', producer, last_offset: lastOffset });
}

async function main() {
  const args = parseArgs(process.argv.slice(2));
  const bindings = args.bind.map((b) => { const i = b.indexOf(':'); return [b.slice(0, i), b.slice(i + 1)]; });
  const queue = `consumer.${args.name}.events`;
  const context = { problemsOf: loadSchemas(args.schemas), state: new State(args.state) };
  const connection = await amqp.connect(args.amqp);
  const channel = await connection.createChannel();

  // The consumer's own queue and its bindings (idempotent: done on every start), before the archive.
  await channel.assertQueue(queue, { durable: true, arguments: { 'x-queue-type': 'quorum' } });
  for (const [producer, key] of bindings) await channel.bindQueue(queue, `${producer}.events`, key);
  if (context.state.firstStart) {
    for (const producer of [...new Set(bindings.map(([p]) => p))].sort()) {
      const keys = bindings.filter(([p]) => p === producer).map(([, k]) => k);
      await replayArchive(connection, producer, keys, context, args.archiveIdleSeconds);
    }
  }
  await channel.prefetch(LIVE_PREFETCH);
  await channel.consume(queue, (message) => { if (message) handle(channel, message, context, 'queue'); });
  emit({ outcome: 'consuming', queue });

  let stopping = false;
  const stop = async () => {
    if (stopping) return;
    stopping = true;
    await connection.close().catch(() => {});
    process.exit(0);
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  if (args.runSeconds > 0) setTimeout(stop, args.runSeconds * 1000);
}

main().catch((error) => {
  process.stderr.write(`${error.stack || error}\n`);
  process.exit(1);
});

// One step of the client matrix with kafkajs 2.2.4 (Node) through kgate (SASL_SSL, SCRAM).
//
// Usage: node client_kafkajs.js BOOTSTRAP CAFILE MECHANISM USER PASSWORD STEP TOPIC GROUP N
// kafkajs is loaded from $KGATE_NODE_MODULES (./test.sh installs it outside the repository).
// STEP is `produce` (N records, key `key-{i % 13}`, value `i`) or `consume` (up to N records in
// consumer group GROUP, from the beginning, for at most 30 s). Prints one JSON line:
// {"produced": N}, {"partitions": {"0": [values...], ...}}, or, when the client fails,
// {"error": "<error name>", "type": "<Kafka error type>", "code": <Kafka code>, "message": "..."}
// where type and code come from the error or the first error in its cause chain that has them,
// and "logged" lists the Kafka error types kafkajs logged (see logCreator).
'use strict';

const fs = require('fs');
const path = require('path');

const modules = process.env.KGATE_NODE_MODULES;
if (!modules) {
  console.error('KGATE_NODE_MODULES is not set: run ./test.sh, which installs kafkajs');
  process.exit(2);
}
const { Kafka, logLevel } = require(path.join(modules, 'kafkajs'));

const [bootstrap, cafile, mechanism, user, password, step, topic, group, nText] =
  process.argv.slice(2);
const n = Number(nText);

// Kafka error types kafkajs saw but did not throw. kafkajs 2.2.4 swallows a FindCoordinator
// error (GROUP_AUTHORIZATION_FAILED included: BrokerPool.withBroker catches every error and
// tries the next broker) and throws KafkaJSGroupCoordinatorNotFound; it logs the error it
// swallowed at debug level ("Tried to find group coordinator"), and this keeps its type.
const logged = [];
const logCreator = () => ({ log }) => {
  const e = log && log.error;
  if (e && typeof e === 'object' && e.type && !logged.includes(e.type)) logged.push(e.type);
};

const kafka = new Kafka({
  clientId: 'kgate-matrix-kafkajs',
  brokers: [bootstrap],
  ssl: { ca: [fs.readFileSync(cafile, 'utf8')] },
  sasl: { mechanism: mechanism.toLowerCase(), username: user, password },
  logLevel: logLevel.DEBUG,
  logCreator,
  connectionTimeout: 10000,
  requestTimeout: 15000,
  retry: { retries: 2, initialRetryTime: 200 },
});

function describe(e) {
  const out = { error: e.name, type: null, code: null, message: e.message, logged };
  for (let c = e, depth = 0; c && depth < 10; c = c.cause || c.originalError, depth++) {
    if (c.type && out.type === null) {
      out.type = c.type;
      out.code = c.code === undefined ? null : c.code;
    }
  }
  return out;
}

async function produce() {
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  try {
    const messages = [];
    for (let i = 0; i < n; i++) messages.push({ key: `key-${i % 13}`, value: String(i) });
    await producer.send({ topic, messages, acks: -1, timeout: 15000 });
    return { produced: n };
  } finally {
    await producer.disconnect();
  }
}

async function consume() {
  const consumer = kafka.consumer({
    groupId: group,
    sessionTimeout: 10000,
    retry: { retries: 2, initialRetryTime: 200, restartOnFailure: async () => false },
  });
  let crashed = null;
  consumer.on(consumer.events.CRASH, (event) => {
    crashed = event.payload.error;
  });
  const partitions = {};
  let consumed = 0;
  await consumer.connect();
  try {
    await consumer.subscribe({ topics: [topic], fromBeginning: true });
    await consumer.run({
      autoCommit: true,
      eachMessage: async ({ partition, message }) => {
        (partitions[partition] = partitions[partition] || []).push(Number(message.value.toString()));
        consumed += 1;
      },
    });
    const deadline = Date.now() + 30000;
    while (consumed < n && crashed === null && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    if (crashed !== null) throw crashed;
    return { partitions };
  } finally {
    await consumer.disconnect();
  }
}

async function main() {
  let result;
  try {
    if (step === 'produce') result = await produce();
    else if (step === 'consume') result = await consume();
    else throw new Error(`unknown step ${step}`);
  } catch (e) {
    result = describe(e);
  }
  console.log(JSON.stringify(result));
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);

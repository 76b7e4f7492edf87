// The amqplib recipe of docs/clients.md, run against Tern by
// cmd/tern/clients_test.go (TestAmqplibRecipe) after `npm ci` here.
//
// amqplib's opt-in recovery (reconnect with backoff, then `setup` declares
// the topology and consumers again), a confirm channel, and a consumer
// that acks. The broker is given by AMQP_URL; printing "tern:restart" asks
// the test to restart it.
'use strict';

const amqplib = require('amqplib');
const readline = require('node:readline');
const { once } = require('node:events');

const URL = process.env.AMQP_URL || 'amqp://guest:guest@localhost:5672';
const QUEUE = 'amqplib-recipe';

const received = [];
let arrived = () => {};
let channel; // the confirm channel of the current connection

async function setup(model) {
  // Runs after every (re)connect: channels do not outlive a connection.
  const ch = await model.createConfirmChannel();
  await ch.assertQueue(QUEUE, { durable: true });
  await ch.prefetch(10);
  await ch.consume(QUEUE, (msg) => {
    if (msg === null) return; // the broker cancelled the consumer (queue deleted)
    received.push(msg.content.toString());
    ch.ack(msg);
    arrived();
  });
  channel = ch;
}

async function publish(body) {
  channel.publish('', QUEUE, Buffer.from(body), { persistent: true });
  await channel.waitForConfirms(); // rejects if the broker nacked
}

function waitFor(n, ms = 10000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`got ${received}, want ${n} messages`)), ms);
    arrived = () => {
      if (received.length >= n) {
        clearTimeout(timer);
        resolve();
      }
    };
    arrived();
  });
}

async function main() {
  const connection = await amqplib.connect(URL, {
    heartbeat: 10,
    recovery: { initialDelay: 200, maxDelay: 2000, maxRetries: Infinity, setup },
  });

  await publish('before restart');
  await waitFor(1);

  const reconnected = once(connection, 'connect');
  console.log('tern:restart');
  const stdin = readline.createInterface({ input: process.stdin });
  const [line] = await once(stdin, 'line');
  stdin.close();
  if (line !== 'restarted') throw new Error('no restart');
  await reconnected;

  await publish('after restart');
  await waitFor(2);
  if (received.join() !== 'before restart,after restart') throw new Error(`got ${received}`);

  await channel.deleteQueue(QUEUE);
  await connection.close();
  console.log('amqplib recipe: ok');
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});

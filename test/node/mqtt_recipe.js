// The mqtt.js recipe of docs/clients.md, run against Tern by
// cmd/tern/clients_test.go (TestMqttJsRecipe) after `npm ci` here.
//
// MQTT 5 with a session that outlives the connection (clean: false and a
// session expiry), automatic reconnect across a broker restart, QoS 1
// publishes that resolve on PUBACK, and MQTT over WebSocket. The broker is
// given by MQTT_URL and MQTT_WS_URL; printing "tern:restart" asks the test
// to restart it.
'use strict';

const mqtt = require('mqtt');
const readline = require('node:readline');
const { once } = require('node:events');

const URL = process.env.MQTT_URL || 'mqtt://localhost:1883';
const WS_URL = process.env.MQTT_WS_URL || 'ws://localhost:15675/ws';

function nextMessage(client, ms = 10000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no message')), ms);
    client.once('message', (topic, payload) => {
      clearTimeout(timer);
      resolve(`${topic} ${payload}`);
    });
  });
}

async function main() {
  const client = await mqtt.connectAsync(URL, {
    protocolVersion: 5,
    clientId: 'mqttjs-recipe',
    clean: false, // keep the session (subscriptions, queued QoS 1) ...
    properties: { sessionExpiryInterval: 3600 }, // ... for an hour offline
    reconnectPeriod: 500, // ms between reconnect attempts (0 disables)
    connectTimeout: 10000,
  });
  await client.subscribeAsync('sensors/+/temp', { qos: 1 });

  let message = nextMessage(client);
  await client.publishAsync('sensors/kitchen/temp', '21.5', { qos: 1 }); // resolves on PUBACK
  if ((await message) !== 'sensors/kitchen/temp 21.5') throw new Error(await message);

  // MQTT over WebSocket, as a browser would connect; the same broker.
  const ws = await mqtt.connectAsync(WS_URL, { protocolVersion: 4, clientId: 'mqttjs-recipe-ws' });
  message = nextMessage(client);
  await ws.publishAsync('sensors/porch/temp', '7.5', { qos: 1 });
  if ((await message) !== 'sensors/porch/temp 7.5') throw new Error(await message);
  await ws.endAsync();

  // While the broker is down each reconnect attempt fails with an 'error'
  // event (ECONNREFUSED); mqtt.js keeps retrying. events.once would reject
  // on the first of them, so wait for 'connect' alone.
  client.on('error', (err) => console.error(`reconnecting: ${err.code || err.message}`));
  const reconnected = new Promise((resolve) => client.once('connect', (connack) => resolve([connack])));
  console.log('tern:restart');
  const stdin = readline.createInterface({ input: process.stdin });
  const [line] = await once(stdin, 'line');
  stdin.close();
  if (line !== 'restarted') throw new Error('no restart');
  const [connack] = await reconnected;
  if (!connack.sessionPresent) throw new Error('session lost over the restart');

  message = nextMessage(client);
  await client.publishAsync('sensors/hall/temp', '19.0', { qos: 1 });
  if ((await message) !== 'sensors/hall/temp 19.0') throw new Error(await message);
  await client.endAsync();
  console.log('mqtt.js recipe: ok');
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});

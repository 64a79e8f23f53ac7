// Scenario (c): the real xDS client of @grpc/grpc-js-xds resolves
// xds:///echo through kuma-cp and calls a gRPC server that is registered as
// a dataplane inbound of service "echo"; when the endpoint changes (a second
// server registered, the first deleted), the client follows.
// Env: XDS_ADDR, CP_URL.
'use strict';
const path = require('path');
const grpc = require('@grpc/grpc-js');
const protoLoader = require('@grpc/proto-loader');
const { api, assert, assertEq, dpToken } = require('./lib.js');
const { startRelay } = require('./relay.js');

const XDS = process.env.XDS_ADDR;
const CP = process.env.CP_URL;

// The client's own Dataplane travels in the bootstrap's node metadata, as
// kuma-dp would send it; node.locality is required by grpc-js-xds.
const clientDp = {
  type: 'Dataplane', mesh: 'default', name: 'client-1',
  networking: {
    address: '127.0.0.1',
    inbound: [{ port: 20002, tags: { 'kuma.io/service': 'client' } }],
    outbound: [{ port: 10002, tags: { 'kuma.io/service': 'echo' } }],
  },
};
// grpc-js-xds speaks plaintext without a token: it goes through the relay,
// which adds TLS (XDS_CA) and the dataplane token.
async function bootstrap() {
  const token = await dpToken(CP, 'default', { name: 'client-1' });
  const relay = await startRelay(XDS, process.env.XDS_CA, token);
  process.env.GRPC_XDS_BOOTSTRAP_CONFIG = JSON.stringify({
    xds_servers: [{ server_uri: relay.addr, channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] }],
    node: { id: 'default.client-1', cluster: 'client', locality: {}, metadata: { 'dataplane.resource': JSON.stringify(clientDp) } },
  });
  return require('@grpc/grpc-js-xds');
}

const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(path.join(__dirname, 'echo.proto'))).kumatest;

function startServer(id) {
  return new Promise((resolve, reject) => {
    const server = new grpc.Server();
    server.addService(pkg.Echo.service, {
      Say: (call, cb) => cb(null, { text: call.request.text, server: id }),
    });
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => {
      if (err) return reject(err);
      resolve({ server, port });
    });
  });
}

async function registerEcho(name, port) {
  const r = await api(CP, 'PUT', `/meshes/default/dataplanes/${name}`, {
    type: 'Dataplane', mesh: 'default', name,
    networking: { address: '127.0.0.1', inbound: [{ port, tags: { 'kuma.io/service': 'echo', 'kuma.io/protocol': 'grpc' } }] },
  });
  assertEq(r.status, 201, `register ${name}: ${r.body}`);
}

function say(client) {
  return new Promise((resolve) => {
    client.Say({ text: 'hi' }, { deadline: Date.now() + 2000 }, (err, reply) => resolve(err ? { err } : reply));
  });
}

async function main() {
  const grpcXds = await bootstrap();
  grpcXds.register();
  const s1 = await startServer('s1');
  await registerEcho('echo-1', s1.port);

  const client = new pkg.Echo('xds:///echo', grpc.credentials.createInsecure());
  let last;
  const deadline = Date.now() + 20000;
  while (Date.now() < deadline) {
    last = await say(client);
    if (last.server === 's1') break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assertEq(last.server, 's1', `first call via xds:///echo (${last.err ? last.err.message : ''})`);

  // The client registered itself from its bootstrap metadata.
  let r = await api(CP, 'GET', '/meshes/default/dataplanes/client-1');
  assertEq(r.status, 200, 'client-1 registered from node metadata');

  // Endpoint change: s2 joins, s1 leaves; calls move to s2.
  const s2 = await startServer('s2');
  await registerEcho('echo-2', s2.port);
  r = await api(CP, 'DELETE', '/meshes/default/dataplanes/echo-1');
  assertEq(r.status, 200, 'delete echo-1');
  const deadline2 = Date.now() + 20000;
  while (Date.now() < deadline2) {
    last = await say(client);
    if (last.server === 's2') break;
    await new Promise((res) => setTimeout(res, 50));
  }
  assertEq(last.server, 's2', 'calls follow the endpoint change');
  // And stay there: s1 is no longer an endpoint.
  for (let i = 0; i < 5; i++) {
    last = await say(client);
    assertEq(last.server, 's2', 'only s2 after the change');
  }
  client.close();
  s1.server.forceShutdown();
  s2.server.forceShutdown();
  assert(true, 'done');
  console.log('grpc_xds: ok');
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(`grpc_xds: FAIL: ${e.stack || e}`);
    process.exit(1);
  },
);

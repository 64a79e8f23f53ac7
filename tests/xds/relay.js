// A small ADS relay for proxyless gRPC clients: grpc-js-xds can neither
// verify kuma-cp's TLS certificate nor send a dataplane token, so it talks
// plaintext to this relay on loopback, which forwards every ADS stream to
// kuma-cp over TLS (kuma-cp's certificate as CA) with the token in the
// `authorization` metadata. Messages are forwarded as raw bytes. This is
// also how a proxyless deployment authenticates (docs/xds.md).
'use strict';
const fs = require('fs');
const grpc = require('@grpc/grpc-js');

const ADS_METHOD = '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources';
const raw = (b) => b;

function startRelay(upstream, caFile, token) {
  const creds = caFile ? grpc.credentials.createSsl(fs.readFileSync(caFile)) : grpc.credentials.createInsecure();
  const client = new grpc.Client(upstream, creds);
  const server = new grpc.Server();
  const def = {
    StreamAggregatedResources: {
      path: ADS_METHOD, requestStream: true, responseStream: true,
      requestSerialize: raw, requestDeserialize: raw, responseSerialize: raw, responseDeserialize: raw,
    },
  };
  server.addService(def, {
    StreamAggregatedResources: (call) => {
      const md = new grpc.Metadata();
      if (token) md.set('authorization', token);
      const up = client.makeBidiStreamRequest(ADS_METHOD, raw, raw, md);
      call.on('data', (d) => up.write(d));
      call.on('end', () => up.end());
      call.on('cancelled', () => up.cancel());
      call.on('error', () => up.cancel());
      up.on('data', (d) => call.write(d));
      up.on('error', (e) => call.emit('error', { code: e.code, details: e.details }));
      up.on('end', () => call.end());
    },
  });
  return new Promise((resolve, reject) => {
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (err, port) => {
      if (err) return reject(err);
      resolve({ addr: `127.0.0.1:${port}`, close: () => { server.forceShutdown(); client.close(); } });
    });
  });
}

module.exports = { startRelay };

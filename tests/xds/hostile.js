// Scenario: hostile and malformed input on kuma-cp's DP server (TLS), each
// on its own connection, then a real ADS client is still served:
//  (a) garbage bytes instead of a TLS ClientHello: the connection is closed;
//  (b) TLS offering only ALPN http/1.1: the handshake is refused;
//  (c) an HTTP/1.1 request over TLS without ALPN: closed, no response;
//  (d) POST to another gRPC method: trailers-only grpc-status 12 UNIMPLEMENTED;
//  (e) a message prefix announcing more than the 4 MiB limit: grpc-status 8
//      RESOURCE_EXHAUSTED "Received message larger than max";
//  (f) a compressed message under grpc-encoding gzip: grpc-status 12; a
//      compressed message without grpc-encoding: grpc-status 13 INTERNAL;
//  (g) a bad message flag: grpc-status 13;
//  (h) PINGs far more often than every 4 s without data: GOAWAY
//      ENHANCE_YOUR_CALM with debug data "too_many_pings", as gRPC;
//  (i) a real ADS client (grpc-js) gets CDS.
// Env: XDS_ADDR (host:port of the DP server), XDS_CA (its certificate).
'use strict';
const fs = require('fs');
const net = require('net');
const tls = require('tls');
const http2 = require('http2');
const { AdsClient, assert, assertEq, fail } = require('./lib.js');

const XDS = process.env.XDS_ADDR;
const [HOST, PORT] = [XDS.slice(0, XDS.lastIndexOf(':')), Number(XDS.slice(XDS.lastIndexOf(':') + 1))];
const CA = fs.readFileSync(process.env.XDS_CA);
const ADS = '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources';

function withTimeout(p, ms, what) {
  let timer;
  return Promise.race([
    p,
    new Promise((_, rej) => {
      timer = setTimeout(() => rej(new Error(`timed out: ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

// Resolves with what the server sent once it closes the socket.
function closedAfter(sock, what) {
  return withTimeout(new Promise((resolve) => {
    const got = [];
    sock.on('data', (d) => got.push(d));
    sock.on('error', () => {});
    sock.on('close', () => resolve(Buffer.concat(got)));
  }), 5000, what);
}

async function garbageInsteadOfHello() {
  const sock = net.connect(PORT, HOST);
  sock.on('connect', () => sock.write(Buffer.from('\x00\x01\x02 this is not TLS at all \xff\xfe'.repeat(20), 'binary')));
  const got = await closedAfter(sock, 'garbage connection closed');
  // At most a TLS alert (record type 21), never HTTP/2.
  assert(got.length === 0 || got[0] === 21, `garbage: unexpected reply ${got.toString('hex').slice(0, 40)}`);
}

async function alpnHttp11Only() {
  const err = await withTimeout(new Promise((resolve) => {
    const s = tls.connect({ host: HOST, port: PORT, ca: CA, servername: 'localhost', ALPNProtocols: ['http/1.1'] });
    s.on('secureConnect', () => resolve(null));
    s.on('error', (e) => resolve(e));
  }), 5000, 'ALPN http/1.1 handshake');
  assert(err, 'a handshake offering only http/1.1 succeeded');
  assert(/no application protocol|alert number 120/i.test(err.message), `ALPN refusal: ${err.message}`);
}

async function http11OverTls() {
  const s = tls.connect({ host: HOST, port: PORT, ca: CA, servername: 'localhost' });
  s.on('secureConnect', () => s.write('GET / HTTP/1.1\r\nHost: kuma-cp\r\n\r\n'));
  const got = await closedAfter(s, 'HTTP/1.1 connection closed');
  assert(!got.toString().startsWith('HTTP/1.1'), 'no HTTP/1.1 response');
}

function h2connect() {
  const session = http2.connect(`https://${XDS}`, { ca: CA, servername: 'localhost' });
  session.on('error', () => {});
  return session;
}

// One gRPC call: sends body (a Buffer) without ending the stream, returns the
// status from the response headers or trailers.
function grpcCall(session, path, body, headers = {}) {
  return withTimeout(new Promise((resolve, reject) => {
    const req = session.request({
      ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers', ...headers,
    }, { endStream: false });
    let status;
    req.on('response', (h) => {
      if (h['grpc-status'] !== undefined) status = { code: h['grpc-status'], message: h['grpc-message'] || '' };
    });
    req.on('trailers', (h) => {
      status = { code: h['grpc-status'], message: decodeURIComponent(h['grpc-message'] || '') };
    });
    req.on('data', () => {});
    req.on('close', () => (status ? resolve(status) : reject(new Error(`${path}: no grpc-status (rst ${req.rstCode})`))));
    req.on('error', () => {});
    if (body) req.write(body);
  }), 5000, `call ${path}`);
}

function prefix(flag, len) {
  const b = Buffer.alloc(5);
  b[0] = flag;
  b.writeUInt32BE(len, 1);
  return b;
}

async function grpcRefusals() {
  const session = h2connect();
  let st = await grpcCall(session, '/foo.Bar/Baz', null);
  assertEq(st.code, '12', 'unknown method: UNIMPLEMENTED');
  st = await grpcCall(session, ADS, prefix(0, 4 * 1024 * 1024 + 1));
  assertEq(st.code, '8', 'oversized message: RESOURCE_EXHAUSTED');
  assert(st.message.startsWith('Received message larger than max (4194305 vs. 4194304)'), `oversized: ${st.message}`);
  st = await grpcCall(session, ADS, Buffer.concat([prefix(1, 3), Buffer.from('abc')]), { 'grpc-encoding': 'gzip' });
  assertEq(st.code, '12', 'gzip: UNIMPLEMENTED');
  assert(st.message.includes('grpc-encoding gzip is not supported'), `gzip: ${st.message}`);
  st = await grpcCall(session, ADS, Buffer.concat([prefix(1, 3), Buffer.from('abc')]));
  assertEq(st.code, '13', 'compressed without grpc-encoding: INTERNAL');
  st = await grpcCall(session, ADS, Buffer.concat([prefix(7, 1), Buffer.from('x')]));
  assertEq(st.code, '13', 'bad message flag: INTERNAL');
  assert(st.message.includes('bad message flag'), `flag: ${st.message}`);
  session.close();
}

async function pingFlood() {
  const session = h2connect();
  await withTimeout(new Promise((r) => session.on('connect', r)), 5000, 'h2 connect');
  const goaway = withTimeout(new Promise((resolve) => {
    session.on('goaway', (code, last, data) => resolve({ code, data: data ? data.toString() : '' }));
  }), 5000, 'GOAWAY after a ping flood');
  for (let i = 0; i < 5; i++) {
    try {
      session.ping(() => {});
    } catch (e) {
      break; // the session is going away
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const g = await goaway;
  assertEq(g.code, http2.constants.NGHTTP2_ENHANCE_YOUR_CALM, 'GOAWAY code');
  assertEq(g.data, 'too_many_pings', 'GOAWAY debug data');
  session.destroy();
}

async function realClient() {
  const dp = JSON.stringify({
    type: 'Dataplane', mesh: 'default', name: 'web-1',
    networking: { address: '127.0.0.1', inbound: [{ port: 18080, servicePort: 8080, tags: { 'kuma.io/service': 'web' } }] },
  });
  const web = new AdsClient(XDS, 'default.web-1', { metadata: { 'dataplane.resource': dp } });
  web.request('CDS');
  const cds = await web.waitCount('CDS', 1);
  assert(cds.byName['localhost:8080'], 'CDS for the real client');
  web.close();
}

async function main() {
  await garbageInsteadOfHello();
  await alpnHttp11Only();
  await http11OverTls();
  await grpcRefusals();
  await pingFlood();
  await realClient();
  console.log('hostile: ok');
}

main().catch((e) => {
  console.error(e.stack || String(e));
  process.exit(1);
});
void fail;

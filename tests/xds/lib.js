// Shared helpers for the xDS tests: Envoy's real protos (shipped in
// @grpc/grpc-js-xds/deps) loaded through @grpc/proto-loader, a raw ADS client
// over @grpc/grpc-js, byte-exact round-trip checks, and event waiting.
'use strict';
const path = require('path');
const fs = require('fs');
const crypto = require('crypto');
const grpc = require('@grpc/grpc-js');
require('@grpc/proto-loader'); // registers the well-known protos (descriptor.proto ...)
const { loadProtosWithOptionsSync } = require('@grpc/proto-loader/build/src/util');

const DEPS = path.join(path.dirname(require.resolve('@grpc/grpc-js-xds/package.json')), 'deps');
const INCLUDE = ['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'].map((d) => path.join(DEPS, d));
const FILES = [
  'envoy/service/discovery/v3/ads.proto',
  'envoy/config/listener/v3/listener.proto',
  'envoy/config/cluster/v3/cluster.proto',
  'envoy/config/endpoint/v3/endpoint.proto',
  'envoy/config/route/v3/route.proto',
  'envoy/extensions/filters/network/tcp_proxy/v3/tcp_proxy.proto',
  'envoy/extensions/filters/network/http_connection_manager/v3/http_connection_manager.proto',
  'envoy/extensions/filters/http/router/v3/router.proto',
  'envoy/extensions/filters/network/rbac/v3/rbac.proto',
  'envoy/extensions/filters/http/rbac/v3/rbac.proto',
  'envoy/extensions/transport_sockets/tls/v3/tls.proto',
  'envoy/extensions/transport_sockets/tls/v3/secret.proto',
  'envoy/extensions/upstreams/http/v3/http_protocol_options.proto',
  'envoy/extensions/filters/listener/tls_inspector/v3/tls_inspector.proto',
];

let rootCache;
function root() {
  if (!rootCache) rootCache = loadProtosWithOptionsSync(FILES, { includeDirs: INCLUDE, keepCase: true });
  return rootCache;
}

const TYPE = {
  LDS: 'type.googleapis.com/envoy.config.listener.v3.Listener',
  CDS: 'type.googleapis.com/envoy.config.cluster.v3.Cluster',
  EDS: 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment',
  RDS: 'type.googleapis.com/envoy.config.route.v3.RouteConfiguration',
  SDS: 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret',
};

// Channel credentials for kuma-cp's DP server: TLS with kuma-cp's own
// certificate as the CA (XDS_CA, what kuma-dp's --ca-cert-file points at),
// plaintext when XDS_CA is not set.
function channelCreds() {
  const ca = process.env.XDS_CA;
  return ca ? grpc.credentials.createSsl(fs.readFileSync(ca)) : grpc.credentials.createInsecure();
}

function b64url(buf) {
  return Buffer.from(buf).toString('base64').replace(/=+$/, '').replace(/\+/g, '-').replace(/\//g, '_');
}

// A dataplane token as kuma-cp issues it (RS256, kid "1"), signed here with
// the mesh's signing key read over the REST API, so the tests need no
// token endpoint. opts: name, tags ({k:[v]}), validForS, type, nowS, key (PEM override).
async function dpToken(cpUrl, mesh, opts = {}) {
  let pem = opts.key;
  if (!pem) {
    const r = await api(cpUrl, 'GET', `/meshes/${mesh}/secrets/dataplane-token-signing-key-${mesh}-1`);
    if (r.status !== 200) fail(`signing key of ${mesh}: ${r.status} ${r.body}`);
    pem = Buffer.from(JSON.parse(r.body).data, 'base64').toString();
  }
  const now = opts.nowS !== undefined ? opts.nowS : Math.floor(Date.now() / 1000);
  const header = { alg: 'RS256', kid: '1', typ: 'JWT' };
  const claims = {
    Name: opts.name || '', Mesh: mesh, Tags: opts.tags || {}, Type: opts.type || 'dataplane',
    exp: now + (opts.validForS || 3600), nbf: now - 300, iat: now, jti: crypto.randomUUID(),
  };
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
  const sig = crypto.createSign('RSA-SHA256').update(input).sign(pem);
  return `${input}.${b64url(sig)}`;
}
const ADS_METHOD = '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources';

function fail(msg) {
  throw new Error(msg);
}

function sameBytes(a, b) {
  return Buffer.from(a).equals(Buffer.from(b));
}

// Decodes bytes as typeName with Envoy's protos, re-encodes, and requires
// identical bytes (an unknown or mistyped field would not survive), then
// checks every nested Any the same way. Returns the decoded message.
function roundTrip(typeName, bytes, where) {
  const T = root().lookupType(typeName);
  const m = T.decode(bytes);
  const again = T.encode(m).finish();
  if (!sameBytes(again, bytes)) {
    fail(`${where}: ${typeName} does not re-encode to the same bytes\n  sent: ${Buffer.from(bytes).toString('hex')}\n  real: ${Buffer.from(again).toString('hex')}`);
  }
  walk(T, m, where);
  return m;
}

function walk(T, m, where) {
  for (const f of T.fieldsArray) {
    const v = m[f.name];
    if (v === null || v === undefined) continue;
    f.resolve();
    const rt = f.resolvedType;
    if (!rt || !rt.fieldsArray) continue;
    const vals = f.map ? Object.values(v) : f.repeated ? v : [v];
    for (const x of vals) {
      if (rt.fullName === '.google.protobuf.Any') {
        x.decoded = roundTrip(x.type_url.split('/').pop(), x.value, `${where}.${f.name}`);
      } else {
        walk(rt, x, `${where}.${f.name}`);
      }
    }
  }
}

// Waits until pred() returns a truthy value (checked after every event and
// at least every 50 ms); rejects after timeoutMs with msg.
function waitFor(pred, timeoutMs, msg) {
  return new Promise((resolve, reject) => {
    const start = Date.now();
    const tick = () => {
      let v;
      try {
        v = pred();
      } catch (e) {
        reject(e);
        return;
      }
      if (v) return resolve(v);
      if (Date.now() - start > timeoutMs) return reject(new Error(`timeout: ${msg}`));
      setTimeout(tick, 50);
    };
    tick();
  });
}

// A raw ADS client: records every response (raw bytes and decoded, each
// checked for byte identity with Envoy's protos) per type.
class AdsClient {
  constructor(addr, nodeId, { metadata = {}, userAgent = 'envoy', token } = {}) {
    this.nodeId = nodeId;
    this.node = { id: nodeId, cluster: 'test', user_agent_name: userAgent, metadata: toStruct(metadata) };
    this.responses = { LDS: [], CDS: [], EDS: [], RDS: [], SDS: [] };
    this.errors = [];
    this.ended = false;
    this.sentNode = false;
    const R = root();
    this.Req = R.lookupType('envoy.service.discovery.v3.DiscoveryRequest');
    this.Resp = R.lookupType('envoy.service.discovery.v3.DiscoveryResponse');
    this.client = new grpc.Client(addr, channelCreds());
    const md = new grpc.Metadata();
    if (token) md.set('authorization', token);
    this.call = this.client.makeBidiStreamRequest(
      ADS_METHOD,
      (obj) => Buffer.from(this.Req.encode(this.Req.fromObject(obj)).finish()),
      (buf) => ({ raw: buf }),
      md,
    );
    this.call.on('data', (d) => this.onResponse(d.raw));
    this.call.on('error', (e) => {
      this.status = e;
      this.ended = true;
    });
    this.call.on('end', () => {
      this.ended = true;
    });
  }

  onResponse(raw) {
    try {
      const resp = roundTrip('envoy.service.discovery.v3.DiscoveryResponse', raw, 'DiscoveryResponse');
      const short = Object.keys(TYPE).find((k) => TYPE[k] === resp.type_url);
      if (!short) fail(`unexpected type ${resp.type_url}`);
      resp.short = short;
      resp.byName = {};
      for (const r of resp.resources) {
        if (r.type_url !== resp.type_url) fail(`resource type ${r.type_url} in a ${resp.type_url} response`);
        resp.byName[r.decoded.name || r.decoded.cluster_name] = r.decoded;
      }
      this.responses[short].push(resp);
    } catch (e) {
      this.errors.push(e);
    }
  }

  request(short, { names = [], version = '', nonce = '', error } = {}) {
    const req = { type_url: TYPE[short], resource_names: names, version_info: version, response_nonce: nonce };
    if (!this.sentNode) {
      req.node = this.node; // the node goes in the first request only, as grpc-js-xds does
      this.sentNode = true;
    }
    if (error) req.error_detail = { code: 3, message: error };
    this.call.write(req);
  }

  last(short) {
    const l = this.responses[short];
    return l[l.length - 1];
  }

  ack(short, names = []) {
    const r = this.last(short);
    this.request(short, { names, version: r.version_info, nonce: r.nonce });
  }

  nack(short, message, names = []) {
    const r = this.last(short);
    const prev = this.responses[short].length > 1 ? this.responses[short][this.responses[short].length - 2] : null;
    this.request(short, { names, version: prev ? prev.version_info : '', nonce: r.nonce, error: message });
  }

  async waitCount(short, n, timeoutMs = 10000) {
    await waitFor(() => {
      if (this.errors.length) throw this.errors[0];
      if (this.ended && this.responses[short].length < n) {
        throw new Error(`${this.nodeId}: stream ended: ${this.status ? this.status.details : 'end'}`);
      }
      return this.responses[short].length >= n;
    }, timeoutMs, `${this.nodeId}: ${n} ${short} responses (have ${this.responses[short].length})`);
    return this.responses[short][n - 1];
  }

  // Subscribes to each type in turn (wildcard): request, first response, ACK.
  async subscribe(...shorts) {
    for (const short of shorts) {
      this.request(short);
      await this.waitCount(short, 1);
      this.ack(short);
    }
  }

  close() {
    this.call.end();
    this.call.cancel();
    this.client.close();
  }
}

function toStruct(obj) {
  const fields = {};
  for (const [k, v] of Object.entries(obj)) fields[k] = { stringValue: String(v) }; // the bundled well-known types use camelCase
  return { fields };
}

// REST helpers against kuma-cp's API.
async function api(base, method, p, body) {
  const res = await fetch(base + p, {
    method,
    headers: { 'content-type': 'application/json' },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  return { status: res.status, body: text };
}

function assert(cond, msg) {
  if (!cond) fail(`assertion failed: ${msg}`);
}

function assertEq(got, want, msg) {
  const g = JSON.stringify(got);
  const w = JSON.stringify(want);
  if (g !== w) fail(`${msg}: got ${g}, want ${w}`);
}

module.exports = {
  root, roundTrip, waitFor, AdsClient, TYPE, api, assert, assertEq, fail, DEPS, INCLUDE, channelCreds, dpToken,
};

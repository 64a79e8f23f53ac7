// Simulated fleet for kuma-cp's DP server (bench/xds/run.sh drives it).
// One ADS stream per simulated dataplane, spread over CHANNELS TLS
// connections; every stream subscribes to CDS, EDS, LDS (and SDS with
// MTLS=1) and ACKs each response at once. Responses are not decoded beyond
// the four top-level fields needed to ACK (version, type, nonce).
//
// Phases, each timed on this side:
//   cold     every stream opens; time until the last proxy has all types
//   policy   a mesh-wide MeshTimeout change: per-proxy delay from the PUT to
//            its new CDS (p50/p99/max)
//   churn    one endpoint moves: who received EDS, and the delay
//   idle     nothing happens for IDLE_S seconds (run.sh samples kuma-cp's CPU)
//   storm    every stream closed and reopened at once: time to full config
// Env: XDS_ADDR, CP_URL, XDS_CA, N, SERVICES, OUTBOUNDS, CHANNELS, MTLS, IDLE_S.
'use strict';
const path = require('path');
const grpc = require(path.join(__dirname, '../../tests/xds/node_modules/@grpc/grpc-js'));
const { root, api, channelCreds } = require('../../tests/xds/lib.js');

const N = +process.env.N || 1000;
const SERVICES = +process.env.SERVICES || Math.max(1, Math.floor(N / 20));
const OUTBOUNDS = +process.env.OUTBOUNDS || 5;
const CHANNELS = +process.env.CHANNELS || 50;
const MTLS = process.env.MTLS === '1';
const IDLE_S = +process.env.IDLE_S || 10;
const XDS = process.env.XDS_ADDR;
const CP = process.env.CP_URL;
const ADS = '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources';
const TYPES = {
  CDS: 'type.googleapis.com/envoy.config.cluster.v3.Cluster',
  EDS: 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment',
  LDS: 'type.googleapis.com/envoy.config.listener.v3.Listener',
  SDS: 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret',
};
const WANT = MTLS ? ['CDS', 'EDS', 'LDS', 'SDS'] : ['CDS', 'EDS', 'LDS'];
const Req = root().lookupType('envoy.service.discovery.v3.DiscoveryRequest');

// Top-level fields of a DiscoveryResponse: 1 version_info, 4 type_url, 5 nonce.
function peek(buf) {
  const out = {};
  let i = 0;
  const varint = () => {
    let v = 0, s = 0, b;
    do { b = buf[i++]; v += (b & 0x7f) * 2 ** s; s += 7; } while (b & 0x80);
    return v;
  };
  while (i < buf.length) {
    const key = varint(), f = key >> 3, wt = key & 7;
    if (wt === 2) {
      const len = varint();
      if (f === 1) out.version = buf.toString('utf8', i, i + len);
      else if (f === 4) out.type = buf.toString('utf8', i, i + len);
      else if (f === 5) out.nonce = buf.toString('utf8', i, i + len);
      i += len;
    } else if (wt === 0) varint();
    else if (wt === 1) i += 8;
    else if (wt === 5) i += 4;
    else break;
  }
  return out;
}
const SHORT = Object.fromEntries(Object.entries(TYPES).map(([k, v]) => [v, k]));

function dpName(i) { return `dp-${i}`; }
function dpSpec(i) {
  const svc = `svc-${i % SERVICES}`;
  const out = [];
  for (let k = 1; k <= OUTBOUNDS; k++) out.push({ port: 10000 + k, tags: { 'kuma.io/service': `svc-${(i + k * 7) % SERVICES}` } });
  return {
    type: 'Dataplane', mesh: 'default', name: dpName(i),
    networking: { address: `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, inbound: [{ port: 8080, tags: { 'kuma.io/service': svc } }], outbound: out },
  };
}

const channels = [];
function channel(i) {
  const c = i % CHANNELS;
  if (!channels[c]) channels[c] = new grpc.Client(XDS, channelCreds(), { 'bench.channel': c, 'grpc.max_receive_message_length': 64 << 20 });
  return channels[c];
}

class Proxy {
  constructor(i) { this.i = i; this.versions = {}; this.times = {}; this.onChange = null; }
  open() {
    this.versions = {};
    this.call = channel(this.i).makeBidiStreamRequest(ADS, (o) => Buffer.from(Req.encode(Req.fromObject(o)).finish()), (b) => b, new grpc.Metadata());
    this.call.on('data', (b) => this.onData(b));
    this.call.on('error', () => {});
    let first = true;
    for (const t of WANT) {
      const r = { type_url: TYPES[t] };
      if (first) { r.node = { id: `default.${dpName(this.i)}`, cluster: 'bench', user_agent_name: 'envoy' }; first = false; }
      this.call.write(r);
    }
  }
  onData(b) {
    const r = peek(b), t = SHORT[r.type];
    this.call.write({ type_url: r.type, version_info: r.version, response_nonce: r.nonce });
    this.versions[t] = r.version;
    this.times[t] = process.hrtime.bigint();
    if (this.onChange) this.onChange(this, t);
  }
  complete() { return WANT.every((t) => this.versions[t]); }
  close() { this.call.cancel(); }
}

const ms = (a, b) => Number(b - a) / 1e6;
function pct(v, p) { const s = [...v].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(s.length * p))]; }
function waitAll(proxies, pred, timeoutMs) {
  return new Promise((resolve, reject) => {
    const t0 = Date.now();
    const tick = () => {
      if (proxies.every(pred)) return resolve();
      if (Date.now() - t0 > timeoutMs) return reject(new Error(`timeout: ${proxies.filter((p) => !pred(p)).length} proxies not done`));
      setTimeout(tick, 5);
    };
    tick();
  });
}

async function parallel(n, conc, fn) {
  let next = 0;
  await Promise.all(Array.from({ length: conc }, async () => { while (next < n) await fn(next++); }));
}

async function main() {
  const res = {};
  let t = Date.now();
  await parallel(N, 32, async (i) => {
    const r = await api(CP, 'PUT', `/meshes/default/dataplanes/${dpName(i)}`, dpSpec(i));
    if (r.status !== 201 && r.status !== 200) throw new Error(`PUT ${i}: ${r.status} ${r.body}`);
  });
  res.create_s = (Date.now() - t) / 1000;
  if (MTLS) {
    const r = await api(CP, 'PUT', '/meshes/default', { type: 'Mesh', name: 'default', mtls: { enabledBackend: 'ca-1', backends: [{ name: 'ca-1', type: 'builtin', conf: { caCert: { keyType: 'ecdsa' } } }] } });
    if (r.status !== 200) throw new Error(`mTLS: ${r.body}`);
  }

  const proxies = Array.from({ length: N }, (_, i) => new Proxy(i));
  let t0 = process.hrtime.bigint();
  for (const p of proxies) p.open();
  await waitAll(proxies, (p) => p.complete(), 300000);
  res.cold_ms = ms(t0, process.hrtime.bigint());

  // Mesh-wide policy change.
  const before = proxies.map((p) => p.versions.CDS);
  t0 = process.hrtime.bigint();
  let r = await api(CP, 'PUT', '/meshes/default/meshtimeouts/mesh-timeout-all-default', {
    type: 'MeshTimeout', mesh: 'default', name: 'mesh-timeout-all-default',
    spec: { targetRef: { kind: 'Mesh' }, to: [{ targetRef: { kind: 'Mesh' }, default: { connectionTimeout: '7s', idleTimeout: '1h' } }] },
  });
  if (r.status !== 200 && r.status !== 201) throw new Error(`policy: ${r.status} ${r.body}`);
  await waitAll(proxies, (p, i) => p.versions.CDS !== before[p.i], 60000);
  const lat = proxies.map((p) => ms(t0, p.times.CDS));
  res.policy_p50_ms = pct(lat, 0.5);
  res.policy_p99_ms = pct(lat, 0.99);
  res.policy_max_ms = Math.max(...lat);

  // Endpoint churn: dp-0 (svc-0) moves.
  const eds = proxies.map((p) => p.versions.EDS);
  t0 = process.hrtime.bigint();
  const moved = dpSpec(0);
  moved.networking.address = '10.255.255.254';
  r = await api(CP, 'PUT', `/meshes/default/dataplanes/${dpName(0)}`, moved);
  const callers = proxies.filter((p) => dpSpec(p.i).networking.outbound.some((o) => o.tags['kuma.io/service'] === 'svc-0'));
  await waitAll(callers, (p) => p.versions.EDS !== eds[p.i], 60000);
  await new Promise((s) => setTimeout(s, 500));
  const got = proxies.filter((p) => p.versions.EDS !== eds[p.i]);
  const clat = callers.map((p) => ms(t0, p.times.EDS));
  res.churn_callers = callers.length;
  res.churn_received = got.length;
  res.churn_p99_ms = pct(clat, 0.99);

  // Idle: run.sh samples CPU while we sleep.
  console.log('IDLE_BEGIN');
  await new Promise((s) => setTimeout(s, IDLE_S * 1000));
  console.log('IDLE_END');

  // Reconnect storm.
  for (const p of proxies) p.close();
  await new Promise((s) => setTimeout(s, 200));
  t0 = process.hrtime.bigint();
  for (const p of proxies) p.open();
  await waitAll(proxies, (p) => p.complete(), 300000);
  res.storm_ms = ms(t0, process.hrtime.bigint());
  console.log(`RESULT ${JSON.stringify(res)}`);
  for (const p of proxies) p.close();
  process.exit(0);
}

main().catch((e) => { console.error(e); process.exit(1); });

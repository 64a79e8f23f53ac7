// Simulated fleet for kuma-cp's DP server (bench/xds/run.sh drives it).
// One ADS stream per simulated dataplane, spread over CHANNELS TLS
// connections; every stream subscribes to CDS, EDS, LDS (and SDS with
// MTLS=1) and ACKs each response at once. Responses are not decoded beyond
// the three top-level fields needed to ACK (version, type, nonce), and ACKs
// are encoded by hand, so the client's own cost per message stays small.
// The proxies are spread over WORKERS worker threads (default 2: the box has
// two cores, and one Node thread alone was the bottleneck of the policy
// phase); the main thread drives the phases and talks to the REST API.
//
// Phases, each timed on this side:
//   cold     every stream opens; time until the last proxy has all types
//   policy   a mesh-wide MeshTimeout change: per-proxy delay from the PUT to
//            its new CDS (p50/p99/max), and the client's CPU in that window
//   churn    one endpoint moves: who received EDS, and the delay
//   idle     nothing happens for IDLE_S seconds (run.sh samples kuma-cp's CPU)
//   storm    every stream closed and reopened at once: time to full config
// Env: XDS_ADDR, CP_URL, XDS_CA, N, SERVICES (default N/10), OUTBOUNDS,
// CHANNELS, WORKERS, MTLS, IDLE_S.
'use strict';
const path = require('path');
const { Worker, isMainThread, parentPort, workerData } = require('worker_threads');
const { performance } = require('perf_hooks');

const N = +process.env.N || 1000;
const SERVICES = +process.env.SERVICES || Math.max(1, Math.floor(N / 10));
const OUTBOUNDS = +process.env.OUTBOUNDS || 5;
const CHANNELS = +process.env.CHANNELS || 50;
const WORKERS = +process.env.WORKERS || 2;
const MTLS = process.env.MTLS === '1';
const IDLE_S = +process.env.IDLE_S || 10;
const XDS = process.env.XDS_ADDR;
const CP = process.env.CP_URL;
const TYPES = {
  CDS: 'type.googleapis.com/envoy.config.cluster.v3.Cluster',
  EDS: 'type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment',
  LDS: 'type.googleapis.com/envoy.config.listener.v3.Listener',
  SDS: 'type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret',
};
const WANT = MTLS ? ['CDS', 'EDS', 'LDS', 'SDS'] : ['CDS', 'EDS', 'LDS'];
const SHORT = Object.fromEntries(Object.entries(TYPES).map(([k, v]) => [v, k]));
const now = () => performance.timeOrigin + performance.now(); // comparable across threads

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

// ---- worker: owns a slice of the proxies ----------------------------------
function workerMain() {
  const grpc = require(path.join(__dirname, '../../tests/xds/node_modules/@grpc/grpc-js'));
  const { root, channelCreds } = require('../../tests/xds/lib.js');
  const Req = root().lookupType('envoy.service.discovery.v3.DiscoveryRequest');
  const ADS = '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources';
  const { ids, w } = workerData;

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
  // An ACK: DiscoveryRequest {version_info 1, type_url 4, response_nonce 5}.
  function field(no, str) {
    const v = Buffer.from(str, 'utf8');
    const len = [];
    let n = v.length;
    do { let b = n & 0x7f; n >>>= 7; if (n) b |= 0x80; len.push(b); } while (n);
    return Buffer.concat([Buffer.from([(no << 3) | 2, ...len]), v]);
  }
  const ack = (t, v, n) => Buffer.concat([field(1, v || ''), field(4, t), field(5, n || '')]);

  const channels = [];
  const perWorker = Math.max(1, Math.ceil(CHANNELS / WORKERS));
  function channel(i) {
    const c = i % perWorker;
    if (!channels[c]) channels[c] = new grpc.Client(XDS, channelCreds(), { 'bench.channel': `${w}.${c}`, 'grpc.max_receive_message_length': 64 << 20 });
    return channels[c];
  }
  class Proxy {
    constructor(i) { this.i = i; this.versions = {}; this.times = {}; }
    open() {
      this.versions = {};
      this.call = channel(this.i).makeBidiStreamRequest(ADS, (o) => (Buffer.isBuffer(o) ? o : Buffer.from(Req.encode(Req.fromObject(o)).finish())), (b) => b, new grpc.Metadata());
      this.call.on('data', (b) => {
        const r = peek(b), t = SHORT[r.type];
        this.call.write(ack(r.type, r.version, r.nonce));
        this.versions[t] = r.version;
        this.times[t] = now();
      });
      this.call.on('error', () => {});
      let first = true;
      for (const t of WANT) {
        const r = { type_url: TYPES[t] };
        if (first) { r.node = { id: `default.${dpName(this.i)}`, cluster: 'bench', user_agent_name: 'envoy' }; first = false; }
        this.call.write(r);
      }
    }
    complete() { return WANT.every((t) => this.versions[t]); }
    close() { this.call.cancel(); }
  }
  const proxies = ids.map((i) => new Proxy(i));
  let marked = {};
  const until = (pred, cb) => { const tick = () => (pred() ? cb() : setTimeout(tick, 5)); tick(); };
  parentPort.on('message', (m) => {
    if (m.op === 'open') {
      for (const p of proxies) p.open();
      until(() => proxies.every((p) => p.complete()), () => parentPort.postMessage({ op: 'done', t: now() }));
    } else if (m.op === 'mark') {
      marked = Object.fromEntries(WANT.map((t) => [t, proxies.map((p) => p.versions[t])]));
      parentPort.postMessage({ op: 'done' });
    } else if (m.op === 'waitChange') {
      const sel = m.subset ? proxies.filter((p) => m.subset.includes(p.i)) : proxies;
      const idx = new Map(proxies.map((p, k) => [p, k]));
      const changed = (p) => p.versions[m.type] !== marked[m.type][idx.get(p)];
      until(() => sel.every(changed), () => {
        setTimeout(() => parentPort.postMessage({
          op: 'done', times: sel.map((p) => p.times[m.type]), received: proxies.filter(changed).length,
        }), m.settleMs || 0);
      });
    } else if (m.op === 'close') {
      for (const p of proxies) p.close();
      parentPort.postMessage({ op: 'done' });
    } else if (m.op === 'exit') {
      for (const p of proxies) p.close();
      process.exit(0);
    }
  });
}

// ---- main: phases ---------------------------------------------------------
async function mainThread() {
  const { api } = require('../../tests/xds/lib.js');
  const workers = [];
  for (let w = 0; w < WORKERS; w++) {
    const ids = [];
    for (let i = w; i < N; i += WORKERS) ids.push(i);
    workers.push(new Worker(__filename, { workerData: { ids, w } }));
  }
  const call = (w, msg) => new Promise((resolve) => {
    const h = (m) => { if (m.op === 'done') { w.off('message', h); resolve(m); } };
    w.on('message', h);
    w.postMessage(msg);
  });
  const all = (msg) => Promise.all(workers.map((w) => call(w, msg)));
  const pct = (v, p) => { const s = [...v].sort((a, b) => a - b); return s[Math.min(s.length - 1, Math.floor(s.length * p))]; };
  async function parallel(n, conc, fn) {
    let next = 0;
    await Promise.all(Array.from({ length: conc }, async () => { while (next < n) await fn(next++); }));
  }

  const res = { n: N, services: SERVICES, workers: WORKERS };
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

  console.log('COLD_BEGIN');
  await new Promise((s) => setTimeout(s, process.env.PERF ? 2500 : 50)); // run.sh samples kuma-cp's CPU (and starts perf)
  let cpu0 = process.cpuUsage();
  let t0 = now();
  let done = await all({ op: 'open' });
  res.cold_ms = Math.max(...done.map((d) => d.t)) - t0;
  let cpu1 = process.cpuUsage(cpu0);
  res.cold_client_cpu_ms = Math.round((cpu1.user + cpu1.system) / 1000);
  console.log('COLD_END');

  // Mesh-wide policy change.
  await new Promise((s) => setTimeout(s, 500)); // let the cold phase's ACKs drain
  await all({ op: 'mark' });
  console.log('POLICY_BEGIN');
  await new Promise((s) => setTimeout(s, process.env.PERF ? 2500 : 50)); // run.sh samples kuma-cp's CPU (and starts perf)
  cpu0 = process.cpuUsage();
  t0 = now();
  const wait = all({ op: 'waitChange', type: 'CDS' });
  let r = await api(CP, 'PUT', '/meshes/default/meshtimeouts/mesh-timeout-all-default', {
    type: 'MeshTimeout', mesh: 'default', name: 'mesh-timeout-all-default',
    spec: { targetRef: { kind: 'Mesh' }, to: [{ targetRef: { kind: 'Mesh' }, default: { connectionTimeout: '7s', idleTimeout: '1h' } }] },
  });
  if (r.status !== 200 && r.status !== 201) throw new Error(`policy: ${r.status} ${r.body}`);
  done = await wait;
  const lat = done.flatMap((d) => d.times).map((x) => x - t0);
  res.policy_p50_ms = pct(lat, 0.5);
  res.policy_p99_ms = pct(lat, 0.99);
  res.policy_max_ms = Math.max(...lat);
  cpu1 = process.cpuUsage(cpu0);
  res.policy_client_cpu_ms = Math.round((cpu1.user + cpu1.system) / 1000);
  console.log('POLICY_END');

  // Endpoint churn: dp-0 (svc-0) moves.
  await all({ op: 'mark' });
  const callers = [];
  for (let i = 0; i < N; i++) if (dpSpec(i).networking.outbound.some((o) => o.tags['kuma.io/service'] === 'svc-0')) callers.push(i);
  t0 = now();
  const cw = all({ op: 'waitChange', type: 'EDS', subset: callers, settleMs: 500 });
  const moved = dpSpec(0);
  moved.networking.address = '10.255.255.254';
  r = await api(CP, 'PUT', `/meshes/default/dataplanes/${dpName(0)}`, moved);
  done = await cw;
  res.churn_callers = callers.length;
  res.churn_received = done.reduce((a, d) => a + d.received, 0);
  res.churn_p99_ms = pct(done.flatMap((d) => d.times).map((x) => x - t0), 0.99);

  // Idle: run.sh samples CPU while we sleep.
  console.log('IDLE_BEGIN');
  await new Promise((s) => setTimeout(s, IDLE_S * 1000));
  console.log('IDLE_END');

  // Reconnect storm.
  await all({ op: 'close' });
  await new Promise((s) => setTimeout(s, 200));
  t0 = now();
  done = await all({ op: 'open' });
  res.storm_ms = Math.max(...done.map((d) => d.t)) - t0;
  console.log(`RESULT ${JSON.stringify(res)}`);
  for (const w of workers) w.postMessage({ op: 'exit' });
  process.exit(0);
}

if (isMainThread) mainThread().catch((e) => { console.error(e); process.exit(1); });
else workerMain();

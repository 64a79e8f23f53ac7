// Scenario: a raw ADS client against kuma-cp.
//  (a) connects as default.web-1 with its Dataplane in node metadata, gets
//      CDS/EDS/LDS, every resource decoded with Envoy's real protos and
//      re-encoded to identical bytes, with Kuma's names; ACKs; NACKs LDS and
//      sees no resend;
//  (b) push: a new backend dataplane yields a new EDS version for web-1,
//      while a proxy of mesh "other" receives nothing from mesh default;
//  then the stream ends and the registered dataplane is deregistered.
// Env: XDS_ADDR (host:port of the DP server), CP_URL (REST API).
'use strict';
const { AdsClient, api, assert, assertEq, waitFor } = require('./lib.js');

const XDS = process.env.XDS_ADDR;
const CP = process.env.CP_URL;

const webDp = `type: Dataplane
mesh: default
name: web-1
networking:
  address: 127.0.0.1
  inbound:
  - port: 18080
    servicePort: 8080
    tags:
      kuma.io/service: web
      kuma.io/protocol: tcp
  outbound:
  - port: 10001
    tags:
      kuma.io/service: backend
  transparentProxying:
    redirectPortInbound: 15006
    redirectPortOutbound: 15001
    ipFamilyMode: dualstack
`;

function names(resp) {
  return Object.keys(resp.byName).sort();
}

function endpoints(cla) {
  const out = [];
  for (const loc of cla.endpoints || []) {
    assert(loc.load_balancing_weight && loc.load_balancing_weight.value === 1, 'locality weight set');
    for (const lb of loc.lb_endpoints) {
      const sa = lb.endpoint.address.socket_address;
      out.push(`${sa.address}:${sa.port_value}`);
    }
  }
  return out.sort();
}

async function main() {
  let r = await api(CP, 'PUT', '/meshes/other', { type: 'Mesh', name: 'other' });
  assert(r.status === 201 || r.status === 200, `create mesh other: ${r.status} ${r.body}`);

  // (a) connect with the Dataplane in node metadata.
  const web = new AdsClient(XDS, 'default.web-1', { metadata: { 'dataplane.resource': webDp } });
  web.request('CDS');
  const cds = await web.waitCount('CDS', 1);
  assertEq(names(cds), ['backend', 'inbound:passthrough:ipv4', 'inbound:passthrough:ipv6', 'localhost:8080',
    'outbound:passthrough:ipv4', 'outbound:passthrough:ipv6'], 'CDS names');
  const local = cds.byName['localhost:8080'];
  assertEq(local.alt_stat_name, 'localhost_8080', 'alt_stat_name');
  assertEq(local.type, 0 /* STATIC */, 'local cluster type');
  const lsa = local.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address;
  assertEq([lsa.address, lsa.port_value], ['127.0.0.1', 8080], 'local endpoint');
  assertEq(cds.byName.backend.type, 3 /* EDS */, 'backend cluster type');
  assert(cds.byName.backend.eds_cluster_config.eds_config.ads, 'EDS via ADS');
  assertEq(cds.byName['outbound:passthrough:ipv4'].type, 4 /* ORIGINAL_DST */, 'passthrough cluster');
  assertEq(cds.byName['outbound:passthrough:ipv4'].alt_stat_name, 'outbound_passthrough_ipv4', 'passthrough stat name');
  web.ack('CDS');

  web.request('EDS', { names: ['backend'] });
  const eds1 = await web.waitCount('EDS', 1);
  assertEq(names(eds1), ['backend'], 'EDS names');
  assertEq(endpoints(eds1.byName.backend), [], 'no backend endpoints yet');
  web.ack('EDS', ['backend']);

  web.request('LDS');
  const lds = await web.waitCount('LDS', 1);
  assertEq(names(lds), ['inbound:127.0.0.1:18080', 'inbound:passthrough:ipv4', 'inbound:passthrough:ipv6',
    'outbound:127.0.0.1:10001', 'outbound:passthrough:ipv4', 'outbound:passthrough:ipv6'], 'LDS names');
  assertEq(lds.byName['outbound:passthrough:ipv6'].address.socket_address.address, '::', 'IPv6 passthrough');
  const inb = lds.byName['inbound:127.0.0.1:18080'];
  assertEq(inb.traffic_direction, 1 /* INBOUND */, 'inbound direction');
  assert(inb.bind_to_port && inb.bind_to_port.value === false, 'bind_to_port false under transparent proxying');
  const tcp = inb.filter_chains[0].filters[0].typed_config.decoded;
  assertEq([tcp.stat_prefix, tcp.cluster], ['localhost_8080', 'localhost:8080'], 'inbound tcp_proxy');
  const outl = lds.byName['outbound:127.0.0.1:10001'];
  const otcp = outl.filter_chains[0].filters[0].typed_config.decoded;
  assertEq([otcp.stat_prefix, otcp.cluster], ['backend', 'backend'], 'outbound tcp_proxy');
  const pt = lds.byName['outbound:passthrough:ipv4'];
  assertEq(pt.address.socket_address.port_value, 15001, 'passthrough port');
  assertEq(pt.use_original_dst, { value: true }, 'use_original_dst');
  web.ack('LDS');

  // The registered Dataplane is in the store.
  r = await api(CP, 'GET', '/meshes/default/dataplanes/web-1');
  assertEq(r.status, 200, 'registered dataplane');

  // NACK the listeners: the server records it and does not resend.
  const ldsBefore = web.responses.LDS.length;
  web.nack('LDS', 'test: listener rejected on purpose');

  // (b) a proxy in mesh "other" that also calls "backend".
  const other = new AdsClient(XDS, 'other.web-2', {
    metadata: {
      'dataplane.resource': JSON.stringify({
        type: 'Dataplane', mesh: 'other', name: 'web-2',
        networking: { address: '127.0.0.2', inbound: [{ port: 18080, tags: { 'kuma.io/service': 'web' } }],
          outbound: [{ port: 10001, tags: { 'kuma.io/service': 'backend' } }] },
      }),
    },
  });
  other.request('CDS');
  await other.waitCount('CDS', 1);
  other.ack('CDS');
  other.request('EDS', { names: ['backend'] });
  const oeds1 = await other.waitCount('EDS', 1);
  assertEq(endpoints(oeds1.byName.backend), [], 'other: no backend endpoints');
  other.ack('EDS', ['backend']);

  // A backend appears in mesh default: web-1 gets a new EDS version.
  r = await api(CP, 'PUT', '/meshes/default/dataplanes/backend-1', {
    type: 'Dataplane', mesh: 'default', name: 'backend-1',
    networking: { address: '127.0.0.1', inbound: [{ port: 19090, tags: { 'kuma.io/service': 'backend' } }] },
  });
  assertEq(r.status, 201, `create backend-1: ${r.body}`);
  const eds2 = await web.waitCount('EDS', 2);
  assert(eds2.version_info !== eds1.version_info, 'new EDS version');
  assertEq(endpoints(eds2.byName.backend), ['127.0.0.1:19090'], 'backend endpoint pushed');
  web.ack('EDS', ['backend']);
  // Ordering: the NACK was handled before this push, so a resend would have come first.
  assertEq(web.responses.LDS.length, ldsBefore, 'no LDS resend after the NACK');
  assertEq(web.responses.CDS.length, 1, 'CDS unchanged: not resent');

  // Mesh "other" gets only its own backend, never mesh default's.
  r = await api(CP, 'PUT', '/meshes/other/dataplanes/backend-9', {
    type: 'Dataplane', mesh: 'other', name: 'backend-9',
    networking: { address: '127.0.0.9', inbound: [{ port: 29090, tags: { 'kuma.io/service': 'backend' } }] },
  });
  assertEq(r.status, 201, `create other backend: ${r.body}`);
  const oeds2 = await other.waitCount('EDS', 2);
  assertEq(endpoints(oeds2.byName.backend), ['127.0.0.9:29090'], 'other: only its own mesh');
  assertEq(other.responses.EDS.length, 2, 'other: exactly one EDS push');
  assertEq(other.responses.LDS.length, 0, 'other: never subscribed to LDS');

  // A second stream of web-1 (a reconnect) gets its current config at once.
  const again = new AdsClient(XDS, 'default.web-1');
  again.request('EDS', { names: ['backend'] });
  const eds3 = await again.waitCount('EDS', 1);
  assertEq(eds3.version_info, eds2.version_info, 'reconnect: current EDS version at once');
  again.close();

  // A proxyless gRPC client gets API listeners (HCM, inline route, router),
  // also byte-identical under Envoy's protos.
  const pl = new AdsClient(XDS, 'default.pl-1', {
    userAgent: 'gRPC raw test',
    metadata: { 'dataplane.resource': 'type: Dataplane\nmesh: default\nname: pl-1\nnetworking:\n  address: 127.0.0.3\n  inbound:\n  - port: 20001\n    tags:\n      kuma.io/service: pl\n  outbound:\n  - port: 10001\n    tags:\n      kuma.io/service: backend\n' },
  });
  pl.request('LDS', { names: ['backend'] });
  const plds = await pl.waitCount('LDS', 1);
  assertEq(names(plds), ['backend'], 'proxyless: one API listener per outbound service');
  const hcm = plds.byName.backend.api_listener.api_listener.decoded;
  assertEq(hcm.route_config.virtual_hosts[0].routes[0].route.cluster, 'backend', 'proxyless route');
  assertEq(hcm.http_filters[hcm.http_filters.length - 1].typed_config.type_url,
    'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router', 'router last');
  pl.ack('LDS', ['backend']);
  pl.request('CDS', { names: ['backend'] });
  const pcds = await pl.waitCount('CDS', 1);
  assertEq(names(pcds), ['backend'], 'proxyless: only EDS clusters');
  pl.close();

  // The stream ends: the dataplane registered from metadata is deleted after
  // the deregistration delay.
  web.close();
  other.close();
  let gone = false;
  const deadline = Date.now() + 15000;
  while (Date.now() < deadline) {
    r = await api(CP, 'GET', '/meshes/default/dataplanes/web-1');
    if (r.status === 404) {
      gone = true;
      break;
    }
    await new Promise((res) => setTimeout(res, 100));
  }
  assert(gone, 'web-1 deregistered after its stream ended');
  r = await api(CP, 'GET', '/meshes/default/dataplanes/backend-1');
  assertEq(r.status, 200, 'backend-1 (created over REST) is kept');
  console.log('ads_raw: ok');
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(`ads_raw: FAIL: ${e.stack || e}`);
    process.exit(1);
  },
);

// Scenario: a raw ADS client against kuma-cp.
//  (a) connects as default.web-1 with its Dataplane in node metadata, gets
//      CDS/EDS/LDS, every resource decoded with Envoy's real protos and
//      re-encoded to identical bytes, with Kuma's names; ACKs; NACKs LDS and
//      sees no resend;
//  (b) push: a new backend dataplane yields a new EDS version for web-1,
//      while a proxy of mesh "other" receives nothing from mesh default;
//  (c) HTTP: a proxy whose inbound and outbound services are tagged
//      kuma.io/protocol http/grpc gets HTTP connection managers with inline
//      route configs (TrafficRoute http matches, MeshTimeout/MeshRetry http
//      fields) and upstream HttpProtocolOptions, round-tripped the same way;
//  (d) a builtin gateway gets its MeshGateway's listener and, over RDS, the
//      route configuration with a virtual host per hostname;
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
  await other.subscribe('CDS');
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

  // (c) HTTP.
  for (const [name, ip, ver, proto] of [['api-1', '127.0.0.3', 'v1', 'http'], ['api-2', '127.0.0.4', 'v2', 'http'],
    ['rpc-1', '127.0.0.5', 'v1', 'grpc']]) {
    r = await api(CP, 'PUT', `/meshes/default/dataplanes/${name}`, {
      type: 'Dataplane', mesh: 'default', name,
      networking: { address: ip, inbound: [{ port: 8080, tags: { 'kuma.io/service': name.split('-')[0], 'kuma.io/protocol': proto, version: ver } }] },
    });
    assertEq(r.status, 201, `create ${name}: ${r.body}`);
  }
  const policies = [
    ['traffic-routes', { type: 'TrafficRoute', mesh: 'default', name: 'api-routes',
      sources: [{ match: { 'kuma.io/service': 'front' } }], destinations: [{ match: { 'kuma.io/service': 'api' } }],
      conf: { http: [{ match: { path: { prefix: '/v2' }, method: { exact: 'GET' }, headers: { 'x-user': { regex: '^a.*' } } },
        destination: { 'kuma.io/service': 'api', version: 'v2' } },
      { match: { path: { exact: '/half' } }, split: [{ weight: 50, destination: { 'kuma.io/service': 'api', version: 'v1' } },
        { weight: 50, destination: { 'kuma.io/service': 'api', version: 'v2' } }] }],
      destination: { 'kuma.io/service': 'api' } } }],
    ['meshtimeouts', { type: 'MeshTimeout', mesh: 'default', name: 'mt-http', spec: { targetRef: { kind: 'Mesh' },
      to: [{ targetRef: { kind: 'MeshService', name: 'api' }, default: { idleTimeout: '30m', http: { requestTimeout: '5s', streamIdleTimeout: '1m', maxStreamDuration: '10m' } } }],
      from: [{ targetRef: { kind: 'Mesh' }, default: { http: { requestTimeout: '20s' } } }] } }],
    ['meshretries', { type: 'MeshRetry', mesh: 'default', name: 'mr-http', spec: { targetRef: { kind: 'Mesh' },
      to: [{ targetRef: { kind: 'Mesh' }, default: { http: { numRetries: 3, perTryTimeout: '2s', backOff: { baseInterval: '100ms', maxInterval: '1s' }, retryOn: ['5xx', '503'] },
        grpc: { numRetries: 2, retryOn: ['Unavailable'] } } }] } }],
  ];
  for (const [coll, body] of policies) {
    r = await api(CP, 'PUT', `/meshes/default/${coll}/${body.name}`, body);
    assert(r.status === 201 || r.status === 200, `create ${body.name}: ${r.status} ${r.body}`);
  }
  const front = new AdsClient(XDS, 'default.front-1', {
    metadata: {
      'dataplane.resource': JSON.stringify({
        type: 'Dataplane', mesh: 'default', name: 'front-1',
        networking: { address: '127.0.0.6', inbound: [{ port: 18081, servicePort: 8081, tags: { 'kuma.io/service': 'front', 'kuma.io/protocol': 'http' } }],
          outbound: [{ port: 10011, tags: { 'kuma.io/service': 'api' } }, { port: 10012, tags: { 'kuma.io/service': 'rpc' } }] },
      }),
    },
  });
  front.request('CDS');
  const fcds = await front.waitCount('CDS', 1);
  const hpo = (c) => Object.values(c.typed_extension_protocol_options || {})[0]?.decoded;
  assert(hpo(fcds.byName.api)?.explicit_http_config?.http_protocol_options, 'api cluster: HTTP/1.1 upstream');
  assertEq(hpo(fcds.byName.api).common_http_protocol_options.idle_timeout.seconds.toString(), '1800', 'api cluster idle timeout');
  assert(hpo(fcds.byName.rpc)?.explicit_http_config?.http2_protocol_options, 'rpc cluster: HTTP/2 upstream');
  assert(hpo(fcds.byName['localhost:8081'])?.explicit_http_config?.http_protocol_options, 'inbound cluster: HTTP/1.1');
  assertEq(names(fcds).filter((n) => n.startsWith('api-')).length, 2, 'two api subset clusters');
  front.ack('CDS');
  front.request('LDS');
  const flds = await front.waitCount('LDS', 1);
  const hcmOf = (l) => l.filter_chains[0].filters[0];
  const ohcm = hcmOf(flds.byName['outbound:127.0.0.1:10011']);
  assertEq(ohcm.name, 'envoy.filters.network.http_connection_manager', 'outbound HCM');
  const oh = ohcm.typed_config.decoded;
  assertEq([oh.stat_prefix, oh.route_config.name], ['api', 'outbound:api'], 'outbound HCM names');
  assertEq(oh.stream_idle_timeout.seconds.toString(), '60', 'streamIdleTimeout');
  const routes = oh.route_config.virtual_hosts[0].routes;
  assertEq(routes.length, 3, 'two http routes + default');
  assertEq(routes[0].match.headers.map((h) => h.name), [':method', 'x-user'], 'method and header matches');
  assertEq(routes[0].route.timeout.seconds.toString(), '5', 'requestTimeout');
  assertEq(routes[0].route.retry_policy.num_retries.value, 3, 'numRetries');
  assertEq(routes[0].route.retry_policy.retriable_status_codes, [503], 'retriable status codes');
  assertEq(routes[1].route.weighted_clusters.clusters.map((c) => c.weight.value), [50, 50], 'split weights');
  assertEq(routes[2].match.prefix, '/', 'default route');
  assertEq(oh.http_filters.map((f) => f.name), ['envoy.filters.http.router'], 'router filter');
  const rh = hcmOf(flds.byName['outbound:127.0.0.1:10012']).typed_config.decoded;
  assertEq(rh.route_config.virtual_hosts[0].routes[0].route.retry_policy.retry_on, 'unavailable', 'grpc retryOn');
  const ih = hcmOf(flds.byName['inbound:127.0.0.6:18081']).typed_config.decoded;
  assertEq([ih.route_config.name, ih.stat_prefix], ['inbound:front', 'localhost_8081'], 'inbound HCM names');
  assertEq(ih.route_config.request_headers_to_remove, ['x-kuma-tags'], 'x-kuma-tags removed inbound');
  front.ack('LDS');
  assertEq(front.errors.map(String), [], 'HTTP resources round-trip');
  front.close();

  // (d) a builtin gateway: listeners of its MeshGateway, routes over RDS.
  r = await api(CP, 'PUT', '/meshes/default/meshgateways/edge', {
    type: 'MeshGateway', mesh: 'default', name: 'edge',
    selectors: [{ match: { 'kuma.io/service': 'edge-gateway' } }],
    conf: { listeners: [{ port: 8080, protocol: 'HTTP', hostname: 'echo.example.com' }, { port: 8080, protocol: 'HTTP' }] },
  });
  assert(r.status === 201 || r.status === 200, `create MeshGateway: ${r.status} ${r.body}`);
  const edge = new AdsClient(XDS, 'default.edge-1', {
    metadata: {
      'dataplane.resource': JSON.stringify({
        type: 'Dataplane', mesh: 'default', name: 'edge-1',
        networking: { address: '127.0.0.7', gateway: { type: 'BUILTIN', tags: { 'kuma.io/service': 'edge-gateway' } } },
      }),
    },
  });
  edge.request('LDS');
  const glds = await edge.waitCount('LDS', 1);
  assertEq(names(glds), ['edge:HTTP:8080'], 'gateway listener name');
  const gh = hcmOf(glds.byName['edge:HTTP:8080']).typed_config.decoded;
  assertEq([gh.rds.route_config_name, gh.stat_prefix], ['edge:HTTP:8080:*', 'edge-gateway'], 'gateway HCM (RDS)');
  edge.ack('LDS');
  edge.request('RDS', { names: ['edge:HTTP:8080:*'] });
  const grds = await edge.waitCount('RDS', 1);
  assertEq(grds.byName['edge:HTTP:8080:*'].virtual_hosts.map((v) => v.name), ['echo.example.com', '*'], 'virtual hosts per hostname');
  edge.ack('RDS', ['edge:HTTP:8080:*']);
  assertEq(edge.errors.map(String), [], 'gateway resources round-trip');
  edge.close();

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

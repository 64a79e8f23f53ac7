// Scenario: MeshHTTPRoute and MeshTCPRoute reach a sidecar over ADS, every
// resource decoded with Envoy's real protos and re-encoded to identical bytes.
//  (a) with a TrafficRoute in the mesh and no Mesh*Route, front-1 gets the
//      legacy route (Kuma's precedence) with its `modify`;
//  (b) a MeshHTTPRoute (matches, filters, weighted subsets, mirror) and a
//      MeshTCPRoute (weighted TCP) are applied: a new LDS/CDS version, the
//      TrafficRoute is ignored, routes in Kuma's order with their names;
//  (c) changing the weights pushes a new LDS version with the new weights;
//  (d) deleting both routes brings the TrafficRoute back;
//  (e) a builtin gateway routed by Mesh*Routes targeting its MeshGateway;
//  (f) a MeshTrafficPermission on an HTTP inbound of an mTLS mesh is the
//      HTTP RBAC filter (envoy.filters.http.rbac) inside the HCM;
//  (g) a cross-mesh gateway gets every mesh's CA (mesh_ca:secret:all), and a
//      new mTLS mesh pushes a new bundle.
// The policies are applied by the shell test (kumactl apply); this script
// waits for their effect. Env: XDS_ADDR, CP_URL, ROUTES_STEP_FILE (a file the
// shell test polls to know which step the script waits for).
'use strict';
const fs = require('fs');
const { AdsClient, api, assert, assertEq, waitFor } = require('./lib.js');

const XDS = process.env.XDS_ADDR;
const CP = process.env.CP_URL;

async function put(coll, body) {
  const r = await api(CP, 'PUT', `/meshes/default/${coll}/${body.name}`, body);
  assert(r.status === 201 || r.status === 200, `put ${body.name}: ${r.status} ${r.body}`);
}

async function del(coll, name) {
  const r = await api(CP, 'DELETE', `/meshes/default/${coll}/${name}`);
  assertEq(r.status, 200, `delete ${name}: ${r.body}`);
}

const hcm = (l) => l.filter_chains[0].filters[0];

function routesOf(lds, name) {
  const f = hcm(lds.byName[name]);
  assertEq(f.name, 'envoy.filters.network.http_connection_manager', `${name}: HCM`);
  return f.typed_config.decoded.route_config.virtual_hosts[0].routes;
}

async function main() {
  for (const [name, ip, svc, proto, ver] of [['api-1', '127.0.0.3', 'api', 'http', 'v1'],
    ['api-2', '127.0.0.4', 'api', 'http', 'v2'], ['db-1', '127.0.0.5', 'db', 'tcp', 'v1'],
    ['db-2', '127.0.0.7', 'db', 'tcp', 'v2']]) {
    const r = await api(CP, 'PUT', `/meshes/default/dataplanes/${name}`, {
      type: 'Dataplane', mesh: 'default', name,
      networking: { address: ip, inbound: [{ port: 8080, tags: { 'kuma.io/service': svc, 'kuma.io/protocol': proto, version: ver } }] },
    });
    assertEq(r.status, 201, `create ${name}: ${r.body}`);
  }
  await put('traffic-routes', { type: 'TrafficRoute', mesh: 'default', name: 'legacy',
    sources: [{ match: { 'kuma.io/service': '*' } }], destinations: [{ match: { 'kuma.io/service': 'api' } }],
    conf: { http: [{ match: { path: { prefix: '/legacy' } }, destination: { 'kuma.io/service': 'api', version: 'v2' },
      modify: { path: { rewritePrefix: '/v2' }, requestHeaders: { add: [{ name: 'x-legacy', value: '1', append: true }] } } }],
      destination: { 'kuma.io/service': 'api' } } });

  const front = new AdsClient(XDS, 'default.front-1', {
    metadata: {
      'dataplane.resource': JSON.stringify({
        type: 'Dataplane', mesh: 'default', name: 'front-1',
        networking: { address: '127.0.0.6', inbound: [{ port: 18081, servicePort: 8081, tags: { 'kuma.io/service': 'front', 'kuma.io/protocol': 'http', team: 'edge' } }],
          outbound: [{ port: 10011, tags: { 'kuma.io/service': 'api' } }, { port: 10012, tags: { 'kuma.io/service': 'db' } }] },
      }),
    },
  });
  await front.subscribe('CDS', 'LDS');
  let lds = front.responses.LDS[0];

  // (a) the TrafficRoute: /legacy, then the default route, no names.
  let routes = routesOf(lds, 'outbound:127.0.0.1:10011');
  assertEq(routes.map((r) => r.match.prefix), ['/legacy', '/'], '(a) legacy routes');
  assertEq(routes.map((r) => r.name), ['', ''], '(a) legacy routes have no names');
  assertEq(routes[0].route.prefix_rewrite, '/v2', '(a) TrafficRoute modify: rewritePrefix');
  assertEq(routes[0].request_headers_to_add.map((h) => [h.header.key, h.append_action]), [['x-legacy', 0]],
    '(a) TrafficRoute modify: requestHeaders add (APPEND_IF_EXISTS_OR_ADD)');
  assertEq(hcm(lds.byName['outbound:127.0.0.1:10012']).typed_config.decoded.cluster, 'db', '(a) db: one cluster');

  // (b) the shell test applies the Mesh*Routes with kumactl now.
  fs.writeFileSync(process.env.ROUTES_STEP_FILE, 'apply\n');
  // kumactl applies the two documents one after the other: wait for both.
  const dbWeighted = (l) => hcm(l.byName['outbound:127.0.0.1:10012']).typed_config.decoded.weighted_clusters;
  await waitFor(() => {
    if (front.errors.length) throw front.errors[0];
    const l = front.last('LDS');
    return front.responses.LDS.length > 1 && dbWeighted(l) && routesOf(l, 'outbound:127.0.0.1:10011')[0].name;
  }, 20000, '(b) LDS with both routes');
  lds = front.last('LDS');
  front.ack('LDS');
  await waitFor(() => front.responses.CDS.length > 1, 20000, '(b) CDS push');
  const cds = front.last('CDS');
  front.ack('CDS');
  routes = routesOf(lds, 'outbound:127.0.0.1:10011');
  const shape = routes.map((r) => r.match.path || r.match.prefix || r.match.safe_regex.regex);
  assertEq(shape, ['/old', '/v2', '/v2/', '/'], '(b) Kuma order: exact, longer prefix, the PathPrefix / default');
  assert(routes.every((r) => /^[A-Za-z0-9+/]{43}=$/.test(r.name)), '(b) routes named by the hash of their matches');
  assertEq(routes[1].name, routes[2].name, '(b) the two routes of one PathPrefix share the name');
  assert(!shape.includes('/legacy'), '(b) TrafficRoute ignored');
  const redirect = routes[0].redirect;
  assertEq([redirect.scheme_redirect, redirect.host_redirect, redirect.port_redirect, redirect.response_code],
    ['https', 'example.com', 8443, 1], '(b) RequestRedirect');
  const v2 = routes[1];
  assertEq(v2.match.headers.map((h) => [h.name, h.string_match.exact]), [[':method', 'GET'], ['x-canary', 'yes']], '(b) method and header');
  assertEq(v2.match.query_parameters.map((q) => [q.name, q.string_match.exact]), [['debug', '1']], '(b) query parameter');
  assertEq(v2.request_headers_to_add.map((h) => [h.header.key, h.header.value, h.append.value]),
    [['x-a', 'b', false], ['x-a', 'c', true]], '(b) RequestHeaderModifier set');
  assertEq(v2.request_headers_to_remove, ['x-f'], '(b) RequestHeaderModifier remove');
  assertEq(v2.response_headers_to_add.map((h) => h.header.key), ['x-r'], '(b) ResponseHeaderModifier');
  assertEq(v2.route.regex_rewrite.substitution, '/v3', '(b) URLRewrite on the exact half');
  assertEq(routes[2].route.prefix_rewrite, '/v3', '(b) URLRewrite on the prefix half');
  assertEq(v2.route.weighted_clusters.clusters.map((c) => [c.metadata_match.filter_metadata['envoy.lb'].fields.version.stringValue || c.metadata_match.filter_metadata['envoy.lb'].fields.version.string_value, c.weight.value]),
    [['v2', 90], ['v1', 10]], '(b) weighted subsets');
  const mirror = v2.route.request_mirror_policies[0];
  assert(cds.byName[mirror.cluster], `(b) mirror cluster ${mirror.cluster} in CDS`);
  assertEq(mirror.runtime_fraction.default_value.numerator, 25, '(b) mirror percentage');
  for (const c of v2.route.weighted_clusters.clusters) assert(cds.byName[c.name], `(b) cluster ${c.name} in CDS`);
  const dbTcp = hcm(lds.byName['outbound:127.0.0.1:10012']).typed_config.decoded;
  assertEq(dbTcp.weighted_clusters.clusters.map((c) => c.weight), [80, 20], '(b) MeshTCPRoute weights');
  for (const c of dbTcp.weighted_clusters.clusters) assert(cds.byName[c.name], `(b) TCP cluster ${c.name} in CDS`);

  // (c) new weights → a new LDS version.
  fs.writeFileSync(process.env.ROUTES_STEP_FILE, 'reweight\n');
  const before = front.last('LDS').version_info;
  const seen = front.responses.LDS.length;
  lds = await waitFor(() => {
    const l = front.last('LDS');
    return front.responses.LDS.length > seen && dbWeighted(l).clusters[0].weight === 50 && l;
  }, 20000, '(c) LDS with the new weights');
  front.ack('LDS');
  assert(lds.version_info !== before, '(c) new LDS version');
  assertEq(dbWeighted(lds).clusters.map((c) => c.weight), [50, 50], '(c) new TCP weights');

  // (d) without Mesh*Routes the TrafficRoute applies again.
  await del('meshhttproutes', 'api-route');
  await del('meshtcproutes', 'db-split');
  await waitFor(() => {
    const l = front.last('LDS');
    const rs = routesOf(l, 'outbound:127.0.0.1:10011');
    return rs[0].match.prefix === '/legacy';
  }, 20000, '(d) legacy route back');
  assertEq(front.errors.map(String), [], 'every response round-trips');
  front.close();

  // (e) a builtin gateway routed by a MeshHTTPRoute and a MeshTCPRoute
  // targeting its MeshGateway: listeners, RDS virtual hosts and routes,
  // clusters, all round-tripped.
  await put('secrets', { type: 'Secret', mesh: 'default', name: 'edge-cert',
    data: fs.readFileSync(process.env.GW_CERT_PEM).toString('base64') });
  await put('meshgateways', { type: 'MeshGateway', mesh: 'default', name: 'edge',
    selectors: [{ match: { 'kuma.io/service': 'edge-gateway' } }],
    conf: { listeners: [{ port: 8080, protocol: 'HTTP', hostname: '*.example.com' }, { port: 9443, protocol: 'TCP' },
      { port: 8443, protocol: 'HTTPS', hostname: 'shop.example.com', tls: { mode: 'TERMINATE', certificates: [{ secret: 'edge-cert' }] } }] } });
  await put('meshhttproutes', { type: 'MeshHTTPRoute', mesh: 'default', name: 'edge-http', spec: {
    targetRef: { kind: 'MeshGateway', name: 'edge' },
    to: [{ targetRef: { kind: 'Mesh' }, hostnames: ['shop.example.com'], rules: [
      { matches: [{ path: { type: 'PathPrefix', value: '/api' } }],
        default: { backendRefs: [{ kind: 'MeshServiceSubset', name: 'api', tags: { version: 'v2' } }] } }] }] } });
  await put('meshtcproutes', { type: 'MeshTCPRoute', mesh: 'default', name: 'edge-tcp', spec: {
    targetRef: { kind: 'MeshGateway', name: 'edge' },
    to: [{ targetRef: { kind: 'Mesh' }, rules: [{ default: { backendRefs: [{ kind: 'MeshService', name: 'db', weight: 3 }, { kind: 'MeshServiceSubset', name: 'db', tags: { version: 'v2' }, weight: 1 }] } }] }] } });
  const edge = new AdsClient(XDS, 'default.edge-1', {
    metadata: { 'dataplane.resource': JSON.stringify({ type: 'Dataplane', mesh: 'default', name: 'edge-1',
      networking: { address: '127.0.0.8', gateway: { type: 'BUILTIN', tags: { 'kuma.io/service': 'edge-gateway' } } } }) },
  });
  await edge.subscribe('CDS', 'LDS');
  // The policies were just written: their events may reach kuma-cp after the
  // gateway connected; wait for the config that has them all.
  await waitFor(() => {
    if (edge.errors.length) throw edge.errors[0];
    const l = edge.last('LDS');
    return l.byName['edge:TCP:9443'] && edge.last('CDS').byName.db;
  }, 20000, `(e) gateway config with the routes: ${Object.keys(edge.last('LDS').byName)} / ${Object.keys(edge.last('CDS').byName)}`);
  const glds = edge.last('LDS');
  const gcds = edge.last('CDS');
  if (edge.responses.LDS.length > 1) edge.ack('LDS');
  if (edge.responses.CDS.length > 1) edge.ack('CDS');
  assertEq(Object.keys(glds.byName).sort(), ['edge:HTTP:8080', 'edge:HTTPS:8443', 'edge:TCP:9443'], '(e) gateway listeners');
  const https = glds.byName['edge:HTTPS:8443'];
  assertEq(https.listener_filters.map((f) => f.name), ['envoy.filters.listener.tls_inspector'], '(e) TLS inspector');
  const fc = https.filter_chains[0];
  assertEq([fc.filter_chain_match.server_names, fc.filter_chain_match.transport_protocol], [['shop.example.com'], 'tls'], '(e) SNI match');
  const dtls = fc.transport_socket.typed_config.decoded;
  const sds = dtls.common_tls_context.tls_certificate_sds_secret_configs.map((c) => c.name);
  assertEq(sds, ['cert.ecdsa:secret:edge-cert'], '(e) certificate over SDS');
  assertEq(dtls.common_tls_context.alpn_protocols, ['h2', 'http/1.1'], '(e) ALPN');
  edge.request('SDS', { names: sds });
  const gsds = await edge.waitCount('SDS', 1);
  edge.ack('SDS', sds);
  const tc = gsds.byName['cert.ecdsa:secret:edge-cert'].tls_certificate;
  assert(tc.certificate_chain.inline_bytes.toString().startsWith('-----BEGIN CERTIFICATE-----'), '(e) chain');
  assert(tc.private_key.inline_bytes.toString().startsWith('-----BEGIN PRIVATE KEY-----'), '(e) key');
  edge.request('RDS', { names: ['edge:HTTPS:8443:shop.example.com'] });
  await edge.waitCount('RDS', 1);
  const srds = edge.last('RDS').byName['edge:HTTPS:8443:shop.example.com'];
  assertEq([srds.virtual_hosts[0].name, srds.virtual_hosts[0].require_tls], ['shop.example.com', 2], '(e) HTTPS virtual host requires TLS');
  edge.ack('RDS', ['edge:HTTPS:8443:shop.example.com']);
  const gtcp = hcm(glds.byName['edge:TCP:9443']).typed_config.decoded;
  assertEq(gtcp.weighted_clusters.clusters.map((c) => c.weight), [3, 1], '(e) gateway TCP weights');
  edge.request('RDS', { names: ['edge:HTTP:8080:*'] });
  const grds = await waitFor(() => edge.responses.RDS.find((r) => r.byName['edge:HTTP:8080:*']), 10000, '(e) RDS of 8080');
  edge.ack('RDS', ['edge:HTTP:8080:*']);
  const vhs = grds.byName['edge:HTTP:8080:*'].virtual_hosts;
  assertEq(vhs.map((v) => v.name), ['shop.example.com'], '(e) virtual host narrowed by the route hostname');
  const groutes = vhs[0].routes;
  assertEq(groutes.map((r) => r.match.path || r.match.prefix), ['/api', '/api/'], '(e) gateway routes');
  const gwc = groutes[0].route.weighted_clusters.clusters[0];
  assertEq(gwc.request_headers_to_add[0].header.value, '&kuma.io/service=edge-gateway&', '(e) x-kuma-tags of the gateway');
  assertEq(groutes[0].route.cluster_not_found_response_code, 2, '(e) 500 when a cluster is missing');
  for (const n of [gwc.name, ...gtcp.weighted_clusters.clusters.map((c) => c.name)]) assert(gcds.byName[n], `(e) cluster ${n} in CDS`);
  assertEq(edge.errors.map(String), [], '(e) gateway responses round-trip');
  edge.close();

  // (f) mTLS mesh: a MeshTrafficPermission on an HTTP inbound is the HTTP
  // RBAC filter inside the HCM (no network RBAC), as in Kuma.
  let r = await api(CP, 'PUT', '/meshes/secure', { type: 'Mesh', name: 'secure',
    mtls: { enabledBackend: 'ca-1', backends: [{ name: 'ca-1', type: 'builtin', conf: { caCert: { keyType: 'ecdsa' } } }] } });
  assert(r.status === 201 || r.status === 200, `mesh secure: ${r.status} ${r.body}`);
  r = await api(CP, 'PUT', '/meshes/secure/meshtrafficpermissions/allow-front', { type: 'MeshTrafficPermission', mesh: 'secure',
    name: 'allow-front', spec: { targetRef: { kind: 'MeshService', name: 'shop' },
      from: [{ targetRef: { kind: 'MeshService', name: 'front' }, default: { action: 'Allow' } }] } });
  assert(r.status === 201 || r.status === 200, `mtp: ${r.status} ${r.body}`);
  const shop = new AdsClient(XDS, 'secure.shop-1', {
    metadata: { 'dataplane.resource': JSON.stringify({ type: 'Dataplane', mesh: 'secure', name: 'shop-1',
      networking: { address: '127.0.0.9', inbound: [{ port: 18090, servicePort: 8090, tags: { 'kuma.io/service': 'shop', 'kuma.io/protocol': 'http' } }] } }) },
  });
  shop.request('LDS');
  await shop.waitCount('LDS', 1);
  const sl = await waitFor(() => {
    if (shop.errors.length) throw shop.errors[0];
    const l = shop.last('LDS').byName['inbound:127.0.0.9:18090'];
    return l && l.filter_chains[0].transport_socket && l;
  }, 20000, '(f) mTLS inbound');
  shop.ack('LDS');
  const sf = sl.filter_chains[0].filters;
  assertEq(sf.map((f) => f.name), ['envoy.filters.network.http_connection_manager'], '(f) no network RBAC');
  const shcm = sf[0].typed_config.decoded;
  assertEq(shcm.http_filters.map((f) => f.name), ['envoy.filters.http.rbac', 'envoy.filters.http.router'], '(f) HTTP RBAC first');
  const rules = shcm.http_filters[0].typed_config.decoded.rules;
  const pol = rules.policies.MeshTrafficPermission;
  assertEq(pol.principals.map((p) => p.authenticated.principal_name.exact), ['spiffe://secure/front'], '(f) principal');
  assertEq(shop.errors.map(String), [], '(f) mTLS responses round-trip');
  shop.close();

  // (g) a cross-mesh gateway of mesh secure: its listener validates clients
  // against every mesh's CA (mesh_ca:secret:all); a new mTLS mesh elsewhere
  // pushes a new bundle.
  r = await api(CP, 'PUT', '/meshes/secure/meshgateways/xgw', { type: 'MeshGateway', mesh: 'secure', name: 'xgw',
    selectors: [{ match: { 'kuma.io/service': 'xgw' } }], conf: { listeners: [{ port: 8088, protocol: 'HTTP', crossMesh: true }] } });
  assert(r.status === 201 || r.status === 200, `cross-mesh gateway: ${r.status} ${r.body}`);
  const xg = new AdsClient(XDS, 'secure.xgw-1', {
    metadata: { 'dataplane.resource': JSON.stringify({ type: 'Dataplane', mesh: 'secure', name: 'xgw-1',
      networking: { address: '127.0.0.10', gateway: { type: 'BUILTIN', tags: { 'kuma.io/service': 'xgw' } } } }) },
  });
  xg.request('LDS');
  await xg.waitCount('LDS', 1);
  xg.ack('LDS');
  const xl = xg.last('LDS').byName['xgw:HTTP:8088'];
  assertEq(xl.filter_chains[0].filter_chain_match.application_protocols, ['kuma'], '(g) ALPN kuma');
  const xt = xl.filter_chains[0].transport_socket.typed_config.decoded;
  assertEq(xt.common_tls_context.validation_context_sds_secret_config.name, 'mesh_ca:secret:all', '(g) all-meshes CA');
  const certsIn = (sec) => (sec.validation_context.trusted_ca.inline_bytes.toString().match(/BEGIN CERTIFICATE/g) || []).length;
  xg.request('SDS', { names: ['mesh_ca:secret:all', 'identity_cert:secret:secure'] });
  await waitFor(() => xg.responses.SDS.some((x) => x.byName['mesh_ca:secret:all']), 20000, '(g) SDS bundle');
  const before2 = certsIn(xg.last('SDS').byName['mesh_ca:secret:all']);
  assertEq(before2, 1, '(g) one mTLS mesh: one CA');
  xg.ack('SDS', ['mesh_ca:secret:all', 'identity_cert:secret:secure']);
  r = await api(CP, 'PUT', '/meshes/secure2', { type: 'Mesh', name: 'secure2',
    mtls: { enabledBackend: 'ca-2', backends: [{ name: 'ca-2', type: 'builtin', conf: { caCert: { keyType: 'ecdsa' } } }] } });
  assert(r.status === 201 || r.status === 200, `mesh secure2: ${r.status} ${r.body}`);
  await waitFor(() => {
    const b = xg.last('SDS').byName['mesh_ca:secret:all'];
    return b && certsIn(b) === 2;
  }, 20000, '(g) the new mesh CA in the bundle');
  assertEq(xg.errors.map(String), [], '(g) cross-mesh responses round-trip');
  xg.close();
  console.log('routes.js: ok');
}

main().catch((e) => {
  console.error(e.stack || String(e));
  process.exit(1);
});

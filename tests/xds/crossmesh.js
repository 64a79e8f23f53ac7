// Scenario: a dataplane of mesh `client` reaches the cross-mesh gateway of
// mesh `gwmesh` through an outbound tagged kuma.io/mesh (universal, no VIPs),
// every ADS resource decoded with Envoy's real protos:
//  (a) CDS: the cluster named as Kuma names it (<service>-<16 hex>_<mesh>)
//      with CrossMeshClientSideMTLS: own identity, gwmesh's CA by SDS,
//      SAN spiffe://gwmesh/edge, ALPN kuma, SNI edge{mesh=gwmesh};
//  (b) EDS: the gateway dataplane at its crossMesh listener port, nothing
//      else of gwmesh (not an inbound with the same service name, not the
//      plain listener, not another mesh's cross-mesh gateway);
//  (c) SDS: mesh_ca:secret:gwmesh is gwmesh's CA (the same bytes the gateway
//      itself is given);
//  (d) push: a second gateway dataplane, then the first deleted, then a CA
//      switch in gwmesh reach the client proxy;
//  (e) isolation: a proxy of `client` without such an outbound never gets
//      anything of gwmesh; no proxy gets anything of mesh `other`.
// Env: XDS_ADDR, CP_URL.
'use strict';
const { AdsClient, api, assert, assertEq, waitFor } = require('./lib.js');

const XDS = process.env.XDS_ADDR;
const CP = process.env.CP_URL;
const CLUSTER = process.env.CROSS_CLUSTER; // computed by the shell test with sha256sum

async function put(path, body) {
  const r = await api(CP, 'PUT', path, body);
  assert(r.status === 201 || r.status === 200, `PUT ${path}: ${r.status} ${JSON.stringify(r.body)}`);
}

const mtlsMesh = (name, backend) => ({ type: 'Mesh', name,
  mtls: { enabledBackend: backend, backends: [{ name: backend, type: 'builtin', conf: { caCert: { keyType: 'ecdsa' } } }] } });

const gwDp = (mesh, name, ip, svc) => ({ type: 'Dataplane', mesh, name,
  networking: { address: ip, gateway: { type: 'BUILTIN', tags: { 'kuma.io/service': svc } } } });

function proxy(mesh, name, spec) {
  return new AdsClient(XDS, `${mesh}.${name}`, {
    metadata: { 'dataplane.resource': JSON.stringify({ type: 'Dataplane', mesh, name, networking: spec }) },
  });
}

function endpointsOf(cla) {
  const out = [];
  for (const loc of cla.endpoints || []) {
    for (const lb of loc.lb_endpoints || []) {
      const sa = lb.endpoint.address.socket_address;
      out.push(`${sa.address}:${sa.port_value}`);
    }
  }
  return out.sort();
}

// Every byte a client ever received, as text, for isolation checks.
function everything(c) {
  return Object.values(c.responses).flat().map((r) => JSON.stringify(r.resources.map((x) => x.decoded),
    (k, v) => (v && v.type === 'Buffer' ? Buffer.from(v.data).toString() : v))).join('\n');
}

async function main() {
  assert(/^edge-[0-9a-f]{16}_gwmesh$/.test(CLUSTER), `cluster name ${CLUSTER}`);
  await put('/meshes/gwmesh', mtlsMesh('gwmesh', 'ca-1'));
  await put('/meshes/client', mtlsMesh('client', 'ca-c'));
  await put('/meshes/other', mtlsMesh('other', 'ca-o'));
  for (const m of ['gwmesh', 'other']) {
    await put(`/meshes/${m}/meshgateways/edge`, { type: 'MeshGateway', mesh: m, name: 'edge',
      selectors: [{ match: { 'kuma.io/service': 'edge' } }],
      conf: { listeners: [{ port: 8088, protocol: 'HTTP', crossMesh: true }, { port: 8089, protocol: 'HTTP' }] } });
  }
  await put('/meshes/gwmesh/dataplanes/edge-1', gwDp('gwmesh', 'edge-1', '127.0.0.10', 'edge'));
  // Same service name, but an ordinary inbound: never a cross-mesh endpoint.
  await put('/meshes/gwmesh/dataplanes/impostor', { type: 'Dataplane', mesh: 'gwmesh', name: 'impostor',
    networking: { address: '127.0.0.11', inbound: [{ port: 8088, tags: { 'kuma.io/service': 'edge' } }] } });
  await put('/meshes/other/dataplanes/edge-o', gwDp('other', 'edge-o', '127.0.0.12', 'edge'));

  const web = proxy('client', 'web', { address: '127.0.0.20',
    inbound: [{ port: 18080, servicePort: 8080, tags: { 'kuma.io/service': 'web' } }],
    outbound: [{ port: 10020, tags: { 'kuma.io/service': 'edge', 'kuma.io/mesh': 'gwmesh' } }] });
  const plain = proxy('client', 'plain', { address: '127.0.0.21',
    inbound: [{ port: 18080, servicePort: 8080, tags: { 'kuma.io/service': 'plain' } }],
    outbound: [{ port: 10021, tags: { 'kuma.io/service': 'edge' } }] });
  for (const c of [web, plain]) await c.subscribe('CDS', 'LDS');

  // (a) the cluster and its TLS context.
  const cl = web.last('CDS').byName[CLUSTER];
  assert(cl, `(a) cluster ${CLUSTER} in ${Object.keys(web.last('CDS').byName)}`);
  assertEq(cl.type, 3, '(a) EDS cluster'); // DiscoveryType EDS
  const up = cl.transport_socket.typed_config.decoded;
  assertEq(up.sni, 'edge{mesh=gwmesh}', '(a) SNI');
  const ctc = up.common_tls_context;
  assertEq(ctc.alpn_protocols, ['kuma'], '(a) ALPN');
  assertEq(ctc.tls_certificate_sds_secret_configs.map((s) => s.name), ['identity_cert:secret:client'], '(a) own identity');
  assertEq(ctc.combined_validation_context.validation_context_sds_secret_config.name, 'mesh_ca:secret:gwmesh', '(a) gateway mesh CA');
  assertEq(ctc.combined_validation_context.default_validation_context.match_typed_subject_alt_names
    .map((m) => m.matcher.exact), ['spiffe://gwmesh/edge'], '(a) SAN');
  const l = web.last('LDS').byName['outbound:127.0.0.1:10020'];
  assertEq(l.filter_chains[0].filters[0].typed_config.decoded.cluster, CLUSTER, '(a) listener -> cluster');
  // The same service name without kuma.io/mesh stays a local service.
  assert(plain.last('CDS').byName.edge && !plain.last('CDS').byName[CLUSTER], '(a) plain outbound is local');

  // (b) endpoints.
  web.request('EDS', { names: [CLUSTER] });
  await waitFor(() => web.responses.EDS.some((r) => r.byName[CLUSTER]), 20000, '(b) EDS');
  assertEq(endpointsOf(web.last('EDS').byName[CLUSTER]), ['127.0.0.10:8088'], '(b) gateway endpoint only');
  web.ack('EDS', [CLUSTER]);

  // (c) the gateway mesh's CA, the same the gateway itself gets.
  const names = ['identity_cert:secret:client', 'mesh_ca:secret:client', 'mesh_ca:secret:gwmesh'];
  web.request('SDS', { names });
  await waitFor(() => web.responses.SDS.some((r) => r.byName['mesh_ca:secret:gwmesh']), 20000, '(c) SDS');
  web.ack('SDS', names);
  const gw = proxy('gwmesh', 'edge-1', { address: '127.0.0.10', gateway: { type: 'BUILTIN', tags: { 'kuma.io/service': 'edge' } } });
  gw.request('SDS', { names: ['mesh_ca:secret:gwmesh'] });
  await waitFor(() => gw.responses.SDS.some((r) => r.byName['mesh_ca:secret:gwmesh']), 20000, '(c) gateway SDS');
  const caOf = (c) => {
    const sec = c.last('SDS').byName['mesh_ca:secret:gwmesh'];
    return sec ? Buffer.from(sec.validation_context.trusted_ca.inline_bytes).toString() : '';
  };
  const gwCa = caOf(gw);
  assert(gwCa.includes('BEGIN CERTIFICATE'), '(c) a certificate');
  assertEq(caOf(web), gwCa, '(c) client gets the gateway mesh CA');
  assert(caOf(web) !== Buffer.from(web.last('SDS').byName['mesh_ca:secret:client'].validation_context.trusted_ca.inline_bytes).toString(),
    '(c) not its own CA');
  gw.close();

  // (d) push: a second gateway dataplane, then the first one goes.
  await put('/meshes/gwmesh/dataplanes/edge-2', gwDp('gwmesh', 'edge-2', '127.0.0.13', 'edge'));
  await waitFor(() => {
    const c = web.last('EDS').byName[CLUSTER];
    return c && endpointsOf(c).length === 2;
  }, 20000, '(d) second gateway endpoint pushed');
  assertEq(endpointsOf(web.last('EDS').byName[CLUSTER]), ['127.0.0.10:8088', '127.0.0.13:8088'], '(d) two endpoints');
  web.ack('EDS', [CLUSTER]);
  const r = await api(CP, 'DELETE', '/meshes/gwmesh/dataplanes/edge-1');
  assertEq(r.status, 200, `delete edge-1: ${r.body}`);
  await waitFor(() => endpointsOf(web.last('EDS').byName[CLUSTER]).join() === '127.0.0.13:8088', 20000, '(d) removal pushed');
  web.ack('EDS', [CLUSTER]);
  // A CA switch in gwmesh (Kuma's way: mTLS off, then on with a new
  // backend) reaches the client: plaintext while off, the new CA after.
  const before = caOf(web);
  await put('/meshes/gwmesh', { type: 'Mesh', name: 'gwmesh' });
  await waitFor(() => {
    const c = web.last('CDS').byName[CLUSTER];
    return c && !c.transport_socket;
  }, 20000, '(d) gwmesh without mTLS: no TLS to its gateway');
  web.ack('CDS');
  await put('/meshes/gwmesh', mtlsMesh('gwmesh', 'ca-2'));
  await waitFor(() => {
    const c = web.last('CDS').byName[CLUSTER];
    return c && c.transport_socket;
  }, 20000, '(d) gwmesh mTLS again');
  web.ack('CDS');
  web.request('SDS', { names });
  await waitFor(() => caOf(web) !== '' && caOf(web) !== before, 20000, '(d) new gwmesh CA pushed');
  assert(caOf(web).includes('BEGIN CERTIFICATE'), '(d) new CA is a certificate');

  // (e) isolation.
  plain.request('SDS', { names: ['mesh_ca:secret:gwmesh', 'mesh_ca:secret:other', 'mesh_ca:secret:client'] });
  await waitFor(() => plain.responses.SDS.length >= 1, 20000, '(e) plain SDS');
  await new Promise((res) => setTimeout(res, 300));
  for (const resp of plain.responses.SDS) {
    assertEq(Object.keys(resp.byName).filter((n) => n !== 'mesh_ca:secret:client' && n !== 'identity_cert:secret:client'), [],
      '(e) no other mesh secret for plain');
  }
  const pt = everything(plain);
  for (const ip of ['127.0.0.10', '127.0.0.11', '127.0.0.12', '127.0.0.13']) assert(!pt.includes(ip), `(e) plain has ${ip}`);
  assert(!pt.includes('gwmesh'), '(e) plain mentions gwmesh');
  web.request('SDS', { names: [...names, 'mesh_ca:secret:other'] });
  await new Promise((res) => setTimeout(res, 300));
  const wt = everything(web);
  for (const ip of ['127.0.0.11', '127.0.0.12']) assert(!wt.includes(ip), `(e) web has ${ip}`);
  assert(!wt.includes('secret:other'), '(e) web got mesh other\'s CA');
  assert(!wt.includes(':8089'), '(e) web got the plain gateway listener');
  assertEq(web.errors.map(String).concat(plain.errors.map(String)), [], 'responses round-trip');
  web.close();
  plain.close();
  console.log('crossmesh.js: ok');
}

main().catch((e) => {
  console.error(e.stack || String(e));
  process.exit(1);
});

// Scenario: kuma-cp's DP server with dataplane-token authentication over TLS,
// and a mesh with mTLS.
//  (a) token refusal: no token, a token of another mesh, of another name, an
//      expired one — each ends the stream with UNAUTHENTICATED;
//  (b) mTLS on mesh default (builtin CA): inbound DownstreamTlsContext + RBAC
//      deny-all (no permission), outbound UpstreamTlsContext (SAN, ALPN kuma,
//      SNI), SDS identity_cert/mesh_ca on the same stream; the leaf verifies
//      against its mesh CA and not against mesh other's;
//  (c) a TrafficPermission for backend: only backend-1 gets a new LDS
//      version, web-1 and the proxy of mesh other get nothing;
//  (d) isolation: mesh other's proxy never receives mesh default's CA,
//      identity or endpoints (SDS included);
//  (e) CA switch: mTLS off, new backend, on: the new leaf chains to the new CA;
//  (f) insights: dataplanes+insights, _overview, _config, mesh-insights online.
// Env: XDS_ADDR, CP_URL, XDS_CA, T (a scratch directory).
'use strict';
const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const { execFileSync } = require('child_process');
const { AdsClient, api, assert, assertEq, waitFor, dpToken } = require('./lib.js');

const XDS = process.env.XDS_ADDR;
const CP = process.env.CP_URL;
const TMP = process.env.T;

function dp(mesh, name, ip, inSvc, outSvc) {
  return {
    type: 'Dataplane', mesh, name,
    networking: {
      address: ip,
      inbound: [{ port: 18080, tags: { 'kuma.io/service': inSvc } }],
      outbound: outSvc ? [{ port: 10001, tags: { 'kuma.io/service': outSvc } }] : [],
    },
  };
}

async function put(p, body) {
  const r = await api(CP, 'PUT', p, body);
  assert(r.status === 200 || r.status === 201, `PUT ${p}: ${r.status} ${r.body}`);
}

async function refused(nodeId, token, want) {
  const c = new AdsClient(XDS, nodeId, { token });
  c.request('CDS');
  await waitFor(() => c.ended, 10000, `${nodeId}: refused`);
  assert(c.status && c.status.code === 16, `${nodeId}: UNAUTHENTICATED, got ${c.status && c.status.code}`);
  assert(c.status.details.includes(want), `${nodeId}: "${want}" in "${c.status.details}"`);
  assertEq(c.responses.CDS.length, 0, `${nodeId}: nothing sent`);
  c.close();
}

// Subscribes to everything and ACKs every response as it comes.
function connect(nodeId, token, metadata) {
  const c = new AdsClient(XDS, nodeId, { token, metadata });
  const orig = c.onResponse.bind(c);
  c.onResponse = (raw) => {
    orig(raw);
    for (const t of ['CDS', 'EDS', 'LDS', 'SDS']) {
      const l = c.responses[t];
      if (l.length && !l[l.length - 1].acked) {
        l[l.length - 1].acked = true;
        c.request(t, { names: [], version: l[l.length - 1].version_info, nonce: l[l.length - 1].nonce });
      }
    }
  };
  for (const t of ['CDS', 'EDS', 'LDS', 'SDS']) c.request(t);
  return c;
}

function pemOf(ds) {
  return Buffer.from(ds.inline_bytes).toString();
}

function opensslVerify(caPem, leafPem, tag) {
  const ca = path.join(TMP, `${tag}-ca.pem`);
  const leaf = path.join(TMP, `${tag}-leaf.pem`);
  fs.writeFileSync(ca, caPem);
  fs.writeFileSync(leaf, leafPem);
  try {
    execFileSync('openssl', ['verify', '-CAfile', ca, leaf], { stdio: 'pipe' });
    return true;
  } catch (e) {
    return false;
  }
}

function leafUris(leafPem) {
  const f = path.join(TMP, 'uri-leaf.pem');
  fs.writeFileSync(f, leafPem);
  return execFileSync('openssl', ['x509', '-noout', '-ext', 'subjectAltName', '-in', f]).toString();
}

async function main() {
  await put('/meshes/other', { type: 'Mesh', name: 'other' });
  const tokWeb = await dpToken(CP, 'default', { name: 'web-1' });

  // (a) refusals, over the real TLS port.
  await refused('default.web-1', undefined, 'dataplane token is missing');
  await refused('default.web-1', await dpToken(CP, 'other', { name: 'web-1' }), 'authentication failed');
  await refused('default.web-1', await dpToken(CP, 'default', { name: 'web-2' }), 'web-2');
  await refused('default.web-1', await dpToken(CP, 'default', { name: 'web-1', nowS: Math.floor(Date.now() / 1000) - 7200, validForS: 60 }), 'expired');
  await refused('default.web-1', await dpToken(CP, 'default', { name: 'web-1', tags: { 'kuma.io/service': ['db'] } }), 'required by the token');

  // (b) mTLS on mesh default.
  await put('/meshes/default', {
    type: 'Mesh', name: 'default',
    mtls: { enabledBackend: 'ca-1', backends: [{ name: 'ca-1', type: 'builtin', conf: { caCert: { keyType: 'ecdsa' } } }] },
  });
  await put('/meshes/other', {
    type: 'Mesh', name: 'other',
    mtls: { enabledBackend: 'ca-o', backends: [{ name: 'ca-o', type: 'builtin', conf: { caCert: { keyType: 'ecdsa' } } }] },
  });
  await put('/meshes/default/dataplanes/backend-1', dp('default', 'backend-1', '127.0.0.2', 'backend'));
  const web = connect('default.web-1', tokWeb, { 'dataplane.resource': JSON.stringify(dp('default', 'web-1', '127.0.0.1', 'web', 'backend')) });
  const be = connect('default.backend-1', await dpToken(CP, 'default', { name: 'backend-1' }));
  const oth = connect('other.web-9', await dpToken(CP, 'other', { name: 'web-9' }),
    { 'dataplane.resource': JSON.stringify(dp('other', 'web-9', '127.0.0.9', 'web', 'backend')) });
  for (const c of [web, be, oth]) {
    for (const t of ['CDS', 'LDS', 'SDS']) await c.waitCount(t, 1);
  }
  await waitFor(() => web.last('SDS').resources.length === 2, 5000, 'web-1: two secrets');

  const lds = web.last('LDS');
  const inb = lds.byName['inbound:127.0.0.1:18080'];
  const fc = inb.filter_chains[0];
  assertEq(fc.transport_socket.name, 'envoy.transport_sockets.tls', 'inbound TLS');
  const dtc = fc.transport_socket.typed_config.decoded;
  assertEq(dtc.require_client_certificate, { value: true }, 'client certificate required');
  const cvc = dtc.common_tls_context.combined_validation_context;
  assertEq(cvc.default_validation_context.match_typed_subject_alt_names[0].matcher.prefix, 'spiffe://default/', 'SAN prefix');
  assertEq(cvc.validation_context_sds_secret_config.name, 'mesh_ca:secret:default', 'CA by SDS');
  assertEq(dtc.common_tls_context.tls_certificate_sds_secret_configs[0].name, 'identity_cert:secret:default', 'identity by SDS');
  assertEq(fc.filters[0].name, 'envoy.filters.network.rbac', 'RBAC first');
  const rbac = fc.filters[0].typed_config.decoded;
  assertEq(Object.keys(rbac.rules.policies || {}), [], 'no permission: deny all');
  const cds = web.last('CDS');
  const utc = cds.byName.backend.transport_socket.typed_config.decoded;
  assertEq(utc.sni, 'backend{mesh=default}', 'SNI');
  assertEq(utc.common_tls_context.alpn_protocols, ['kuma'], 'ALPN');
  assertEq(utc.common_tls_context.combined_validation_context.default_validation_context.match_typed_subject_alt_names[0].matcher.exact,
    'spiffe://default/backend', 'upstream SAN');

  const sec = (c, n) => c.last('SDS').byName[n];
  const leaf = pemOf(sec(web, 'identity_cert:secret:default').tls_certificate.certificate_chain);
  const key = pemOf(sec(web, 'identity_cert:secret:default').tls_certificate.private_key);
  assert(key.includes('EC PRIVATE KEY'), 'ECDSA leaf key');
  const caDefault = pemOf(sec(web, 'mesh_ca:secret:default').validation_context.trusted_ca);
  await waitFor(() => oth.last('SDS') && oth.last('SDS').resources.length === 2, 5000, 'other: two secrets');
  const caOther = pemOf(sec(oth, 'mesh_ca:secret:other').validation_context.trusted_ca);
  assert(caDefault !== caOther, 'two meshes, two CAs');
  assert(opensslVerify(caDefault, leaf, 'a'), 'leaf verifies against its mesh CA');
  assert(!opensslVerify(caOther, leaf, 'b'), 'leaf does not verify against mesh other\'s CA');
  const uris = leafUris(leaf);
  assert(uris.includes('URI:spiffe://default/web') && uris.includes('URI:kuma://kuma.io/service/web'), `SANs: ${uris}`);

  // (d) isolation: nothing of mesh default reaches mesh other.
  for (const t of ['CDS', 'EDS', 'LDS', 'SDS']) {
    for (const r of oth.responses[t]) {
      const text = JSON.stringify(r.resources.map((x) => x.decoded), (k, v) => (v && v.type === 'Buffer' ? Buffer.from(v.data).toString() : v));
      assert(!text.includes('127.0.0.2'), `other ${t}: no endpoint of mesh default`);
      assert(!text.includes('secret:default'), `other ${t}: no secret of mesh default`);
      assert(!text.includes(caDefault.split('\n')[1]), `other ${t}: no CA of mesh default`);
    }
  }
  assertEq(Object.keys(oth.last('SDS').byName).sort(), ['identity_cert:secret:other', 'mesh_ca:secret:other'], 'other: its own secrets');

  // (c) a permission for backend: only backend-1 changes.
  const counts = (c) => ['CDS', 'EDS', 'LDS', 'SDS'].map((t) => c.responses[t].length).join(',');
  const webBefore = counts(web), othBefore = counts(oth), beLds = be.responses.LDS.length;
  await put('/meshes/default/traffic-permissions/web-to-backend', {
    type: 'TrafficPermission', mesh: 'default', name: 'web-to-backend',
    sources: [{ match: { 'kuma.io/service': 'web' } }], destinations: [{ match: { 'kuma.io/service': 'backend' } }],
  });
  await be.waitCount('LDS', beLds + 1);
  const brbac = be.last('LDS').byName['inbound:127.0.0.2:18080'].filter_chains[0].filters[0].typed_config.decoded;
  assertEq(Object.keys(brbac.rules.policies), ['web-to-backend'], 'policy named after the permission');
  assertEq(brbac.rules.policies['web-to-backend'].principals[0].authenticated.principal_name.exact, 'spiffe://default/web', 'principal');
  // A second, unrelated change: the order of pushes proves web-1 had nothing.
  await put('/meshes/other/dataplanes/backend-o', dp('other', 'backend-o', '127.0.0.10', 'backend'));
  await waitFor(() => oth.responses.EDS.length > Number(othBefore.split(',')[1]), 5000, 'other: its own endpoint');
  assertEq(counts(web), webBefore, 'web-1: no new version for a permission of backend');

  // MeshTrafficPermission takes precedence over TrafficPermission.
  await put('/meshes/default/meshtrafficpermissions/mtp-backend', {
    type: 'MeshTrafficPermission', mesh: 'default', name: 'mtp-backend',
    spec: { targetRef: { kind: 'Mesh' }, from: [{ targetRef: { kind: 'Mesh' }, default: { action: 'Allow' } }] },
  });
  await be.waitCount('LDS', beLds + 2);
  const mrbac = be.last('LDS').byName['inbound:127.0.0.2:18080'].filter_chains[0].filters[0].typed_config.decoded;
  assertEq(Object.keys(mrbac.rules.policies), ['MeshTrafficPermission'], 'MeshTrafficPermission wins');
  assert(mrbac.rules.policies.MeshTrafficPermission.principals[0].any === true, 'allow any');

  // (f) insights.
  let r = await api(CP, 'GET', '/meshes/default/dataplanes+insights');
  assertEq(r.status, 200, 'dataplanes+insights');
  const ov = JSON.parse(r.body).items.find((i) => i.name === 'web-1');
  assertEq(ov.type, 'DataplaneOverview', 'overview type');
  assert(ov.dataplaneInsight.subscriptions[0].connectTime && !ov.dataplaneInsight.subscriptions[0].disconnectTime, 'online');
  assertEq(ov.dataplaneInsight.mTLS.issuedBackend, 'ca-1', 'cert backend');
  assert(ov.dataplaneInsight.mTLS.certificateExpirationTime, 'cert expiration');
  // kuma-cp derives it from the issue time (not by parsing the certificate back).
  assertEq(new Date(ov.dataplaneInsight.mTLS.certificateExpirationTime).getTime(),
    new Date(new crypto.X509Certificate(leaf).validTo).getTime(), "cert expiration is the leaf's notAfter");
  r = await api(CP, 'GET', '/meshes/default/dataplanes/web-1/_overview');
  assertEq(r.status, 200, '_overview of one');
  r = await api(CP, 'GET', '/dataplanes/_overview');
  assertEq(JSON.parse(r.body).total >= 3, true, 'all overviews');
  r = await api(CP, 'GET', '/meshes/default/dataplanes/web-1/_config');
  assertEq(r.status, 200, '_config');
  const conf = JSON.parse(r.body);
  assert(conf.xds.LDS.some((l) => l.name === 'inbound:127.0.0.1:18080'), '_config has the listeners');
  assert(!r.body.includes('PRIVATE KEY'), '_config never shows the key');
  r = await api(CP, 'GET', '/mesh-insights/default');
  assertEq(JSON.parse(r.body).dataplanes.online, 2, 'mesh-insights online');

  // (e) CA switch: off, new backend, on.
  const sdsBefore = web.responses.SDS.length;
  await put('/meshes/default', { type: 'Mesh', name: 'default', mtls: { backends: [{ name: 'ca-1', type: 'builtin', conf: { caCert: { keyType: 'ecdsa' } } }] } });
  await waitFor(() => web.last('LDS').byName['inbound:127.0.0.1:18080'].filter_chains[0].transport_socket == null, 5000, 'mTLS off: plaintext inbound');
  const ca2Backend = { name: 'ca-2', type: 'builtin', conf: { caCert: { keyType: 'ecdsa' } } };
  await put('/meshes/default', { type: 'Mesh', name: 'default', mtls: { backends: [ca2Backend] } });
  await put('/meshes/default', { type: 'Mesh', name: 'default', mtls: { enabledBackend: 'ca-2', backends: [ca2Backend] } });
  await waitFor(() => {
    const l = web.last('SDS');
    return web.responses.SDS.length > sdsBefore && l.byName['mesh_ca:secret:default'] &&
      pemOf(l.byName['mesh_ca:secret:default'].validation_context.trusted_ca) !== caDefault;
  }, 5000, 'new CA pushed');
  const leaf2 = pemOf(sec(web, 'identity_cert:secret:default').tls_certificate.certificate_chain);
  const ca2 = pemOf(sec(web, 'mesh_ca:secret:default').validation_context.trusted_ca);
  assert(opensslVerify(ca2, leaf2, 'c'), 'new leaf chains to the new CA');
  assert(!opensslVerify(caDefault, leaf2, 'd'), 'new leaf does not chain to the old CA');

  for (const c of [web, be, oth]) {
    assertEq(c.errors.length, 0, `${c.nodeId}: every response decoded byte-identically`);
    c.close();
  }
  console.log('mtls: ok');
}

main().then(() => process.exit(0), (e) => {
  console.error(`mtls: FAIL: ${e.stack || e}`);
  process.exit(1);
});

// Scenario: workload certificate rotation (tests/integration/test_xds_rotation.sh).
//  (a) mesh default with a builtin CA whose dpCert.rotation.expiration is
//      10s: web-1 gets a 10 s leaf over SDS; at 80% of its lifetime (~8 s)
//      kuma-cp's timer issues a new one and pushes it over SDS on the same
//      stream: the stream stays up, CDS/LDS are not resent, the new leaf
//      chains to the mesh CA and has another serial;
//  (b) a tag change of the dataplane re-issues the leaf at once, with the
//      new tag in its URI SANs.
// Env: XDS_ADDR, CP_URL, XDS_CA, T (a scratch directory).
'use strict';
const fs = require('fs');
const path = require('path');
const crypto = require('crypto');
const { execFileSync } = require('child_process');
const { AdsClient, api, assert, assertEq, waitFor } = require('./lib.js');

const XDS = process.env.XDS_ADDR;
const CP = process.env.CP_URL;
const TMP = process.env.T;

async function put(p, body) {
  const r = await api(CP, 'PUT', p, body);
  assert(r.status === 200 || r.status === 201, `PUT ${p}: ${r.status} ${r.body}`);
}

function connect(nodeId, metadata) {
  const c = new AdsClient(XDS, nodeId, { metadata });
  const orig = c.onResponse.bind(c);
  c.times = { SDS: [] };
  c.onResponse = (raw) => {
    orig(raw);
    for (const t of ['CDS', 'EDS', 'LDS', 'SDS']) {
      const l = c.responses[t];
      if (l.length && !l[l.length - 1].acked) {
        l[l.length - 1].acked = true;
        if (t === 'SDS') c.times.SDS.push(Date.now());
        c.request(t, { names: [], version: l[l.length - 1].version_info, nonce: l[l.length - 1].nonce });
      }
    }
  };
  for (const t of ['CDS', 'EDS', 'LDS', 'SDS']) c.request(t);
  return c;
}

function leafOf(resp) {
  const s = resp.byName['identity_cert:secret:default'];
  assert(s, 'identity secret present');
  const pem = Buffer.from(s.tls_certificate.certificate_chain.inline_bytes).toString();
  return { pem, x509: new crypto.X509Certificate(pem) };
}

function caOf(resp) {
  return Buffer.from(resp.byName['mesh_ca:secret:default'].validation_context.trusted_ca.inline_bytes).toString();
}

function verifies(caPem, leafPem, tag) {
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

const dpSpec = (version) => ({
  type: 'Dataplane', mesh: 'default', name: 'web-1',
  networking: { address: '127.0.0.1', inbound: [{ port: 18080, tags: { 'kuma.io/service': 'web', version } }] },
});

async function main() {
  await put('/meshes/default', {
    type: 'Mesh', name: 'default',
    mtls: { enabledBackend: 'ca-1', backends: [{ name: 'ca-1', type: 'builtin', dpCert: { rotation: { expiration: '10s' } }, conf: { caCert: { keyType: 'ecdsa' } } }] },
  });

  // (a) the 80% timer.
  const web = connect('default.web-1', { 'dataplane.resource': JSON.stringify(dpSpec('v1')) });
  await web.waitCount('SDS', 1);
  const t1 = web.times.SDS[0];
  const first = web.responses.SDS[0];
  const l1 = leafOf(first);
  const life = (Date.parse(l1.x509.validTo) - Date.parse(l1.x509.validFrom)) / 1000;
  assert(life >= 10 && life <= 80, `leaf lifetime from dpCert.rotation.expiration (10 s, plus any backdating): ${life} s`);
  assert(verifies(caOf(first), l1.pem, 'first'), 'first leaf chains to the mesh CA');
  await web.waitCount('CDS', 1);
  await web.waitCount('LDS', 1);
  const cds0 = web.responses.CDS.length;
  const lds0 = web.responses.LDS.length;

  await web.waitCount('SDS', 2, 15000);
  const dt = (web.times.SDS[1] - t1) / 1000;
  // 80% of the lifetime counted from issuance; X.509 times have second
  // precision, so notAfter (and the timer) can be up to 1 s early.
  assert(dt >= 6.5 && dt <= 10.5, `rotated at ~80% of 10 s after the first leaf: ${dt.toFixed(2)} s`);
  const l2 = leafOf(web.responses.SDS[1]);
  assert(l2.x509.serialNumber !== l1.x509.serialNumber, 'a new leaf (new serial)');
  assert(Date.parse(l2.x509.validTo) > Date.parse(l1.x509.validTo), 'the new leaf expires later');
  assert(verifies(caOf(web.responses.SDS[1]), l2.pem, 'rotated'), 'the rotated leaf chains to the mesh CA');
  assert(!web.ended, 'the stream stays up across the rotation');
  assertEq(web.responses.CDS.length, cds0, 'no CDS resend for a rotation');
  assertEq(web.responses.LDS.length, lds0, 'no LDS resend for a rotation');
  console.log(`rotation: first leaf at 0 s, rotated after ${dt.toFixed(2)} s`);

  // (b) a tag change re-issues at once.
  const n = web.responses.SDS.length;
  const t2 = Date.now();
  await put('/meshes/default/dataplanes/web-1', dpSpec('v2'));
  await web.waitCount('SDS', n + 1, 5000);
  const l3 = leafOf(web.responses.SDS[n]);
  assert(l3.x509.subjectAltName.includes('kuma://version/v2'), `new tag in the SANs: ${l3.x509.subjectAltName}`);
  assert(!l3.x509.subjectAltName.includes('kuma://version/v1'), 'old tag gone');
  assert(Date.now() - t2 < 3000, 're-issued at once, not at the next rotation');
  assert(!web.ended, 'the stream stays up across the re-issue');

  const ins = await api(CP, 'GET', '/meshes/default/dataplanes+insights/web-1');
  const regen = JSON.parse(ins.body).dataplaneInsight.mTLS.certificateRegenerations;
  assert(regen >= 3, `insight counts the regenerations: ${regen}`);
  assertEq(web.errors.map(String), [], 'responses round-trip');
  web.close();
  console.log('rotation: ok');
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(`rotation: FAIL: ${e.stack || e}`);
    process.exit(1);
  },
);

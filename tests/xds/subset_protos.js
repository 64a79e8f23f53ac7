// Checks the subset protos in src/proto (what kuma-cp encodes and kuma-dp
// decodes with protobuf-c) against Envoy's real protos shipped in
// @grpc/grpc-js-xds/deps: every message and enum of the subset must exist
// in Envoy's, and every field must have Envoy's number, type, cardinality
// and oneof. A field kept with a wrong number would silently decode as
// something else; this catches it for messages no round trip covers (those
// only kuma-dp decodes, such as the HTTP RBAC filter).
'use strict';
const path = require('path');
const fs = require('fs');
require('@grpc/proto-loader');
const { loadProtosWithOptionsSync } = require('@grpc/proto-loader/build/src/util');

const SRC = path.resolve(__dirname, '../../src/proto');
const DEPS = path.join(path.dirname(require.resolve('@grpc/grpc-js-xds/package.json')), 'deps');
const INCLUDE = ['envoy-api', 'xds', 'googleapis', 'protoc-gen-validate'].map((d) => path.join(DEPS, d));

function protoFiles(dir, rel = '') {
  let out = [];
  for (const e of fs.readdirSync(path.join(dir, rel), { withFileTypes: true })) {
    const r = path.join(rel, e.name);
    if (e.isDirectory()) out = out.concat(protoFiles(dir, r));
    else if (e.name.endsWith('.proto') && !r.startsWith('google')) out.push(r);
  }
  return out;
}

function walk(ns, fn) {
  for (const n of ns.nestedArray || []) {
    fn(n);
    walk(n, fn);
  }
}

const files = protoFiles(SRC);
const subset = loadProtosWithOptionsSync(files, { includeDirs: [SRC], keepCase: true });
// Envoy splits some packages into more files (core.proto here is address,
// base, config_source... there): load the files both have, imports do the rest.
const realFiles = files.filter((f) => INCLUDE.some((d) => fs.existsSync(path.join(d, f))));
const real = loadProtosWithOptionsSync(realFiles, { includeDirs: INCLUDE, keepCase: true });
subset.resolveAll();
real.resolveAll();

const typeName = (f) => (f.resolvedType ? f.resolvedType.fullName : f.type);
let problems = [];
let messages = 0;
let fields = 0;
walk(subset, (n) => {
  if (n.constructor.name === 'Type') {
    if (n.fullName.startsWith('.google.')) return;
    messages++;
    const r = real.lookup(n.fullName);
    if (!r || r.constructor.name !== 'Type') {
      problems.push(`${n.fullName}: not a message in Envoy's protos`);
      return;
    }
    for (const f of n.fieldsArray) {
      fields++;
      const rf = r.fields[f.name];
      const where = `${n.fullName}.${f.name}`;
      if (!rf) { problems.push(`${where}: no such field in Envoy's`); continue; }
      if (rf.id !== f.id) problems.push(`${where}: number ${f.id}, Envoy's ${rf.id}`);
      if (typeName(rf) !== typeName(f)) problems.push(`${where}: type ${typeName(f)}, Envoy's ${typeName(rf)}`);
      if (!!rf.repeated !== !!f.repeated || !!rf.map !== !!f.map) problems.push(`${where}: cardinality differs`);
      const oneof = (x) => (x.partOf && !x.partOf.name.startsWith('_') ? x.partOf.name : '');
      if (oneof(rf) !== oneof(f)) problems.push(`${where}: oneof ${oneof(f) || '-'}, Envoy's ${oneof(rf) || '-'}`);
    }
  } else if (n.constructor.name === 'Enum') {
    if (n.fullName.startsWith('.google.')) return;
    const r = real.lookup(n.fullName);
    if (!r || r.constructor.name !== 'Enum') { problems.push(`${n.fullName}: not an enum in Envoy's protos`); return; }
    for (const [k, v] of Object.entries(n.values))
      if (r.values[k] !== v) problems.push(`${n.fullName}.${k}: ${v}, Envoy's ${r.values[k]}`);
  }
});
if (problems.length) {
  console.error(problems.join('\n'));
  process.exit(1);
}
console.log(`subset protos: ${files.length} files, ${messages} messages, ${fields} fields match Envoy's`);

#!/usr/bin/env bash
# kumactl generate tls-certificate: files written with Kuma's modes (key 0400,
# certificate 0644), SANs (IP when the host parses as one, DNS otherwise), EKU
# by --type, RSA-2048 by default or ECDSA P-256; Kuma's errors for bad flags.
. "$(dirname "$0")/lib.sh"

cd "$T" || fail "no temp dir"
umask 022
out=$(kumactl generate tls-certificate --type=server --hostname=cp.example.com,127.0.0.1 --hostname ::1) ||
    fail "generate: $out"
assert_eq "$out" $'Private key saved in key.pem\nCertificate saved in cert.pem'
assert_eq "$(stat -c %a key.pem)" 400 "key file mode"
assert_eq "$(stat -c %a cert.pem)" 644 "cert file mode"
txt=$(openssl x509 -in cert.pem -noout -text)
assert_contains "$txt" "DNS:cp.example.com, IP Address:127.0.0.1, IP Address:0:0:0:0:0:0:0:1"
assert_contains "$txt" "TLS Web Server Authentication"
assert_not_contains "$txt" "TLS Web Client Authentication"
assert_contains "$txt" "CA:TRUE"
assert_contains "$txt" "Public-Key: (2048 bit)"
[ "$(openssl x509 -in cert.pem -noout -pubkey)" = "$(openssl pkey -in key.pem -pubout)" ] || fail "key mismatch"
openssl verify -CAfile cert.pem -verify_hostname cp.example.com cert.pem >/dev/null || fail "hostname"
openssl verify -CAfile cert.pem -verify_ip 127.0.0.1 cert.pem >/dev/null || fail "IP"
if openssl verify -CAfile cert.pem -verify_hostname other.example.com cert.pem >/dev/null 2>&1; then
    fail "certificate valid for a host it does not name"
fi

out=$(kumactl generate tls-certificate --type client --hostname dp-1 --key-type ecdsa --cert-file c.pem --key-file k.pem)
assert_contains "$out" "Certificate saved in c.pem"
txt=$(openssl x509 -in c.pem -noout -text)
assert_contains "$txt" "TLS Web Client Authentication"
assert_contains "$txt" "DNS:dp-1"
assert_contains "$txt" "prime256v1"

# To stdout: both PEMs, no "saved" lines.
out=$(kumactl generate tls-certificate --type server --hostname h --key-file - --cert-file -)
assert_contains "$out" "PRIVATE KEY-----"
assert_contains "$out" "BEGIN CERTIFICATE"
assert_not_contains "$out" "saved in"

# Errors.
out=$(kumactl generate tls-certificate --type=foo --hostname=a 2>&1) && fail "bad type"
assert_eq "$out" 'Error: invalid certificate type "foo"'
out=$(kumactl generate tls-certificate --type=server --hostname=a --key-type=dsa 2>&1) && fail "bad key type"
assert_eq "$out" 'Error: invalid key type "dsa"'
out=$(kumactl generate tls-certificate --type=server 2>&1) && fail "no hostname"
assert_eq "$out" 'Error: required flag(s) "hostname" not set'
out=$(kumactl generate tls-certificate 2>&1) && fail "no flags"
assert_eq "$out" 'Error: required flag(s) "hostname", "type" not set'
out=$(kumactl generate tls-certificate --type=server --hostname= 2>&1) && fail "empty hostname"
assert_eq "$out" 'Error: at least one hostname must be given'
# The existing key file is read-only: Go's os.WriteFile error.
out=$(kumactl generate tls-certificate --type=server --hostname=a --key-file k.pem --cert-file c2.pem 2>&1)
if [ "$(id -u)" != 0 ]; then
    assert_eq "$out" "Error: could not write the key file: open k.pem: permission denied"
fi
out=$(kumactl generate tls-certificate --type=server --hostname=a --key-file /nonexistent/k.pem 2>&1) &&
    fail "unwritable key path"
assert_eq "$out" "Error: could not write the key file: open /nonexistent/k.pem: no such file or directory"
echo "ok"

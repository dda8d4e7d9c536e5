#!/bin/sh
# Generates the test PKI in directory $1: a CA, two server certificates and
# a client certificate, all short-lived EC P-256 keys.
#   ca.pem ca.key        the test CA
#   server.pem/.key      valid for 127.0.0.1, localhost and pyroscope.test
#   named.pem/.key       valid for pyroscope.test only (server_name tests)
#   client.pem/.key      a client certificate (mTLS)
set -eu
cd "$1"

cat > openssl.cnf <<'CNF'
[req]
distinguished_name = dn
prompt = no
[dn]
CN = placeholder
[ca_ext]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[server_ext]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = IP:127.0.0.1,DNS:localhost,DNS:pyroscope.test
[named_ext]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:pyroscope.test
[client_ext]
basicConstraints = CA:FALSE
keyUsage = critical,digitalSignature
extendedKeyUsage = clientAuth
CNF

key() {
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null
}

key ca.key
openssl req -config openssl.cnf -new -x509 -key ca.key -out ca.pem -days 2 \
	-subj "/CN=pyroscope-write test CA" -extensions ca_ext

for name in server named client; do
	key "$name.key"
	openssl req -config openssl.cnf -new -key "$name.key" -out "$name.csr" \
		-subj "/CN=pyroscope-write test $name"
	openssl x509 -req -in "$name.csr" -CA ca.pem -CAkey ca.key -CAcreateserial \
		-out "$name.pem" -days 2 -extfile openssl.cnf -extensions "${name}_ext" 2>/dev/null
done
rm -f ./*.csr ca.srl

#!/usr/bin/env bash
# Test certificates and credentials for the secured listeners of the test
# Kafka (tests/env/kafka.sh) and the TLS of the test PostgreSQL
# (tests/env/pg.sh). Made with openssl on first use, kept under .run/certs
# (git-ignored, never committed), made again when missing or within a day of
# expiry.
#
# Usage: tests/env/certs.sh up      make what is missing; print nothing
#        tests/env/certs.sh path    print the folder
#
# Layout under <repo>/.run/certs:
#   ca.pem  ca.key             the test CA (what clients trust)
#   other-ca.pem               a CA that signed nothing here (an "untrusted" root)
#   server.pem  server.key     signed by the CA: CN localhost, SAN DNS:localhost, IP:127.0.0.1
#   server-bundle.pem          server.key (PKCS#8) + server.pem: Kafka's PEM keystore
#   client.pem  client.key     signed by the CA: CN tickflow-client (mTLS)
#   client-enc.key             client.key encrypted (AES-256) with secrets.env's TF_TEST_CLIENT_KEY_PASSWORD
#   secrets.env                random passwords of the test users, one NAME=value a line
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

CDIR=$TF_RUN/certs
DAYS=825

valid() {   # the certificate exists and is good for at least one more day
    [ -s "$1" ] && openssl x509 -in "$1" -noout -checkend 86400 >/dev/null 2>&1
}

rand() { openssl rand -hex 16; }

make_secrets() {
    [ -s "$CDIR/secrets.env" ] && return 0
    cat >"$CDIR/secrets.env.tmp" <<EOF
TF_TEST_KAFKA_PLAIN_USER=tfplain
TF_TEST_KAFKA_PLAIN_PASSWORD=$(rand)
TF_TEST_KAFKA_SCRAM_USER=tfscram
TF_TEST_KAFKA_SCRAM_PASSWORD=$(rand)
TF_TEST_CLIENT_KEY_PASSWORD=$(rand)
TF_TEST_PG_SSL_USER=tickflow_tls
TF_TEST_PG_SSL_PASSWORD=$(rand)
EOF
    mv "$CDIR/secrets.env.tmp" "$CDIR/secrets.env"
}

# sign NAME SUBJECT EXT: key + certificate signed by the test CA.
sign() {
    local name=$1 subj=$2 ext=$3
    openssl req -new -newkey rsa:2048 -nodes -keyout "$CDIR/$name.key" -subj "$subj" \
        -out "$CDIR/$name.csr" 2>/dev/null
    printf '%s\n' "$ext" >"$CDIR/$name.ext"
    openssl x509 -req -in "$CDIR/$name.csr" -CA "$CDIR/ca.pem" -CAkey "$CDIR/ca.key" \
        -CAcreateserial -days "$DAYS" -sha256 -extfile "$CDIR/$name.ext" \
        -out "$CDIR/$name.pem" 2>/dev/null
    rm -f "$CDIR/$name.csr" "$CDIR/$name.ext"
}

make_certs() {
    local fresh=0
    if ! valid "$CDIR/ca.pem" || [ ! -s "$CDIR/ca.key" ]; then
        say "certs: making a test CA in $CDIR"
        openssl req -x509 -newkey rsa:2048 -nodes -keyout "$CDIR/ca.key" -days "$DAYS" \
            -subj "/CN=tickflow test CA" -addext "basicConstraints=critical,CA:TRUE" \
            -addext "keyUsage=critical,keyCertSign,cRLSign" -out "$CDIR/ca.pem" 2>/dev/null
        fresh=1
    fi
    if ! valid "$CDIR/other-ca.pem"; then
        openssl req -x509 -newkey rsa:2048 -nodes -keyout "$CDIR/other-ca.key" -days "$DAYS" \
            -subj "/CN=tickflow untrusted CA" -addext "basicConstraints=critical,CA:TRUE" \
            -out "$CDIR/other-ca.pem" 2>/dev/null
    fi
    if [ "$fresh" = 1 ] || ! valid "$CDIR/server.pem"; then
        sign server "/CN=localhost" "$(printf '%s\n' \
            'subjectAltName=DNS:localhost,IP:127.0.0.1' \
            'extendedKeyUsage=serverAuth' 'keyUsage=critical,digitalSignature,keyEncipherment')"
        # Kafka reads a PEM keystore as an unencrypted PKCS#8 key + the chain.
        { openssl pkcs8 -topk8 -nocrypt -in "$CDIR/server.key"; cat "$CDIR/server.pem"; } \
            >"$CDIR/server-bundle.pem"
    fi
    if [ "$fresh" = 1 ] || ! valid "$CDIR/client.pem" || [ ! -s "$CDIR/client-enc.key" ]; then
        sign client "/CN=tickflow-client" "$(printf '%s\n' \
            'extendedKeyUsage=clientAuth' 'keyUsage=critical,digitalSignature,keyEncipherment')"
        # shellcheck disable=SC1091
        . "$CDIR/secrets.env"
        openssl pkey -in "$CDIR/client.key" -aes256 \
            -passout "pass:$TF_TEST_CLIENT_KEY_PASSWORD" -out "$CDIR/client-enc.key"
    fi
    chmod 644 "$CDIR"/*.pem
    chmod 600 "$CDIR"/*.key "$CDIR/server-bundle.pem"
}

cmd_up() {
    tf_lock certs
    umask 077
    mkdir -p "$CDIR"
    command -v openssl >/dev/null || die "certs: openssl not found"
    make_secrets
    make_certs
}

case "${1:-}" in
    up) cmd_up ;;
    path) echo "$CDIR" ;;
    *) echo "usage: $0 up|path" >&2; exit 2 ;;
esac

#!/bin/sh
# The certificates of the compose file's tls profile: a CA of its own and
# one server certificate it signed, naming tls-postgres and tls-rabbitmq, in
# the directory given (the volume mounted at /tls). Kept once made: remove
# the volume (`docker compose --profile tls down -v`) for new ones.
#
#   sh make-certs.sh /tls
#
# What each server and client reads there: ca.pem (clients: sslrootcert=,
# cacertfile=), server.crt and server.key (PostgreSQL, RabbitMQ). The CA's
# key is deleted once it has signed: nothing else is ever signed by it.
set -eu
cd "${1:-/tls}"
if [ -s ca.pem ] && [ -s server.crt ] && [ -s server.key ]; then
    echo "make-certs: $(pwd) already holds certificates; keeping them"
    exit 0
fi
umask 077
ec="-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes"
# shellcheck disable=SC2086 # $ec is several words on purpose
openssl req -x509 $ec -days 825 -keyout ca.key -out ca.pem \
    -subj "/CN=objectsync tls profile CA" \
    -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign"
# shellcheck disable=SC2086
openssl req $ec -keyout server.key -out server.csr -subj "/CN=tls-postgres"
cat > server.ext <<'EXT'
subjectAltName=DNS:tls-postgres,DNS:tls-rabbitmq,DNS:localhost,IP:127.0.0.1
basicConstraints=critical,CA:FALSE
keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth
EXT
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
    -days 365 -extfile server.ext -out server.crt
rm -f ca.key ca.srl server.csr server.ext
# The key: owned by root and readable by group 999, the group both the
# postgres and the rabbitmq image run their server in. PostgreSQL accepts
# a key owned by root with group read and no more.
chown 0:999 server.key
chmod 640 server.key
chmod 644 ca.pem server.crt
echo "make-certs: made ca.pem, server.crt and server.key in $(pwd)"

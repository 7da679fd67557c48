#!/usr/bin/env bash
# A CA that is not the fleet's, made with openssl, and a client certificate from it whose common
# name is the database user (clientAuth): PostgreSQL must refuse it although the name fits.
#   pg_other_ca.sh DIR USER  ->  DIR/other-ca.crt, DIR/other-<USER>.crt and .key
set -euo pipefail
dir=$1 user=$2
cd "$dir"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj "/CN=Other Test CA" -addext basicConstraints=critical,CA:TRUE \
    -addext keyUsage=critical,keyCertSign,cRLSign -keyout other-ca.key -out other-ca.crt 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=$user" \
    -keyout "other-$user.key" -out "other-$user.csr" 2>/dev/null
printf 'basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n' >other-ext.cnf
openssl x509 -req -in "other-$user.csr" -CA other-ca.crt -CAkey other-ca.key -CAcreateserial -days 2 \
    -extfile other-ext.cnf -out "other-$user.crt" 2>/dev/null
chmod 0600 "other-$user.key" other-ca.key
openssl x509 -noout -subject -issuer -nameopt RFC2253 -in "other-$user.crt"

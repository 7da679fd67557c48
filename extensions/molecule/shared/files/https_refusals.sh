#!/usr/bin/env bash
# Certificates an NGINX mTLS site must turn away, all in one go on the client (one task instead of
# one per certificate):
#   https_refusals.sh URL DIR NAME=STATUS...
# DIR holds trust-bundle.pem and <NAME>.crt/.key ("-" for no certificate). Prints
# "NAME=STATUS:<the HTTP status curl got>" per argument (000 when the handshake failed).
set -u
url=$1 dir=$2
shift 2
for case in "$@"; do
    name=${case%%=*}
    identity=()
    [[ $name == - ]] || identity=(--cert "$dir/$name.crt" --key "$dir/$name.key")
    code=$(curl -s -o /dev/null -w '%{http_code}' --cacert "$dir/trust-bundle.pem" "${identity[@]}" "$url")
    echo "$case:$code"
done

#!/usr/bin/env bash
# Client-side proof for a fleet.mtls.mosquitto broker, in one go on the client (one task instead of
# one per step):
#   mqtt_client_checks.sh BROKER PORT DIR WRITER READER PREFIX FORBIDDEN NONCE [REFUSED...]
# DIR holds trust-bundle.pem and <name>.crt/.key of WRITER (may publish and read PREFIX/#), READER
# (may read PREFIX/# and FORBIDDEN, not write) and of every REFUSED name ("-" for no certificate).
# The reader subscribes; the writer publishes on FORBIDDEN first (the ACL drops it), then
# PREFIX/round-trip "hello-NONCE". Prints "reader:<the one message the reader got>", then
# "refused:<name>:<exit status of a publish with that certificate>" per REFUSED name.
set -u
broker=$1 port=$2 dir=$3 writer=$4 reader=$5 prefix=$6 forbidden=$7 nonce=$8
shift 8
common=(-h "$broker" -p "$port" --cafile "$dir/trust-bundle.pem")
writer_identity=(--cert "$dir/$writer.crt" --key "$dir/$writer.key")
out=$(mktemp)
trap 'rm -f "$out"' EXIT

# Exits after the first message or after 60 s (a busy host).
mosquitto_sub "${common[@]}" --cert "$dir/$reader.crt" --key "$dir/$reader.key" \
    -t "$prefix/#" -t "$forbidden" -C 1 -W 60 -v >"$out" 2>&1 &
subscriber=$!
# Until the broker has the subscription (its log cannot be read from here): a bounded wait.
sleep 2
mosquitto_pub "${common[@]}" "${writer_identity[@]}" -t "$forbidden" -m must-not-arrive -q 1
mosquitto_pub "${common[@]}" "${writer_identity[@]}" -t "$prefix/round-trip" -m "hello-$nonce" -q 1
wait "$subscriber"
echo "reader:$(head -n 1 "$out")"

for name in "$@"; do
    identity=()
    [[ $name == - ]] || identity=(--cert "$dir/$name.crt" --key "$dir/$name.key")
    mosquitto_pub "${common[@]}" "${identity[@]}" -t "$prefix/x" -m x -q 1 >/dev/null 2>&1
    echo "refused:$name:$?"
done

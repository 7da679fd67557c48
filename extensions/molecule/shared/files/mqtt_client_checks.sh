#!/usr/bin/env bash
# Client-side proof for a fleet.mtls.mosquitto broker, in one go on the client (one task instead of
# one per step):
#   mqtt_client_checks.sh BROKER PORT DIR WRITER READER PREFIX FORBIDDEN NONCE OUTSIDER [REFUSED...]
# DIR holds trust-bundle.pem and <name>.crt/.key of WRITER (may publish and read PREFIX/#), READER
# (may read PREFIX/# and FORBIDDEN, not write), OUTSIDER (a valid identity with no ACL entry; "-"
# for none) and of every REFUSED name ("-" for no certificate).
# The reader and the outsider subscribe; the outsider publishes on PREFIX/outsider and the writer on
# FORBIDDEN (the ACL drops both), then the writer publishes PREFIX/round-trip "hello-NONCE".
# Prints "reader:<the first message the reader got>", "outsider:<what the outsider got>" (with an
# OUTSIDER), then "refused:<name>:<exit status of a publish with that certificate>" per REFUSED name.
set -u
broker=$1 port=$2 dir=$3 writer=$4 reader=$5 prefix=$6 forbidden=$7 nonce=$8 outsider=$9
shift 9
common=(-h "$broker" -p "$port" --cafile "$dir/trust-bundle.pem")
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

identity() {
    [[ $1 == - ]] || printf '%s\n' --cert "$dir/$1.crt" --key "$dir/$1.key"
}
publish() {
    local args
    mapfile -t args < <(identity "$1")
    mosquitto_pub "${common[@]}" "${args[@]}" -t "$2" -m "$3" -q 1
}
# Subscribes in the background with its debug lines unbuffered, so the caller can tell when the
# broker has acknowledged the subscription. Exits after the first message or after 60 s.
subscribe() {
    local name=$1
    shift
    stdbuf -oL mosquitto_sub "${common[@]}" --cert "$dir/$name.crt" --key "$dir/$name.key" \
        "$@" -C 1 -W 60 -v -d >"$out/$name" 2>&1 &
}
# Until the broker sent SUBACK (bounded: 10 s) or the subscriber gave up.
wait_subscribed() {
    for _ in {1..200}; do
        grep -q '^Subscribed' "$out/$1" && return
        kill -0 "$2" 2>/dev/null || return
        sleep 0.05
    done
}
# What a subscriber got, without mosquitto_sub's debug lines.
received() {
    grep -v -E '^(Client |Subscribed )' "$out/$1" | head -n 1
}

subscribe "$reader" -t "$prefix/#" -t "$forbidden"
reader_pid=$!
if [[ $outsider != - ]]; then
    subscribe "$outsider" -t "$prefix/#"
    outsider_pid=$!
    wait_subscribed "$outsider" "$outsider_pid"
fi
wait_subscribed "$reader" "$reader_pid"
[[ $outsider == - ]] || publish "$outsider" "$prefix/outsider" "from-$outsider"
# Both dropped messages go first: had the broker let one through, the reader would have got it first.
publish "$writer" "$forbidden" must-not-arrive
publish "$writer" "$prefix/round-trip" "hello-$nonce"
wait "$reader_pid"
echo "reader:$(received "$reader")"

if [[ $outsider != - ]]; then
    # The broker hands a message to every subscriber at once: once the reader has the writer's, an
    # outsider that was to get anything has it too. Two seconds of grace, not its whole -W 60.
    for _ in {1..20}; do
        kill -0 "$outsider_pid" 2>/dev/null || break
        sleep 0.1
    done
    kill "$outsider_pid" 2>/dev/null
    wait "$outsider_pid"
    echo "outsider:$(received "$outsider")"
fi

for name in "$@"; do
    publish "$name" "$prefix/x" x >/dev/null 2>&1
    echo "refused:$name:$?"
done

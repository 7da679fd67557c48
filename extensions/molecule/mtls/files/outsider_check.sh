#!/usr/bin/env bash
# A valid certificate whose identity has no ACL entry: the broker takes the connection, drops
# what it publishes and delivers nothing to it. Runs the whole exchange in one go:
#   outsider_check.sh BROKER PORT DIR SELF TOPIC
# DIR holds trust-bundle.pem and <name>.crt/.key for monitor (reads TOPIC), stranger (no ACL
# entry) and SELF (may write TOPIC). Prints "monitor:<what it got>" and "stranger:<what it got>".
set -u
broker=$1 port=$2 dir=$3 self=$4 topic=$5
common=(-h "$broker" -p "$port" --cafile "$dir/trust-bundle.pem")
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

watch() {
    mosquitto_sub "${common[@]}" --cert "$dir/$1.crt" --key "$dir/$1.key" \
        -t "$topic" -C 1 -W 15 -v >"$out/$1" 2>"$out/$1.err"
}
publish() {
    mosquitto_pub "${common[@]}" --cert "$dir/$1.crt" --key "$dir/$1.key" -t "$topic" -m "from-$1" -q 1
}

watch monitor & monitor=$!
watch stranger & stranger=$!
sleep 3
# The stranger's publish comes first: if the broker let it through, the monitor would get it first.
publish stranger
publish "$self"
wait "$monitor"
# The broker hands a message to every subscriber at once: once the monitor has SELF's, a stranger
# that was to get anything has it too. Two seconds of grace, not its whole -W 15.
for _ in {1..20}; do
    kill -0 "$stranger" 2>/dev/null || break
    sleep 0.1
done
kill "$stranger" 2>/dev/null
wait "$stranger"
echo "monitor:$(cat "$out/monitor")"
echo "stranger:$(cat "$out/stranger")"

#!/usr/bin/env bash
# The `make demo` fleet: one systemd container per host in demo/inventory.yml on the
# podman network fleet-mtls-demo, mTLS rolled out with fleet.mtls.site, then proven
# from both clients with real clients, accepted and refused cases, ending in one proof
# table (demo/prove.yml); a row that differs from what was expected fails the run.
#   demo.sh up      create or reuse the fleet, run the rollout, print what it proved
#   demo.sh clean   remove the containers, the network and demo/.state
# Both are safe to repeat.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DEMO_DIR=$REPO_ROOT/demo
STATE_DIR=$DEMO_DIR/.state
INVENTORY=$DEMO_DIR/inventory.yml
NETWORK=fleet-mtls-demo
CONTAINER_LABEL=fleet.mtls.demo

# "host suite" lines, one per inventory host (hostvar demo_debian picks the image).
demo_hosts() {
    ansible-inventory -i "$INVENTORY" --list |
        python3 -c 'import json, sys
hostvars = json.load(sys.stdin)["_meta"]["hostvars"]
for host in sorted(hostvars):
    print(host, hostvars[host].get("demo_debian", "bookworm"))'
}

start_container() {
    local host=$1 image=$2 state
    state=$(podman container inspect --format '{{.State.Status}}' "$host" 2>/dev/null || true)
    case $state in
        running) ;;
        "")
            podman run --detach --quiet --name "$host" --hostname "$host" --network "$NETWORK" \
                --systemd=always --label "$CONTAINER_LABEL=1" "$image" /sbin/init >/dev/null ;;
        *) podman start "$host" >/dev/null ;;
    esac
}

wait_for_systemd() {
    local host=$1 state
    # Bounded: a container that has not booted within 60 s is broken, not slow.
    state=$(timeout 60 podman exec "$host" systemctl is-system-running --wait 2>/dev/null || true)
    [[ $state == running || $state == degraded ]] || die "$host: systemd did not come up (state: ${state:-unknown})"
}

write_secrets() {
    local secrets=$STATE_DIR/secrets.yml
    [[ -s $secrets ]] && return 0
    (
        umask 077
        printf 'mtls_ca_passphrase: "%s"\n' "$(openssl rand -hex 24)" >"$secrets.tmp"
        mv "$secrets.tmp" "$secrets"
    )
}

demo_up() {
    activate_venv
    export ANSIBLE_COLLECTIONS_PATH=$COLLECTIONS_DIR
    mkdir -p "$STATE_DIR"
    chmod 0700 "$STATE_DIR"
    write_secrets

    podman network exists "$NETWORK" || podman network create "$NETWORK" >/dev/null
    local start host suite hosts=()
    start=$(now)
    while read -r host suite; do
        start_container "$host" "$(image_for_suite "$suite")"
        hosts+=("$host")
    done < <(demo_hosts)
    for host in "${hosts[@]}"; do
        wait_for_systemd "$host"
    done
    log "demo fleet up in $(elapsed_since "$start")s: ${hosts[*]}"

    cd "$REPO_ROOT"
    local playbook_args=(-i "$INVENTORY" -e "@$STATE_DIR/secrets.yml")
    if [[ -f $REPO_ROOT/playbooks/site.yml ]]; then
        start=$(now)
        log "rollout: ansible-playbook fleet.mtls.site"
        ansible-playbook "${playbook_args[@]}" fleet.mtls.site
        log "rollout done in $(elapsed_since "$start")s; proving it from the clients"
        start=$(now)
        # YAML results show the proof table as lines, not as one escaped string.
        ANSIBLE_CALLBACK_RESULT_FORMAT=yaml ansible-playbook "${playbook_args[@]}" "$DEMO_DIR/prove.yml"
        log "proof done in $(elapsed_since "$start")s"
        cat <<SUMMARY

==> The demo proved, on Debian 12 and 13 containers (every row of the table above):
    - a private CA (root + issuing intermediate) on fleet-mtls-demo-ca signed every host's CSR;
      private keys never left their hosts
    - NGINX on fleet-mtls-demo-web and Mosquitto on fleet-mtls-demo-broker accept each client's
      own certificate, with curl, openssl s_client and Node.js https, and with mosquitto_pub/sub,
      paho-mqtt and openssl s_client; the page names the client the certificate identified
    - both refuse: no certificate, one from another CA, an expired one, a revoked one (revoked
      on the CA holder with fleet.mtls.revoke, which pushed the new CRL to the fleet), a
      server-only one (EKU serverAuth); NGINX answers 403 to a valid identity off its
      allowlist, Mosquitto delivers nothing to or from one outside its ACL
    Run 'make demo' again: the rollout is idempotent; the proof makes fresh test certificates.
    'make demo-clean' removes the fleet.
SUMMARY
    else
        log "playbooks/site.yml does not exist yet: running the plumbing check instead"
        ansible-playbook "${playbook_args[@]}" "$DEMO_DIR/placeholder.yml"
        cat <<SUMMARY

==> PLACEHOLDER: no mTLS was rolled out (playbooks/site.yml is missing).
    Proved only the fleet plumbing: containers on both Debian releases boot systemd,
    Ansible reaches them through podman, and clients reach the web host by name.
SUMMARY
    fi
}

demo_clean() {
    local containers
    containers=$(podman ps --all --quiet --filter "label=$CONTAINER_LABEL")
    if [[ -n $containers ]]; then
        # shellcheck disable=SC2086  # one word per container id
        podman rm --force --time 5 $containers >/dev/null
        log "removed demo containers"
    fi
    if podman network exists "$NETWORK"; then
        podman network rm "$NETWORK" >/dev/null
        log "removed network $NETWORK"
    fi
    rm -rf "$STATE_DIR"
    log "demo cleaned"
}

case ${1:-} in
    up) demo_up ;;
    clean) demo_clean ;;
    *) die "usage: demo.sh up|clean" ;;
esac

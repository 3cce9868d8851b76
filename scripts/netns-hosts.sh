#!/usr/bin/env bash
# Pretend hosts for multi-host MPI tests on one machine: N Linux network namespaces joined by veth
# links, each with its own private address, so Open MPI sees N nodes that talk only over TCP.
#
#   scripts/netns-hosts.sh up   PREFIX N    # namespaces PREFIX1..PREFIXN, addresses SUBNET.1..N
#   scripts/netns-hosts.sh down PREFIX N    # kills what runs in them, removes them (any state)
#   scripts/netns-hosts.sh addr PREFIX I    # prints host I's address
#
# Layout (a star): PREFIX1 holds a bridge br0 with SUBNET.1/24; host I (I >= 2) has eth0 with
# SUBNET.I/24, the other end of its veth pair (hI) enslaved to br0 in PREFIX1. Every link is
# created directly inside the namespaces (ip -n), so nothing appears in the machine's own network
# namespace and the addresses exist only inside them: two sets with different prefixes may use the
# same subnet. lo is up in each (Open MPI's self paths and local daemons need it).
#
# Hosts are reached by address: give mpirun `--host SUBNET.1,SUBNET.2,...` and the rsh agent
# scripts/netns-rsh, which runs each command inside the namespace owning that address under its
# own UTS namespace, with the namespace's name as hostname (Open MPI tells nodes apart by name).
# Launch mpirun itself inside PREFIX1 (scripts/netns-rsh PREFIX1 mpirun ...), so the daemons can
# connect back to it over the veth links.
#
# NETNS_SUBNET (default 10.213.0) sets the /24 used. Needs root (CAP_SYS_ADMIN, CAP_NET_ADMIN).
set -euo pipefail
# ip lives in sbin, which a non-login PATH may lack.
export PATH="$PATH:/usr/sbin:/sbin"

usage() { echo "usage: $0 up|down PREFIX N | addr PREFIX I" >&2; exit 2; }
[ $# -eq 3 ] || usage
action=$1 prefix=$2 count=$3
subnet=${NETNS_SUBNET:-10.213.0}
if ! [[ $count =~ ^[0-9]+$ ]] || [ "$count" -lt 1 ] || [ "$count" -gt 250 ]; then usage; fi
[[ $prefix =~ ^[A-Za-z0-9][A-Za-z0-9_.-]*$ ]] || { echo "$0: bad prefix '$prefix'" >&2; exit 2; }

exists() { [ -e "/run/netns/$1" ]; }

down() {
    local i ns pids round
    for ((i = 1; i <= count; i++)); do
        ns=$prefix$i
        exists "$ns" || continue
        # Whatever still runs in the namespace (a hung rank, an orphaned orted): TERM, then KILL.
        for round in TERM TERM TERM KILL; do
            pids=$(ip netns pids "$ns" 2>/dev/null || true)
            [ -n "$pids" ] || break
            # shellcheck disable=SC2086 # one pid a word
            kill -s "$round" $pids 2>/dev/null || true
            sleep 0.5
        done
        # Deleting the namespace destroys its interfaces and so both ends of its veth pairs.
        ip netns del "$ns" 2>/dev/null || echo "$0: could not delete namespace $ns" >&2
    done
    return 0
}

undo_on_failure() {
    local rc=$?
    [ $rc -eq 0 ] || down
    exit $rc
}

link_up() { local state; state=$(ip -n "$1" -o link show "$2"); [[ $state == *"state UP"* ]]; }

all_up() {
    local i
    link_up "${prefix}1" br0 || return 1
    for ((i = 2; i <= count; i++)); do
        link_up "${prefix}1" "h$i" && link_up "$prefix$i" eth0 || return 1
    done
}

up() {
    local i ns hub=${prefix}1
    # Start from nothing: a previous run killed halfway may have left some of them.
    down
    # If anything below fails, leave nothing behind.
    trap undo_on_failure EXIT
    for ((i = 1; i <= count; i++)); do
        ns=$prefix$i
        ip netns add "$ns"
        ip -n "$ns" link set lo up
    done
    ip -n "$hub" link add br0 type bridge
    ip -n "$hub" addr add "$subnet.1/24" dev br0
    ip -n "$hub" link set br0 up
    for ((i = 2; i <= count; i++)); do
        ns=$prefix$i
        ip -n "$hub" link add "h$i" type veth peer name eth0 netns "$ns"
        ip -n "$hub" link set "h$i" master br0 up
        ip -n "$ns" addr add "$subnet.$i/24" dev eth0
        ip -n "$ns" link set eth0 up
    done
    # Links come up asynchronously: wait until every veth end and the bridge report state UP, so
    # the first mpirun does not race them (no ping needed: iputils is not always installed).
    local tries=0
    until all_up; do
        tries=$((tries + 1))
        [ $tries -lt 40 ] || { echo "$0: links of $prefix* not up after 10 s" >&2; ip -n "$hub" -br link >&2; exit 1; }
        sleep 0.25
    done
    trap - EXIT
}

case $action in
    up) up ;;
    down) down ;;
    addr) echo "$subnet.$count" ;;
    *) usage ;;
esac

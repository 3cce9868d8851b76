#!/usr/bin/env bash
# How long a one-sided reader waits for a peer snapshot while the target is busy, across two
# hosts over TCP (osc pt2pt), before and after making reads non-blocking (issue 11).
#
#   sudo bash bench/rma_reader_wait.sh [--busy 0,100,400] [--trials 7] [--size BYTES] [--poll 10]
#
# Two pretend hosts (network namespaces joined by veth, scripts/netns-hosts.sh), one rank on
# each, Open MPI restricted to TCP (btl tcp,self) with osc pt2pt. bench/rma_wait.c is compiled
# with mpicc in a temporary folder; each run prints one row per (read scheme, busy time):
#
#   blocking     lock(shared)/get/unlock, as Sources/Cluster/PeerWindow.swift does today
#   nonblocking  lock_all(NOCHECK) once, MPI_Rget, MPI_Test polled while the reader computes
#
# wait_*: ms from starting the read until the data is there; in_mpi_*: ms the reader spent inside
# MPI calls (the same as the wait for a blocking read). Runs, in order:
#   1. target makes no MPI call while busy (an evaluation, a checkpoint write)
#   2. target calls MPI_Iprobe every --poll ms (codistill pokes once per step in a one-rank group)
#   3. as 1 with the TCP BTL's progress thread (--mca btl_tcp_progress_thread 1); 3b with
#      MPI_THREAD_MULTIPLE too, which osc pt2pt refuses in Open MPI 4.1
#   4. as 1 with osc ucx over UCX's TCP transport instead of osc pt2pt, if this Open MPI has it
# Needs root (namespaces), mpicc, and about a minute. Everything it creates is removed at exit.
set -euo pipefail
cd "$(dirname "$0")/.."
busy=0,100,400 trials=7 size=1688136 poll=10
while [ $# -gt 0 ]; do
    case $1 in
        --busy) busy=$2; shift 2 ;;
        --trials) trials=$2; shift 2 ;;
        --size) size=$2; shift 2 ;;
        --poll) poll=$2; shift 2 ;;
        *) echo "usage: $0 [--busy MS,MS,...] [--trials N] [--size BYTES] [--poll MS]" >&2; exit 2 ;;
    esac
done

prefix="cdbench$$-"
subnet=${NETNS_SUBNET:-10.213.0}
tmp=$(mktemp -d /tmp/rma-reader-wait.XXXXXX)
cleanup() {
    bash scripts/netns-hosts.sh down "$prefix" 2
    rm -rf "$tmp"
}
trap cleanup EXIT

mpicc -O2 -Wall -o "$tmp/rma_wait" bench/rma_wait.c
NETNS_SUBNET=$subnet bash scripts/netns-hosts.sh up "$prefix" 2

export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 NETNS_RSH_PREFIX=$prefix
net="$subnet.0/24"
hosts="$subnet.1,$subnet.2"
mca=(--host "$hosts" -np 2 --bind-to none
     --mca plm_rsh_agent "$PWD/scripts/netns-rsh" --mca plm_rsh_no_tree_spawn 1
     --mca oob_tcp_if_include "$net" --mca btl "tcp,self" --mca btl_tcp_if_include "$net")
common=(--busy "$busy" --trials "$trials" --size "$size")

# mpirun inside the first host; the agent hands its words to a shell, so quote them for one.
run() {
    local words
    printf -v words '%q ' mpirun "${mca[@]}" "$@"
    timeout -k 5 300 scripts/netns-rsh "${prefix}1" "$words"
}

ompi=$(ompi_info)
echo "== $(sed -n 's/^ *Open MPI: */Open MPI /p' <<<"$ompi" | head -1), $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
echo "== 1. osc pt2pt, target makes no MPI call while busy"
run --mca osc pt2pt "$tmp/rma_wait" "${common[@]}" --target none
echo "== 2. osc pt2pt, target calls MPI_Iprobe every $poll ms while busy"
run --mca osc pt2pt "$tmp/rma_wait" "${common[@]}" --target poll --poll "$poll"
echo "== 3. osc pt2pt, target makes no MPI call, --mca btl_tcp_progress_thread 1"
run --mca osc pt2pt --mca btl_tcp_progress_thread 1 "$tmp/rma_wait" "${common[@]}" --target none
echo "== 3b. the same with MPI_THREAD_MULTIPLE (which a progress thread would want)"
refused=$(run --mca osc pt2pt --mca btl_tcp_progress_thread 1 "$tmp/rma_wait" "${common[@]}" --target none \
              --threads multiple 2>&1 || true)
grep -m1 -i "does not support" <<<"$refused" || echo "$refused"
if grep -q "MCA osc: ucx" <<<"$ompi"; then
    echo "== 4. osc ucx (UCX_TLS=tcp,self), target makes no MPI call while busy"
    run --mca osc ucx -x "UCX_TLS=tcp,self" "$tmp/rma_wait" "${common[@]}" --target none
fi

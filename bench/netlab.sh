#!/bin/bash
# netlab.sh — a switched LAN made of network namespaces on one machine.
#
#   bench/netlab.sh up N RATE_MBIT [--delay MS] [--loss PCT] [--loss-host I]
#                      [--host-rate I:RATE]                     (RATE 0 = unshaped)
#   bench/netlab.sh down
#   bench/netlab.sh status
#
# Layout: namespace ezb-sw holds bridge br0; namespaces ezb-h0 (the seeder)
# and ezb-h1..ezb-hN (clients) each have eth0, a veth whose peer p<i> sits in
# ezb-sw on br0. Host i has 10.77.0.<i+1>/24 (namespace-internal addresses).
# Every host link is shaped in both directions: HTB at RATE on the host's eth0
# egress (host -> switch) and on the bridge port p<i> egress (switch -> host),
# each with a byte FIFO holding ~50 ms of traffic, like a switch port buffer.
#
# The kernel may lack netem: --delay is refused with a message when it does.
# --loss uses nftables `numgen random` on each host's input when nft exists
# (with --loss-host I, on host I's input only; repeatable). --host-rate I:R
# shapes host I's link at R Mbit/s instead of RATE (a slower port; repeatable).
#
# `up` first tears down whatever an earlier run left; `down` is idempotent.
set -euo pipefail

PFX=${EZB_PREFIX:-ezb}
SW=$PFX-sw
SUBNET=10.77.0

die() { echo "netlab: $*" >&2; exit 1; }

hosts() { ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^$PFX-(h[0-9]+|sw)$" || true; }

down() {
    local ns
    for ns in $(hosts); do
        ip netns pids "$ns" 2>/dev/null | while read -r pid; do
            # Only processes living in our own namespaces; they are ours.
            kill -TERM "$pid" 2>/dev/null || true
        done
    done
    sleep 0.2
    for ns in $(hosts); do
        ip netns pids "$ns" 2>/dev/null | while read -r pid; do kill -KILL "$pid" 2>/dev/null || true; done
        ip netns del "$ns" 2>/dev/null || true
    done
}

have_netem() {
    # Probe on a throwaway veth pair inside a throwaway namespace.
    local ns=$PFX-probe ok=1
    ip netns add "$ns" 2>/dev/null || return 1
    ip -n "$ns" link add pa type veth peer name pb 2>/dev/null &&
        tc -n "$ns" qdisc add dev pa root netem delay 1ms 2>/dev/null && ok=0
    ip netns del "$ns" 2>/dev/null || true
    return $ok
}

# shape NS DEV RATE_MBIT [DELAY_MS]: HTB class at RATE with a ~50 ms byte FIFO.
shape() {
    local ns=$1 dev=$2 rate=$3 delay=${4:-0}
    local bytes=$(( rate * 1000000 / 8 / 20 ))          # 50 ms at RATE
    # ...but room for two 64 KiB GSO packets: below ~21 Mbit/s a FIFO of
    # 50 ms cannot take one, and a TCP stream crawls at ~0.4 Mbit/s on
    # retransmits (seen at 10 Mbit/s).
    bytes=$(( bytes < 131072 ? 131072 : bytes ))
    local quantum=$(( rate >= 100 ? 60000 : 15000 ))
    tc -n "$ns" qdisc replace dev "$dev" root handle 1: htb default 1 r2q 10
    tc -n "$ns" class add dev "$dev" parent 1: classid 1:1 htb \
        rate "${rate}mbit" ceil "${rate}mbit" quantum "$quantum"
    if [ "$delay" != 0 ]; then
        tc -n "$ns" qdisc add dev "$dev" parent 1:1 handle 10: netem delay "${delay}ms" limit 10000
    else
        tc -n "$ns" qdisc add dev "$dev" parent 1:1 handle 10: bfifo limit "$bytes"
    fi
}

up() {
    local n=${1:?N clients} rate=${2:?RATE in Mbit/s}; shift 2
    local delay=0 loss=0 losshosts=" " hostrates=" "
    while [ $# -gt 0 ]; do
        case $1 in
            --delay) delay=$2; shift 2 ;;
            --loss) loss=$2; shift 2 ;;
            --loss-host) losshosts+="$2 "; shift 2 ;;
            --host-rate) hostrates+="$2 "; shift 2 ;;
            *) die "unknown option $1" ;;
        esac
    done
    [ "$n" -ge 1 ] && [ "$n" -le 200 ] || die "N must be 1..200"
    [ "$rate" -ge 0 ] 2>/dev/null || die "RATE must be a whole number of Mbit/s (0 = unshaped)"
    if [ "$delay" != 0 ] && ! have_netem; then
        die "this kernel has no netem qdisc: --delay cannot be emulated (run without it)"
    fi
    if [ "$loss" != 0 ] && ! command -v nft >/dev/null; then
        die "--loss needs nftables (apt-get install nftables)"
    fi
    down
    ip netns add "$SW"
    ip -n "$SW" link set lo up
    ip netns exec "$SW" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
    ip -n "$SW" link add br0 type bridge
    # Flood multicast to every port (no IGMP snooping surprises for udpcast).
    ip -n "$SW" link set br0 type bridge mcast_snooping 0 stp_state 0 forward_delay 0
    ip -n "$SW" link set br0 up
    local i ns
    for i in $(seq 0 "$n"); do
        ns=$PFX-h$i
        ip netns add "$ns"
        ip -n "$ns" link set lo up
        # IPv4 only: no IPv6 chatter in the byte counters.
        ip netns exec "$ns" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1
        ip -n "$SW" link add "p$i" type veth peer name eth0 netns "$ns"
        ip -n "$SW" link set "p$i" master br0 up
        ip -n "$ns" addr add "$SUBNET.$((i + 1))/24" brd + dev eth0
        ip -n "$ns" link set eth0 up
        ip -n "$ns" route add 224.0.0.0/4 dev eth0
        # delay is split: half each way gives DELAY of one-way latency per link pair
        local r=$rate hr
        for hr in $hostrates; do [ "${hr%%:*}" = "$i" ] && r=${hr#*:}; done
        if [ "$r" != 0 ]; then              # RATE 0: unshaped (loopback benchmark)
            shape "$ns" eth0 "$r" "$delay"
            shape "$SW" "p$i" "$r" "$delay"
        fi
        if [ "$loss" != 0 ] && { [ "$losshosts" = " " ] || [[ "$losshosts" == *" $i "* ]]; }; then
            local per=$(awk -v l="$loss" 'BEGIN{printf "%d", l * 100}')   # per 10000
            ip netns exec "$ns" nft -f - <<EOF
table inet ezbloss {
    chain in { type filter hook input priority 0; policy accept;
        numgen random mod 10000 < $per drop
    }
}
EOF
        fi
    done
    # Wait (bounded) until every bridge port forwards.
    local tries=50
    while [ $tries -gt 0 ]; do
        [ "$(bridge -n "$SW" link show | grep -c 'state forwarding')" -eq $((n + 1)) ] && break
        tries=$((tries - 1)); sleep 0.1
    done
    [ $tries -gt 0 ] || die "LAN did not come up (bridge ports not forwarding)"
    echo "netlab: up: h0..h$n on br0, ${rate} Mbit/s both ways per link, fifo $(( rate * 1000000 / 8 / 20 < 131072 ? 131072 : rate * 1000000 / 8 / 20 )) B" \
         "delay ${delay}ms loss ${loss}%${losshosts:+ (hosts:${losshosts})} ${hostrates:+other rates:${hostrates}}"
}

status() {
    local ns
    for ns in $(hosts); do
        echo "== $ns"
        ip -n "$ns" -br addr
        tc -n "$ns" -s qdisc show | grep -E "^qdisc|Sent" || true
    done
}

[ "$(id -u)" = 0 ] || die "run as root"
cmd=${1:-}; shift || true
case $cmd in
    up) up "$@" ;;
    down) down ;;
    status) status ;;
    netem) if have_netem; then echo "netem: available"; else echo "netem: NOT available in this kernel"; exit 1; fi ;;
    *) echo "usage: $0 up N RATE_MBIT [--delay MS] [--loss PCT] [--loss-host I] [--host-rate I:R] | down | status | netem" >&2; exit 2 ;;
esac

"""The shell script of the links DaemonSet: joins each lab network's bridges across cluster nodes.

Part of the rendering, not of the topology: it runs on every cluster node (host
network, NET_ADMIN) from any lab image (they all have iproute2 and getent), and
tests/integration/test_links_script.py runs it for real in network namespaces.

Inputs (environment):
  LAB_LINKS        lines "VNI BRIDGE": one per lab network
  LAB_LINKS_MODE   "up" (make the devices, then keep the peers current) or
                   "down" (remove them: the cleanup mode `lab down` switches to)
  NODE_IP          this cluster node's address (the downward API's status.hostIP)
  LAB_PEERS_NAME   a name that resolves to every node's address (the headless
                   Service of the DaemonSet's own pods: they use the host network)
  LAB_LINKS_MTU    the lab's MTU, so a frame plus VXLAN's 50 bytes fits the underlay
  LAB_LINKS_EVERY  seconds between two looks at the peers (default 10)
  LAB_LINKS_READY  the file whose presence tells the readiness probe a pass succeeded
"""

# Device names: the bridge as the NetworkAttachmentDefinition names it (bridge CNI
# makes it too if a pod comes first: both sides accept the other's), and vxlanVNI.
# nolearning: the forwarding database is ours alone; an all-zero MAC entry per
# peer floods broadcasts and unknown unicast to every other node (head-end
# replication), which needs nothing from the underlay but UDP 4789.
LINKS_SCRIPT = r"""set -u
MODE="${LAB_LINKS_MODE:-up}"
READY="${LAB_LINKS_READY:-/tmp/lab-links-ready}"
ZERO=00:00:00:00:00:00
say() { echo "lab-links: $*"; }
fail() { echo "lab-links: $*" >&2; rm -f "$READY"; exit 1; }
links() {   # "VNI BRIDGE" lines, blank ones skipped
  printf '%s\n' "$LAB_LINKS" | while read -r vni bridge; do if [ -n "$vni" ]; then echo "$vni $bridge"; fi; done
}

nodes() {   # every node's address, as the name resolves now; fails when it does not resolve
  answer=$(getent ahostsv4 "$LAB_PEERS_NAME") || return 1
  echo "$answer" | awk '{print $1}' | sort -u
}

is_kind() {   # is_kind DEVICE TYPE: the device exists and is of that link type
  ip -d -o link show dev "$1" 2>/dev/null | grep -q " $2 "
}

make_links() {
  links | while read -r vni bridge; do
    dev="vxlan$vni"
    if ! ip link show dev "$bridge" >/dev/null 2>&1; then
      ip link add "$bridge" type bridge || fail "cannot make bridge $bridge"
    fi
    is_kind "$bridge" bridge || fail "$bridge exists and is not a bridge: another program owns that name"
    if ip link show dev "$dev" >/dev/null 2>&1; then
      ip -d -o link show dev "$dev" | grep -q "vxlan id $vni " \
        || fail "$dev exists and is not VXLAN $vni: another program owns that name"
      master=$(ip -o link show dev "$dev" | sed -n 's/.* master \([^ ]*\) .*/\1/p')
      [ -z "$master" ] || [ "$master" = "$bridge" ] \
        || fail "$dev is joined to $master, not $bridge: VXLAN id $vni is another lab's"
    else
      ip link add "$dev" type vxlan id "$vni" dstport 4789 nolearning local "$NODE_IP" \
        || fail "cannot make $dev (VXLAN id $vni, local $NODE_IP): is the vxlan module loaded, is the id free?"
    fi
    ip link set "$dev" mtu "$LAB_LINKS_MTU" || fail "cannot set the MTU of $dev"
    ip link set "$bridge" mtu "$LAB_LINKS_MTU" 2>/dev/null || true
    ip link set "$dev" master "$bridge" && ip link set "$dev" up && ip link set "$bridge" up \
      || fail "cannot join $dev to $bridge"
  done || return 1
}

sync_peers() {   # the all-zero entries of every device: exactly one per other node
  # A failed lookup (the cluster DNS away for a moment) keeps the peers there are: no node has left.
  found=$(nodes) || { say "$LAB_PEERS_NAME does not resolve now: peers kept"; return 0; }
  wanted=$(echo "$found" | grep -vx "$NODE_IP")
  links | while read -r vni bridge; do
    dev="vxlan$vni"
    have=$(bridge fdb show dev "$dev" | awk -v z="$ZERO" '$1 == z && $2 == "dst" {print $3}' | sort -u)
    for peer in $wanted; do
      echo "$have" | grep -qx "$peer" || { bridge fdb append "$ZERO" dev "$dev" dst "$peer" \
        && say "$dev: peer $peer added"; } || fail "cannot add peer $peer to $dev"
    done
    for peer in $have; do
      echo "$wanted" | grep -qx "$peer" || { bridge fdb del "$ZERO" dev "$dev" dst "$peer" \
        && say "$dev: peer $peer removed"; }
    done
  done || return 1
  echo "$wanted" | grep -c . > "$READY.peers" || true
}

remove_links() {
  links | while read -r vni bridge; do
    dev="vxlan$vni"
    if is_kind "$dev" vxlan && ip -d -o link show dev "$dev" | grep -q "vxlan id $vni "; then
      ip link del "$dev" && say "removed $dev"
    fi
    if is_kind "$bridge" bridge; then
      ip link del "$bridge" && say "removed $bridge"
    fi
  done
}

SLEEPER=""
pause() { sleep "$1" & SLEEPER=$!; wait "$SLEEPER"; SLEEPER=""; }   # a wait that TERM interrupts
stop_pause() { [ -z "$SLEEPER" ] || kill "$SLEEPER" 2>/dev/null; }

case "$MODE" in
  up)
    # Deleting the DaemonSet (kubectl delete, a rollback) ends each pod with TERM: leave no devices.
    trap 'stop_pause; remove_links; exit 0' TERM INT
    make_links || exit 1
    # Not ready before the name lists this node itself: the answer is then current enough to trust.
    until nodes 2>/dev/null | grep -qx "$NODE_IP"; do
      say "waiting until $LAB_PEERS_NAME lists this node ($NODE_IP)"
      pause 2
    done
    sync_peers || exit 1
    say "up: $(links | wc -l) networks, $(cat "$READY.peers") peers"
    echo up > "$READY"
    while :; do
      pause "${LAB_LINKS_EVERY:-10}"
      sync_peers || exit 1
    done
    ;;
  down)
    trap 'stop_pause; exit 0' TERM INT
    remove_links
    links | while read -r vni bridge; do
      ! ip link show dev "vxlan$vni" >/dev/null 2>&1 || fail "vxlan$vni is still there"
      ! ip link show dev "$bridge" >/dev/null 2>&1 || fail "$bridge is still there"
    done || exit 1
    say "down: no device of the lab left on this node"
    echo down > "$READY"
    while :; do pause 3600; done
    ;;
  *) fail "LAB_LINKS_MODE is '$MODE': it is up or down" ;;
esac
"""

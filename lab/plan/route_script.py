"""The shell script that installs a node's routes (the lines lab.topology.routes computes).

Part of the plan, not of the topology: it is what a node's network namespace runs,
the same for the Docker backend and for `lab export compose`.
"""

# Installs a node's routes from outside: run with NET_ADMIN in the node's network
# namespace (a helper container), routes in $LAB_ROUTES as lines of /lab/routes.
# The seal ($LAB_SEAL, iptables-restore input from lab/plan/seal.py, and on a dual-stack
# node $LAB_SEAL6 for ip6tables-restore) goes in first, so the node's service, which waits
# for its routes, never runs unsealed. The engine's default routes go (one flush per family),
# then every route in one `ip -batch` (ip finds each line's family from its gateway): a
# process per route cost a node with a dozen routes a dozen starts of ip.
ROUTE_SCRIPT = r"""
set -e
if [ -n "${LAB_SEAL:-}" ]; then
  printf '%s\n' "$LAB_SEAL" | iptables-restore || { echo "cannot install the seal rules" >&2; exit 1; }
fi
if [ -n "${LAB_SEAL6:-}" ]; then
  printf '%s\n' "$LAB_SEAL6" | ip6tables-restore || { echo "cannot install the IPv6 seal rules" >&2; exit 1; }
fi
ip -4 route flush exact 0.0.0.0/0
ip -6 route flush exact ::/0 2>/dev/null || true
batch=""
count=0
while IFS= read -r line; do
  case "$line" in ''|'#'*) continue ;; esac
  count=$((count + 1))
  batch="${batch}route replace $line
"
done <<EOF_ROUTES
$LAB_ROUTES
EOF_ROUTES
[ "$count" -gt 0 ] || exit 0
failed=$(printf '%s' "$batch" | ip -batch - 2>&1) && exit 0
number=$(printf '%s\n' "$failed" | sed -n 's/^Command failed -:\([0-9]*\)$/\1/p' | tail -n 1)
route=$(printf '%s' "$batch" | sed -n "${number:-0}p")
echo "cannot install route: ${route#route replace } ($(printf '%s' "$failed" | head -n 1))" >&2
exit 1
"""

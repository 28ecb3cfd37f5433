"""The shell script that installs a node's routes (the lines lab.topology.routes computes).

Part of the plan, not of the topology: it is what a node's network namespace runs,
the same for the Docker backend and for `lab export compose`.
"""

# Installs a node's routes from outside: run with NET_ADMIN in the node's network
# namespace (a helper container), routes in $LAB_ROUTES as lines of /lab/routes.
# The seal ($LAB_SEAL, iptables-restore input from lab/plan/seal.py, and on a dual-stack
# node $LAB_SEAL6 for ip6tables-restore) goes in first, so the node's service, which waits
# for its routes, never runs unsealed. A line with a ':' is an IPv6 route: the engine's
# IPv6 default route goes as its IPv4 one does.
ROUTE_SCRIPT = r"""
set -e
if [ -n "${LAB_SEAL:-}" ]; then
  printf '%s\n' "$LAB_SEAL" | iptables-restore || { echo "cannot install the seal rules" >&2; exit 1; }
fi
if [ -n "${LAB_SEAL6:-}" ]; then
  printf '%s\n' "$LAB_SEAL6" | ip6tables-restore || { echo "cannot install the IPv6 seal rules" >&2; exit 1; }
fi
while ip -4 route del default 2>/dev/null; do :; done
while ip -6 route del default 2>/dev/null; do :; done
printf '%s\n' "$LAB_ROUTES" | while IFS= read -r line; do
  case "$line" in ''|'#'*) continue ;; *:*) family=-6 ;; *) family=-4 ;; esac
  ip $family route replace $line || { echo "cannot install route: $line" >&2; exit 1; }
done
"""

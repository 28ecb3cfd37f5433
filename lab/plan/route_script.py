"""The shell script that installs a node's routes (the lines lab.topology.routes computes).

Part of the plan, not of the topology: it is what a node's network namespace runs,
the same for the Docker backend and for `lab export compose`.
"""

# Installs a node's routes from outside: run with NET_ADMIN in the node's network
# namespace (a helper container), routes in $LAB_ROUTES as lines of /lab/routes.
# The seal ($LAB_SEAL, iptables-restore input from lab/plan/seal.py) goes in first,
# so the node's service, which waits for its routes, never runs unsealed.
ROUTE_SCRIPT = r"""
set -e
if [ -n "${LAB_SEAL:-}" ]; then
  printf '%s\n' "$LAB_SEAL" | iptables-restore || { echo "cannot install the seal rules" >&2; exit 1; }
fi
while ip route del default 2>/dev/null; do :; done
printf '%s\n' "$LAB_ROUTES" | while IFS= read -r line; do
  case "$line" in ''|'#'*) continue ;; esac
  ip route replace $line || { echo "cannot install route: $line" >&2; exit 1; }
done
"""

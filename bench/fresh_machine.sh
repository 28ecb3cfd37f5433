#!/usr/bin/env bash
# Usage: bash bench/fresh_machine.sh
#
# How long a FRESH machine takes from `bash scripts/setup.sh` to a ready default
# lab (`lab up` of topology/default.yaml): each step and the total, beside the
# two-minute goal, with the load average before (the engine is shared).
#
# The fresh machine (Debian 12, 2 cores, root, no engine, no lab images) is
# emulated in a container of the local image lab/debian:bookworm (a debootstrap
# minbase; no registry answers here) with a fresh named volume at
# /var/lib/docker (its own dockerd: overlay2, no image at all), on the default
# bridge to reach the real Debian mirror and PyPI. Its labs live in its own
# network namespace, so no subnet collides with labs on this engine.
# Everything is named lab-fresh-bench-PID and removed on exit, Ctrl-C included.
#
# The machine's base, installed before the clock starts: what a machine of this
# kind has and a minbase lacks (checked on this host):
#   - this host's CA bundle and its extra CAs (/usr/local/share/ca-certificates:
#     PyPI is reached through an intercepting proxy trusted only there), and
#     /etc/pip.conf naming the bundle, as here;
#   - this host's apt sources (bookworm, -updates, -security);
#   - ca-certificates, Debian's python3 and python3-pip, git, curl, procps,
#     iproute2 (no sudo: root; no kmod, as here);
#   - the docker CLI 28.x, a client only (this host's /usr/local/bin/docker);
#   - this host's python3, first on PATH: a pyenv build (3.11.7) whose pip,
#     unlike Debian's python3, is not EXTERNALLY-MANAGED; that is why
#     setup.sh's `python3 -m pip install -e` works as root here and in CI.
#     Only its interpreter and standard library are copied, then ensurepip
#     (pip, setuptools, as `pyenv install` leaves it): no package preinstalled.
#
# What differs from a real fresh machine: same CPU, disk and network as this
# host, and downloads go to the real mirror and PyPI, so the times include the
# network; the engine is nested in a container that has every capability but
# CAP_SYS_RESOURCE (this engine refuses --privileged), no systemd (setup.sh
# starts dockerd with setsid nohup, as it does wherever systemctl is absent);
# what this host's pyenv held beyond pip is unknown, so none of it is there;
# apt's lists are emptied after the base (a cloud image may ship some).
# It measures the last commit (a clean clone), not edits in the working tree.
set -euo pipefail
cd "$(dirname "$0")/.."

NAME="lab-fresh-bench-$$"        # the PID: two runs never touch each other's things
IMAGE=lab/debian:bookworm
GOAL_S=120
TMP=$(mktemp -d "/tmp/$NAME.XXXXXX")
log() { printf '[fresh] %s\n' "$*" >&2; }

cleanup() {
  trap - EXIT INT TERM
  log "cleaning up: container, volume and temp dir $NAME"
  docker rm -f "$NAME" >/dev/null 2>&1 || true
  docker volume rm "$NAME-docker" >/dev/null 2>&1 || true
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT; trap 'exit 143' TERM

# This host's python3 (the machine's): a pyenv build here, first on PATH.
PYHOME=$(python3 -c 'import sys; print(sys.prefix)')
BOX_PATH="$PYHOME/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# A command in the machine, as root (CI=true as CI sets it; unbuffered Python
# output, as this host sets it, so the stamps below are when lines happened).
in_box() {
  docker exec -e CI=true -e PYTHONUNBUFFERED=1 -e DEBIAN_FRONTEND=noninteractive -e PATH="$BOX_PATH" \
    "$NAME" bash -c "$1"
}

docker image inspect "$IMAGE" >/dev/null 2>&1 || { log "no local image $IMAGE (make it with lab up once)"; exit 1; }
git clone -q . "$TMP/lab"

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
log "load average before: $load_before ($(nproc) cores)"

# --cpus 2: the machine has 2 cores (a no-op on this 2-core host; keeps the
# bench honest on a bigger one). The default bridge: the mirror and PyPI.
# Not --privileged: this engine refuses it ("unable to apply caps: operation
# not permitted": CAP_SYS_RESOURCE is outside its bounding set), so the box
# gets what --privileged would give, minus that one capability: every other
# capability, no seccomp, /proc unmasked, every device allowed, and (below)
# /sys and its own cgroup v1 hierarchies writable.
docker volume create "$NAME-docker" >/dev/null
docker run -d --name "$NAME" --hostname fresh --cpus 2 --network bridge \
  --cap-add ALL --cap-drop SYS_RESOURCE --security-opt seccomp=unconfined \
  --security-opt systempaths=unconfined --device-cgroup-rule 'a *:* rwm' \
  -v "$NAME-docker:/var/lib/docker" "$IMAGE" sleep infinity >/dev/null
# Bind mounts, so remount,bind: the box's own cgroups become writable for its
# dockerd, which nests its containers under them (as --privileged does).
in_box 'mount -o remount,rw /sys && for d in /sys/fs/cgroup/*/; do mount -o remount,bind,rw "$d"; done'

# The CA bundle before anything else (pip needs it for PyPI); the extra CAs
# also as local certificates, so the ca-certificates package's own
# update-ca-certificates keeps them in the bundle, as on the host.
in_box 'mkdir -p /etc/ssl/certs /usr/local/share/ca-certificates'
docker cp -L /etc/ssl/certs/ca-certificates.crt "$NAME:/etc/ssl/certs/ca-certificates.crt"
[ ! -d /usr/local/share/ca-certificates ] ||
  docker cp -L /usr/local/share/ca-certificates/. "$NAME:/usr/local/share/ca-certificates/"
docker cp /etc/apt/sources.list.d/debian.sources "$NAME:/etc/apt/sources.list.d/debian.sources"
docker cp -L /usr/local/bin/docker "$NAME:/usr/local/bin/docker"
if [ "$PYHOME" != /usr ]; then
  # The interpreter and its standard library, none of the packages installed
  # since: ensurepip below gives it the pip and setuptools `pyenv install` does.
  in_box "mkdir -p '$PYHOME'"
  tar -C "$PYHOME" -c --exclude='./lib/python3*/site-packages/*' --exclude='./bin/*' . \
    | docker cp - "$NAME:$PYHOME"
  tar -C "$PYHOME" -c ./bin/python3 "./bin/$(readlink "$PYHOME/bin/python3")" | docker cp - "$NAME:$PYHOME"
fi

base_machine='set -e
rm -f /etc/apt/sources.list        # the host uses debian.sources (deb822) only
apt-get update -qq
apt-get install -y -qq ca-certificates python3 python3-pip git curl procps iproute2 >/dev/null
printf "[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n" > /etc/pip.conf   # as the host has
[ "$(command -v python3)" = /usr/bin/python3 ] || python3 -m ensurepip --default-pip >/dev/null
rm -rf /var/lib/apt/lists/*        # a fresh machine has not run apt-get update yet
echo "python3: $(command -v python3), $(python3 -V), $(python3 -m pip -V | cut -d" " -f1-2)"'
log "installing the machine's base (not timed)"
in_box "$base_machine"
docker cp "$TMP/lab" "$NAME:/root/lab"

# Each output line prefixed with the seconds since its step began (no fork a
# line: bash's EPOCHREALTIME), so a slow phase shows where it is.
stamp() {
  local t0=${EPOCHREALTIME/./} t line
  while IFS= read -r line; do
    t=$(( (${EPOCHREALTIME/./} - t0) / 100000 ))
    printf '%4d.%d  %s\n' $((t / 10)) $((t % 10)) "$line"
  done
}
# In the background and waited for: bash runs a trap only once its foreground
# command ends, and `wait` lets Ctrl-C or a TERM clean up at once.
step() { ( in_box "$1" 2>&1 | stamp ) & wait $!; }
log "timed: bash scripts/setup.sh"
t0=$(date +%s.%N)
step 'cd /root/lab && bash scripts/setup.sh' || { log "setup.sh FAILED"; exit 1; }
t1=$(date +%s.%N)
driver=$(in_box 'docker info --format "{{.Driver}} {{.ServerVersion}} cgroup v{{.CgroupVersion}}"')
log "the fresh engine: $driver"
log "timed: lab up"
step 'cd /root/lab && lab up' || {
  log "lab up FAILED; the end of the engine's log:"; in_box 'tail -n 30 /tmp/lab-dockerd.log' || true; exit 1; }
t2=$(date +%s.%N)
ready=$(in_box 'docker ps --filter label=lab.name -q | wc -l')

printf '\nfresh machine (emulated: %s; commit %s; %s containers up)\n' "$driver" \
  "$(git -C "$TMP/lab" log -1 --format=%h)" "$ready"
printf 'load average before: %s\n' "$load_before"
awk -v a="$t0" -v b="$t1" -v c="$t2" -v g="$GOAL_S" 'BEGIN {
  printf "%-22s %8s\n", "step", "seconds"
  printf "%-22s %8.1f\n", "scripts/setup.sh", b - a
  printf "%-22s %8.1f\n", "first lab up", c - b
  printf "%-22s %8.1f\n", "total", c - a
  printf "%-22s %8.1f  (%s)\n", "goal", g, (c - a <= g) ? "met" : "missed"
}'
printf 'load average after: %s\n' "$(cut -d' ' -f1-3 /proc/loadavg)"

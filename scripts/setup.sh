#!/usr/bin/env bash
# Prepare this machine for lab: a Docker engine that answers, debootstrap (for
# the Debian base image where no registry is reachable), and the lab package
# itself with its test tools. Safe to run again: it only does what is missing.
# On Debian/Ubuntu it installs docker.io with apt; elsewhere it asks you to.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[setup] %s\n' "$*"; }

apt_install() {
  if ! command -v apt-get >/dev/null 2>&1; then
    log "please install: $* (no apt-get here)"
    exit 1
  fi
  if [ "$(id -u)" -ne 0 ]; then
    log "installing $* needs root: run this script with sudo, or install them yourself"
    exit 1
  fi
  [ -n "${_APT_UPDATED:-}" ] || { apt-get update -qq; _APT_UPDATED=1; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

start_docker_engine() {
  if timeout 10 docker info >/dev/null 2>&1; then
    log "Docker engine answers"
    return
  fi
  if command -v systemctl >/dev/null 2>&1 && systemctl start docker >/dev/null 2>&1; then
    log "started docker with systemd"
  else
    log "starting dockerd in the background (log: /tmp/lab-dockerd.log)"
    setsid nohup dockerd >/tmp/lab-dockerd.log 2>&1 < /dev/null &
  fi
  for _ in $(seq 1 60); do
    if timeout 5 docker info >/dev/null 2>&1; then
      log "Docker engine is up"
      return
    fi
    sleep 1
  done
  log "dockerd did not answer within 60 s; the end of its log:"
  tail -n 40 /tmp/lab-dockerd.log 2>/dev/null || true
  exit 1
}

# What is missing, as Debian packages, each for:
#   docker.io      the Docker engine (when no engine answers and none is installed)
#   debootstrap    the Debian base image where no registry is reachable
#   tcpdump tshark read the pcapng files `lab trace --pcap` writes, in the tests (tshark
#                  also tells each packet's interface name)
#   chromium       renders the HTML pages (graph, trace, browse) in the browser tests
#   docker-compose runs the exported compose.yaml in the tests
missing_packages() {
  if ! timeout 10 docker info >/dev/null 2>&1 && ! command -v dockerd >/dev/null 2>&1; then
    echo docker.io
  fi
  command -v debootstrap >/dev/null 2>&1 || echo debootstrap
  command -v tcpdump >/dev/null 2>&1 || echo tcpdump
  command -v tshark >/dev/null 2>&1 || echo tshark
  command -v chromium >/dev/null 2>&1 || echo chromium
  command -v docker-compose >/dev/null 2>&1 || echo docker-compose
}

# The package goes in while apt works (pip needs no dpkg lock, apt no PyPI): on a fresh
# machine each takes a good part of a minute, side by side about the longer of the two.
log "installing the lab package (pip install -e '.[test]') in the background"
PIP_LOG=$(mktemp /tmp/lab-setup-pip.XXXXXX)
python3 -m pip install -q --disable-pip-version-check -e '.[test]' >"$PIP_LOG" 2>&1 &
PIP_PID=$!
trap 'kill "$PIP_PID" 2>/dev/null || true; rm -f "$PIP_LOG"' EXIT   # apt failed: pip goes too
# shellcheck disable=SC2207
PACKAGES=($(missing_packages))
if [ "${#PACKAGES[@]}" -gt 0 ]; then
  log "installing with apt, in one run: ${PACKAGES[*]}"
  apt_install "${PACKAGES[@]}"
fi
start_docker_engine
if ! wait "$PIP_PID"; then
  log "pip install -e '.[test]' failed; its output:"
  cat "$PIP_LOG"
  rm -f "$PIP_LOG"
  exit 1
fi
grep -v "Running pip as the 'root' user" "$PIP_LOG" | grep -v "^$" || true   # pip's own warnings, if any
trap - EXIT
rm -f "$PIP_LOG"
log "ready: 'lab up' brings the default lab up, 'python3 -m pytest' runs the tests"

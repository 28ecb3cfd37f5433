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

ensure_docker_engine() {
  if timeout 10 docker info >/dev/null 2>&1; then
    log "Docker engine answers"
    return
  fi
  command -v dockerd >/dev/null 2>&1 || { log "installing Debian's docker.io"; apt_install docker.io; }
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

ensure_debootstrap() {
  command -v debootstrap >/dev/null 2>&1 || { log "installing debootstrap"; apt_install debootstrap; }
}

ensure_browser() {
  # Headless Chromium renders the HTML pages (graph, trace) in the browser tests.
  command -v chromium >/dev/null 2>&1 || { log "installing chromium (browser tests)"; apt_install chromium; }
}

ensure_compose() {
  # Debian's docker-compose runs the exported compose.yaml in the tests.
  command -v docker-compose >/dev/null 2>&1 || { log "installing docker-compose"; apt_install docker-compose; }
}

ensure_packet_readers() {
  # tcpdump and tshark read the pcapng files lab trace --pcap writes, in the tests
  # (tshark also tells each packet's interface name).
  command -v tcpdump >/dev/null 2>&1 || { log "installing tcpdump (reads trace captures in the tests)"; apt_install tcpdump; }
  command -v tshark >/dev/null 2>&1 || { log "installing tshark (reads trace captures in the tests)"; apt_install tshark; }
}

ensure_docker_engine
ensure_debootstrap
ensure_packet_readers
ensure_browser
ensure_compose
log "installing the lab package (pip install -e '.[test]')"
python3 -m pip install -q -e '.[test]'
log "ready: 'lab up' brings the default lab up, 'python3 -m pytest' runs the tests"

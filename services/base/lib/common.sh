# Sourced by every lab start-up script: logging helpers and the node's /lab/env.
# Kept POSIX-sh compatible so any script can source it.

lab_log() { printf '%s: %s\n' "${LAB_LOG_TAG:-lab}" "$*"; }
lab_die() { printf '%s: error: %s\n' "${LAB_LOG_TAG:-lab}" "$*" >&2; exit 1; }

# /lab/env holds KEY=value lines written by the planner; export them all.
if [ -r /lab/env ]; then
    set -a
    . /lab/env
    set +a
fi

# lab_config NAME DEFAULT: the planner's /lab/etc/NAME when present, else DEFAULT.
lab_config() {
    if [ -e "/lab/etc/$1" ]; then printf '%s\n' "/lab/etc/$1"; else printf '%s\n' "$2"; fi
}

. /usr/local/lib/lab/wait.sh

# lab_wait_for_init: for a service started beside lab-init (LAB_INIT_BESIDE): wait until
# lab-init has configured the node (/run/lab/init-done), so nothing is served on the
# engine's routes or before the seal; exit if lab-init failed (it said why on stderr).
# lab-init wakes it (lab_wake /run/lab/init.fifo) instead of it polling.
lab_wait_for_init() {
    lab_wait_init 120 && return 0
    [ ! -e /run/lab/init-failed ] || lab_die "lab-init failed (its reason is above): not starting"
    lab_die "lab-init did not finish within 120 s: not starting"
}

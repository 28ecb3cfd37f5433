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

# Waiting for another process's marker without polling (sourced; POSIX sh).
#
# A start-up waiting in a loop of `sleep` and checks pays a process or three per tick: at a
# hundred nodes starting on two cores those ticks ate the CPU the nodes needed to start
# (the route wait alone, 3.7 ms a tick every 50 ms). Here the waiter holds a FIFO open for
# reading and writing (so opening never blocks, and a wake sent before it reads is kept
# in the pipe) and sleeps in a one-byte read; whoever makes the marker then writes a few
# bytes to the FIFO (lab_wake), which ends every waiter's read at once. A wake is only a
# hint: the waiter checks the real condition again each time, so a stray byte costs one
# check, and a lost one costs at most LAB_WAIT_SLICE (the read's time limit).
LAB_WAIT_SLICE=${LAB_WAIT_SLICE:-1}   # a test may lengthen it, so that only a wake can end a wait soon

# lab_wait_open FIFO: make FIFO (or use the one there) and hold it open on fd 7.
lab_wait_open() {
    [ -d "${1%/*}" ] || mkdir -p "${1%/*}" || return 1
    [ -p "$1" ] || mkfifo -m 0600 "$1" 2>/dev/null || [ -p "$1" ] || return 1
    exec 7<>"$1"
}

# lab_wait_slice: return when woken, or after LAB_WAIT_SLICE seconds.
lab_wait_slice() {
    timeout "$LAB_WAIT_SLICE" dd bs=1 count=1 status=none <&7 >/dev/null 2>&1 || true
}

lab_wait_close() { exec 7>&-; }

# lab_wake FIFO: wake whoever waits on FIFO; nobody waiting (or no FIFO): nothing happens.
# O_NONBLOCK: opening a FIFO nobody holds fails at once instead of blocking.
lab_wake() {
    [ -p "$1" ] || return 0
    dd if=/dev/zero of="$1" bs=8 count=1 oflag=nonblock conv=notrunc status=none 2>/dev/null || true
}

# lab_wait_init SLICES: sleep until lab-init is done (returns 0) or failed (1), or SLICES
# slices have passed (2); lab-init wakes /run/lab/init.fifo either way.
lab_wait_init() {
    [ -e /run/lab/init-done ] && return 0
    lab_wait_open /run/lab/init.fifo || return 2
    slices=0
    until [ -e /run/lab/init-done ]; do
        [ ! -e /run/lab/init-failed ] || { lab_wait_close; return 1; }
        [ "$slices" -lt "$1" ] || { lab_wait_close; return 2; }
        lab_wait_slice
        slices=$((slices + 1))
    done
    lab_wait_close
}

# Whether this node listens on a port, from the kernel's socket tables (sourced; POSIX sh,
# builtins only). A readiness probe asks this before its real test: a curl costs 6 ms of
# CPU, a dig 12 ms, `nginx -t` more, and while a service starts every failed try is paid
# again; a look at /proc/net costs a fraction of a millisecond.

# lab_listening PROTO PORT: 0 when a tcp socket is in LISTEN state on PORT (any address, IPv4
# or IPv6), or a udp socket is bound to it; 1 otherwise.
lab_listening() {
    case "$1" in tcp) _lab_state=0A ;; udp) _lab_state=07 ;; *) return 2 ;; esac
    _lab_port=$(printf '%04X' "$2") || return 2
    for _lab_table in "/proc/net/$1" "/proc/net/${1}6"; do
        [ -r "$_lab_table" ] || continue
        # sl local_address rem_address st ...: local_address is HEXADDRESS:HEXPORT
        while read -r _ _lab_local _ _lab_st _; do
            case "$_lab_local" in *:"$_lab_port") [ "$_lab_st" != "$_lab_state" ] || return 0 ;; esac
        done < "$_lab_table"
    done
    return 1
}

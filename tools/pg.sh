#!/usr/bin/env bash
# Run a throw-away PostgreSQL 15 server for Countersign's tests, benchmarks and
# `make run`, without touching the system cluster.
#
# Usage:
#   tools/pg.sh start DIR PORT     initdb DIR/data once, start on 127.0.0.1:PORT,
#                                  create database "countersign" if missing
#   tools/pg.sh stop DIR           fast shutdown (no-op if not running)
#   tools/pg.sh restart DIR PORT   immediate-mode stop (a crash, WAL replay on start)
#                                  then start; for fault tests
#   tools/pg.sh kill DIR           SIGKILL the postmaster, wait for its children to go
#   tools/pg.sh status DIR         exit 0 (and print the pid) if the server is running
#
# The superuser is "cs" with trust authentication: connect with
#   postgresql://cs@127.0.0.1:PORT/countersign
# or through the unix socket in DIR (psql -h DIR -p PORT -U cs countersign).
# Files in DIR: data/ (the cluster), postgres.log (server log), the socket.
#
# initdb refuses to run as root, so as root DIR is handed to the "postgres" user
# and the tools run via runuser; DIR's parent directories must be traversable by
# that user (e.g. a mktemp -d under /tmp; pytest's /tmp/pytest-of-root is not).
# As any other user the tools run directly as that user.
#
# Environment:
#   CS_TEST_TIMEOUT_MULT   multiplies every deadline
#   CS_PG_BIN              PostgreSQL binaries (default /usr/lib/postgresql/15/bin)
#   CS_PG_OPTS             extra server options, e.g. "-c log_min_duration_statement=0"
set -euo pipefail

readonly PG_BIN="${CS_PG_BIN:-/usr/lib/postgresql/15/bin}"
readonly TIMEOUT_MULT="${CS_TEST_TIMEOUT_MULT:-1}"
readonly DB_NAME=countersign
readonly SUPERUSER=cs

die() {
    echo "pg.sh: error: $*" >&2
    exit 1
}

usage() {
    cat >&2 <<'EOF'
usage: tools/pg.sh start DIR PORT
       tools/pg.sh stop DIR
       tools/pg.sh restart DIR PORT
       tools/pg.sh kill DIR
       tools/pg.sh status DIR
EOF
    exit 2
}

# scaled SECONDS -> integer seconds multiplied by CS_TEST_TIMEOUT_MULT (at least 1).
scaled() {
    awk -v s="$1" -v m="$TIMEOUT_MULT" 'BEGIN {
        if (m !~ /^[0-9]*\.?[0-9]+$/) m = 1;
        v = int(s * m + 0.999); if (v < 1) v = 1; print v }'
}

now_ms() {
    date +%s%3N
}

# as_pg CMD...: run a PostgreSQL tool as the user that owns the cluster.
as_pg() {
    if ((EUID == 0)); then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

# as_pg_timeout SECONDS CMD...: as_pg with a deadline.
as_pg_timeout() {
    local secs="$1"
    shift
    if ((EUID == 0)); then
        timeout "$secs" runuser -u postgres -- "$@"
    else
        timeout "$secs" "$@"
    fi
}

require_port() {
    if ! [[ "$1" =~ ^[0-9]+$ ]] || (("$1" < 1 || "$1" > 65535)); then
        die "invalid PORT: '$1' (want 1-65535)"
    fi
}

check_bin() {
    [[ -x "$PG_BIN/pg_ctl" && -x "$PG_BIN/initdb" && -x "$PG_BIN/psql" ]] ||
        die "PostgreSQL binaries not found in $PG_BIN (apt-get install postgresql, or set CS_PG_BIN)"
}

# existing_dir DIR -> absolute path, or die.
existing_dir() {
    [[ -n "$1" ]] || die "DIR must not be empty"
    (cd "$1" 2>/dev/null && pwd -P) || die "no such directory: $1"
}

# alive PID: some thread of the process is still running (zombies, which PID 1
# here may reap late, count as gone).
alive() {
    local stat line state
    [[ -d "/proc/$1" ]] || return 1
    # A multi-threaded process (the JVM) shows its leader as a zombie while other
    # threads are still exiting and its sockets are still open: it is gone only
    # when every thread is a zombie. Builtins only, no forks.
    for stat in "/proc/$1/task/"*/stat; do
        { read -r line <"$stat"; } 2>/dev/null || continue
        state="${line##*) }"
        state="${state%% *}"
        [[ "$state" == Z || "$state" == X ]] || return 0
    done
    return 1
}

# postmaster_pid DIR: prints the postmaster pid if it is running for DIR/data.
postmaster_pid() {
    local data="$1/data" pid
    [[ -f "$data/postmaster.pid" ]] || return 1
    pid="$(head -n1 "$data/postmaster.pid" 2>/dev/null)" || return 1
    [[ "$pid" =~ ^[0-9]+$ ]] && alive "$pid" || return 1
    # Guard against pid reuse after a crash: it must be a postgres process.
    [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == postgres ]] || return 1
    echo "$pid"
}

# members DIR: live processes of the cluster in DIR. Every postgres process
# (postmaster, backends, auxiliary processes) runs with its cwd in the data
# directory, which still identifies them after the postmaster died.
members() {
    local cwd pid
    while IFS= read -r cwd; do
        pid="${cwd#/proc/}"
        pid="${pid%/cwd}"
        alive "$pid" && echo "$pid"
    done < <(find /proc/[0-9]*/cwd -maxdepth 0 -lname "$1/data" 2>/dev/null || true)
    return 0
}

# wait_gone SECONDS PID...: 0 once none of the PIDs is alive, 1 on deadline.
wait_gone() {
    local deadline=$(($(now_ms) + $1 * 1000)) pid busy
    shift
    while :; do
        busy=0
        for pid in "$@"; do
            if alive "$pid"; then busy=1; break; fi
        done
        ((busy)) || return 0
        (($(now_ms) < deadline)) || return 1
        sleep 0.05
    done
}

log_tail() {
    if [[ -f "$1/postgres.log" ]]; then
        tail -n 20 "$1/postgres.log" >&2 || true
    fi
}

# ---------------------------------------------------------------------------

prepare_dir() {
    local dir="$1"
    mkdir -p "$dir" || die "cannot create $dir"
    dir="$(cd "$dir" && pwd -P)"
    [[ "$dir" != *[[:space:]]* ]] || die "DIR must not contain whitespace: '$dir'"
    # The unix socket DIR/.s.PGSQL.PORT must fit in sun_path (107 bytes).
    ((${#dir} <= 90)) || die "DIR path is too long for a unix socket (${#dir} > 90 chars): $dir"
    if ((EUID == 0)); then
        id postgres >/dev/null 2>&1 || die "running as root but there is no 'postgres' user (apt-get install postgresql)"
        chown postgres: "$dir"
        runuser -u postgres -- test -w "$dir" -a -x "$dir" ||
            die "$dir is not reachable by the postgres user: a parent directory is not traversable (mode 0700?); use a directory under /tmp (e.g. mktemp -d)"
    fi
    echo "$dir"
}

init_cluster() {
    local dir="$1" locale_args out
    [[ -f "$dir/data/PG_VERSION" ]] && return 0
    # UTF-8 everywhere; C.UTF-8 (sorting by code point) where the C library has it.
    local locales
    locales="$(locale -a 2>/dev/null || true)"
    if grep -qiE '^c\.utf-?8$' <<<"$locales"; then
        locale_args=(--locale=C.UTF-8)
    else
        locale_args=(--no-locale)
    fi
    if ! out="$(cd "$dir" && as_pg_timeout "$(scaled 120)" "$PG_BIN/initdb" -D "$dir/data" \
        -A trust -U "$SUPERUSER" --no-sync -E UTF8 "${locale_args[@]}" 2>&1)"; then
        echo "$out" >&2
        rm -rf "$dir/data"
        die "initdb failed for $dir/data"
    fi
}

server_start() {
    local dir="$1" port="$2" secs out pid
    if pid="$(postmaster_pid "$dir")"; then
        die "PostgreSQL is already running for $dir (pid $pid); run: tools/pg.sh stop $dir"
    fi
    secs="$(scaled 60)"
    # wal_level=logical: Countersign's events leave through a logical replication slot,
    # one per database (tests make many databases, each with its slot and relay).
    local opts="-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=400 -c shared_buffers=128MB"
    opts+=" -c wal_level=logical -c max_replication_slots=200 -c max_wal_senders=200"
    opts+=" -c max_slot_wal_keep_size=20GB ${CS_PG_OPTS:-}"
    if ! out="$(cd "$dir" && as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" \
        -o "$opts" -w -t "$secs" start 2>&1)"; then
        echo "$out" >&2
        log_tail "$dir"
        die "PostgreSQL failed to start on 127.0.0.1:$port (pg_ctl deadline ${secs}s; log: $dir/postgres.log)"
    fi
    # pg_ctl -w waited for "ready" in postmaster.pid; confirm over TCP as clients will connect.
    local deadline=$(($(now_ms) + secs * 1000))
    until as_pg "$PG_BIN/pg_isready" -q -h 127.0.0.1 -p "$port" -U "$SUPERUSER" -d postgres -t 2; do
        if (($(now_ms) >= deadline)); then
            log_tail "$dir"
            die "PostgreSQL is running but 127.0.0.1:$port does not accept connections after ${secs}s"
        fi
        sleep 0.05
    done
}

create_db() {
    local dir="$1" port="$2" exists
    exists="$(cd "$dir" && as_pg "$PG_BIN/psql" -X -q -h 127.0.0.1 -p "$port" -U "$SUPERUSER" -d postgres -tA \
        -c "select 1 from pg_database where datname = '$DB_NAME'")" ||
        die "cannot query pg_database on 127.0.0.1:$port"
    if [[ "$exists" != 1 ]]; then
        (cd "$dir" && as_pg "$PG_BIN/psql" -X -q -h 127.0.0.1 -p "$port" -U "$SUPERUSER" -d postgres \
            -v ON_ERROR_STOP=1 -c "create database $DB_NAME") >/dev/null ||
            die "cannot create database $DB_NAME on 127.0.0.1:$port"
    fi
}

cmd_start() {
    (($# == 2)) || usage
    local dir port="$2"
    require_port "$port"
    check_bin
    dir="$(prepare_dir "$1")"
    init_cluster "$dir"
    server_start "$dir" "$port"
    create_db "$dir" "$port"
}

# pg_ctl stop with MODE; no-op when not running.
server_stop() {
    local dir="$1" mode="$2" secs pid out
    pid="$(postmaster_pid "$dir")" || return 0
    secs="$(scaled 60)"
    if ! out="$(cd "$dir" && as_pg "$PG_BIN/pg_ctl" -D "$dir/data" -m "$mode" -w -t "$secs" stop 2>&1)"; then
        echo "$out" >&2
        log_tail "$dir"
        die "PostgreSQL (pid $pid) did not stop ($mode mode) within ${secs}s"
    fi
}

cmd_stop() {
    (($# == 1)) || usage
    check_bin
    server_stop "$(existing_dir "$1")" fast
}

cmd_restart() {
    (($# == 2)) || usage
    local dir port="$2"
    require_port "$port"
    check_bin
    dir="$(existing_dir "$1")"
    server_stop "$dir" immediate
    server_start "$dir" "$port"
    create_db "$dir" "$port"
}

cmd_kill() {
    (($# == 1)) || usage
    local dir pid procs secs
    dir="$(existing_dir "$1")"
    pid="$(postmaster_pid "$dir")" || return 0
    kill -KILL "$pid" 2>/dev/null || true
    secs="$(scaled 10)"
    wait_gone "$secs" "$pid" || die "postmaster (pid $pid) still alive ${secs}s after SIGKILL"
    # Orphaned backends notice the postmaster's death and exit on their own; until
    # they do, a new postmaster refuses to start (shared memory still in use).
    secs="$(scaled 30)"
    mapfile -t procs < <(members "$dir")
    if ((${#procs[@]})) && ! wait_gone "$secs" "${procs[@]}"; then
        echo "pg.sh: processes of the killed postmaster still alive after ${secs}s; sending SIGKILL" >&2
        mapfile -t procs < <(members "$dir")
        kill -KILL "${procs[@]}" 2>/dev/null || true
        wait_gone "$(scaled 10)" "${procs[@]}" || die "postgres processes ${procs[*]} survive SIGKILL"
    fi
    # Every process of the cluster is gone now. If the postmaster is still an
    # unreaped zombie (PID 1 may reap late), postgres would take the stale lock
    # files for a live server: remove them.
    if [[ -e "/proc/$pid" ]]; then
        rm -f "$dir/data/postmaster.pid" "$dir"/.s.PGSQL.*.lock
    fi
}

cmd_status() {
    (($# == 1)) || usage
    local dir
    dir="$(cd "$1" 2>/dev/null && pwd -P)" || return 1
    postmaster_pid "$dir"
}

main() {
    (($# >= 1)) || usage
    local cmd="$1"
    shift
    case "$cmd" in
    start) cmd_start "$@" ;;
    stop) cmd_stop "$@" ;;
    restart) cmd_restart "$@" ;;
    kill) cmd_kill "$@" ;;
    status) cmd_status "$@" ;;
    *) usage ;;
    esac
}

main "$@"

#!/usr/bin/env bash
# Run a local single-node Apache Kafka 4.1.0 broker (KRaft, broker+controller)
# for Countersign's tests, benchmarks and `make run`. No Docker needed: the
# broker runs from the Maven Central jars listed in tools/kafka/pom.xml.
#
# Usage:
#   tools/kafka.sh fetch                          download the jars once into the cache
#   tools/kafka.sh start DIR PORT CONTROLLER_PORT start a broker whose files live in DIR;
#                                                 returns 0 once it answers metadata
#   tools/kafka.sh stop DIR                       SIGTERM, wait up to 30 s, then SIGKILL
#   tools/kafka.sh kill DIR                       SIGKILL (crash simulation), wait for exit
#   tools/kafka.sh status DIR                     exit 0 if the broker of DIR is running
#
# Files in DIR: server.properties, data/ (log.dirs, formatted once), kafka.log
# (broker log + JVM output), kafka.pid. Restarting on the same DIR reuses the data.
#
# Environment:
#   CS_CACHE_DIR           cache root (default $HOME/.cache/countersign); the jars go
#                          to $CS_CACHE_DIR/kafka-4.1.0/
#   CS_TEST_TIMEOUT_MULT   multiplies every deadline (slow machines, valgrind runs)
#   CS_KAFKA_START_TIMEOUT seconds to wait for readiness (default 60, then scaled)
#   CS_KAFKA_JAVA_OPTS     extra JVM options, appended last (so they win), e.g.
#                          "-XX:TieredStopAtLevel=4" to re-enable the C2 compiler
#   CS_KAFKA_LOG_LEVEL     root log level of the broker log (default WARN)
#   CS_KAFKA_EXTRA_PROPS   whitespace-separated key=value broker settings appended to
#                          server.properties (later keys win), e.g.
#                          "auto.create.topics.enable=true log.segment.bytes=1048576"
#   CS_KAFKA_EXTRA_PROPS_FILE  a file of broker settings appended after those (values
#                          with spaces, e.g. listeners with SASL and their JAAS config)
#
# Start-up speed: the JVM runs with C1 only (-XX:TieredStopAtLevel=1), which starts
# faster and, on a 2-core machine, was not slower than C1+C2 for produce/consume
# (the C2 compiler threads compete with the broker for the CPUs). `fetch` also
# records an AppCDS archive of the broker's classes, which cuts JVM start-up
# roughly in half; start works (a bit slower) without it.
set -euo pipefail

readonly KAFKA_VERSION=4.1.0
SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
readonly SCRIPT_DIR
readonly SELF="$SCRIPT_DIR/kafka.sh"
readonly POM="$SCRIPT_DIR/kafka/pom.xml"
readonly LOG4J_CONFIG="$SCRIPT_DIR/kafka/log4j2.properties"
readonly CACHE_ROOT="${CS_CACHE_DIR:-${HOME:-/root}/.cache/countersign}"
readonly JAR_DIR="$CACHE_ROOT/kafka-$KAFKA_VERSION"
readonly MARKER="$JAR_DIR/.complete"
# bootstrap.checkpoint as written by `StorageTool format` with these jars (it holds
# only the metadata.version and feature levels); copied into new data dirs.
readonly BOOTSTRAP_TEMPLATE="$JAR_DIR/bootstrap.checkpoint.template"
readonly TIMEOUT_MULT="${CS_TEST_TIMEOUT_MULT:-1}"

die() {
    echo "kafka.sh: error: $*" >&2
    exit 1
}

note() {
    echo "kafka.sh: $*" >&2
}

usage() {
    cat >&2 <<'EOF'
usage: tools/kafka.sh fetch
       tools/kafka.sh start DIR PORT CONTROLLER_PORT
       tools/kafka.sh stop DIR
       tools/kafka.sh kill DIR
       tools/kafka.sh status DIR
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

require_port() {
    if ! [[ "$1" =~ ^[0-9]+$ ]] || (("$1" < 1 || "$1" > 65535)); then
        die "invalid $2: '$1' (want 1-65535)"
    fi
}

# Key of the running JVM build, so an AppCDS archive is never reused across JDK updates.
java_key() {
    java -version 2>&1 | cksum | cut -d' ' -f1
}

cds_archive() {
    echo "$JAR_DIR/cds-$(java_key).jsa"
}

# Explicit, sorted class path (AppCDS requires the same class path at dump and run time).
class_path() {
    local jars=("$JAR_DIR"/*.jar)
    [[ -e "${jars[0]}" ]] || die "no jars in $JAR_DIR; run: tools/kafka.sh fetch"
    local IFS=:
    echo "${jars[*]}"
}

pom_sum() {
    sha256sum "$POM" | cut -d' ' -f1
}

jars_complete() {
    [[ -f "$MARKER" ]] && [[ "$(head -n1 "$MARKER")" == "$(pom_sum)" ]]
}

# ---------------------------------------------------------------------------
# fetch
# ---------------------------------------------------------------------------

cmd_fetch() {
    command -v java >/dev/null || die "java not found (apt-get install openjdk-17-jdk-headless)"
    [[ -f "$POM" ]] || die "missing $POM"
    mkdir -p "$CACHE_ROOT"
    # Serialise concurrent fetches (parallel CI jobs, parallel test sessions).
    exec 9>"$CACHE_ROOT/.kafka-$KAFKA_VERSION.lock"
    flock -w "$(scaled 600)" 9 || die "timed out waiting for another 'kafka.sh fetch' (lock $CACHE_ROOT/.kafka-$KAFKA_VERSION.lock)"

    if ! jars_complete; then
        command -v mvn >/dev/null || die "mvn not found (apt-get install maven)"
        local tmp="$CACHE_ROOT/.kafka-$KAFKA_VERSION.tmp.$$"
        rm -rf "$tmp"
        note "downloading Kafka $KAFKA_VERSION jars into $JAR_DIR"
        local mvn_log="$CACHE_ROOT/.kafka-$KAFKA_VERSION.mvn.log" started
        started="$(now_ms)"
        if ! timeout "$(scaled 900)" mvn -q -B -Dstyle.color=never -f "$POM" \
            dependency:copy-dependencies -DoutputDirectory="$tmp" >"$mvn_log" 2>&1; then
            tail -n 40 "$mvn_log" >&2
            rm -rf "$tmp"
            die "mvn dependency:copy-dependencies failed (is Maven Central reachable?); full log: $mvn_log"
        fi
        rm -f "$mvn_log"
        if [[ ! -f "$tmp/kafka_2.13-$KAFKA_VERSION.jar" || ! -f "$tmp/kafka-clients-$KAFKA_VERSION.jar" ]]; then
            rm -rf "$tmp"
            die "mvn finished but kafka_2.13-$KAFKA_VERSION.jar / kafka-clients-$KAFKA_VERSION.jar are missing"
        fi
        rm -rf "$JAR_DIR"
        mv "$tmp" "$JAR_DIR"
        # The marker is written last: its presence means the copy completed.
        { pom_sum; ls "$JAR_DIR"; } >"$MARKER.tmp"
        mv "$MARKER.tmp" "$MARKER"
        local jars=("$JAR_DIR"/*.jar)
        note "jars downloaded in $(( ($(now_ms) - started) / 1000 ))s (${#jars[@]} jars)"
    fi

    local archive
    archive="$(cds_archive)"
    if [[ ! -s "$archive" ]]; then
        local started
        started="$(now_ms)"
        if build_cds_archive "$archive"; then
            note "AppCDS archive recorded in $(( ($(now_ms) - started) / 1000 ))s"
        else
            note "warning: could not build the AppCDS archive; brokers will start without it (slower)"
        fi
    fi
}

# Start a throw-away broker with -XX:ArchiveClassesAtExit, exercise it a little
# (metadata, produce, consume), stop it cleanly: the JVM writes the archive at exit.
build_cds_archive() {
    local archive="$1" tmpdir port cport rc=0
    tmpdir="$(mktemp -d "${TMPDIR:-/tmp}/cs-kafka-cds.XXXXXX")"
    # Never leave the throw-away broker behind, even if fetch is interrupted.
    trap 'bash "$SELF" kill "'"$tmpdir"'" >/dev/null 2>&1 || true; rm -rf "'"$tmpdir"'"' EXIT
    read -r port cport < <(python3 "$SCRIPT_DIR/free-port.py" 2 | paste -sd' ')
    note "recording an AppCDS archive for faster broker start-up ($archive)"
    if CS_KAFKA_EXTRA_PROPS="auto.create.topics.enable=true" \
        CS_KAFKA_DUMP_ARCHIVE="$archive.tmp.$$" \
        bash "$SELF" start "$tmpdir" "$port" "$cport" >&2; then
        # Load the produce/fetch code paths too (auto-create is on for this broker only).
        printf 'k1:v1\nk2:v2\n' | timeout "$(scaled 30)" kcat -P -b "127.0.0.1:$port" -t cds_warmup -K: -m 10 >/dev/null 2>&1 || true
        timeout "$(scaled 30)" kcat -C -b "127.0.0.1:$port" -t cds_warmup -o beginning -e -q -m 10 >/dev/null 2>&1 || true
        bash "$SELF" stop "$tmpdir" >&2 || rc=1
    else
        rc=1
        bash "$SELF" kill "$tmpdir" >&2 || true
    fi
    if [[ $rc -eq 0 && -s "$archive.tmp.$$" ]]; then
        mv "$archive.tmp.$$" "$archive"
    else
        rc=1
        rm -f "$archive.tmp.$$"
        [[ -f "$tmpdir/kafka.log" ]] && tail -n 20 "$tmpdir/kafka.log" >&2
    fi
    rm -rf "$tmpdir"
    trap - EXIT
    return $rc
}

# ---------------------------------------------------------------------------
# process helpers
# ---------------------------------------------------------------------------

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

# broker_pid DIR: prints the pid from DIR/kafka.pid if that process is our broker.
broker_pid() {
    local dir="$1" pid
    [[ -f "$dir/kafka.pid" ]] || return 1
    pid="$(<"$dir/kafka.pid")"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    alive "$pid" || return 1
    # Guard against pid reuse: the command line must name this DIR's config.
    local cmdline
    cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" || return 1
    [[ "$cmdline" == *"kafka.Kafka $dir/server.properties"* ]] || return 1
    echo "$pid"
}

# wait_exit PID SECONDS -> 0 once the process is gone, 1 on deadline.
wait_exit() {
    local pid="$1" deadline=$(($(now_ms) + $2 * 1000))
    while alive "$pid"; do
        (($(now_ms) < deadline)) || return 1
        sleep 0.05
    done
}

port_open() {
    timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

# mark DIR TEXT: a line in DIR/kafka.log, so restarts and kills are visible there.
mark() {
    echo "=== kafka.sh $(date -u +%Y-%m-%dT%H:%M:%S.%3NZ) $2" >>"$1/kafka.log" 2>/dev/null || true
}

abs_dir() {
    [[ -n "$1" ]] || die "DIR must not be empty"
    mkdir -p "$1" || die "cannot create $1"
    (cd "$1" && pwd -P)
}

# ---------------------------------------------------------------------------
# start
# ---------------------------------------------------------------------------

write_properties() {
    local dir="$1" port="$2" cport="$3"
    cat >"$dir/server.properties.tmp" <<EOF
# Written by tools/kafka.sh start; rewritten on every start.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=$dir/data

# Single node: every replication factor is 1.
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
default.replication.factor=1
min.insync.replicas=1

# Fewer internal partitions (default 50): the first consumer group / idempotent
# producer is ready sooner and crash recovery has fewer logs to check.
offsets.topic.num.partitions=4
transaction.state.log.num.partitions=4
share.coordinator.state.topic.num.partitions=4

group.initial.rebalance.delay.ms=0
auto.create.topics.enable=false
num.partitions=4

# After a kill -9 the restarted broker must wait for its old heartbeat session to
# expire before it can register again (default 9 s). A 3 s session with 0.5 s
# heartbeats makes crash-restart tests ~6 s faster and still tolerates GC or CPU
# stalls of a few seconds.
broker.heartbeat.interval.ms=500
broker.session.timeout.ms=3000
EOF
    if [[ -n "${CS_KAFKA_EXTRA_PROPS:-}" ]]; then
        local extra
        read -ra extra <<<"$CS_KAFKA_EXTRA_PROPS"
        printf '%s\n' "${extra[@]}" >>"$dir/server.properties.tmp"
    fi
    if [[ -n "${CS_KAFKA_EXTRA_PROPS_FILE:-}" ]]; then
        cat "$CS_KAFKA_EXTRA_PROPS_FILE" >>"$dir/server.properties.tmp"
    fi
    mv "$dir/server.properties.tmp" "$dir/server.properties"
}

# random_uuid: a Kafka Uuid string -- 16 random bytes, base64url without padding
# (22 chars), not starting with '-' (Kafka's own generator avoids that too).
random_uuid() {
    local id
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        id="$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')"
        [[ "$id" != -* && ${#id} -eq 22 ]] && { echo "$id"; return; }
    done
    die "could not generate a random Kafka uuid"
}

# format_storage DIR CLASSPATH JVM_OPTS...: format DIR/data for a new cluster.
# Once a bootstrap.checkpoint template exists, formatting is two small files and
# no JVM (saves ~0.5 s per new broker); meta.properties is written last, so its
# presence means "formatted".
format_storage() {
    local dir="$1" cp="$2" out
    shift 2
    mkdir -p "$dir/data"
    if [[ -s "$BOOTSTRAP_TEMPLATE" ]]; then
        cp "$BOOTSTRAP_TEMPLATE" "$dir/data/bootstrap.checkpoint"
        {
            echo "#"
            echo "#Written by tools/kafka.sh $(date -u)"
            echo "node.id=1"
            echo "directory.id=$(random_uuid)"
            echo "version=1"
            echo "cluster.id=$(random_uuid)"
        } >"$dir/data/meta.properties.tmp"
        mv "$dir/data/meta.properties.tmp" "$dir/data/meta.properties"
        return
    fi
    if ! out="$(timeout "$(scaled 60)" java "$@" -cp "$cp" kafka.tools.StorageTool \
        format -t "$(random_uuid)" -c "$dir/server.properties" 2>&1)"; then
        echo "$out" >&2
        die "formatting the storage in $dir/data failed"
    fi
    if [[ -s "$dir/data/bootstrap.checkpoint" ]]; then
        if cp "$dir/data/bootstrap.checkpoint" "$BOOTSTRAP_TEMPLATE.tmp.$$"; then
            mv "$BOOTSTRAP_TEMPLATE.tmp.$$" "$BOOTSTRAP_TEMPLATE"
        fi
    fi
}

cmd_start() {
    (($# == 3)) || usage
    local port="$2" cport="$3" dir pid cp archive
    require_port "$port" PORT
    require_port "$cport" CONTROLLER_PORT
    [[ "$port" != "$cport" ]] || die "PORT and CONTROLLER_PORT must differ"
    command -v java >/dev/null || die "java not found (apt-get install openjdk-17-jdk-headless)"
    command -v kcat >/dev/null || die "kcat not found (apt-get install kcat)"
    dir="$(abs_dir "$1")"

    if pid="$(broker_pid "$dir")"; then
        die "a broker is already running for $dir (pid $pid); run: tools/kafka.sh stop $dir"
    fi
    rm -f "$dir/kafka.pid"
    for p in "$port" "$cport"; do
        if port_open "$p"; then
            die "port $p on 127.0.0.1 is already in use by another process"
        fi
    done

    if ! jars_complete; then
        note "Kafka jars are not cached yet; fetching them first"
        cmd_fetch_subshell
    fi
    cp="$(class_path)"

    # C1 only + AppCDS: see the start-up note at the top of this file.
    local base_opts=(-XX:TieredStopAtLevel=1 -Djava.awt.headless=true) cds_opts=()
    if [[ -n "${CS_KAFKA_DUMP_ARCHIVE:-}" ]]; then
        cds_opts=(-XX:ArchiveClassesAtExit="$CS_KAFKA_DUMP_ARCHIVE" -Xlog:cds=off -Xlog:cds+dynamic=off)
    else
        archive="$(cds_archive)"
        [[ -s "$archive" ]] && cds_opts=(-XX:SharedArchiveFile="$archive" -Xlog:cds=off)
    fi

    write_properties "$dir" "$port" "$cport"
    if [[ ! -f "$dir/data/meta.properties" ]]; then
        local fmt_cds=()
        [[ -z "${CS_KAFKA_DUMP_ARCHIVE:-}" ]] && fmt_cds=("${cds_opts[@]}")
        format_storage "$dir" "$cp" "${base_opts[@]}" "${fmt_cds[@]}"
    fi

    mark "$dir" "start port=$port controller_port=$cport"
    # shellcheck disable=SC2086 # CS_KAFKA_JAVA_OPTS is a list of words on purpose
    nohup java -Xmx512m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 "${base_opts[@]}" "${cds_opts[@]}" \
        ${CS_KAFKA_JAVA_OPTS:-} \
        -Dlog4j2.configurationFile="$LOG4J_CONFIG" \
        -Dcs.kafka.logfile="$dir/kafka.log" \
        -Dcs.kafka.loglevel="${CS_KAFKA_LOG_LEVEL:-WARN}" \
        -cp "$cp" kafka.Kafka "$dir/server.properties" \
        </dev/null >>"$dir/kafka.log" 2>&1 &
    pid=$!
    echo "$pid" >"$dir/kafka.pid"
    mark "$dir" "started pid=$pid"

    local secs deadline probe
    secs="$(scaled "${CS_KAFKA_START_TIMEOUT:-60}")"
    deadline=$(($(now_ms) + secs * 1000))
    while :; do
        if ! alive "$pid"; then
            rm -f "$dir/kafka.pid"
            tail -n 30 "$dir/kafka.log" >&2 || true
            die "the broker exited during start-up (log: $dir/kafka.log)"
        fi
        # Ready = the port accepts connections and the broker answers a metadata
        # request listing itself (it only does so once registered and unfenced).
        if port_open "$port"; then
            probe="$(timeout 10 kcat -b "127.0.0.1:$port" -L -t __probe -m 2 2>/dev/null || true)"
            [[ "$probe" == *"broker 1 at 127.0.0.1:$port"* ]] && return 0
        fi
        if (($(now_ms) >= deadline)); then
            tail -n 30 "$dir/kafka.log" >&2 || true
            kill -KILL "$pid" 2>/dev/null || true
            wait_exit "$pid" 10 || true
            rm -f "$dir/kafka.pid"
            die "the broker did not answer metadata on 127.0.0.1:$port within ${secs}s; killed it (log: $dir/kafka.log)"
        fi
        sleep 0.05
    done
}

# Fetch in a subshell so its lock fd and exits do not leak into start.
cmd_fetch_subshell() {
    bash "$SELF" fetch >&2 || die "fetching the Kafka jars failed"
}

# ---------------------------------------------------------------------------
# stop / kill / status
# ---------------------------------------------------------------------------

cmd_stop() {
    (($# == 1)) || usage
    local dir pid secs
    dir="$(cd "$1" 2>/dev/null && pwd -P)" || die "no such directory: $1"
    if ! pid="$(broker_pid "$dir")"; then
        rm -f "$dir/kafka.pid"
        return 0
    fi
    mark "$dir" "stop pid=$pid (SIGTERM)"
    kill -TERM "$pid" 2>/dev/null || true
    secs="$(scaled 30)"
    if ! wait_exit "$pid" "$secs"; then
        note "broker (pid $pid) did not stop within ${secs}s after SIGTERM; sending SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
        wait_exit "$pid" "$(scaled 10)" || die "broker (pid $pid) still alive after SIGKILL"
    fi
    rm -f "$dir/kafka.pid"
}

cmd_kill() {
    (($# == 1)) || usage
    local dir pid
    dir="$(cd "$1" 2>/dev/null && pwd -P)" || die "no such directory: $1"
    if ! pid="$(broker_pid "$dir")"; then
        rm -f "$dir/kafka.pid"
        return 0
    fi
    mark "$dir" "kill pid=$pid (SIGKILL)"
    kill -KILL "$pid" 2>/dev/null || true
    wait_exit "$pid" "$(scaled 10)" || die "broker (pid $pid) still alive 10 s after SIGKILL"
    rm -f "$dir/kafka.pid"
}

cmd_status() {
    (($# == 1)) || usage
    local dir pid
    dir="$(cd "$1" 2>/dev/null && pwd -P)" || return 1
    pid="$(broker_pid "$dir")" || return 1
    echo "$pid"
}

main() {
    (($# >= 1)) || usage
    local cmd="$1"
    shift
    case "$cmd" in
    fetch) (($# == 0)) || usage; cmd_fetch ;;
    start) cmd_start "$@" ;;
    stop) cmd_stop "$@" ;;
    kill) cmd_kill "$@" ;;
    status) cmd_status "$@" ;;
    -h | --help | help) usage ;;
    *) usage ;;
    esac
}

main "$@"

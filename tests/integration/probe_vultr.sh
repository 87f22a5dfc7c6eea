#!/usr/bin/env bash
# Probe a REAL Vultr account for what no public source says, and write a Markdown report that
# can be pasted into an issue. It creates billed resources (cents), and deletes them all.
#
#   MANUAL=1 VULTR_KEY=... tests/integration/probe_vultr.sh
#
# Probes (each skipped with its variable, and recorded as "skipped: why"):
#   1. user_data limit (PROBE_SKIP_USERDATA=1): the cheapest vc2 plan offered in PROBE_REGION
#      is created with a cloud-config user_data of PROBE_USERDATA_KIB (default "16 32 64") KiB,
#      base64-encoded; accepted or refused with the exact error text; read back; deleted at once.
#   2. refusal texts (PROBE_SKIP_REFUSALS=1): detach of a block that is not attached; attach to
#      an instance that is still booting; DELETE, then GET/DELETE of the deleted instance (at
#      once and PROBE_GONE_RECHECK_S later); a create of the cheapest plan that
#      /regions/{region}/availability does not list (PROBE_UNAVAILABLE_PLAN overrides).
#   3. catalogue (PROBE_SKIP_CATALOGUE=1, read-only): GPU plans of GET /plans?type=all|vcg|vdm
#      and which fields they carry; whether /regions/{r}/availability?type=vcg lists vdm plans.
#   4. GPU virtualization mode (PROBE_SKIP_GPU=1; runs only with PROBE_GPU_PLANS="plan ..." and
#      PROBE_SNAPSHOT or PROBE_GPU_OS_ID): each plan is created with a throw-away SSH key, timed
#      to status active and server_status ok, and `nvidia-smi` is read over ssh
#      (PROBE_SKIP_SSH=1 skips the ssh part); then deleted.
#
# Safety: it refuses unless MANUAL=1; it prints what it will create and the worst case (the sum
# of the hourly prices of everything it creates x PROBE_MAX_MINUTES, default 20), refuses when
# that is not under PROBE_BUDGET_USD (default 2.00), and asks "type yes" unless PROBE_YES=1.
# Everything carries the tag launcher-probe plus launcher-probe-<run id> (blocks and the SSH key
# by label/name: they have no tags); an EXIT/INT/TERM/HUP trap deletes all of it, then lists
# the account by tag, label and name to prove nothing is left (exit 1 and the curl commands
# that delete what is, otherwise). Every loop is bounded in count and time; every curl call has
# --connect-timeout and --max-time. The key goes to curl in a 0600 config file only (never on
# a command line), and into no output and no report.
#
# Other settings: VULTR_API_URL (default https://api.vultr.com/v2; plain http only to
# loopback), PROBE_REGION (ewr), PROBE_REPORT (./vultr-probe-<UTC date-time>.md),
# PROBE_VC2_PLAN, PROBE_OS_ID (the vc2 instances' OS; default Ubuntu 24.04 x64 from /os),
# PROBE_GPU_REGION, PROBE_POLL_S (5), PROBE_BOOT_WAIT_S (900), PROBE_SSH_WAIT_S (300),
# PROBE_GONE_RECHECK_S (30), PROBE_CLEANUP_WAIT_S (180), PROBE_BLOCK_USD_PER_GB_MONTH (0.10, a
# ceiling: the API lists no block prices), PROBE_CURL_MAX_TIME (60), PROBE_PACE_S (0.05 between
# calls: Vultr allows 30 requests/s).
#
# shellcheck disable=SC2317  # the cleanup and poll predicates are called from traps / by name
set -euo pipefail

if [[ "${MANUAL:-}" != "1" ]]; then
    echo "probe: refused: set MANUAL=1 to run this probe; it creates billed resources on the Vultr account of VULTR_KEY" >&2
    exit 2
fi

refuse() { printf 'probe: refused: %s\n' "$*" >&2; exit 2; }

if (( BASH_VERSINFO[0] < 4 || (BASH_VERSINFO[0] == 4 && BASH_VERSINFO[1] < 4) )); then
    refuse "needs bash >= 4.4 (this is $BASH_VERSION)"
fi
for tool in curl python3 mktemp date; do
    command -v "$tool" > /dev/null || refuse "needs $tool on PATH"
done

# -- settings ------------------------------------------------------------------------------

API_URL="${VULTR_API_URL:-https://api.vultr.com/v2}"
API_URL="${API_URL%/}"
REGION="${PROBE_REGION:-ewr}"
BUDGET="${PROBE_BUDGET_USD:-2.00}"
MAX_MINUTES="${PROBE_MAX_MINUTES:-20}"
STAMP="$(date -u +%Y%m%d-%H%M%S)"
REPORT="${PROBE_REPORT:-./vultr-probe-$STAMP.md}"
USERDATA_KIB="${PROBE_USERDATA_KIB:-16 32 64}"
VC2_OVERRIDE="${PROBE_VC2_PLAN:-}"
OS_OVERRIDE="${PROBE_OS_ID:-}"
UNAVAILABLE_OVERRIDE="${PROBE_UNAVAILABLE_PLAN:-}"
GPU_PLANS="${PROBE_GPU_PLANS:-}"
GPU_REGION_OVERRIDE="${PROBE_GPU_REGION:-}"
SNAPSHOT="${PROBE_SNAPSHOT:-}"
GPU_OS_ID="${PROBE_GPU_OS_ID:-}"
POLL_S="${PROBE_POLL_S:-5}"
BOOT_WAIT_S="${PROBE_BOOT_WAIT_S:-900}"
SSH_WAIT_S="${PROBE_SSH_WAIT_S:-300}"
GONE_RECHECK_S="${PROBE_GONE_RECHECK_S:-30}"
CLEANUP_WAIT_S="${PROBE_CLEANUP_WAIT_S:-180}"
BLOCK_PRICE="${PROBE_BLOCK_USD_PER_GB_MONTH:-0.10}"
CURL_MAX_TIME="${PROBE_CURL_MAX_TIME:-60}"
CONNECT_TIMEOUT=10
PACE_S="${PROBE_PACE_S:-0.05}"
BLOCK_WAIT_S=120
MAX_PAGES=20
MAX_REGIONS=60
SKIP_USERDATA="${PROBE_SKIP_USERDATA:-}"
SKIP_REFUSALS="${PROBE_SKIP_REFUSALS:-}"
SKIP_CATALOGUE="${PROBE_SKIP_CATALOGUE:-}"
SKIP_GPU="${PROBE_SKIP_GPU:-}"
SKIP_SSH="${PROBE_SKIP_SSH:-}"

number='^[0-9]+([.][0-9]+)?$'
integer='^[0-9]+$'
for pair in "PROBE_BUDGET_USD=$BUDGET" "PROBE_POLL_S=$POLL_S" "PROBE_PACE_S=$PACE_S" \
        "PROBE_BLOCK_USD_PER_GB_MONTH=$BLOCK_PRICE"; do
    [[ "${pair#*=}" =~ $number ]] || refuse "${pair%%=*} must be a number, not '${pair#*=}'"
done
for pair in "PROBE_MAX_MINUTES=$MAX_MINUTES" "PROBE_BOOT_WAIT_S=$BOOT_WAIT_S" \
        "PROBE_SSH_WAIT_S=$SSH_WAIT_S" "PROBE_GONE_RECHECK_S=$GONE_RECHECK_S" \
        "PROBE_CLEANUP_WAIT_S=$CLEANUP_WAIT_S" "PROBE_CURL_MAX_TIME=$CURL_MAX_TIME"; do
    [[ "${pair#*=}" =~ $integer ]] || refuse "${pair%%=*} must be a whole number, not '${pair#*=}'"
done
[[ "$POLL_S" != 0 && "$POLL_S" =~ [1-9] ]] || refuse "PROBE_POLL_S must be above 0"
(( CURL_MAX_TIME >= 5 && CURL_MAX_TIME <= 300 )) || refuse "PROBE_CURL_MAX_TIME must be 5..300"
(( CLEANUP_WAIT_S >= 1 && CLEANUP_WAIT_S <= 1800 )) || refuse "PROBE_CLEANUP_WAIT_S must be 1..1800"
(( MAX_MINUTES <= 240 )) || refuse "PROBE_MAX_MINUTES must be at most 240"
RESERVE_S=$(( CLEANUP_WAIT_S + 60 ))
(( MAX_MINUTES * 60 >= RESERVE_S + 120 )) ||
    refuse "PROBE_MAX_MINUTES=$MAX_MINUTES leaves no time to probe and then clean up (PROBE_CLEANUP_WAIT_S=$CLEANUP_WAIT_S): raise it"
[[ "$REGION" =~ ^[a-z0-9]{2,12}$ ]] || refuse "PROBE_REGION must be a region id such as ewr"
[[ -z "$GPU_REGION_OVERRIDE" || "$GPU_REGION_OVERRIDE" =~ ^[a-z0-9]{2,12}$ ]] ||
    refuse "PROBE_GPU_REGION must be a region id such as ewr"
for kib in $USERDATA_KIB; do
    if ! [[ "$kib" =~ ^[0-9]{1,4}$ ]] || (( kib < 1 )); then
        refuse "PROBE_USERDATA_KIB must list sizes in KiB (1..9999), not '$kib'"
    fi
done
plan_id='^[A-Za-z0-9._-]{1,100}$'
for plan in $GPU_PLANS $VC2_OVERRIDE $UNAVAILABLE_OVERRIDE; do
    [[ "$plan" =~ $plan_id ]] || refuse "'$plan' is not a plan id"
done
[[ -z "$OS_OVERRIDE" || "$OS_OVERRIDE" =~ $integer ]] || refuse "PROBE_OS_ID must be an os id"
[[ -z "$GPU_OS_ID" || "$GPU_OS_ID" =~ $integer ]] || refuse "PROBE_GPU_OS_ID must be an os id"
[[ -z "$SNAPSHOT" || "$SNAPSHOT" =~ ^[A-Za-z0-9-]{1,64}$ ]] || refuse "PROBE_SNAPSHOT must be a snapshot id"
if [[ -n "$SNAPSHOT" && -n "$GPU_OS_ID" ]]; then
    refuse "give PROBE_SNAPSHOT or PROBE_GPU_OS_ID, not both"
fi
GPU_ON=0
if [[ -n "$GPU_PLANS" && "$SKIP_GPU" != 1 ]]; then
    GPU_ON=1
    [[ -n "$SNAPSHOT$GPU_OS_ID" ]] ||
        refuse "PROBE_GPU_PLANS needs PROBE_SNAPSHOT or PROBE_GPU_OS_ID (what the GPU instance boots)"
    for tool in ssh-keygen $([[ "$SKIP_SSH" == 1 ]] || echo ssh); do
        command -v "$tool" > /dev/null || refuse "the GPU probe needs $tool on PATH (or PROBE_SKIP_GPU=1)"
    done
fi

# The URL: https, or plain http to this machine only (the key must not cross a network bare).
if [[ "$API_URL" =~ ^(https?)://([^/@?#]+)(/[^?#]*)?$ ]]; then
    SCHEME="${BASH_REMATCH[1]}"
    API_HOST="${BASH_REMATCH[2]}"
    API_PATH="${BASH_REMATCH[3]:-}"
else
    refuse "VULTR_API_URL must look like https://host/v2 (no user, query or fragment)"
fi
if [[ "$SCHEME" == http && ! "$API_HOST" =~ ^(127\.[0-9.]+|localhost|\[::1\])(:[0-9]+)?$ ]]; then
    refuse "VULTR_API_URL may use plain http only to this machine (127.0.0.1, localhost, [::1])"
fi

KEY="${VULTR_KEY:-}"
[[ -n "$KEY" ]] || refuse "set VULTR_KEY (the account's API key)"
# Printable, no spaces, quotes or backslashes: it goes into a quoted curl config line.
if [[ "$KEY" == *[![:graph:]]* || "$KEY" == *[\"\\]* ]]; then
    refuse "VULTR_KEY holds a character that cannot go in a header"
fi
export -n KEY     # never exported (even if the environment had a KEY)
unset VULTR_KEY   # the helpers, python and ssh never get it in their environment

REPORT_DIR="$(dirname -- "$REPORT")"
[[ -d "$REPORT_DIR" && -w "$REPORT_DIR" ]] || refuse "PROBE_REPORT: cannot write in $REPORT_DIR"

# -- work area, key file, helper -----------------------------------------------------------

umask 077
WORK="$(mktemp -d "${TMPDIR:-/tmp}/vultr-probe.XXXXXX")"
STARTED=0
INTERRUPTED=""
PROBE=setup
FAILED_AT=""
trap 'rm -rf -- "$WORK"' EXIT   # replaced by cleanup once it is defined
trap 'INTERRUPTED=SIGINT; exit 130' INT
trap 'INTERRUPTED=SIGTERM; exit 143' TERM
trap 'INTERRUPTED=SIGHUP; exit 129' HUP
printf 'header = "Authorization: Bearer %s"\n' "$KEY" > "$WORK/curl.conf"   # printf: a builtin

RUN_ID="$STAMP-$(printf '%04x%04x' "$RANDOM" "$RANDOM")"
RUN_TAG="launcher-probe-$RUN_ID"
PROTO="=$SCHEME"
USER_AGENT="launcher/probe-vultr.sh"
RESP="$WORK/response"
LEDGER="$WORK/ledger"
: > "$LEDGER"
: > "$WORK/summary"
mkdir -p "$WORK/avail" "$WORK/list"

cat > "$WORK/helper.py" <<'PYTHON'
"""JSON work for probe_vultr.sh: standard library only; it never sees the API key."""
import base64
import json
import os
import re
import sys
import urllib.parse


def die(message):
    sys.stderr.write(f"probe: {message}\n")
    sys.exit(3)


def load(path):
    try:
        with open(path, "rb") as handle:
            return json.loads(handle.read() or b"null")
    except (OSError, ValueError):
        return None


def jsonl(path):
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def one_line(text, limit):
    text = re.sub(r"[\r\n\t]+", " ", text)
    return text if len(text) <= limit else text[:limit] + " ...(cut)"


def money(value):
    return f"${value:.2f}" if value >= 0.01 or value == 0 else f"${value:.4f}"


def price(plan, region):
    """USD per hour in region: the region's own price (location_cost) wins."""
    regional = plan.get("location_cost")
    if isinstance(regional, dict) and isinstance(regional.get(region), dict):
        hourly = regional[region].get("hourly_cost")
        if isinstance(hourly, (int, float)):
            return float(hourly)
    hourly = plan.get("hourly_cost")
    if isinstance(hourly, (int, float)):
        return float(hourly)
    monthly = plan.get("monthly_cost")
    if isinstance(monthly, (int, float)):
        return float(monthly) / 672  # Vultr's monthly cap is 672 hours: the highest rate
    return None


def c_error(path):
    """The error text of an answer: its "error" field, else the raw body (cut)."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read()
    except OSError:
        raw = b""
    try:
        body = json.loads(raw) if raw.strip() else None
    except ValueError:
        body = None
    if isinstance(body, dict) and "error" in body:
        text = body["error"] if isinstance(body["error"], str) else json.dumps(body["error"])
        print(one_line(text, 1000) if text else "(empty error text)")
    elif raw.strip() and body is None:
        print(one_line(raw.decode("utf-8", "replace"), 300))
    else:
        print("")


def c_get(path, dotted):
    value = load(path)
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if value is None:
        print("")
    elif isinstance(value, bool):
        print("true" if value else "false")
    elif isinstance(value, (dict, list)):
        print(json.dumps(value))
    else:
        print(one_line(str(value), 1000))


def c_page(path, key, out):
    """Append the page's items to out (JSON lines); print the next cursor, URL-encoded."""
    body = load(path)
    if not isinstance(body, dict) or not isinstance(body.get(key), list):
        die(f"the answer holds no '{key}' list")
    with open(out, "a", encoding="utf-8") as handle:
        for item in body[key]:
            handle.write(json.dumps(item) + "\n")
    links = (body.get("meta") or {}).get("links") or {}
    following = links.get("next") or ""
    print(urllib.parse.quote(following, safe="") if following else "")


def c_body(out, *specs):
    """A JSON object from name=text, name:=json, name[]=text (list), name@=file (text)."""
    document = {}
    for spec in specs:
        found = re.match(r"^([a-z_]+)(:=|\[\]=|@=|=)(.*)$", spec, re.S)
        if not found:
            die(f"bad body field {spec!r}")
        name, op, value = found.groups()
        if op == ":=":
            document[name] = json.loads(value)
        elif op == "[]=":
            document.setdefault(name, []).append(value)
        elif op == "@=":
            with open(value, encoding="ascii") as handle:
                document[name] = handle.read().strip()
        else:
            document[name] = value
    with open(out, "w", encoding="utf-8") as handle:
        json.dump(document, handle)


def c_userdata(size, run_id, out):
    """A cloud-config of exactly size bytes (comments as padding), base64 into out."""
    size = int(size)
    text = (f"#cloud-config\n# launcher-probe {run_id}: a user_data of exactly {size} bytes;"
            " the rest is padding\n")
    line = "# " + "x" * 77 + "\n"
    parts = [text]
    length = len(text)
    while length + len(line) <= size:
        parts.append(line)
        length += len(line)
    rest = size - length
    if rest >= 2:
        parts.append("#" + "x" * (rest - 2) + "\n")
    elif rest == 1:
        parts.append("\n")
    data = "".join(parts).encode()
    if len(data) != size:
        die(f"user_data of {len(data)} bytes, wanted {size}")
    encoded = base64.b64encode(data).decode()
    with open(out, "w", encoding="ascii") as handle:
        handle.write(encoded)
    print(len(encoded))


def c_readback(path, sent_path):
    data = ((load(path) or {}).get("user_data") or {}).get("data")
    if not isinstance(data, str):
        print("no user_data.data in the answer")
        return
    try:
        got = base64.b64decode(data, validate=True)
    except ValueError:
        print(f"not base64 ({len(data)} characters)")
        return
    with open(sent_path, encoding="ascii") as handle:
        sent = base64.b64decode(handle.read())
    same = "identical to" if got == sent else "DIFFERENT from"
    print(f"read back {len(got)} bytes, {same} what was sent")


def c_state(path):
    inst = (load(path) or {}).get("instance") or {}
    print(" ".join(str(inst.get(k) or "-").replace(" ", "_")
                   for k in ("status", "power_status", "server_status", "main_ip")))


def c_choose(plans, oses, regions, avail, region, vc2, os_id, unavailable):
    """Pick the vc2 plan, the OS, the block type and the plan availability does not list."""
    plans = jsonl(plans)
    by_id = {p.get("id"): p for p in plans}
    listed = set((load(avail) or {}).get("available_plans") or [])
    regions = {r.get("id"): r for r in jsonl(regions)}
    if region not in regions:
        die(f"PROBE_REGION={region} is not in GET /regions")
    out = {}
    if vc2:
        if vc2 not in by_id:
            die(f"PROBE_VC2_PLAN={vc2} is not in GET /plans?type=all")
        pick = by_id[vc2]
    else:
        # IPv6-only plans (id ending -v6) would need more than a plain create.
        offered = [p for p in plans if p.get("type") == "vc2"
                   and region in (p.get("locations") or [])
                   and not str(p.get("id")).endswith("-v6") and price(p, region) is not None]
        pool = [p for p in offered if p.get("id") in listed] or offered
        pick = min(pool, key=lambda p: (price(p, region), p["id"])) if pool else None
    out["vc2_plan"] = pick["id"] if pick else ""
    out["vc2_price"] = price(pick, region) if pick else ""
    out["vc2_listed"] = ("yes" if pick["id"] in listed else "no") if pick else ""
    systems = jsonl(oses)
    if os_id:
        found = [o for o in systems if str(o.get("id")) == os_id]
        if not found:
            die(f"PROBE_OS_ID={os_id} is not in GET /os")
        system = found[0]
    else:
        def rank(o):
            name = str(o.get("name", ""))
            return (name != "Ubuntu 24.04 LTS x64", o.get("family") != "ubuntu",
                    o.get("family") != "debian", -int(o.get("id") or 0))
        usable = [o for o in systems if o.get("arch") == "x64"
                  and o.get("family") in ("ubuntu", "debian")]
        system = min(usable, key=rank) if usable else {"id": "", "name": ""}
    out["os_id"] = system["id"]
    out["os_name"] = str(system.get("name", "")).replace("\t", " ")
    options = regions[region].get("options") or []
    if "block_storage_storage_opt" in options:
        out["block_type"], out["block_size"] = "storage_opt", 40
    elif "block_storage_high_perf" in options:
        out["block_type"], out["block_size"] = "high_perf", 10
    else:
        out["block_type"], out["block_size"] = "", 0
    if unavailable:
        if unavailable not in by_id:
            die(f"PROBE_UNAVAILABLE_PLAN={unavailable} is not in GET /plans?type=all")
        other = by_id[unavailable]
    else:
        unlisted = [p for p in plans if p.get("id") not in listed
                    and price(p, region) is not None]
        sold_out = [p for p in unlisted if region in (p.get("locations") or [])]
        pool = sold_out or unlisted
        other = min(pool, key=lambda p: (price(p, region), p["id"])) if pool else None
    if other is None:
        out["unavailable_plan"] = out["unavailable_price"] = out["unavailable_kind"] = ""
    else:
        out["unavailable_plan"] = other["id"]
        out["unavailable_price"] = price(other, region)
        kind = ("listed in GET /regions/{r}/availability" if other["id"] in listed else
                "sold out: its locations list the region, availability does not"
                if region in (other.get("locations") or []) else
                "not offered there: neither its locations nor availability list the region")
        out["unavailable_kind"] = kind.replace("{r}", region)
    for name, value in out.items():
        print(f"{name}\t{value}")


def c_price(plans, region, plan_id):
    for plan in jsonl(plans):
        if plan.get("id") == plan_id:
            value = price(plan, region)
            if value is None:
                die(f"{plan_id} has no price in GET /plans")
            print(value)
            return
    die(f"{plan_id} is not in GET /plans?type=all")


def c_locations(plans, plan_id):
    for plan in jsonl(plans):
        if plan.get("id") == plan_id:
            print(" ".join(plan.get("locations") or []))
            return
    print("")


def c_has_id(path, wanted):
    sys.exit(0 if any(str(o.get("id")) == wanted for o in jsonl(path)) else 1)


def c_listed(avail, plan_id):
    sys.exit(0 if plan_id in ((load(avail) or {}).get("available_plans") or []) else 1)


def c_worst(minutes, budget, *prices):
    hourly = sum(float(p) for p in prices)
    worst = hourly * float(minutes) / 60
    fits = 1 if worst < float(budget) else 0
    print(f"{fits}\t{money(worst)}\t{money(hourly)}\t{money(float(budget))}")


def c_money(value):
    print(money(float(value)))


def c_block_hourly(size, usd_gb_month):
    print(int(size) * float(usd_gb_month) / 672)


def cell(value):
    return str(value).replace("|", "\\|").replace("\n", " ")


def c_catalogue(plans_all, plans_vcg, vcg_status, plans_vdm, vdm_status, avail_dir,
                summary, *regions):
    everything = jsonl(plans_all)
    types = {p.get("id"): p.get("type") for p in everything}
    gpuish = [p for p in everything if p.get("type") in ("vcg", "vdm")
              or "gpu_type" in p or "gpu_vram_gb" in p]
    rows = []
    out = [f"- `GET /plans?type=all`: {len(everything)} plans, {len(gpuish)} of them GPU plans "
           "(type vcg or vdm, or a gpu_type / gpu_vram_gb field)."]
    vcg_ids = set()
    if vcg_status == "200":
        vcg = jsonl(plans_vcg)
        vcg_ids = {p.get("id") for p in vcg}
        vdm_in_vcg = sorted(p.get("id") for p in vcg if p.get("type") == "vdm")
        out.append(f"- `GET /plans?type=vcg`: {len(vcg)} plans; of type vdm: "
                   f"{', '.join(vdm_in_vcg) or 'none'}.")
        rows.append(("GET /plans?type=vcg lists plans of type vdm", "200",
                     f"yes: {', '.join(vdm_in_vcg)}" if vdm_in_vcg else "no"))
    else:
        out.append(f"- `GET /plans?type=vcg`: {vcg_status}.")
        rows.append(("GET /plans?type=vcg lists plans of type vdm", vcg_status.split()[0],
                     vcg_status))
    if vdm_status == "200":
        vdm = jsonl(plans_vdm)
        out.append(f"- `GET /plans?type=vdm`: {len(vdm)} plans: "
                   f"{', '.join(sorted(p.get('id') for p in vdm)) or 'none'}.")
        rows.append(("GET /plans?type=vdm", "200", f"{len(vdm)} plans"))
    else:
        out.append(f"- `GET /plans?type=vdm`: {vdm_status}.")
        rows.append(("GET /plans?type=vdm", vdm_status.split()[0], vdm_status))
    if gpuish:
        out += ["", "GPU plans of `GET /plans?type=all` (\"absent\": the field is not there):", "",
                "| plan | type | gpu_type | gpu_vram_gb | gpu_count | deploy_ondemand "
                "| deploy_preemptible | hourly_cost | in type=vcg |",
                "|---|---|---|---|---|---|---|---|---|"]
        for p in sorted(gpuish, key=lambda p: (p.get("type") or "", p.get("id") or "")):
            fields = [json.dumps(p[k]) if k in p else "absent" for k in
                      ("gpu_type", "gpu_vram_gb", "gpu_count", "deploy_ondemand",
                       "deploy_preemptible", "hourly_cost")]
            listed = "yes" if p.get("id") in vcg_ids else "no"
            out.append("| " + " | ".join(cell(v) for v in
                                         [p.get("id"), p.get("type"), *fields, listed]) + " |")
    no_gpu_fields = sorted(p.get("id") for p in gpuish
                           if "gpu_type" not in p and "gpu_vram_gb" not in p)
    rows.append(("GPU plans with neither gpu_type nor gpu_vram_gb", "200",
                 ", ".join(no_gpu_fields) or "none"))
    ondemand = sum(1 for p in gpuish if "deploy_ondemand" in p)
    rows.append(("GPU plans carrying deploy_ondemand", "200", f"{ondemand} of {len(gpuish)}"))
    out += ["", "Availability per region (`vdm`: ids whose type in `GET /plans?type=all` is vdm; "
            "`unknown`: ids not in that listing):", "",
            "| region | ?type=vcg: plans | vdm ids | unknown ids | no type: plans | vdm ids |",
            "|---|---|---|---|---|---|"]
    vcg_hits, plain_hits, asked = {}, {}, 0
    for region in regions:
        cells = [region]
        for kind, hits in (("vcg", vcg_hits), ("all", plain_hits)):
            answer = os.path.join(avail_dir, f"{kind}.{region}.json")
            failed = os.path.join(avail_dir, f"{kind}.{region}.err")
            if os.path.exists(failed):
                with open(failed, encoding="utf-8") as handle:
                    cells += [handle.read().strip()] + ([""] * (2 if kind == "vcg" else 1))
                continue
            ids = (load(answer) or {}).get("available_plans") or []
            vdm = sorted(i for i in ids if types.get(i) == "vdm")
            if vdm:
                hits[region] = vdm
            cells += [str(len(ids)), ", ".join(vdm) or "-"]
            if kind == "vcg":
                cells.append(", ".join(sorted(i for i in ids if i not in types)) or "-")
        asked += 1
        out.append("| " + " | ".join(cell(c) for c in cells) + " |")

    def said(hits):
        if not hits:
            return f"no (asked {asked} regions)"
        return "yes: " + "; ".join(f"{r}: {', '.join(ids)}" for r, ids in hits.items())

    rows.append(("GET /regions/{r}/availability?type=vcg lists vdm plan ids", "200",
                 said(vcg_hits)))
    rows.append(("GET /regions/{r}/availability (no type) lists vdm plan ids", "200",
                 said(plain_hits)))
    with open(summary, "a", encoding="utf-8") as handle:
        for question, status, answer in rows:
            handle.write(f"| 3 | {cell(question)} | {cell(status)} | {cell(answer)} |\n")
    print("\n".join(out))


def c_leftovers(run_tag, key_name, instances, blocks, keys):
    for inst in jsonl(instances):
        if run_tag in (inst.get("tags") or []) or str(inst.get("label", "")).startswith(run_tag):
            print("instance", inst.get("id"), inst.get("label") or "-")
    for block in jsonl(blocks):
        if str(block.get("label", "")).startswith(run_tag):
            print("block", block.get("id"), block.get("label") or "-")
    for key in jsonl(keys):
        if key.get("name") == key_name:
            print("sshkey", key.get("id"), key.get("name"))


COMMANDS = {name[2:].replace("_", "-"): f for name, f in globals().items()
            if name.startswith("c_")}
if __name__ == "__main__":
    COMMANDS[sys.argv[1]](*sys.argv[2:])
PYTHON

py() { python3 -I "$WORK/helper.py" "$@"; }

# -- output --------------------------------------------------------------------------------

say() { local line="$*"; printf 'probe: %s\n' "${line//"$KEY"/<redacted>}"; }
warn() { local line="$*"; printf 'probe: %s\n' "${line//"$KEY"/<redacted>}" >&2; }
cell() { local s="${1//$'\n'/ }"; printf '%s' "${s//|/\\|}"; }
note() { printf '%s\n' "$*" >> "$WORK/section.$PROBE"; }
# finding QUESTION STATUS ANSWER: one row of the report's summary table.
finding() {
    printf '| %s | %s | %s | %s |\n' "$PROBE" "$(cell "$1")" "$(cell "$2")" "$(cell "$3")" \
        >> "$WORK/summary"
    say "[$PROBE] $1: ${2:+$2 }$3"
}
skipped() { finding "$1" "-" "skipped: $2"; }
# The answer to record: the error text, or WORD for a 2xx.
answer_text() { if [[ "$API_STATUS" == 2* ]]; then echo "$1"; else echo "$API_ERROR"; fi; }

now_ms() {
    if [[ -n "${EPOCHREALTIME:-}" ]]; then
        local us="${EPOCHREALTIME//[!0-9]/}"
        echo $(( us / 1000 ))
    else
        echo $(( $(date +%s) * 1000 ))
    fi
}
secs() { printf '%d.%d' $(( $1 / 1000 )) $(( ($1 % 1000) / 100 )); }
time_left() { echo $(( DEADLINE - SECONDS )); }

# -- the API -------------------------------------------------------------------------------

CALLS=0
LOG_CALLS=1
# api METHOD PATH [BODY_FILE]: sets API_STATUS (000: no answer) and API_ERROR; body in $RESP.
# A 429 is retried (3 times at most, honouring Retry-After up to 10 s); nothing else is.
api() {
    local method="$1" path="$2" body="${3:-}" tries=0 wait_s
    local -a args
    while :; do
        sleep "$PACE_S"
        args=(-q --silent --show-error --config "$WORK/curl.conf" --proto "$PROTO"
              --connect-timeout "$CONNECT_TIMEOUT" --max-time "$CURL_MAX_TIME"
              -A "$USER_AGENT" -X "$method" -o "$RESP" -D "$WORK/headers" -w '%{http_code}')
        if [[ -n "$body" ]]; then
            args+=(-H 'Content-Type: application/json' --data-binary "@$body")
        fi
        : > "$RESP"
        : > "$WORK/headers"
        API_STATUS="$(curl "${args[@]}" "$API_URL$path" 2> "$WORK/curl.err")" || API_STATUS=000
        CALLS=$(( CALLS + 1 ))
        if [[ "$API_STATUS" == 429 ]] && (( tries < 3 )); then
            tries=$(( tries + 1 ))
            wait_s="$(sed -n 's/^[Rr]etry-[Aa]fter: *\([0-9]*\).*/\1/p' "$WORK/headers" | head -n 1)"
            wait_s="${wait_s:-1}"
            (( wait_s >= 1 && wait_s <= 10 )) || wait_s=10
            sleep "$wait_s"
            continue
        fi
        break
    done
    if [[ "$API_STATUS" == 000 ]]; then
        API_ERROR="no answer: $(tr '\n' ' ' < "$WORK/curl.err" | cut -c 1-300)"
    elif [[ "$API_STATUS" == 2* ]]; then
        API_ERROR=""
    else
        API_ERROR="$(py error "$RESP")"
    fi
    if [[ "$LOG_CALLS" == 1 ]]; then
        # shellcheck disable=SC2016  # Markdown code spans, not expansions
        printf '| %s | `%s %s` | %s | %s |\n' "$CALLS" "$method" "$(cell "$API_PATH$path")" \
            "$API_STATUS" "$(cell "$API_ERROR")" >> "$WORK/calls.$PROBE"
    fi
}

# list_all PATH KEY OUT: every page of a listing into OUT (JSON lines); 1 when a read failed.
list_all() {
    local path="$1" key="$2" out="$3" cursor="" sep page
    : > "$out"
    for (( page = 1; page <= MAX_PAGES; page++ )); do
        if [[ "$path" == *\?* ]]; then sep='&'; else sep='?'; fi
        api GET "$path${sep}per_page=500${cursor:+&cursor=$cursor}"
        [[ "$API_STATUS" == 200 ]] || return 1
        cursor="$(py page "$RESP" "$key" "$out")" || { API_ERROR="no '$key' list in the answer"; return 1; }
        [[ -n "$cursor" ]] || return 0
    done
    API_ERROR="more than $MAX_PAGES pages"
    return 1
}

# availability REGION [TYPE]: the answer into $WORK/avail/<type|all>.<region>.json (or .err).
availability() {
    local region="$1" type="${2:-}" name
    name="${type:-all}.$region"
    [[ -e "$WORK/avail/$name.json" || -e "$WORK/avail/$name.err" ]] && return 0
    api GET "/regions/$region/availability${type:+?type=$type}"
    if [[ "$API_STATUS" == 200 ]]; then
        cp "$RESP" "$WORK/avail/$name.json"
    else
        printf '%s %s\n' "$API_STATUS" "$API_ERROR" > "$WORK/avail/$name.err"
    fi
}

remember() { printf '%s %s %s\n' "$1" "$2" "$3" >> "$LEDGER"; say "created $1 $2 ($3)"; }
forget() { printf 'gone %s %s\n' "$1" "$2" >> "$LEDGER"; }
is_gone() { grep -qx "gone $1 $2" "$LEDGER"; }

# create_instance LABEL PLAN REGION SOURCE... : POST /instances; INSTANCE_ID when accepted.
create_instance() {
    local label="$1" plan="$2" region="$3"
    shift 3
    py body "$WORK/body.json" "region=$region" "plan=$plan" "label=$RUN_TAG-$label" \
        "hostname=launcher-probe" "tags[]=launcher-probe" "tags[]=$RUN_TAG" \
        "backups=disabled" "$@"
    INSTANCE_ID=""
    api POST /instances "$WORK/body.json"
    if [[ "$API_STATUS" == 2* ]]; then
        INSTANCE_ID="$(py get "$RESP" instance.id)"
        remember instance "${INSTANCE_ID:-unknown}" "$RUN_TAG-$label"
    fi
}

# until_s S: S seconds from now, but never past the cleanup's own limit.
until_s() {
    local until=$(( SECONDS + $1 ))
    if [[ "$PROBE" == cleanup ]] && (( until > CLEANUP_UNTIL )); then until="$CLEANUP_UNTIL"; fi
    echo "$until"
}

# delete_until_gone KIND PATH TRIES SECONDS: DELETE PATH until gone (404 counts), TRIES tries
# and SECONDS at most, then forget KIND's id; FIRST_* hold the first answer.
delete_until_gone() {
    local kind="$1" path="$2" max_tries="$3" tries=0 until
    until="$(until_s "$4")"
    FIRST_STATUS=""
    while :; do
        api DELETE "$path"
        if [[ -z "$FIRST_STATUS" ]]; then FIRST_STATUS="$API_STATUS"; FIRST_ERROR="$API_ERROR"; fi
        if [[ "$API_STATUS" == 204 || "$API_STATUS" == 404 ]]; then
            forget "$kind" "${path##*/}"
            return 0
        fi
        tries=$(( tries + 1 ))
        (( tries < max_tries && SECONDS < until )) || return 1
        sleep "$POLL_S"
    done
}

delete_instance() { delete_until_gone instance "/instances/$1" 6 60; }
delete_block() { delete_until_gone block "/blocks/$1" 15 90; }
delete_ssh_key() { delete_until_gone sshkey "/ssh-keys/$1" 4 30; }

# poll LIMIT_S GET_PATH PREDICATE: GET every PROBE_POLL_S until PREDICATE (a function reading
# $RESP) succeeds; 1 when LIMIT_S (or the run's window) ran out. One summary row in the log.
poll() {
    local limit="$1" path="$2" predicate="$3" polls=0 start="$SECONDS" found=1
    LOG_CALLS=0
    while (( polls < 100000 )); do
        api GET "$path"
        polls=$(( polls + 1 ))
        if [[ "$API_STATUS" == 200 ]] && "$predicate"; then found=0; break; fi
        if (( SECONDS - start >= limit || SECONDS >= DEADLINE )); then break; fi
        sleep "$POLL_S"
    done
    LOG_CALLS=1
    # shellcheck disable=SC2016  # Markdown code spans, not expansions
    printf '| %s | `GET %s` (polled %d times, every %s s) | %s | %s |\n' "$CALLS" \
        "$(cell "$API_PATH$path")" "$polls" "$POLL_S" "$API_STATUS" "$(cell "$API_ERROR")" \
        >> "$WORK/calls.$PROBE"
    return "$found"
}

block_active() { [[ "$(py get "$RESP" block.status)" == active ]]; }

# -- cleanup, proof, report ----------------------------------------------------------------

# find_ours: list instances (by tag), blocks and SSH keys; OURS holds "kind id label" lines.
find_ours() {
    local failed=""
    list_all "/instances?tag=$RUN_TAG" instances "$WORK/list/instances" ||
        failed+="instances: $API_STATUS $API_ERROR; "
    list_all /blocks blocks "$WORK/list/blocks" || failed+="blocks: $API_STATUS $API_ERROR; "
    list_all /ssh-keys ssh_keys "$WORK/list/keys" || failed+="ssh keys: $API_STATUS $API_ERROR; "
    OURS="$(py leftovers "$RUN_TAG" "$RUN_TAG" "$WORK/list/instances" "$WORK/list/blocks" \
        "$WORK/list/keys")"
    LIST_FAILED="$failed"
    [[ -z "$failed" ]]
}

delete_kind() {
    local kind="$1" id
    while read -r id; do
        [[ -n "$id" && "$id" != unknown ]] || continue
        is_gone "$kind" "$id" && continue
        (( SECONDS < CLEANUP_UNTIL )) || return 0
        case "$kind" in
            instance) delete_instance "$id" || true ;;
            block) delete_block "$id" || true ;;
            sshkey) delete_ssh_key "$id" || true ;;
        esac
    done < <(awk -v k="$kind" '$1 == k {print $2}' "$LEDGER" | sort -u)
}

delete_command() {
    local path
    case "$1" in instance) path=instances ;; block) path=blocks ;; *) path=ssh-keys ;; esac
    printf "curl -X DELETE -H @<(printf 'Authorization: Bearer %%s\\\\n' \"\$VULTR_KEY\") %s/%s/%s" \
        "$API_URL" "$path" "$2"
}

cleanup() {
    local rc=$? kind id label left=0 proof="$WORK/section.cleanup"
    set +e
    trap '' INT TERM HUP
    if [[ "$STARTED" != 1 ]]; then
        rm -rf -- "$WORK"
        exit "$rc"
    fi
    PROBE=cleanup
    CLEANUP_UNTIL=$(( SECONDS + CLEANUP_WAIT_S ))
    say "cleaning up (at most ${CLEANUP_WAIT_S} s; Ctrl-C is ignored until it is done)"
    # Whatever the ledger holds, then whatever carries the run's tag, label or name: a create
    # whose answer was lost still shows up there.
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        delete_kind instance
        delete_kind block
        delete_kind sshkey
        find_ours
        while read -r kind id label; do
            [[ -n "$kind" ]] || continue
            grep -q "^$kind $id " "$LEDGER" || printf '%s %s %s\n' "$kind" "$id" "$label" >> "$LEDGER"
            grep -vx "gone $kind $id" "$LEDGER" > "$LEDGER.new" || true
            mv -f -- "$LEDGER.new" "$LEDGER"
        done <<< "$OURS"
        if [[ -z "$OURS" && -z "$LIST_FAILED" ]] || (( SECONDS >= CLEANUP_UNTIL )); then break; fi
        sleep "$POLL_S"
    done
    {
        echo "Listed after the deletes (\`GET $API_PATH/instances?tag=$RUN_TAG\`, \`GET $API_PATH/blocks\`,"
        echo "\`GET $API_PATH/ssh-keys\`, every page; a block or key counts by its label or name):"
        echo
        echo "- instances tagged $RUN_TAG: $(grep -c '^instance ' <<< "$OURS")"
        echo "- blocks labelled $RUN_TAG-*: $(grep -c '^block ' <<< "$OURS")"
        echo "- SSH keys named $RUN_TAG: $(grep -c '^sshkey ' <<< "$OURS")"
        echo "- created by this run: instances $(grep -c '^instance ' "$LEDGER")," \
            "blocks $(grep -c '^block ' "$LEDGER"), SSH keys $(grep -c '^sshkey ' "$LEDGER")"
    } >> "$proof"
    if [[ -n "$LIST_FAILED" ]]; then
        echo "- a listing failed, so what remains is unknown: $LIST_FAILED" >> "$proof"
        while read -r kind id label; do
            [[ "$kind" == gone || -z "$kind" ]] && continue
            is_gone "$kind" "$id" && continue
            OURS+=$'\n'"$kind $id $label"
        done < "$LEDGER"
    fi
    while read -r kind id label; do
        [[ -n "$kind" ]] || continue
        left=$(( left + 1 ))
        {
            echo "- LEFT: $kind $id ($label), delete it with:"
            echo "  \`$(delete_command "$kind" "$id")\`"
        } >> "$proof"
        warn "LEFT: $kind $id ($label): $(delete_command "$kind" "$id")"
    done <<< "$OURS"
    if (( left == 0 )) && [[ -z "$LIST_FAILED" ]]; then
        printf '\n**0 left.**\n' >> "$proof"
        say "cleanup proof: 0 left"
    else
        printf '\n**%s left**: delete them with the commands above (VULTR_KEY set in the shell).\n' \
            "$left" >> "$proof"
        warn "cleanup proof: $left left (see above)"
        rc=1
    fi
    write_report "$rc"
    rm -rf -- "$WORK"
    exit "$rc"
}

write_report() {
    local rc="$1" result out="$WORK/report.md" section title content
    if [[ -n "$INTERRUPTED" ]]; then
        result="interrupted by $INTERRUPTED; what it had created was deleted (see the cleanup proof)"
    elif [[ -n "$FAILED_AT" && "$rc" != 0 && "$rc" != 1 ]]; then
        result="stopped by an error (exit $rc, line $FAILED_AT); what it had created was deleted"
    elif [[ "$rc" == 0 ]]; then
        result="complete"
    else
        result="complete, but something is left (see the cleanup proof)"
    fi
    {
        echo "# Vultr API probe, $(date -u +%Y-%m-%d)"
        echo
        echo "| | |"
        echo "|---|---|"
        echo "| date | $START_DATE to $(date -u +%Y-%m-%dT%H:%M:%SZ) |"
        echo "| API | $SCHEME://$API_HOST$API_PATH |"
        echo "| run id | $RUN_ID (tags launcher-probe, $RUN_TAG) |"
        echo "| region | $REGION |"
        echo "| worst case | $WORST (\$$HOURLY/h for $MAX_MINUTES min; budget $BUDGET_SHOWN) |"
        echo "| requests | $CALLS |"
        echo "| result | $result |"
        echo
        echo "## Summary"
        echo
        echo "| probe | question | status | answer |"
        echo "|---|---|---|---|"
        sort -s -t '|' -k 2,2 "$WORK/summary"
        for section in setup 1 2 3 4 cleanup; do
            case "$section" in
                setup) title="Reads before anything was created" ;;
                1) title="1. user_data size limit" ;;
                2) title="2. Refusal texts" ;;
                3) title="3. Catalogue" ;;
                4) title="4. GPU virtualization mode" ;;
                cleanup) title="Cleanup proof" ;;
            esac
            echo
            echo "## $title"
            echo
            if [[ -s "$WORK/section.$section" ]]; then cat "$WORK/section.$section"; echo; fi
            if [[ ! -s "$WORK/section.$section" && ! -s "$WORK/calls.$section" ]]; then
                echo "Nothing was asked (see the summary)."
            fi
            if [[ -s "$WORK/calls.$section" ]]; then
                echo "Requests:"
                echo
                echo "| # | request | status | error |"
                echo "|---|---|---|---|"
                cat "$WORK/calls.$section"
            fi
        done
    } > "$out"
    content="$(< "$out")"
    printf '%s\n' "${content//"$KEY"/<redacted>}" > "$out"
    if cp -- "$out" "$REPORT"; then
        say "report: $REPORT"
    else
        warn "could not write the report to $REPORT"
    fi
}

# Before STARTED=1 cleanup only removes $WORK (the key file); after, it deletes and proves.
trap cleanup EXIT

# -- what it will create, and the budget ---------------------------------------------------

START_DATE="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
say "API $SCHEME://$API_HOST$API_PATH, region $REGION, run $RUN_ID"
PROBE=setup
list_all /regions regions "$WORK/regions" || refuse "GET /regions: $API_STATUS $API_ERROR"
list_all "/plans?type=all" plans "$WORK/plans" || refuse "GET /plans?type=all: $API_STATUS $API_ERROR"
list_all /os os "$WORK/os" || refuse "GET /os: $API_STATUS $API_ERROR"
availability "$REGION"
[[ -e "$WORK/avail/all.$REGION.json" ]] ||
    refuse "GET /regions/$REGION/availability: $(< "$WORK/avail/all.$REGION.err")"
CHOICES="$(py choose "$WORK/plans" "$WORK/os" "$WORK/regions" "$WORK/avail/all.$REGION.json" \
    "$REGION" "$VC2_OVERRIDE" "$OS_OVERRIDE" "$UNAVAILABLE_OVERRIDE")" ||
    refuse "could not choose what to create (above)"
declare -A C=()
while IFS=$'\t' read -r name value; do C[$name]="$value"; done <<< "$CHOICES"
if [[ "$SKIP_USERDATA" != 1 || "$SKIP_REFUSALS" != 1 ]]; then
    [[ -n "${C[vc2_plan]}" ]] ||
        refuse "no vc2 plan lists $REGION in its locations: set PROBE_VC2_PLAN or another PROBE_REGION"
    [[ -n "${C[os_id]}" ]] || refuse "GET /os lists no x64 Ubuntu or Debian: set PROBE_OS_ID"
fi

PLANNED=()   # "what<TAB>hourly price" lines
plan_line() { PLANNED+=("$1"$'\t'"$2"); }
if [[ "$SKIP_USERDATA" != 1 ]]; then
    for kib in $USERDATA_KIB; do
        plan_line "instance ${C[vc2_plan]} in $REGION (user_data $kib KiB)" "${C[vc2_price]}"
    done
fi
if [[ "$SKIP_REFUSALS" != 1 ]]; then
    plan_line "instance ${C[vc2_plan]} in $REGION (refusal texts)" "${C[vc2_price]}"
    if [[ -n "${C[block_type]}" ]]; then
        plan_line "block ${C[block_type]} ${C[block_size]} GB in $REGION (refusal texts; at most \$$BLOCK_PRICE/GB-month)" \
            "$(py block-hourly "${C[block_size]}" "$BLOCK_PRICE")"
    fi
    if [[ -n "${C[unavailable_plan]}" ]]; then
        plan_line "instance ${C[unavailable_plan]} in $REGION (expected to be refused: ${C[unavailable_kind]})" \
            "${C[unavailable_price]}"
    fi
fi
declare -A GPU_REGION=()
if [[ "$GPU_ON" == 1 ]]; then
    if [[ -n "$SNAPSHOT" ]]; then
        api GET "/snapshots/$SNAPSHOT"
        [[ "$API_STATUS" == 200 ]] || refuse "PROBE_SNAPSHOT: GET /snapshots/$SNAPSHOT: $API_STATUS $API_ERROR"
        [[ "$(py get "$RESP" snapshot.status)" == complete ]] ||
            refuse "PROBE_SNAPSHOT $SNAPSHOT is not complete"
    else
        py has-id "$WORK/os" "$GPU_OS_ID" || refuse "PROBE_GPU_OS_ID=$GPU_OS_ID is not in GET /os"
    fi
    for plan in $GPU_PLANS; do
        py price "$WORK/plans" "$REGION" "$plan" > /dev/null || refuse "PROBE_GPU_PLANS: see above"
        where="$GPU_REGION_OVERRIDE"
        if [[ -z "$where" ]]; then
            if py listed "$WORK/avail/all.$REGION.json" "$plan"; then where="$REGION"; fi
        fi
        if [[ -z "$where" ]]; then
            count=0
            for candidate in $(py locations "$WORK/plans" "$plan"); do
                count=$(( count + 1 ))
                (( count <= MAX_REGIONS )) || break
                [[ "$candidate" =~ ^[a-z0-9]{2,12}$ ]] || continue
                availability "$candidate"
                if [[ -e "$WORK/avail/all.$candidate.json" ]] &&
                        py listed "$WORK/avail/all.$candidate.json" "$plan"; then
                    where="$candidate"
                    break
                fi
            done
        fi
        GPU_REGION[$plan]="${where:-$REGION}"
        plan_line "instance $plan in ${GPU_REGION[$plan]} (GPU probe)" \
            "$(py price "$WORK/plans" "${GPU_REGION[$plan]}" "$plan")"
    done
fi

PRICES=()
for line in "${PLANNED[@]}"; do PRICES+=("${line#*$'\t'}"); done
IFS=$'\t' read -r FITS WORST HOURLY BUDGET_SHOWN < <(py worst "$MAX_MINUTES" "$BUDGET" "${PRICES[@]}")
HOURLY="${HOURLY#\$}"
say "it will create (tags launcher-probe, $RUN_TAG; deleted at once or at the end):"
for line in "${PLANNED[@]}"; do say "  ${line%%$'\t'*}: $(py money "${line#*$'\t'}")/h"; done
if [[ "$GPU_ON" == 1 ]]; then say "  an SSH key named $RUN_TAG (free)"; fi
if (( ${#PLANNED[@]} == 0 )); then say "  nothing (read-only probes only)"; fi
say "worst case: $WORST (\$$HOURLY/h of everything at once for PROBE_MAX_MINUTES=$MAX_MINUTES);" \
    "a full hour of each: \$$HOURLY; budget PROBE_BUDGET_USD=$BUDGET_SHOWN"
if [[ "$FITS" != 1 ]]; then
    refuse "the worst case $WORST is not under PROBE_BUDGET_USD=$BUDGET_SHOWN: raise it, lower PROBE_MAX_MINUTES, or skip probes"
fi
if [[ "${PROBE_YES:-}" != 1 ]]; then
    if ! ( exec < /dev/tty ) 2> /dev/null; then
        refuse "no terminal to confirm on: set PROBE_YES=1 to go on without asking"
    fi
    exec 3< /dev/tty
    printf 'probe: type yes to create the above: ' > /dev/tty
    REPLY=""
    read -r -t 300 -u 3 REPLY || true
    exec 3<&-
    [[ "$REPLY" == yes ]] || refuse "not confirmed (typed '$REPLY', not yes)"
fi

# -- from here on, anything created is deleted on the way out --------------------------------

STARTED=1
DEADLINE=$(( SECONDS + MAX_MINUTES * 60 - RESERVE_S ))
trap 'FAILED_AT=$LINENO' ERR

# -- probe 3: catalogue (read-only) ----------------------------------------------------------

PROBE=3
if [[ "$SKIP_CATALOGUE" == 1 ]]; then
    skipped "catalogue" "PROBE_SKIP_CATALOGUE=1"
else
    say "probe 3: catalogue"
    cp "$WORK/plans" "$WORK/list/plans.all"
    vcg_status=200
    list_all "/plans?type=vcg" plans "$WORK/list/plans.vcg" || vcg_status="$API_STATUS $API_ERROR"
    vdm_status=200
    list_all "/plans?type=vdm" plans "$WORK/list/plans.vdm" || vdm_status="$API_STATUS $API_ERROR"
    mapfile -t REGION_IDS < <(python3 -I -c 'import json,sys
for line in open(sys.argv[1]):
    print(json.loads(line).get("id", ""))' "$WORK/regions" | head -n "$MAX_REGIONS")
    for region in "${REGION_IDS[@]}"; do
        [[ "$region" =~ ^[a-z0-9]{2,12}$ ]] || continue
        availability "$region" vcg
        availability "$region"
    done
    py catalogue "$WORK/list/plans.all" "$WORK/list/plans.vcg" "$vcg_status" \
        "$WORK/list/plans.vdm" "$vdm_status" "$WORK/avail" "$WORK/summary" "${REGION_IDS[@]}" \
        >> "$WORK/section.3"
    grep '^| 3 |' "$WORK/summary" | while IFS= read -r row; do say "[3] $row"; done
fi

# -- probe 1: user_data size limit -----------------------------------------------------------

PROBE=1
if [[ "$SKIP_USERDATA" == 1 ]]; then
    skipped "user_data size limit" "PROBE_SKIP_USERDATA=1"
else
    say "probe 1: user_data limit on ${C[vc2_plan]} in $REGION"
    note "Plan ${C[vc2_plan]} (the cheapest vc2 offered in $REGION; listed in its availability:" \
        "${C[vc2_listed]}), os_id ${C[os_id]} (${C[os_name]}). Each user_data is a cloud-config" \
        "of exactly the size named (comment lines as padding), sent base64-encoded as \`user_data\`;" \
        "an accepted instance is read back (\`GET .../user-data\`) and deleted at once."
    note ""
    for kib in $USERDATA_KIB; do
        bytes=$(( kib * 1024 ))
        question="user_data $kib KiB ($bytes bytes)"
        if (( $(time_left) < 60 )); then skipped "$question" "the PROBE_MAX_MINUTES window is spent"; continue; fi
        b64_len="$(py userdata "$bytes" "$RUN_ID" "$WORK/userdata.b64")"
        question="user_data $kib KiB ($bytes bytes, $b64_len base64 characters)"
        create_instance "ud$kib" "${C[vc2_plan]}" "$REGION" "os_id:=${C[os_id]}" \
            "user_data@=$WORK/userdata.b64"
        if [[ "$API_STATUS" == 2* ]]; then
            created="$API_STATUS"
            readback="not read back (no instance id in the answer)"
            if [[ -n "$INSTANCE_ID" ]]; then
                api GET "/instances/$INSTANCE_ID/user-data"
                if [[ "$API_STATUS" == 200 ]]; then
                    readback="$(py readback "$RESP" "$WORK/userdata.b64")"
                else
                    readback="read back: $API_STATUS $API_ERROR"
                fi
                delete_instance "$INSTANCE_ID" || true
                note "- $kib KiB: instance $INSTANCE_ID, DELETE at once: $FIRST_STATUS${FIRST_ERROR:+ $FIRST_ERROR}"
            fi
            finding "$question" "$created" "accepted; $readback"
        else
            finding "$question" "$API_STATUS" "refused: $API_ERROR"
        fi
    done
fi

# -- probe 2: refusal texts ------------------------------------------------------------------

gone_question() {  # METHOD WHEN
    api "$1" "/instances/$GONE_ID"
    finding "$1 of the deleted instance, $2" "$API_STATUS" "$(answer_text "answered as if it still existed")"
    if [[ "$1" == GET && "$API_STATUS" == 200 ]]; then
        note "- $1 $2: the instance read: $(py state "$RESP") (status power_status server_status main_ip)"
    fi
}

PROBE=2
if [[ "$SKIP_REFUSALS" == 1 ]]; then
    skipped "refusal texts" "PROBE_SKIP_REFUSALS=1"
elif (( $(time_left) < 120 )); then
    skipped "refusal texts" "the PROBE_MAX_MINUTES window is spent"
else
    say "probe 2: refusal texts in $REGION"
    BLOCK_ID=""
    if [[ -z "${C[block_type]}" ]]; then
        skipped "detach of a block that is not attached" "$REGION offers no block storage"
        skipped "attach while the instance is still booting" "$REGION offers no block storage"
    else
        py body "$WORK/body.json" "region=$REGION" "size_gb:=${C[block_size]}" \
            "label=$RUN_TAG-refusals" "block_type=${C[block_type]}"
        api POST /blocks "$WORK/body.json"
        if [[ "$API_STATUS" == 2* ]]; then
            BLOCK_ID="$(py get "$RESP" block.id)"
            remember block "${BLOCK_ID:-unknown}" "$RUN_TAG-refusals"
        else
            finding "create of a ${C[block_type]} block of ${C[block_size]} GB" "$API_STATUS" "$API_ERROR"
        fi
    fi
    if [[ -n "$BLOCK_ID" ]]; then
        t0="$(now_ms)"
        if poll "$BLOCK_WAIT_S" "/blocks/$BLOCK_ID" block_active; then
            note "- block $BLOCK_ID (${C[block_type]}, ${C[block_size]} GB) active after $(secs $(( $(now_ms) - t0 ))) s"
        else
            note "- block $BLOCK_ID not active after ${BLOCK_WAIT_S} s (last read $API_STATUS); the refusals below may be about that"
        fi
        py body "$WORK/body.json" "live:=true"
        api POST "/blocks/$BLOCK_ID/detach" "$WORK/body.json"
        finding "detach of a block that is not attached" "$API_STATUS" "$(answer_text "accepted")"
    fi
    create_instance refusals "${C[vc2_plan]}" "$REGION" "os_id:=${C[os_id]}"
    if [[ "$API_STATUS" != 2* ]]; then
        finding "create of ${C[vc2_plan]} in $REGION (for the refusals)" "$API_STATUS" "$API_ERROR"
    elif [[ -n "$INSTANCE_ID" ]]; then
        GONE_ID="$INSTANCE_ID"
        if [[ -n "$BLOCK_ID" ]]; then
            py body "$WORK/body.json" "instance_id=$INSTANCE_ID" "live:=true"
            api POST "/blocks/$BLOCK_ID/attach" "$WORK/body.json"
            finding "attach while the instance is still booting" "$API_STATUS" "$(answer_text "accepted")"
            api GET "/instances/$INSTANCE_ID"
            note "- the instance just after that attach: $(py state "$RESP") (status power_status server_status main_ip)"
        fi
        delete_instance "$INSTANCE_ID" || true
        finding "DELETE of the instance just created" "$FIRST_STATUS" \
            "$(if [[ "$FIRST_STATUS" == 2* ]]; then echo accepted; else echo "$FIRST_ERROR"; fi)"
        gone_question GET "at once"
        gone_question DELETE "at once"
        if (( $(time_left) > GONE_RECHECK_S + 60 )); then
            sleep "$GONE_RECHECK_S"
            gone_question GET "${GONE_RECHECK_S} s later"
        else
            skipped "GET of the deleted instance, ${GONE_RECHECK_S} s later" "the PROBE_MAX_MINUTES window is spent"
        fi
    fi
    if [[ -n "$BLOCK_ID" ]]; then
        delete_block "$BLOCK_ID" || note "- the block could not be deleted yet ($API_STATUS $API_ERROR); the cleanup retries"
    fi
    if [[ -z "${C[unavailable_plan]}" ]]; then
        skipped "create of a plan that availability does not list" "every plan of GET /plans is listed in $REGION"
    else
        create_instance unavailable "${C[unavailable_plan]}" "$REGION" "os_id:=${C[os_id]}"
        question="create of a plan availability does not list (${C[unavailable_plan]} in $REGION, ${C[unavailable_kind]%%:*})"
        if [[ "$API_STATUS" == 2* ]]; then
            finding "$question" "$API_STATUS" "ACCEPTED: the instance was created (and is deleted at once)"
            if [[ -n "$INSTANCE_ID" ]]; then delete_instance "$INSTANCE_ID" || true; fi
        else
            finding "$question" "$API_STATUS" "$API_ERROR"
        fi
        note "- the plan availability does not list: ${C[unavailable_plan]} (${C[unavailable_kind]}), $(py money "${C[unavailable_price]}")/h"
    fi
fi

# -- probe 4: GPU virtualization mode ---------------------------------------------------------

instance_ok() {
    local state status server
    state="$(py state "$RESP")"
    read -r status _ server _ <<< "$state"
    if [[ -z "$T_ACTIVE" && "$status" == active ]]; then T_ACTIVE=$(( $(now_ms) - T0 )); fi
    if [[ -z "$T_OK" && "$server" == ok ]]; then T_OK=$(( $(now_ms) - T0 )); fi
    LAST_STATE="$state"
    [[ "$status" == active && "$server" == ok ]]
}

# shellcheck disable=SC2016  # expanded on the instance, not here
REMOTE='echo "== nvidia-smi -q | grep -i -A1 virtualization"
nvidia-smi -q 2>&1 | grep -i -A1 virtualization || echo "(no line matched)"
echo "== nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1
echo "== nvidia-gridd"
if command -v nvidia-gridd >/dev/null 2>&1; then echo "present: $(command -v nvidia-gridd)"; else echo "absent"; fi
systemctl is-active nvidia-gridd 2>&1 || true'

TIMEOUT=()
if command -v timeout > /dev/null; then TIMEOUT=(timeout 90); fi

ssh_probe() {  # IP OUT: 0 when the command ran
    local ip="$1" out="$2" until=$(( SECONDS + SSH_WAIT_S )) tries=0
    while (( tries < 60 && SECONDS < until && SECONDS < DEADLINE )); do
        tries=$(( tries + 1 ))
        if "${TIMEOUT[@]}" ssh -F /dev/null -i "$WORK/ssh/id_ed25519" -o IdentitiesOnly=yes \
                -o BatchMode=yes -o StrictHostKeyChecking=accept-new \
                -o UserKnownHostsFile="$WORK/ssh/known_hosts" -o GlobalKnownHostsFile=/dev/null \
                -o ConnectTimeout=10 -o ServerAliveInterval=5 -o ServerAliveCountMax=3 \
                "root@$ip" "$REMOTE" > "$out" 2> "$WORK/ssh/err"; then
            SSH_TRIES="$tries"
            return 0
        fi
        sleep 10
    done
    SSH_TRIES="$tries"
    return 1
}

PROBE=4
if [[ "$SKIP_GPU" == 1 ]]; then
    skipped "GPU virtualization mode" "PROBE_SKIP_GPU=1"
elif [[ -z "$GPU_PLANS" ]]; then
    skipped "GPU virtualization mode" "PROBE_GPU_PLANS is not set (e.g. PROBE_GPU_PLANS='vcg-... vdm-...' with PROBE_SNAPSHOT or PROBE_GPU_OS_ID)"
else
    say "probe 4: GPU plans $GPU_PLANS"
    mkdir -p "$WORK/ssh"
    ssh-keygen -q -t ed25519 -N '' -C "$RUN_TAG" -f "$WORK/ssh/id_ed25519"
    py body "$WORK/body.json" "name=$RUN_TAG" "ssh_key@=$WORK/ssh/id_ed25519.pub"
    api POST /ssh-keys "$WORK/body.json"
    KEY_ID=""
    if [[ "$API_STATUS" == 2* ]]; then
        KEY_ID="$(py get "$RESP" ssh_key.id)"
        remember sshkey "${KEY_ID:-unknown}" "$RUN_TAG"
    else
        finding "POST /ssh-keys" "$API_STATUS" "$API_ERROR"
    fi
    if [[ -n "$SNAPSHOT" ]]; then
        SOURCE="snapshot_id=$SNAPSHOT"
        FROM="from snapshot"
    else
        SOURCE="os_id:=$GPU_OS_ID"
        FROM="from os $GPU_OS_ID"
    fi
    note "Booted from ${SOURCE/:=/=}, with an SSH key made for this run (\`$RUN_TAG\`); times are counted from just before the create request and read every PROBE_POLL_S=$POLL_S s (each is at most that late)."
    note ""
    for plan in $GPU_PLANS; do
        where="${GPU_REGION[$plan]}"
        if (( $(time_left) < 120 )); then skipped "$plan in $where" "the PROBE_MAX_MINUTES window is spent"; continue; fi
        extra=()
        if [[ -n "$KEY_ID" ]]; then extra=("sshkey_id[]=$KEY_ID"); fi
        T0="$(now_ms)"
        create_instance "gpu-$plan" "$plan" "$where" "$SOURCE" "${extra[@]}"
        if [[ "$API_STATUS" != 2* || -z "$INSTANCE_ID" ]]; then
            finding "$plan in $where: create" "$API_STATUS" "$(answer_text "accepted without an id")"
            continue
        fi
        T_ACTIVE=""
        T_OK=""
        LAST_STATE=""
        wait_s=$(( BOOT_WAIT_S < $(time_left) ? BOOT_WAIT_S : $(time_left) ))
        if poll "$wait_s" "/instances/$INSTANCE_ID" instance_ok; then
            finding "$plan in $where $FROM: seconds from create to status active" "$API_STATUS" "$(secs "$T_ACTIVE")"
            finding "$plan in $where $FROM: seconds from create to server_status ok" "$API_STATUS" "$(secs "$T_OK")"
            IP="$(py get "$RESP" instance.main_ip)"
            if [[ "$SKIP_SSH" == 1 ]]; then
                skipped "$plan in $where: nvidia-smi over ssh" "PROBE_SKIP_SSH=1"
            elif ! [[ "$IP" =~ ^[0-9.]+$ ]]; then
                finding "$plan in $where: nvidia-smi over ssh" "-" "no IPv4 address to reach ($IP)"
            elif ssh_probe "$IP" "$WORK/ssh/out"; then
                finding "$plan in $where: seconds from create to ssh answering" "-" "$(secs $(( $(now_ms) - T0 )))"
                mode="$(grep -i -m 1 'virtualization mode' "$WORK/ssh/out" | tr -s ' ' || true)"
                finding "$plan in $where: nvidia-smi virtualization mode" "-" "${mode:-no Virtualization Mode line}"
                gridd="$(sed -n '/^== nvidia-gridd/{n;p;}' "$WORK/ssh/out")"
                finding "$plan in $where: nvidia-gridd" "-" "${gridd:-unknown}"
                {
                    echo "- $plan in $where (instance $INSTANCE_ID), what the instance said:"
                    echo
                    echo '```'
                    head -c 6000 "$WORK/ssh/out"
                    echo '```'
                } >> "$WORK/section.4"
            else
                finding "$plan in $where: nvidia-smi over ssh" "-" \
                    "ssh failed $SSH_TRIES times: $(tail -n 1 "$WORK/ssh/err" | cut -c 1-200)"
            fi
        else
            finding "$plan in $where: server_status ok" "$API_STATUS" \
                "not within ${wait_s} s (last: $LAST_STATE; active after ${T_ACTIVE:+$(secs "$T_ACTIVE") s}${T_ACTIVE:-never})"
        fi
        delete_instance "$INSTANCE_ID" || true
    done
    if [[ -n "$KEY_ID" ]]; then delete_ssh_key "$KEY_ID" || true; fi
fi

PROBE=finished
say "probes done after $CALLS requests"
exit 0

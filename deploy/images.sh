#!/usr/bin/env bash
# Build the four service images with podman and smoke-run each one (`make images`).
#
#   bash deploy/images.sh           # everything: tools, base, wheels, images, smoke runs
#   bash deploy/images.sh wheels    # only the host wheelhouses (for docker compose build)
#   bash deploy/images.sh base      # only podman's configuration and the debootstrap base image
#                                   # (kept and reused when it exists: the compose test's cache)
#   bash deploy/images.sh build     # base, wheels and the four service images; no smoke runs
#
# No Docker engine and no image registry here: podman (from Debian's packages)
# builds the images, on a base made with debootstrap (localhost/bookworm-python,
# Python 3.11 like python:3.11-slim). Wheels are built on the host into
# build/wheelhouse/<service>/ and installed in the images with --no-index.
# A service whose package folder (services/<name>/<name>/) does not exist yet is
# skipped with a message.
#
# Each built image is run once with host networking against the local RabbitMQ
# (a dedicated vhost when rabbitmqctl can make one) and a SQLite database inside
# the container, on a free port from 18001..18004 up; GET /health and /ready must
# both answer 200 within SMOKE_TIMEOUT seconds (default 60).
# Exits non-zero when a build fails or a started container is not healthy.
#
# Environment: BASE_IMAGE (default localhost/bookworm-python), DEBIAN_MIRROR
# (default: the one apt uses), SMOKE_AMQP_URI, SMOKE_TIMEOUT, IMAGE_TAG (dev).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

MODE="${1:-all}"
case "$MODE" in
  all|wheels|base|build) ;;
  *) echo "usage: $0 [all|wheels|base|build]" >&2; exit 2 ;;
esac

SERVICES=(membership catalogue billing scheduling)
declare -A CLASS=([membership]=MembershipService [catalogue]=CatalogueService
                  [billing]=BillingService [scheduling]=SchedulingService)
declare -A PORT_INDEX=([membership]=1 [catalogue]=2 [billing]=3 [scheduling]=4)

BUILD_DIR="$ROOT/build"
WHEELHOUSE="$BUILD_DIR/wheelhouse"
BASE_IMAGE="${BASE_IMAGE:-localhost/bookworm-python}"
IMAGE_TAG="${IMAGE_TAG:-dev}"
SMOKE_TIMEOUT="${SMOKE_TIMEOUT:-60}"
SMOKE_VHOST="partnership-smoke"
START_SECONDS=$SECONDS

log() { printf '==> %s\n' "$*"; }
warn() { printf '!!  %s\n' "$*" >&2; }
die() { warn "$*"; exit 1; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo -n "$@"
  else die "need root for: $*"
  fi
}

# --- which services have code --------------------------------------------------
PRESENT=()
for name in "${SERVICES[@]}"; do
  if [ -d "services/$name/$name" ] && [ -f "services/$name/pyproject.toml" ] \
     && [ -f "services/$name/Dockerfile" ]; then
    PRESENT+=("$name")
  else
    log "skip $name: services/$name/$name/ or services/$name/pyproject.toml does not exist yet"
  fi
done
[ "${#PRESENT[@]}" -gt 0 ] || die "no service has code yet"

# --- host python for the wheels ----------------------------------------------------
host_python() {
  if [ -x "$ROOT/.venv/bin/python" ] && "$ROOT/.venv/bin/python" -m pip --version >/dev/null 2>&1; then
    echo "$ROOT/.venv/bin/python"; return
  fi
  local venv="$BUILD_DIR/venv"
  if ! [ -x "$venv/bin/python" ] || ! "$venv/bin/python" -m pip --version >/dev/null 2>&1; then
    rm -rf "$venv"
    python3 -m venv "$venv" >&2
  fi
  echo "$venv/bin/python"
}

build_wheels() {
  local py name
  py="$(host_python)"
  log "wheels with $py ($("$py" --version 2>&1))"
  # Build from a copy of the sources so setuptools leaves no build/ or
  # *.egg-info behind in the work tree.
  rm -rf "$BUILD_DIR/src"
  mkdir -p "$BUILD_DIR/src"
  tar -C "$ROOT" \
      --exclude='*.egg-info' --exclude=__pycache__ --exclude='*.pyc' \
      --exclude=./shared/build --exclude=./deploy/ops/build --exclude='./services/*/build' \
      --exclude='./services/*/var' --exclude='*.db' \
      -cf - shared deploy/ops "${PRESENT[@]/#/services/}" | tar -C "$BUILD_DIR/src" -xf -
  # One resolve for all services (they share shared's dependencies), then one
  # wheelhouse per service: every dependency wheel, shared's and its own.
  # SOURCE_DATE_EPOCH makes the project wheels byte-identical from run to run,
  # so podman's layer cache still holds when nothing changed.
  local all="$BUILD_DIR/wheels-all"
  rm -rf "$all"
  mkdir -p "$all"
  if ! env -u PIP_CONSTRAINT SOURCE_DATE_EPOCH="${SOURCE_DATE_EPOCH:-315532800}" \
        "$py" -m pip wheel --disable-pip-version-check \
        -c "$ROOT/constraints.txt" -w "$all" \
        "$BUILD_DIR/src/shared" "$BUILD_DIR/src/deploy/ops" "${PRESENT[@]/#/$BUILD_DIR/src/services/}" \
        > "$BUILD_DIR/wheels.log" 2>&1; then
    tail -n 30 "$BUILD_DIR/wheels.log" >&2
    die "pip wheel failed (log: build/wheels.log)"
  fi
  local whl base
  for name in "${PRESENT[@]}"; do
    rm -rf "${WHEELHOUSE:?}/$name"
    mkdir -p "$WHEELHOUSE/$name"
    for whl in "$all"/*.whl; do
      base="$(basename "$whl")"
      case "$base" in
        # partnership-ops goes in every image: its Jobs run the `partnership-ops` command there.
        partnership_shared-*|partnership_ops-*|"partnership_${name}-"*) ;;
        partnership_*) continue ;;
      esac
      cp -p "$whl" "$WHEELHOUSE/$name/"
    done
    log "wheelhouse build/wheelhouse/$name/: $(ls "$WHEELHOUSE/$name" | wc -l) wheels"
  done
}

if [ "$MODE" = wheels ]; then
  build_wheels
  log "done in $((SECONDS - START_SECONDS)) s"
  exit 0
fi

# --- tools ---------------------------------------------------------------------------
RUNC="$(command -v runc 2>/dev/null || true)"
[ -n "$RUNC" ] || RUNC=/usr/sbin/runc
missing=()
command -v podman >/dev/null 2>&1 || missing+=(podman)
[ -x "$RUNC" ] || missing+=(runc)
command -v debootstrap >/dev/null 2>&1 || [ -x /usr/sbin/debootstrap ] || missing+=(debootstrap)
if [ "${#missing[@]}" -gt 0 ]; then
  log "installing ${missing[*]} with apt-get (log: build/apt.log)"
  mkdir -p "$BUILD_DIR"
  { as_root env DEBIAN_FRONTEND=noninteractive apt-get update -q \
    && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q podman runc debootstrap
  } > "$BUILD_DIR/apt.log" 2>&1 || { tail -n 30 "$BUILD_DIR/apt.log" >&2; die "apt-get install failed"; }
  RUNC="$(command -v runc 2>/dev/null || echo /usr/sbin/runc)"
fi
DEBOOTSTRAP="$(command -v debootstrap 2>/dev/null || echo /usr/sbin/debootstrap)"

# The sandbox refuses podman's default ulimits and crun's cgroup handling.
mkdir -p "$BUILD_DIR/podman"
# The [engine] part lets plain `podman` (and podman-compose, and the `podman container cleanup`
# that applies a restart policy when a container exits) use runc and cgroupfs too.
cat > "$BUILD_DIR/podman/containers.conf" <<EOF
[containers]
default_ulimits = []

[engine]
runtime = "$RUNC"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
export CONTAINERS_CONF="$BUILD_DIR/podman/containers.conf"

pm() { podman --runtime "$RUNC" --cgroup-manager=cgroupfs "$@"; }
log "$(pm --version) with $("$RUNC" --version | head -n1)"

# --- base image ---------------------------------------------------------------------
debian_mirror() {
  if [ -n "${DEBIAN_MIRROR:-}" ]; then echo "$DEBIAN_MIRROR"; return; fi
  local f uri
  # deb822 (*.sources): the first enabled stanza whose Suites has bookworm.
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    uri="$(awk '
      function flush() { if (uri != "" && suites ~ /(^| )bookworm( |$)/ && enabled != "no" && !done) { print uri; done = 1 }
                         uri = ""; suites = ""; enabled = "" }
      /^[[:space:]]*$/ { flush(); next }
      /^[[:space:]]*#/ { next }
      tolower($1) == "uris:"    { uri = $2 }
      tolower($1) == "suites:"  { $1 = ""; suites = $0; sub(/^ +/, "", suites) }
      tolower($1) == "enabled:" { enabled = tolower($2) }
      END { flush() }' "$f")"
    if [ -n "$uri" ]; then echo "$uri"; return; fi
  done
  # one-line format: deb [options] URI bookworm components
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    uri="$(awk '$1 == "deb" { i = 2; if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
                              if ($(i+1) == "bookworm") { print $i; exit } }' "$f")"
    if [ -n "$uri" ]; then echo "$uri"; return; fi
  done
  echo "http://deb.debian.org/debian"
}

if pm image exists "$BASE_IMAGE"; then
  log "base image $BASE_IMAGE exists"
elif [ "$BASE_IMAGE" != localhost/bookworm-python ]; then
  die "base image $BASE_IMAGE not found (and only localhost/bookworm-python is built here)"
else
  mirror="$(debian_mirror)"
  rootfs="$BUILD_DIR/rootfs"
  log "base image: debootstrap bookworm from $mirror"
  as_root rm -rf "$rootfs"
  as_root "$DEBOOTSTRAP" --variant=minbase --include=python3,python3-venv,ca-certificates \
      bookworm "$rootfs" "$mirror" > "$BUILD_DIR/debootstrap.log" 2>&1 \
    || { tail -n 30 "$BUILD_DIR/debootstrap.log" >&2; die "debootstrap failed (log: build/debootstrap.log)"; }
  as_root rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/* \
      "$rootfs"/usr/share/doc "$rootfs"/usr/share/man "$rootfs"/usr/share/info
  as_root tar -C "$rootfs" -c . | pm import \
      --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
      --change 'ENV LANG=C.UTF-8' \
      --change 'CMD ["python3"]' \
      - "$BASE_IMAGE" >> "$BUILD_DIR/debootstrap.log" 2>&1
  as_root rm -rf "$rootfs"
  log "base image $BASE_IMAGE imported at $((SECONDS - START_SECONDS)) s"
  log "base image $BASE_IMAGE built: $(pm run --rm --network=host "$BASE_IMAGE" python3 --version)"
fi
if [ "$MODE" = base ]; then
  log "done in $((SECONDS - START_SECONDS)) s (podman: CONTAINERS_CONF=$CONTAINERS_CONF)"
  exit 0
fi

# --- wheels and images ----------------------------------------------------------------
build_wheels
log "wheels ready at $((SECONDS - START_SECONDS)) s"

failed=()
BUILT=()
for name in "${PRESENT[@]}"; do
  image="partnership-$name:$IMAGE_TAG"
  log "build $image"
  if pm build --format docker --network=host --build-arg "BASE_IMAGE=$BASE_IMAGE" \
        --build-arg "GIT_REVISION=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
        -t "$image" -f "services/$name/Dockerfile" . > "$BUILD_DIR/build-$name.log" 2>&1; then
    log "built $image ($(pm image inspect --format '{{.Size}}' "$image" | awk '{printf "%.0f MB", $1/1e6}'))"
    BUILT+=("$name")
  else
    tail -n 40 "$BUILD_DIR/build-$name.log" >&2
    warn "build of $image FAILED (log: build/build-$name.log)"
    failed+=("build:$name")
  fi
done
# Intermediate images are kept: they are the layer cache of the next run.
# (Rebuilds after changes leave dangling ones; `podman image prune` drops them.)

if [ "$MODE" = build ]; then
  if [ "${#failed[@]}" -gt 0 ]; then warn "FAILED: ${failed[*]} ($((SECONDS - START_SECONDS)) s)"; exit 1; fi
  log "images built: ${BUILT[*]/#/partnership-} ($((SECONDS - START_SECONDS)) s)"
  exit 0
fi

# --- smoke runs -----------------------------------------------------------------------
smoke_amqp_uri() {
  if [ -n "${SMOKE_AMQP_URI:-}" ]; then echo "$SMOKE_AMQP_URI"; return; fi
  # A vhost of its own keeps the smoke containers from consuming the queues of
  # services or tests running on the same broker.
  # Retried: tests on this machine may stop the broker's app for a moment.
  local attempt
  if command -v rabbitmqctl >/dev/null 2>&1 && [ "$(id -u)" -eq 0 ]; then
    for attempt in 1 2 3 4 5; do
      if { timeout 30 rabbitmqctl -q list_vhosts 2>/dev/null | grep -qx "$SMOKE_VHOST" \
           || timeout 30 rabbitmqctl -q add_vhost "$SMOKE_VHOST" >/dev/null 2>&1; } \
         && timeout 30 rabbitmqctl -q set_permissions -p "$SMOKE_VHOST" guest '.*' '.*' '.*' >/dev/null 2>&1; then
        echo "amqp://guest:guest@127.0.0.1:5672/$SMOKE_VHOST"; return
      fi
      sleep 3
    done
    warn "could not set up vhost $SMOKE_VHOST with rabbitmqctl; using /"
  fi
  echo "amqp://guest:guest@127.0.0.1:5672/"
}

port_free() {
  python3 - "$1" <<'EOF'
import socket, sys
s = socket.socket()
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
finally:
    s.close()
EOF
}

# Poll /health and /ready until both answer 200, the container stops, or the
# deadline passes. Prints one line per endpoint; exit 0 when both are 200.
poll() {  # container port timeout
  python3 - "$1" "$2" "$3" <<'EOF'
import subprocess, sys, time, urllib.error, urllib.request
container, port, timeout = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
deadline = time.monotonic() + timeout
start = time.monotonic()
last = {}

def get(path):
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=3) as r:
            return r.status, r.read().decode(errors="replace").strip()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace").strip()
    except Exception as e:  # noqa: BLE001
        return None, f"{type(e).__name__}: {e}"

while time.monotonic() < deadline:
    last = {p: get(p) for p in ("/health", "/ready")}
    if all(status == 200 for status, _ in last.values()):
        break
    running = subprocess.run(
        ["podman", "inspect", "--format", "{{.State.Running}}", container],
        capture_output=True, text=True).stdout.strip()
    if running != "true":
        print(f"   container stopped (running={running or 'gone'})")
        break
    time.sleep(1)
took = time.monotonic() - start
for path, (status, body) in last.items():
    print(f"   GET {path} -> {status} {body[:300]}")
ok = bool(last) and all(status == 200 for status, _ in last.values())
print(f"   {'healthy' if ok else 'NOT healthy'} after {took:.1f} s")
sys.exit(0 if ok else 1)
EOF
}

if [ "${#BUILT[@]}" -gt 0 ]; then
  amqp="$(smoke_amqp_uri)"
  log "smoke runs against $amqp"
fi
for name in "${BUILT[@]}"; do
  image="partnership-$name:$IMAGE_TAG"
  container="partnership-$name-smoke"
  port=""
  for try in 0 1 2 3 4 5 6 7 8 9; do
    candidate=$((18000 + PORT_INDEX[$name] + 10 * try))
    if port_free "$candidate"; then port=$candidate; break; fi
  done
  if [ -z "$port" ]; then warn "no free port for $name"; failed+=("smoke:$name"); continue; fi
  pm rm -f "$container" >/dev/null 2>&1 || true
  log "run $image on 127.0.0.1:$port (${CLASS[$name]})"
  # Not --rm: the logs must outlive a container that crashes; removed below.
  # Without systemd, podman cannot schedule the image's HEALTHCHECK (it says so
  # on stderr, harmlessly); it is run once by hand below instead.
  # A smoke run on the developer's broker (guest, SQLite): development mode, as images default to
  # production and refuse such settings.
  if ! pm run -d --network=host --name "$container" \
        -e "PARTNERSHIP_ENV=development" \
        -e "AMQP_URI=$amqp" \
        -e "DATABASE_URL=sqlite:////tmp/$name.db" \
        -e "WEB_SERVER_ADDRESS=127.0.0.1:$port" \
        "$image" > "$BUILD_DIR/run-$name.log" 2>&1; then
    cat "$BUILD_DIR/run-$name.log" >&2
    warn "could not start $image"; failed+=("smoke:$name"); continue
  fi
  if poll "$container" "$port" "$SMOKE_TIMEOUT"; then
    if pm healthcheck run "$container" >/dev/null 2>&1; then
      log "$name: image HEALTHCHECK passes"
    else
      warn "$name: image HEALTHCHECK fails"
      failed+=("healthcheck:$name")
    fi
  else
    warn "$name: not healthy; last log lines:"
    pm logs --tail 40 "$container" >&2 || true
    failed+=("smoke:$name")
  fi
  pm stop -t 10 "$container" >/dev/null 2>&1 || true
  pm rm -f "$container" >/dev/null 2>&1 || true
done

# The smoke vhost's queues and messages go with it; the next run makes it anew.
if [ "${amqp:-}" = "amqp://guest:guest@127.0.0.1:5672/$SMOKE_VHOST" ] && [ -z "${SMOKE_AMQP_URI:-}" ]; then
  timeout 30 rabbitmqctl -q delete_vhost "$SMOKE_VHOST" >/dev/null 2>&1 || true
fi

elapsed=$((SECONDS - START_SECONDS))
if [ "${#failed[@]}" -gt 0 ]; then
  warn "FAILED: ${failed[*]} (${elapsed} s)"
  exit 1
fi
log "images OK: ${BUILT[*]/#/partnership-} (${elapsed} s)"

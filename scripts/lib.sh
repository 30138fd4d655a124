# shellcheck shell=bash
# Provisioning helpers shared by scripts/run, scripts/test and .ci/run.
#
# Source this file; each ensure_* function is idempotent: it installs or starts
# only what is missing, so a second call on a provisioned machine is fast.
# Only Debian's packages are used (the machines have no container registry).

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export DEBIAN_FRONTEND=noninteractive

# cargo lives in ~/.cargo/bin, which a non-login shell may not have on PATH.
if ! command -v cargo >/dev/null 2>&1 && [ -x "${HOME:-/root}/.cargo/bin/cargo" ]; then
    export PATH="${HOME:-/root}/.cargo/bin:$PATH"
fi

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Runs a command as root (directly, or through sudo when we are not root).
as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# ensure_packages PKG... — installs the Debian packages that are not installed
# yet; runs `apt-get update` (once per shell) only when something is missing.
_APT_UPDATED=${_APT_UPDATED:-}
ensure_packages() {
    local missing=() pkg
    for pkg in "$@"; do
        if [ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null)" != "install ok installed" ]; then
            missing+=("$pkg")
        fi
    done
    [ "${#missing[@]}" -eq 0 ] && return 0
    log "installing ${missing[*]}"
    if [ -z "$_APT_UPDATED" ]; then
        as_root apt-get update -qq
        _APT_UPDATED=1
    fi
    as_root env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# ensure_postgres — when DATABASE_URL is unset, installs and starts a local
# PostgreSQL cluster listening on 127.0.0.1 only, creates the role and
# database `test_executor` and exports DATABASE_URL. The role may CREATE
# DATABASE: the test suite makes a fresh database per test. Its password is
# random, made on first provisioning and kept in PG_PASSWORD_FILE (root's,
# mode 0600), reused afterwards: no fixed password a project could guess.
PG_MAX_CONNECTIONS=300
PG_PASSWORD_FILE="${PG_PASSWORD_FILE:-/etc/test-executor/postgres-password}"

# postgres_password — the installation's database password (made once).
postgres_password() {
    if ! as_root test -s "$PG_PASSWORD_FILE"; then
        as_root install -d -m 0700 "$(dirname "$PG_PASSWORD_FILE")"
        head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' \
            | as_root tee "$PG_PASSWORD_FILE" >/dev/null
        as_root chmod 0600 "$PG_PASSWORD_FILE"
    fi
    as_root cat "$PG_PASSWORD_FILE"
}
ensure_postgres() {
    if [ -n "${DATABASE_URL:-}" ]; then
        log "using DATABASE_URL from the environment"
        return 0
    fi
    ensure_packages postgresql

    local line version cluster port status
    line="$(pg_lsclusters --no-header 2>/dev/null | head -n 1 || true)"
    if [ -z "$line" ]; then
        version="$(find /usr/lib/postgresql -mindepth 1 -maxdepth 1 -printf '%f\n' | sort -V | tail -n 1)"
        log "creating PostgreSQL $version cluster main"
        as_root pg_createcluster "$version" main >/dev/null
        line="$(pg_lsclusters --no-header | head -n 1)"
    fi
    read -r version cluster port status _ <<<"$line"

    # Many tests run at once, each with its own database and pool.
    local conf="/etc/postgresql/$version/$cluster/conf.d/test-executor.conf"
    local wanted="# Written by test-executor's scripts/lib.sh
listen_addresses = '127.0.0.1'
max_connections = $PG_MAX_CONNECTIONS"
    local changed=""
    if [ "$(cat "$conf" 2>/dev/null)" != "$wanted" ]; then
        printf '%s\n' "$wanted" | as_root tee "$conf" >/dev/null
        changed=1
    fi

    if [[ "$status" != online* ]]; then
        log "starting PostgreSQL $version/$cluster on port $port"
        as_root pg_ctlcluster "$version" "$cluster" start
    elif [ -n "$changed" ]; then
        log "restarting PostgreSQL $version/$cluster (its settings changed)"
        as_root pg_ctlcluster "$version" "$cluster" restart
    fi

    local i
    for i in $(seq 1 60); do
        pg_isready -q -h 127.0.0.1 -p "$port" && break
        [ "$i" -eq 60 ] && die "PostgreSQL did not accept connections on 127.0.0.1:$port"
        sleep 0.5
    done

    _pg_admin() { as_root runuser -u postgres -- psql -X -q -v ON_ERROR_STOP=1 -p "$port" "$@"; }
    local password
    password="$(postgres_password)"
    # The password reaches psql on its standard input, not its command line.
    { printf '\\set pw %s\n' "$password"; cat <<'SQL'; } | _pg_admin -d postgres
SELECT format('CREATE ROLE test_executor LOGIN CREATEDB PASSWORD %L', :'pw')
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'test_executor') \gexec
SELECT format('ALTER ROLE test_executor LOGIN CREATEDB PASSWORD %L', :'pw') \gexec
SELECT format('CREATE ROLE %I NOLOGIN', r) FROM unnest(array['te_web', 'te_worker']) r
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = r) \gexec
GRANT te_web, te_worker TO test_executor;
SQL
    if [ "$(_pg_admin -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'test_executor'")" != 1 ]; then
        _pg_admin -d postgres -c 'CREATE DATABASE test_executor OWNER test_executor'
    fi
    export DATABASE_URL="postgres://test_executor:$password@127.0.0.1:$port/test_executor"
}

# runner_image_hash — sha256 over the runner-image/ folder (paths and
# contents, sorted), so any change to it names a new image.
runner_image_hash() {
    (cd "$REPO_ROOT" && find runner-image -type f ! -name '*.pyc' -print0 \
        | LC_ALL=C sort -z | xargs -0 sha256sum | sha256sum | cut -c1-64)
}

# ensure_runner_image — builds test-executor-runner:<hash> offline when it is
# missing and points test-executor-runner:latest at it. Exports RUNNER_IMAGE
# (unless already set).
ensure_runner_image() {
    command -v docker >/dev/null 2>&1 || die "docker is not installed"
    docker info >/dev/null 2>&1 || die "the Docker engine is not reachable (is dockerd running?)"
    local tag
    tag="test-executor-runner:$(runner_image_hash | cut -c1-12)"
    if ! docker image inspect "$tag" >/dev/null 2>&1; then
        log "building runner image $tag (offline, from Debian's packages)"
        bash "$REPO_ROOT/runner-image/build-offline.sh" "$tag"
    fi
    docker tag "$tag" test-executor-runner:latest
    export RUNNER_IMAGE="${RUNNER_IMAGE:-test-executor-runner:latest}"
}

# ensure_chromium — Debian's chromium and chromedriver, for the browser tests.
ensure_chromium() {
    ensure_packages chromium chromium-driver
    local driver
    driver="$(command -v chromedriver || true)"
    [ -n "$driver" ] || die "chromedriver not found after installing chromium-driver"
    export CHROMEDRIVER="${CHROMEDRIVER:-$driver}"
    export CHROME_BIN="${CHROME_BIN:-$(command -v chromium)}"
}

# drop_test_databases — removes the per-test databases earlier runs left.
drop_test_databases() {
    local db
    for db in $(psql "$DATABASE_URL" -tAc "select datname from pg_database where datname like 'te\_test\_%'" 2>/dev/null); do
        psql "$DATABASE_URL" -qc "drop database if exists $db" >/dev/null 2>&1 || true
    done
}

# remove_stale_sandboxes — warm sandboxes that never got a run and stopped
# (their server went away); a live server's warm sandboxes are running.
remove_stale_sandboxes() {
    docker ps -aq --filter label=te.instance --filter name=-pool- \
        --filter status=created --filter status=exited \
        | xargs -r docker rm -f >/dev/null 2>&1 || true
}

# service_image_tag NAME — the tag of a service image built offline by
# scripts/compose/build-images, named by a hash of its recipe (postgres, redis).
service_image_tag() {
    local recipe
    recipe="$(cat "$REPO_ROOT/scripts/compose/build-images" "$REPO_ROOT/scripts/compose/postgres-entrypoint.sh" | sha256sum | cut -c1-12)"
    printf 'test-executor-%s:offline-%s\n' "$1" "$recipe"
}

# ensure_service_images — builds the service images a project may declare
# (`[[services]] image = "postgres"` or `"redis"`) offline from Debian's
# packages when their recipe changed (~2 min each), points
# test-executor-<name>:latest (the server's default) at each, and exports SERVICE_IMAGES naming it (unless
# already set: an operator may map `postgres=postgres:16`).
ensure_service_images() {
    local name tag offered=()
    for name in postgres redis; do
        tag="$(service_image_tag "$name")"
        if ! docker image inspect "$tag" >/dev/null 2>&1; then
            log "building service image $tag (offline, from Debian's packages)"
            bash "$REPO_ROOT/scripts/compose/build-images" "$name" "$tag"
        fi
        docker tag "$tag" "test-executor-$name:latest"
        offered+=("$name=$tag")
    done
    export SERVICE_IMAGES="${SERVICE_IMAGES:-$(IFS=,; echo "${offered[*]}")}"
}

#!/usr/bin/env bash
# Builds the runner image without a container registry: a minimal Debian
# (bookworm) root with python3, python3-pytest, python3-venv (pip for the
# dependency images, src/dependencies) and apt (a project's Debian packages,
# `[build] system_packages`) made by mmdebstrap from Debian's packages,
# imported into Docker as the tag given.
#
#   runner-image/build-offline.sh test-executor-runner:dev
#
# mmdebstrap downloads the packages every time (~20 s): scripts/lib.sh calls
# this only when the image for the current runner-image/ contents is missing.
set -euo pipefail

tag="${1:?usage: build-offline.sh IMAGE:TAG}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=scripts/lib.sh
source "$here/../scripts/lib.sh"

ensure_packages mmdebstrap

# Use the host's own Debian sources (mirror and updates) when it has them;
# otherwise mmdebstrap's default mirrors.
sources=()
for f in /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list; do
    if [ -f "$f" ] && grep -Eq '^[[:space:]]*(deb |Types:)' "$f"; then
        sources+=("$f")
        break
    fi
done

# mmdebstrap's chatter goes to a log that is shown only if the build fails.
build_log="$(mktemp)"
# shellcheck disable=SC2154  # rc is assigned inside the trap
trap 'rc=$?; [ "$rc" -eq 0 ] || cat "$build_log" >&2; rm -f "$build_log"' EXIT

start=$EPOCHREALTIME
export TE_RUNNER_SRC="$here"
# The hooks are expanded by mmdebstrap's shell ($1 is the new root).
# shellcheck disable=SC2016
mmdebstrap \
    --variant=essential \
    --include=python3,python3-pytest,python3-venv,apt \
    --hook-dir=/usr/share/mmdebstrap/hooks/merged-usr \
    --aptopt='Acquire::Check-Valid-Until "false"' \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-include=/usr/share/locale/locale.alias' \
    --customize-hook='echo "runner:x:1000:1000::/tmp:/bin/sh" >> "$1/etc/passwd"' \
    --customize-hook='echo "runner:x:1000:" >> "$1/etc/group"' \
    --skip=cleanup/tmp \
    --customize-hook='rm -rf "$1"/tmp/* && install -d -o 1000 -g 1000 -m 0755 "$1/tmp/te"' \
    --customize-hook='install -d -o 1000 -g 1000 -m 0755 "$1/opt/venv" "$1/var/cache/te-pip"' \
    --customize-hook='mkdir -p "$1/opt/te" && install -m 0644 "$TE_RUNNER_SRC/te_runner.py" "$TE_RUNNER_SRC/te_plugin.py" "$TE_RUNNER_SRC/te_imports.py" "$TE_RUNNER_SRC/te_deferred.py" "$TE_RUNNER_SRC/te_hang.py" "$TE_RUNNER_SRC/te_usage.py" "$TE_RUNNER_SRC/te_shard.py" "$1/opt/te/"' \
    --customize-hook='chroot "$1" sh -c "python3 -m zipfile -e /usr/share/python-wheels/pip-*.whl /opt/te/pip && python3 -m compileall -q --invalidation-mode unchecked-hash /opt/te/pip >/dev/null"' \
    --customize-hook='rm -rf "$1"/var/cache/apt/* "$1"/var/lib/apt/lists/* "$1"/var/log/apt/* "$1"/var/log/dpkg.log' \
    --format=tar \
    bookworm - "${sources[@]}" 2>"$build_log" \
| docker import \
    --change 'USER 1000:1000' \
    --change 'WORKDIR /tmp' \
    --change 'ENV PYTHONDONTWRITEBYTECODE=1' \
    --change 'ENV PYTHONUNBUFFERED=1' \
    --change 'CMD ["python3","/opt/te/te_runner.py"]' \
    --message "test-executor runner image (offline build)" \
    - "$tag" >/dev/null

size=$(docker image inspect -f '{{.Size}}' "$tag")
awk -v s="$start" -v e="$EPOCHREALTIME" -v tag="$tag" -v size="$size" \
    'BEGIN { printf "==> built %s in %.1f s, %d MB\n", tag, e - s, size / 1000000 }' >&2

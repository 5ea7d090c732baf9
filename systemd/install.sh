#!/usr/bin/env bash
# Installs plc2mqtt as a systemd service on Debian/Ubuntu. See systemd/README.md.
#
# Layout (every path as seen on the target system):
#   /opt/plc2mqtt/lib/node_modules/plc2mqtt/   the package (npm install -g --prefix /opt/plc2mqtt)
#   /usr/local/bin/plc2mqtt                    CLI wrapper: runs the package with the chosen node
#   /etc/systemd/system/plc2mqtt.service       the unit (replaced on every install)
#   /etc/systemd/system/plc2mqtt.service.d/10-node.conf   only when node is not /usr/bin/node
#   /etc/plc2mqtt/gateway.yaml                 starter config, only if missing (never replaced)
#   /etc/plc2mqtt/credentials/mqtt_password    empty placeholder, only if missing (root, 0600)
#   /var/lib/plc2mqtt                          not created here: systemd's StateDirectory= does
#
# Contract: idempotent (a second run upgrades the package and the unit, keeps config and
# credentials); --root DIR stages everything under DIR (paths inside files stay the target's)
# and never calls systemctl; without systemd running, systemctl is skipped too.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: install.sh [--root DIR] [--tarball FILE] [--node PATH] [--no-start]

  --root DIR      install under DIR instead of / (a staging or test root); implies --no-start
  --tarball FILE  the npm package to install (default: `npm pack` of this checkout, which
                  needs `npm run build` first)
  --node PATH     Node.js 24 or newer that runs the service, as a path on the target system
                  (default /usr/bin/node, else /usr/local/bin/node)
  --no-start      enable the unit but do not (re)start it
npm settings apply as usual (e.g. NPM_CONFIG_PREFER_OFFLINE=true, NPM_CONFIG_REGISTRY=...).
EOF
}

die() {
  echo "install.sh: $*" >&2
  exit 1
}

PREFIX=/opt/plc2mqtt
PKG="$PREFIX/lib/node_modules/plc2mqtt"
MAIN="$PKG/dist/src/main.js"
UNIT_DIR=/etc/systemd/system
CONF_DIR=/etc/plc2mqtt
WRAPPER=/usr/local/bin/plc2mqtt
WRAPPER_MARK="# plc2mqtt-wrapper (written by install.sh)"
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

root=""
tarball=""
node=""
start=yes
while [ $# -gt 0 ]; do
  case "$1" in
    --root) [ $# -ge 2 ] || die "--root needs a directory"; root=$2; shift 2 ;;
    --root=*) root=${1#--root=}; shift ;;
    --tarball) [ $# -ge 2 ] || die "--tarball needs a file"; tarball=$2; shift 2 ;;
    --tarball=*) tarball=${1#--tarball=}; shift ;;
    --node) [ $# -ge 2 ] || die "--node needs a path"; node=$2; shift 2 ;;
    --node=*) node=${1#--node=}; shift ;;
    --no-start) start=no; shift ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; die "unknown option: $1" ;;
  esac
done

if [ -n "$root" ]; then
  [ -d "$root" ] || die "--root $root: no such directory"
  root=$(cd "$root" && pwd)
  [ "$root" = / ] && root=""
fi
if [ -z "$root" ] && [ "$(id -u)" -ne 0 ]; then
  die "installing into / needs root: run with sudo (or stage with --root DIR)"
fi
umask 022

# --- Node.js: a path the sandboxed service can execute, version 24 or newer. ---
node_major() { "$1" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }
if [ -z "$node" ]; then
  for candidate in /usr/bin/node /usr/local/bin/node; do
    if [ -x "$root$candidate" ] && [ "$(node_major "$root$candidate")" -ge 24 ]; then
      node=$candidate
      break
    fi
  done
  [ -n "$node" ] || die "no Node.js 24 at /usr/bin/node or /usr/local/bin/node: install it (NodeSource's nodejs package for Debian/Ubuntu) or pass --node PATH"
fi
case "$node" in
  /*) ;;
  *) die "--node $node: give an absolute path" ;;
esac
case "$node" in
  *[[:space:]\"\'\\%\$]*) die "--node $node: the path must not contain spaces, quotes, \\, % or \$" ;;
  /home/* | /root/* | /run/user/*) die "--node $node: the service cannot see it (ProtectHome=yes); install Node.js 24 under /usr or /opt" ;;
  /tmp/* | /var/tmp/*) die "--node $node: the service cannot see it (PrivateTmp=yes); install Node.js 24 under /usr or /opt" ;;
esac
[ -x "$root$node" ] || die "--node $node: not an executable file${root:+ under $root}"
major=$(node_major "$root$node")
[ "$major" -ge 24 ] || die "--node $node is Node.js $major; plc2mqtt needs 24 or newer"
command -v npm >/dev/null || die "npm is missing (it comes with Node.js)"
if [ -e "$root$WRAPPER" ] && ! grep -qF "$WRAPPER_MARK" "$root$WRAPPER"; then
  die "$root$WRAPPER exists and is not plc2mqtt's wrapper: remove it first"
fi

# --- The package: npm pack of this checkout unless a tarball is given. ---
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
if [ -z "$tarball" ]; then
  repo=$(dirname "$HERE")
  [ -f "$repo/package.json" ] || die "no --tarball and $repo is not a plc2mqtt checkout"
  [ -f "$repo/dist/src/main.js" ] || die "$repo/dist is missing: run npm run build first (or pass --tarball)"
  name=$(cd "$repo" && npm pack --silent --pack-destination "$work") || die "npm pack in $repo failed"
  tarball="$work/$name"
fi
[ -f "$tarball" ] || die "--tarball $tarball: no such file"
tarball=$(cd "$(dirname "$tarball")" && pwd)/$(basename "$tarball")

echo "install.sh: installing $(basename "$tarball") into $root$PREFIX"
mkdir -p "$root$PREFIX"
# Install scripts stay off: the one native dependency (serialport) ships prebuilt binaries.
npm install --global --prefix "$root$PREFIX" --omit=dev --ignore-scripts --no-audit --no-fund \
  --loglevel=error "$tarball" >/dev/null || die "npm install of $tarball failed"
[ -f "$root$MAIN" ] || die "$root$MAIN missing after npm install: is $tarball a plc2mqtt package?"

# --- CLI wrapper: the same node as the service, whatever node comes first on PATH. ---
mkdir -p "$root$(dirname "$WRAPPER")"
cat >"$work/wrapper" <<EOF
#!/bin/sh
$WRAPPER_MARK
exec $node $MAIN "\$@"
EOF
install -m 0755 "$work/wrapper" "$root$WRAPPER"

# --- The unit, and the drop-in naming another node. ---
install -D -m 0644 "$HERE/plc2mqtt.service" "$root$UNIT_DIR/plc2mqtt.service"
dropin="$root$UNIT_DIR/plc2mqtt.service.d/10-node.conf"
if [ "$node" = /usr/bin/node ]; then
  rm -f "$dropin"
  rmdir "$(dirname "$dropin")" 2>/dev/null || true
else
  mkdir -p "$(dirname "$dropin")"
  cat >"$work/10-node.conf" <<EOF
# Written by plc2mqtt's install.sh (--node): the Node.js runtime of this host.
[Service]
ExecStart=
ExecStart=$node $MAIN run -c $CONF_DIR/gateway.yaml
EOF
  install -m 0644 "$work/10-node.conf" "$dropin"
fi

# --- Config and credentials: created once, never replaced. ---
install -d -m 0755 "$root$CONF_DIR"
if [ ! -e "$root$CONF_DIR/gateway.yaml" ]; then
  install -m 0644 "$HERE/gateway.yaml" "$root$CONF_DIR/gateway.yaml"
fi
install -d -m 0700 "$root$CONF_DIR/credentials"
if [ ! -e "$root$CONF_DIR/credentials/mqtt_password" ]; then
  # LoadCredential= fails the start when its file is missing: an empty one means no password.
  install -m 0600 /dev/null "$root$CONF_DIR/credentials/mqtt_password"
fi

# --- systemd: only on the real root of a system running it. ---
if [ -n "$root" ] || [ ! -d /run/systemd/system ]; then
  if [ -n "$root" ]; then
    echo "install.sh: done; staged under $root, systemctl skipped"
  else
    echo "install.sh: done; systemd is not running, systemctl skipped"
  fi
  exit 0
fi
systemctl daemon-reload
systemctl enable plc2mqtt.service
if [ "$start" = yes ]; then
  systemctl restart plc2mqtt.service
  echo "install.sh: done; plc2mqtt is (re)started: journalctl -u plc2mqtt -f -o cat"
else
  echo "install.sh: done; edit $CONF_DIR/gateway.yaml, then: systemctl start plc2mqtt"
fi

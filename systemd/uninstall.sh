#!/usr/bin/env bash
# Removes what systemd/install.sh installed. See systemd/README.md.
#
# Contract: idempotent (nothing installed is not an error). Removes the package
# (/opt/plc2mqtt), the CLI wrapper (only if it is install.sh's), the unit and install.sh's
# 10-node.conf drop-in. Keeps, like `apt remove`, what an operator made: /etc/plc2mqtt (config
# and credentials), other drop-ins and the journal in /var/lib/plc2mqtt. --purge removes
# those too, like `apt purge`. --root DIR works on a staged root and never calls systemctl.
set -euo pipefail

usage() {
  cat <<'EOF'
usage: uninstall.sh [--root DIR] [--purge]

  --root DIR  uninstall from DIR instead of / (a staging or test root)
  --purge     also delete /etc/plc2mqtt (config, credentials), the unit's other drop-ins and
              the journal in /var/lib/plc2mqtt: events not yet published are lost
EOF
}

die() {
  echo "uninstall.sh: $*" >&2
  exit 1
}

UNIT_DIR=/etc/systemd/system
WRAPPER=/usr/local/bin/plc2mqtt
WRAPPER_MARK="# plc2mqtt-wrapper (written by install.sh)"

root=""
purge=no
while [ $# -gt 0 ]; do
  case "$1" in
    --root) [ $# -ge 2 ] || die "--root needs a directory"; root=$2; shift 2 ;;
    --root=*) root=${1#--root=}; shift ;;
    --purge) purge=yes; shift ;;
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
  die "uninstalling from / needs root: run with sudo"
fi

systemd=no
[ -z "$root" ] && [ -d /run/systemd/system ] && systemd=yes
if [ "$systemd" = yes ]; then
  # Not loaded (never installed, or already removed) is fine.
  systemctl disable --now plc2mqtt.service 2>/dev/null || true
fi

rm -f "$root$UNIT_DIR/plc2mqtt.service" "$root$UNIT_DIR/plc2mqtt.service.d/10-node.conf"
if [ "$purge" = yes ]; then
  rm -rf "$root$UNIT_DIR/plc2mqtt.service.d"
else
  rmdir "$root$UNIT_DIR/plc2mqtt.service.d" 2>/dev/null || true
fi
if [ -f "$root$WRAPPER" ] && grep -qF "$WRAPPER_MARK" "$root$WRAPPER"; then
  rm -f "$root$WRAPPER"
fi
rm -rf "$root/opt/plc2mqtt"

if [ "$purge" = yes ]; then
  # DynamicUser= keeps the state in /var/lib/private/plc2mqtt; /var/lib/plc2mqtt links to it.
  rm -rf "$root/etc/plc2mqtt" "$root/var/lib/plc2mqtt" "$root/var/lib/private/plc2mqtt"
fi

if [ "$systemd" = yes ]; then
  systemctl daemon-reload
  systemctl reset-failed plc2mqtt.service 2>/dev/null || true
fi
if [ "$purge" = yes ]; then
  echo "uninstall.sh: plc2mqtt removed with its config, credentials and journal"
else
  echo "uninstall.sh: plc2mqtt removed; kept /etc/plc2mqtt and /var/lib/plc2mqtt (--purge deletes them)"
fi

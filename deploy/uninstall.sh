#!/bin/sh
# Remove docagent's service and program; documents, state.db, logs and settings stay.
#   sudo ./deploy/uninstall.sh           keep /var/lib/docagent, /var/log/docagent, /etc/docagent
#   sudo ./deploy/uninstall.sh --purge   remove them too, and the docagent user
set -eu
purge=no
case "${1:-}" in
    "") ;;
    --purge) purge=yes ;;
    *) printf '%s\n' "usage: $0 [--purge]" >&2; exit 2 ;;
esac
say() { printf '%s\n' "uninstall.sh: $*" >&2; }
[ "$(id -u)" -eq 0 ] || { say "run me as root (sudo $0)"; exit 2; }

for unit in docagent-health.timer docagent-health.service docagent.service; do
    systemctl disable --now --quiet "$unit" 2>/dev/null || true
    rm -f "/etc/systemd/system/$unit"
done
rm -rf /etc/systemd/system/docagent.service.d
systemctl daemon-reload
rm -rf /opt/docagent
rm -f /usr/local/bin/docagent
if [ "$purge" = yes ]; then
    rm -rf /var/lib/docagent /var/log/docagent /etc/docagent
    if getent passwd docagent >/dev/null; then userdel docagent; fi
    say "removed docagent, its data, settings and user"
else
    say "removed docagent; kept /var/lib/docagent, /var/log/docagent and /etc/docagent"
fi

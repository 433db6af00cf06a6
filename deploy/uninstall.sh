#!/bin/sh
# Remove docagent's service and program; documents, state.db, logs and settings stay.
#   sudo ./deploy/uninstall.sh                 keep /var/lib/docagent, /var/log/docagent, /etc/docagent
#   sudo ./deploy/uninstall.sh --purge         remove them too, and the docagent user and groups,
#                                              after saying what goes and asking
#   sudo ./deploy/uninstall.sh --purge --yes   the same without asking (no terminal needed)
set -eu
CONF=/etc/docagent
STATE=/var/lib/docagent
LOGS=/var/log/docagent
DROP_GROUP=docagent-drop
purge=no
yes=no
for arg in "$@"; do
    case "$arg" in
        --purge) purge=yes ;;
        --yes) yes=yes ;;
        *) printf '%s\n' "usage: $0 [--purge [--yes]]" >&2; exit 2 ;;
    esac
done
say() { printf '%s\n' "uninstall.sh: $*" >&2; }
[ "$(id -u)" -eq 0 ] || { say "run me as root (sudo $0)"; exit 2; }
if [ "$yes" = yes ] && [ "$purge" = no ]; then
    say "--yes only goes with --purge"; exit 2
fi

# Documents, not the files written beside them (.json, .txt, .reason.json). A failed file
# keeps its own name, whatever it ends with.
count() {
    find "$@" -type f \( -path "$STATE/failed/*" ! -name '*.reason.json' -o -name '*.pdf' \) \
        2>/dev/null | wc -l | tr -d ' '
}

if [ "$purge" = yes ]; then
    documents="$(count "$STATE/done" "$STATE/review" "$STATE/failed")"
    waiting="$(count "$STATE/incoming" "$STATE/processing")"
    say "--purge deletes, for good:"
    say "  $STATE: $documents document(s) in done/, review/ and failed/ (with what was read" \
        "beside them), $waiting waiting in incoming/ and processing/, and state.db (the" \
        "patient directory and every decision)"
    say "  $LOGS (the log, the audit log, the cost ledger), $CONF (settings, Telegram token)"
    say "  the docagent user and the docagent and $DROP_GROUP groups"
    if [ "$yes" = no ]; then
        if [ ! -t 0 ]; then
            say "not purging: no terminal to ask on; add --yes to purge without asking"
            exit 2
        fi
        printf 'uninstall.sh: type yes to delete all of this: ' >&2
        read -r answer || answer=""
        if [ "$answer" != yes ]; then
            say "nothing removed"
            exit 1
        fi
    fi
fi

for unit in docagent-health.timer docagent-health.service docagent.service; do
    systemctl disable --now --quiet "$unit" 2>/dev/null || true
    rm -f "/etc/systemd/system/$unit"
done
rm -rf /etc/systemd/system/docagent.service.d /etc/systemd/system/docagent-health.service.d \
    /etc/systemd/system/docagent-health.timer.d
systemctl daemon-reload
systemctl reset-failed docagent.service docagent-health.service 2>/dev/null || true
rm -rf /opt/docagent
rm -f /usr/local/bin/docagent
if [ "$purge" = yes ]; then
    rm -rf "$STATE" "$LOGS" "$CONF" /var/log/docagent-install.log
    if getent passwd docagent >/dev/null; then userdel docagent; fi
    for group in docagent "$DROP_GROUP"; do
        if getent group "$group" >/dev/null; then groupdel "$group"; fi
    done
    say "removed docagent, $documents document(s), its data, settings, user and groups"
else
    say "removed docagent; kept $STATE, $LOGS and $CONF"
fi

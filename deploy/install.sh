#!/bin/sh
# Install docagent as a systemd service on Debian 12 / Ubuntu; safe to run again (it upgrades).
#   sudo ./deploy/install.sh
# What goes where: the program in /opt/docagent (a venv), settings in /etc/docagent, documents
# and state.db in /var/lib/docagent, logs in /var/log/docagent and the journal, the units in
# /etc/systemd/system, and a `docagent` command in /usr/local/bin for the administrator.
# apt and pip write to /var/log/docagent-install.log; on failure its last lines are shown.
set -eu
SRC="$(cd "$(dirname "$0")/.." && pwd)"
PREFIX=/opt/docagent
CONF=/etc/docagent
STATE=/var/lib/docagent
LOGS=/var/log/docagent
UNITS=/etc/systemd/system
LOG=/var/log/docagent-install.log
DROP_GROUP=docagent-drop
# Images (JPEG, PNG, TIFF, HEIC) need no Debian package: Pillow, pillow-heif (with libheif) and
# img2pdf come as wheels through pyproject.toml's dependencies.
PACKAGES="python3 python3-venv tesseract-ocr tesseract-ocr-fra tesseract-ocr-eng poppler-utils"

say() { printf '%s\n' "install.sh: $*" >&2; }
[ "$(id -u)" -eq 0 ] || { say "run me as root (sudo $0)"; exit 2; }
command -v systemctl >/dev/null 2>&1 || { say "systemd is needed"; exit 2; }

# Run a noisy step with its output in the log; on failure, show the end of it and stop.
quietly() {
    printf '\n$ %s\n' "$*" >>"$LOG"
    if ! "$@" >>"$LOG" 2>&1; then
        say "failed: $*"
        say "the last lines of $LOG:"
        tail -n 25 "$LOG" >&2
        exit 1
    fi
}

: >>"$LOG"
chmod 0600 "$LOG"
printf '\n=== install.sh %s ===\n' "$(date -Is)" >>"$LOG"

missing=""
for pkg in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" \
        || missing="$missing $pkg"
done
if [ -n "$missing" ]; then
    say "installing:$missing (output in $LOG)"
    quietly apt-get update
    # shellcheck disable=SC2086
    quietly env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing
fi

if ! getent passwd docagent >/dev/null; then
    say "creating the system user docagent"
    useradd --system --user-group --home-dir "$STATE" --no-create-home \
        --shell /usr/sbin/nologin --comment "docagent document intake" docagent
fi
# The drop group may only write incoming/; docagent is in it to read what its members drop.
if ! getent group "$DROP_GROUP" >/dev/null; then
    say "creating the group $DROP_GROUP (accounts that may drop files into incoming/)"
    groupadd --system "$DROP_GROUP"
fi
id -nG docagent | tr ' ' '\n' | grep -qx "$DROP_GROUP" || usermod -a -G "$DROP_GROUP" docagent

# The checkout may be read-only or belong to someone else: build from a copy.
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
tar -C "$SRC" --exclude=./.venv --exclude=./.git --exclude=./var --exclude=./logs \
    --exclude='*.egg-info' --exclude=./build -cf - . | tar -C "$stage" -xf -
[ -x "$PREFIX/venv/bin/python" ] || quietly python3 -m venv "$PREFIX/venv"
say "installing the package into $PREFIX/venv"
# A local folder is always rebuilt and reinstalled; its dependencies only when missing.
# (PIP_INDEX_URL, PIP_FIND_LINKS, PIP_NO_INDEX pass through for a mirror or an offline box.)
quietly "$PREFIX/venv/bin/python" -m pip install --disable-pip-version-check "$stage"
install -m 0644 "$SRC/README.md" "$PREFIX/README.md"

# Everything docagent keeps is docagent:docagent and closed to others, except two things a
# drop account needs: to pass through the home (0751: it cannot list it) and to write
# incoming/ (group docagent-drop; setgid so dropped files get that group, sticky so one
# dropper cannot delete or replace another's file).
install -d -o root -g docagent -m 0750 "$CONF"
install -d -o docagent -g docagent -m 0751 "$STATE"
install -d -o docagent -g docagent -m 0750 "$LOGS"
for folder in processing done review failed; do
    install -d -o docagent -g docagent -m 0750 "$STATE/$folder"
done
install -d -o docagent -g "$DROP_GROUP" -m 3770 "$STATE/incoming"
if [ ! -e "$CONF/docagent.env" ]; then
    install -o docagent -g docagent -m 0600 "$SRC/deploy/env.example" "$CONF/docagent.env"
    say "wrote $CONF/docagent.env"
fi
# LoadCredential= needs each file to exist; empty means "no Telegram", "no mail password".
# Root's alone: systemd hands them to the units, and the docagent command reads them while it
# is still root.
for secret in telegram-token mail-password; do
    [ -e "$CONF/$secret" ] || : > "$CONF/$secret"
    chown root:root "$CONF/$secret"
    chmod 0600 "$CONF/$secret"
done

cat > /usr/local/bin/docagent.new <<WRAPPER
#!/bin/sh
# Written by docagent's install.sh: the docagent command on the installed spool. Run by root
# (sudo), it reads the files it is given as root, then works as the docagent user, so that
# everything in the spool stays docagent's (see agent/privileges.py).
export DOCAGENT_HOME=$STATE DOCAGENT_LOG_DIR=$LOGS CONFIGURATION_DIRECTORY=$CONF
export DOCAGENT_SERVICE_USER=docagent
exec $PREFIX/venv/bin/docagent "\$@"
WRAPPER
chmod 0755 /usr/local/bin/docagent.new
mv /usr/local/bin/docagent.new /usr/local/bin/docagent

for unit in docagent.service docagent-health.service docagent-health.timer; do
    install -m 0644 "$SRC/systemd/$unit" "$UNITS/$unit"
done
systemctl daemon-reload
systemctl enable --quiet docagent.service docagent-health.timer
# restart, not start: a re-run must bring up the new code.
systemctl restart docagent.service
systemctl start docagent-health.timer

# The former recipe put scanner accounts in the docagent group, which reads every document.
members="$(getent group docagent | cut -d: -f4 | tr ',' ' ')"
for member in $members; do
    say "note: $member is in the docagent group, which reads every document and state.db;" \
        "a scanner account only needs $DROP_GROUP:" \
        "gpasswd -d $member docagent && usermod -a -G $DROP_GROUP $member"
done

say "docagent is running (systemctl status docagent). Next:"
say "  1. import the patient directory: sudo docagent patients import patients.csv"
say "  2. give it the Telegram bot token: sudo sh -c 'cat > $CONF/telegram-token'" \
    "(paste, Ctrl-D), set TELEGRAM_CHAT_IDS in $CONF/docagent.env, then" \
    "systemctl restart docagent (see $PREFIX/README.md, Telegram)"
say "  3. check everything: sudo docagent health"

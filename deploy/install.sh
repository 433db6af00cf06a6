#!/bin/sh
# Install docagent as a systemd service on Debian 12 / Ubuntu; safe to run again (it upgrades).
#   sudo ./deploy/install.sh
# What goes where: the program in /opt/docagent (a venv), settings in /etc/docagent, documents
# and state.db in /var/lib/docagent, logs in /var/log/docagent and the journal, the units in
# /etc/systemd/system, and a `docagent` command in /usr/local/bin that runs as the docagent user.
set -eu
SRC="$(cd "$(dirname "$0")/.." && pwd)"
PREFIX=/opt/docagent
CONF=/etc/docagent
STATE=/var/lib/docagent
LOGS=/var/log/docagent
UNITS=/etc/systemd/system
PACKAGES="python3 python3-venv tesseract-ocr tesseract-ocr-fra tesseract-ocr-eng poppler-utils"

say() { printf '%s\n' "install.sh: $*" >&2; }
[ "$(id -u)" -eq 0 ] || { say "run me as root (sudo $0)"; exit 2; }
command -v systemctl >/dev/null 2>&1 || { say "systemd is needed"; exit 2; }

missing=""
for pkg in $PACKAGES; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" \
        || missing="$missing $pkg"
done
if [ -n "$missing" ]; then
    say "installing:$missing"
    apt-get update -qq
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
fi

if ! getent passwd docagent >/dev/null; then
    say "creating the system user docagent"
    useradd --system --user-group --home-dir "$STATE" --no-create-home \
        --shell /usr/sbin/nologin --comment "docagent document intake" docagent
fi

# The checkout may be read-only or belong to someone else: build from a copy.
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
tar -C "$SRC" --exclude=./.venv --exclude=./.git --exclude=./var --exclude=./logs \
    --exclude='*.egg-info' --exclude=./build -cf - . | tar -C "$stage" -xf -
[ -x "$PREFIX/venv/bin/python" ] || python3 -m venv "$PREFIX/venv"
say "installing the package into $PREFIX/venv"
# A local folder is always rebuilt and reinstalled; its dependencies only when missing.
# (PIP_INDEX_URL, PIP_FIND_LINKS, PIP_NO_INDEX pass through for a mirror or an offline box.)
"$PREFIX/venv/bin/python" -m pip install --quiet --disable-pip-version-check "$stage"
install -m 0644 "$SRC/README.md" "$PREFIX/README.md"

install -d -o root -g docagent -m 0750 "$CONF"
install -d -o docagent -g docagent -m 0750 "$STATE" "$LOGS"
for folder in processing done review failed; do
    install -d -o docagent -g docagent -m 0750 "$STATE/$folder"
done
# Group-writable and setgid: a scanner account added to the docagent group can drop files.
install -d -o docagent -g docagent -m 2770 "$STATE/incoming"
if [ ! -e "$CONF/docagent.env" ]; then
    install -o docagent -g docagent -m 0600 "$SRC/deploy/env.example" "$CONF/docagent.env"
    say "wrote $CONF/docagent.env (edit it, then: systemctl restart docagent)"
fi

cat > /usr/local/bin/docagent.new <<WRAPPER
#!/bin/sh
# Written by docagent's install.sh: the docagent command on the installed spool, always run
# as the docagent user (files root created in the spool would lock the daemon out).
if [ "\$(id -u)" -eq 0 ]; then exec runuser -u docagent -- "\$0" "\$@"; fi
export DOCAGENT_HOME=$STATE DOCAGENT_LOG_DIR=$LOGS CONFIGURATION_DIRECTORY=$CONF
[ -r $CONF/telegram-token ] && export CREDENTIALS_DIRECTORY=$CONF
exec $PREFIX/venv/bin/docagent "\$@"
WRAPPER
chmod 0755 /usr/local/bin/docagent.new
mv /usr/local/bin/docagent.new /usr/local/bin/docagent
# LoadCredential= needs the file to exist; empty means "no Telegram". Group-readable so the
# docagent command (run as docagent) sees the same token the service gets.
[ -e "$CONF/telegram-token" ] || : > "$CONF/telegram-token"
chown root:docagent "$CONF/telegram-token"
chmod 0640 "$CONF/telegram-token"

for unit in docagent.service docagent-health.service docagent-health.timer; do
    install -m 0644 "$SRC/systemd/$unit" "$UNITS/$unit"
done
systemctl daemon-reload
systemctl enable --quiet docagent.service docagent-health.timer
# restart, not start: a re-run must bring up the new code.
systemctl restart docagent.service
systemctl start docagent-health.timer
say "done: systemctl status docagent; docagent health"

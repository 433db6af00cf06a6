#!/bin/sh
# Development entry point; needs only sh and python3 (a fresh Debian 12 server has no make).
#   ./deploy/dev.sh run      set up what is missing, then run the daemon on ./var
#   ./deploy/dev.sh test     set up what is missing, then run the whole test suite
#   ./deploy/dev.sh sample   write a scanned French lab report into ./var/incoming
set -eu
cd "$(dirname "$0")/.."

# Images (JPEG, PNG, TIFF, HEIC) need no Debian package: Pillow, pillow-heif (with libheif) and
# img2pdf come as wheels through pyproject.toml's dependencies.
RUNTIME_PACKAGES="tesseract-ocr tesseract-ocr-fra tesseract-ocr-eng poppler-utils"
# qpdf makes the encrypted-PDF fixtures; DejaVu renders the accented text of the fake scans.
# systemd (systemd-analyze), systemd-container (systemd-nspawn), debootstrap, zstd and procps
# (pgrep finds the container's PID 1; minimal images lack it): the unit checks and the boot test
# in a container (tests/test_units.py, tests/test_systemd_boot.py).
# gettext (msgfmt, xgettext, msgcmp): the French catalogue is checked against the code
# (tests/test_i18n.py). dovecot-imapd and openssl: a real IMAP server on loopback with a
# self-signed certificate for the mail channel's tests (tests/imapserver.py, tests/test_mail.py).
TEST_PACKAGES="qpdf fonts-dejavu-core systemd systemd-container debootstrap zstd procps gettext
dovecot-imapd openssl"

say() { printf '%s\n' "dev.sh: $*" >&2; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"
    elif command -v sudo >/dev/null 2>&1; then sudo "$@"
    else say "need root (or sudo) to run: $*"; exit 2
    fi
}

apt_install() {
    missing=""
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" \
            || missing="$missing $pkg"
    done
    [ -z "$missing" ] && return 0
    say "installing:$missing"
    as_root apt-get update -qq
    # shellcheck disable=SC2086
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing
}

venv() {
    if [ ! -x .venv/bin/python ]; then
        rm -rf .venv
        if ! python3 -m venv .venv >/dev/null 2>&1; then
            # Debian keeps venv support (ensurepip) in a separate package.
            rm -rf .venv
            apt_install python3-venv
            python3 -m venv .venv
        fi
    fi
    if [ ! -f .venv/.installed ] || [ pyproject.toml -nt .venv/.installed ]; then
        say "installing the project into .venv"
        .venv/bin/python -m pip install --quiet --upgrade pip
        .venv/bin/python -m pip install --quiet -e '.[dev]'
        touch .venv/.installed
    fi
}

cmd="${1:-}"
[ $# -gt 0 ] && shift
case "$cmd" in
    run)
        apt_install $RUNTIME_PACKAGES
        venv
        export DOCAGENT_HOME="${DOCAGENT_HOME:-$PWD/var}"
        export DOCAGENT_LOG_DIR="${DOCAGENT_LOG_DIR:-$PWD/logs}"
        .venv/bin/docagent patients import deploy/demo-patients.csv
        say "drop PDFs into $DOCAGENT_HOME/incoming (try: ./deploy/dev.sh sample); Ctrl-C stops"
        exec .venv/bin/docagent run "$@"
        ;;
    test)
        apt_install $RUNTIME_PACKAGES $TEST_PACKAGES
        venv
        exec .venv/bin/python -m pytest "$@"
        ;;
    sample)
        apt_install $RUNTIME_PACKAGES $TEST_PACKAGES
        venv
        home="${DOCAGENT_HOME:-$PWD/var}"
        mkdir -p "$home/incoming"
        # Written beside, then renamed in: the daemon never sees half a file.
        .venv/bin/python -m tests.pdfgen sample "$home/.sample.pdf.part" "$@"
        mv "$home/.sample.pdf.part" "$home/incoming/compte-rendu-biologie.pdf"
        say "wrote $home/incoming/compte-rendu-biologie.pdf"
        ;;
    *)
        say "usage: ./deploy/dev.sh run|test|sample"
        exit 2
        ;;
esac

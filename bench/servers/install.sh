#!/bin/bash
# Installs the reference XMPP servers (Prosody 13, ejabberd 24.12) on Debian 12
# from bookworm-backports, plus the tools the scripts use. Idempotent: run it
# again and it only checks. Needs root and network access to deb.debian.org.
#
#   bench/servers/install.sh [--keep-services]
#
# The packages' own system services are stopped and disabled afterwards (the
# benchmarks start each server from a temp folder with its own config and ports;
# a system Prosody/ejabberd would hold port 5222 and take CPU and memory).
# --keep-services leaves them alone.
set -euo pipefail

KEEP_SERVICES=0
[ "${1:-}" = "--keep-services" ] && KEEP_SERVICES=1
[ "$(id -u)" -eq 0 ] || { echo "install.sh: run as root" >&2; exit 1; }

. /etc/os-release
[ "${VERSION_CODENAME:-}" = "bookworm" ] || echo "install.sh: warning: this is ${PRETTY_NAME:-unknown}, not Debian 12 (bookworm)" >&2

SOURCES=/etc/apt/sources.list.d/backports.sources
export DEBIAN_FRONTEND=noninteractive

has_backports() {
    grep -rqsE '^[^#]*bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/
}

# Installed and from backports (Prosody >= 13, ejabberd >= 24.12)?
installed_ok() {
    local pv ev
    pv=$(dpkg-query -W -f='${db:Status-Status} ${Version}' prosody 2>/dev/null) || return 1
    ev=$(dpkg-query -W -f='${db:Status-Status} ${Version}' ejabberd 2>/dev/null) || return 1
    [ "${pv%% *}" = installed ] && [ "${ev%% *}" = installed ] || return 1
    dpkg --compare-versions "${pv#* }" ge 13 && dpkg --compare-versions "${ev#* }" ge 24.12
}

updated=0
if ! has_backports; then
    echo "adding bookworm-backports: $SOURCES"
    cat > "$SOURCES" <<SRC
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    apt-get update
    updated=1
else
    echo "bookworm-backports already in apt sources"
fi

# Tools the scripts use: openssl (certificates), python3 (bulk SCRAM accounts,
# login check), procps/iproute2 (inspection).
need=()
for pkg in openssl python3 procps iproute2; do
    dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null | grep -qx installed || need+=("$pkg")
done

if installed_ok && [ ${#need[@]} -eq 0 ]; then
    echo "prosody $(dpkg-query -W -f='${Version}' prosody) and ejabberd $(dpkg-query -W -f='${Version}' ejabberd) already installed"
else
    [ "$updated" -eq 1 ] || apt-get update
    [ ${#need[@]} -eq 0 ] || apt-get install -y "${need[@]}"
    installed_ok || apt-get install -y -t bookworm-backports prosody ejabberd
fi

if [ "$KEEP_SERVICES" -eq 0 ]; then
    for svc in prosody ejabberd; do
        if [ -d /run/systemd/system ]; then
            systemctl disable --now "$svc" >/dev/null 2>&1 || true
        elif [ -x "/etc/init.d/$svc" ]; then
            "/etc/init.d/$svc" stop >/dev/null 2>&1 || true
        fi
    done
    echo "system services prosody/ejabberd stopped and disabled (the bench scripts run their own instances)"
fi

prosodyctl about 2>/dev/null | grep -m1 -i '^prosody' || true
echo "ejabberd $(dpkg-query -W -f='${Version}' ejabberd)"
echo "install.sh: done"

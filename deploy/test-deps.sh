#!/usr/bin/env bash
# test-deps.sh: install the Debian packages that facgw's integration tests
# run against (real MQTT broker, SNMP agents, Modbus server, TSDB, ...).
#
# Contract:
#   - Idempotent and quiet. When every package is already installed (and
#     Debian's /usr/bin/python3 can import pymodbus) it exits 0 at once,
#     without touching the network and without printing anything.
#   - When some are missing and we are root with apt-get available, it runs
#     "apt-get update" once and installs only the missing packages, logging
#     apt's output to $TEST_DEPS_LOG (default: ${TMPDIR:-/tmp}/facgw-test-deps.log)
#     and printing one summary line.
#   - When it cannot install (not root, no apt-get, apt failed) it prints a
#     warning naming the missing packages and exits 0, so that the tests can
#     still run and skip what they cannot start; with CI=true it exits 1
#     instead, because CI must not silently skip integration tests.
#   - Never reads stdin (safe under make, CI runners and nohup).
#
# Usage: deploy/test-deps.sh            (normally via "make test")
set -u

PACKAGES=(
	mosquitto
	mosquitto-clients
	snmp
	snmpd
	snmptrapd
	snmpsim
	systemd
	python3-pymodbus
	# Only recommended by python3-pymodbus (so skipped by
	# --no-install-recommends), but pymodbus 3.0.0's server module imports
	# both, for TCP too; the RTU tests also need them to open a serial line.
	python3-serial
	python3-serial-asyncio
	victoria-metrics
	prometheus-alertmanager
	socat
	# The HTTP API's TLS and cookie tests drive it with a client that is
	# not Go's.
	curl
	# Browser tests of the dashboard drive headless Chromium (chromedp).
	chromium
)

LOG="${TEST_DEPS_LOG:-${TMPDIR:-/tmp}/facgw-test-deps.log}"
PYTHON=/usr/bin/python3 # Debian's; another python3 may come first on PATH

# missing_packages prints the packages that are not fully installed.
missing_packages() {
	local p status
	for p in "${PACKAGES[@]}"; do
		status="$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)"
		if [ "$status" != "install ok installed" ]; then
			echo "$p"
		fi
	done
}

pymodbus_ok() {
	[ -x "$PYTHON" ] && "$PYTHON" -c 'import pymodbus' </dev/null >/dev/null 2>&1
}

# fail prints a warning and exits 0, or 1 when CI=true.
fail() {
	echo "test-deps: WARNING: $1" >&2
	echo "test-deps: integration tests needing these packages will be skipped (CI=true makes them fail)" >&2
	if [ "${CI:-}" = "true" ]; then
		exit 1
	fi
	exit 0
}

if ! command -v dpkg-query >/dev/null 2>&1; then
	fail "dpkg-query not found (not a Debian system?); install by hand: ${PACKAGES[*]}"
fi

mapfile -t missing < <(missing_packages)
if [ "${#missing[@]}" -eq 0 ] && pymodbus_ok; then
	exit 0
fi
if [ "${#missing[@]}" -eq 0 ]; then
	# Installed but not importable: reinstalling is the only thing we can try.
	missing=(python3-pymodbus)
	reinstall=(--reinstall)
else
	reinstall=()
fi

if [ "$(id -u)" -ne 0 ]; then
	fail "missing Debian packages: ${missing[*]} (run as root: apt-get install ${missing[*]})"
fi
if ! command -v apt-get >/dev/null 2>&1; then
	fail "missing Debian packages: ${missing[*]} (apt-get not found)"
fi

start=$SECONDS
export DEBIAN_FRONTEND=noninteractive
# Wait for the dpkg lock rather than failing if another apt is running.
apt_opts=(-o DPkg::Lock::Timeout=600)
{
	echo "=== $(date -u +%FT%TZ) test-deps: installing ${missing[*]}"
	apt-get "${apt_opts[@]}" update -qq &&
		apt-get "${apt_opts[@]}" install -y -qq --no-install-recommends "${reinstall[@]}" "${missing[@]}"
} </dev/null >>"$LOG" 2>&1
rc=$?

if [ "$rc" -ne 0 ]; then
	fail "apt-get failed (exit $rc) installing: ${missing[*]}; see $LOG"
fi

mapfile -t still < <(missing_packages)
if [ "${#still[@]}" -ne 0 ]; then
	fail "still missing after apt-get: ${still[*]}; see $LOG"
fi
if ! pymodbus_ok; then
	fail "$PYTHON cannot import pymodbus after installing python3-pymodbus; see $LOG"
fi

echo "test-deps: installed ${missing[*]} in $((SECONDS - start))s (log: $LOG)"
exit 0

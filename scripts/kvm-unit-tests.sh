#!/usr/bin/env bash
# Builds kvm-unit-tests (arm64) from a checkout the user provides and runs its GIC, ITS, timer,
# PSCI, selftest and micro-bench cases, as arm/unittests.cfg defines them (smp, -append
# arguments, gic-version), on vgic's machine and, if qemu-system-aarch64 is installed, on QEMU's
# virt board. Prints a PASS/FAIL/SKIP table per test and per reported case.
#
#   scripts/kvm-unit-tests.sh SRC_DIR
#
# SRC_DIR: a kvm-unit-tests checkout (https://gitlab.com/kvm-unit-tests/kvm-unit-tests). It is
# built out of tree in $KUT_BUILD (default: a temporary directory), never inside SRC_DIR or here.
# Environment: MAX_SMP (default 4: the cfg's $MAX_SMP), KUT_TESTS (space-separated names to run,
# default all below), KUT_LOGS (directory for each run's console output; default: the build dir),
# KUT_TIMEOUT (seconds per run, default 120), QEMU (default qemu-system-aarch64; QEMU=none skips it).
# Exit status: 1 if a test fails on vgic that passes (or is not run) on QEMU, else 0.
# Not part of `npm test`: CI has no access to the kvm-unit-tests source.
set -euo pipefail

if [[ $# -ne 1 || ! -x "$1/configure" ]]; then
	echo "usage: $0 KVM_UNIT_TESTS_SRC_DIR (a kvm-unit-tests checkout with ./configure)" >&2
	exit 2
fi
SRC=$(cd "$1" && pwd)
HERE=$(cd "$(dirname "$0")/.." && pwd)
MAX_SMP=${MAX_SMP:-4}
TIMEOUT=${KUT_TIMEOUT:-120}
QEMU=${QEMU:-qemu-system-aarch64}
CROSS=${CROSS_PREFIX:-aarch64-linux-gnu-}
BUILD=${KUT_BUILD:-$(mktemp -d /tmp/kut-build.XXXXXX)}
LOGS=${KUT_LOGS:-$BUILD/logs}
VGIC="node $HERE/dist/src/cli/main.js run"

min() { echo $(($1 < $2 ? $1 : $2)); }

# name | file | smp | -append | gic-version | extra QEMU/vgic option (-m)
TABLE=(
	"selftest-setup|selftest|2|setup smp=2 mem=256|3|-m 256"
	"selftest-vectors-kernel|selftest|1|vectors-kernel|3|"
	"selftest-vectors-user|selftest|1|vectors-user|3|"
	"selftest-smp|selftest|$MAX_SMP|smp|3|"
	"gicv2-ipi|gic|$(min "$MAX_SMP" 8)|ipi|2|"
	"gicv2-mmio|gic|$(min "$MAX_SMP" 8)|mmio|2|"
	"gicv2-mmio-up|gic|1|mmio|2|"
	"gicv2-mmio-3p|gic|$(min "$MAX_SMP" 3)|mmio|2|"
	"gicv3-ipi|gic|$MAX_SMP|ipi|3|"
	"gicv2-active|gic|$(min "$MAX_SMP" 8)|active|2|"
	"gicv3-active|gic|$MAX_SMP|active|3|"
	"its-introspection|gic|$MAX_SMP|its-introspection|3|"
	"its-trigger|gic|$MAX_SMP|its-trigger|3|"
	"psci|psci|$MAX_SMP||3|"
	"timer|timer|1||3|"
	"micro-bench|micro-bench|2||3|"
)

if ! command -v "${CROSS}gcc" >/dev/null; then
	echo "no ${CROSS}gcc: run scripts/install-system-deps.sh (gcc-aarch64-linux-gnu)" >&2
	exit 2
fi
if [[ ! -f "$HERE/dist/src/cli/main.js" ]]; then
	(cd "$HERE" && npm run build >/dev/null)
fi
mkdir -p "$BUILD" "$LOGS"
if [[ ! -f "$BUILD/arm/gic.flat" ]]; then
	echo "building kvm-unit-tests $(git -C "$SRC" rev-parse --short HEAD 2>/dev/null || echo '') in $BUILD" >&2
	(cd "$BUILD" && "$SRC/configure" --arch=arm64 --cross-prefix="$CROSS" >/dev/null &&
		make -j"$(nproc)" >"$BUILD/build.log" 2>&1) || {
		echo "build failed: $BUILD/build.log" >&2
		exit 2
	}
fi
if [[ $QEMU != none ]] && ! command -v "$QEMU" >/dev/null; then QEMU=none; fi

# A kvm-unit-tests guest ends with 'EXIT: STATUS=n' (n = code << 1 | 1) and PSCI SYSTEM_OFF;
# code 0 passes, 77 skips, anything else (or no line) fails.
verdict() {
	local st
	st=$(grep -ao 'EXIT: STATUS=[0-9]*' "$1" | tail -1 | cut -d= -f2)
	if [[ -z $st ]]; then
		echo "FAIL(no-exit,rc=$2)"
	elif ((st >> 1 == 0)); then
		echo PASS
	elif ((st >> 1 == 77)); then
		echo SKIP
	else echo "FAIL(code=$((st >> 1)))"; fi
}

run_one() { # target name file smp append gic extra
	local target=$1 name=$2 file=$3 smp=$4 append=$5 gic=$6 extra=$7 log rc=0
	log="$LOGS/$name.$target.log"
	if [[ $target == qemu ]]; then
		# shellcheck disable=SC2086
		timeout "$TIMEOUT" "$QEMU" -machine "virt,gic-version=$gic" -cpu max -nographic -nic none \
			-kernel "$BUILD/arm/$file.flat" -smp "$smp" $extra -append "$append" </dev/null >"$log" 2>&1 || rc=$?
	else
		# shellcheck disable=SC2086
		$VGIC "$BUILD/arm/$file.flat" --smp "$smp" --gic-version "$gic" $extra --append "$append" \
			--timeout "$TIMEOUT" </dev/null >"$log" 2>&1 || rc=$?
	fi
	verdict "$log" "$rc"
}

# Case lines (PASS:/FAIL:/SKIP:/XFAIL:/XPASS:) of a log, as "VERDICT: text" with digits after '='
# dropped (micro-bench and timer print measured numbers).
cases() { grep -aE '^(PASS|FAIL|SKIP|XFAIL|XPASS): ' "$1" | sed -E 's/[0-9]+(\.[0-9]+)?/N/g' | sort -u || true; }

status=0
printf '%-26s %-22s %-22s\n' TEST VGIC QEMU
for row in "${TABLE[@]}"; do
	IFS='|' read -r name file smp append gic extra <<<"$row"
	if [[ -n ${KUT_TESTS:-} && " $KUT_TESTS " != *" $name "* ]]; then continue; fi
	v=$(run_one vgic "$name" "$file" "$smp" "$append" "$gic" "$extra")
	q=-
	if [[ $QEMU != none ]]; then q=$(run_one qemu "$name" "$file" "$smp" "$append" "$gic" "$extra"); fi
	printf '%-26s %-22s %-22s\n' "$name" "$v" "$q"
	# Cases whose verdict differs between the two (same text, other verdict).
	if [[ $q != - ]]; then
		diff <(cases "$LOGS/$name.vgic.log") <(cases "$LOGS/$name.qemu.log") |
			sed -nE 's/^< /    vgic: /p; s/^> /    qemu: /p' || true
	fi
	if [[ $v == FAIL* && $q != FAIL* ]]; then status=1; fi
done
echo "logs: $LOGS" >&2
exit $status

#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# core-syscalls.sh - count the syscalls of echo exchanges with strace -c -f,
# to show that pushing timeouts later and re-applying an unchanged mask
# cost no syscall (the costs vent/event.h documents).
#
# Usage: tools/bench/core-syscalls.sh [BUILD_DIR]     (default: build)
#
# Runs, each under `strace -f -c`:
#   1. core-bench --echo=K for two values of K: every step calls
#      event_modify() with an unchanged mask and event_mod_timeout() 5 s
#      ahead (always later). timerfd_settime and epoll_ctl must not grow
#      with K: they are the set-up calls only.
#   2. core-bench --echo=K --earlier: each step's deadline is 1 ms earlier
#      than the last one, so each re-arms the kernel timer; shows that the
#      count responds (timerfd_settime grows with K).
#   3. echo-bench --runtime=1 --num-clients=1 --max-wait=0, the minivent
#      echo benchmark: the client re-arms 1 s / 2 s step timeouts and
#      switches EPOLLIN/EPOLLOUT on every step.
# Prints the counts and a verdict; exits 1 if case 1 shows per-step
# timerfd_settime or epoll_ctl calls, or case 2 shows none.
set -u
build=${1:-build}
bench=$build/tools/core-bench
echo_bench=$build/tools/echo-bench
small=2000
large=20000

command -v strace >/dev/null || { echo "core-syscalls: strace not installed"; exit 2; }
[ -x "$bench" ] || { echo "core-syscalls: $bench not built"; exit 2; }

tmp=$(mktemp -d) || exit 2
trap 'rm -rf "$tmp"' EXIT

# count FILE SYSCALL... : sum of the "calls" column of strace -c for those syscalls
count() {
	local file=$1; shift
	awk -v names=" $* " 'index(names, " " $NF " ") && $4 ~ /^[0-9]+$/ { n += $4 } END { print n + 0 }' "$file"
}

# trace NAME CMD... : run CMD under strace -f -c, print its output and the counts
trace() {
	local name=$1; shift
	echo "== $name: $*"
	if ! strace -f -c -o "$tmp/$name" "$@" >"$tmp/$name.out" 2>&1; then
		cat "$tmp/$name.out"
		echo "core-syscalls: $name failed"
		exit 1
	fi
	sed 's/^/   /' "$tmp/$name.out"
	printf '   %-18s %s\n' \
		timerfd_settime "$(count "$tmp/$name" timerfd_settime)" \
		epoll_ctl "$(count "$tmp/$name" epoll_ctl)" \
		"epoll_*wait" "$(count "$tmp/$name" epoll_wait epoll_pwait epoll_pwait2)" \
		read "$(count "$tmp/$name" read)" \
		write "$(count "$tmp/$name" write)"
}

trace later-$small "$bench" --echo=$small
trace later-$large "$bench" --echo=$large
trace earlier-$small "$bench" --echo=$small --earlier
if [ -x "$echo_bench" ]; then
	trace echo-bench "$echo_bench" --runtime=1 --num-clients=1 --max-wait=0
fi

fail=0
ts_s=$(count "$tmp/later-$small" timerfd_settime)
ts_l=$(count "$tmp/later-$large" timerfd_settime)
ctl_s=$(count "$tmp/later-$small" epoll_ctl)
ctl_l=$(count "$tmp/later-$large" epoll_ctl)
ts_e=$(count "$tmp/earlier-$small" timerfd_settime)
echo "== verdict"
if [ "$ts_s" -eq "$ts_l" ] && [ "$ts_l" -le 2 ]; then
	echo "ok: timeouts only pushed later: $ts_l timerfd_settime for $large round trips" \
		"($ts_s for $small): set-up only"
else
	echo "FAIL: timerfd_settime grows with the exchange ($ts_s for $small, $ts_l for $large)"
	fail=1
fi
if [ "$ctl_s" -eq "$ctl_l" ]; then
	echo "ok: unchanged masks: $ctl_l epoll_ctl for $large round trips ($ctl_s for $small): set-up only"
else
	echo "FAIL: epoll_ctl grows with the exchange ($ctl_s for $small, $ctl_l for $large)"
	fail=1
fi
if [ "$ts_e" -ge $((small / 4)) ]; then
	echo "ok: deadlines moved earlier: $ts_e timerfd_settime for $small round trips (the count responds)"
else
	echo "FAIL: deadlines moved earlier but only $ts_e timerfd_settime for $small round trips"
	fail=1
fi
exit $fail

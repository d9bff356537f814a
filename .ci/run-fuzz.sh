#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
# run-fuzz.sh [SECONDS] [BUILDDIR] - build the libFuzzer targets with clang
# under ASan+UBSan (no recover) and run the model-based API fuzzer for a
# bounded time, starting from the committed seed corpus. New interesting
# inputs go to BUILDDIR/corpus-api (not into the repo); a crash leaves
# BUILDDIR/crash-* and makes the script fail. Needs clang-14 and
# libclang-rt-14-dev.
set -eu
secs=${1:-120}
dir=${2:-build-fuzz}
cd "$(dirname "$0")/.."
if [ ! -f "$dir/build.ninja" ]; then
	CC=clang CXX=clang++ \
	CFLAGS=-fsanitize=fuzzer-no-link CXXFLAGS=-fsanitize=fuzzer-no-link \
	meson setup "$dir" -Dfuzzer=true -Db_sanitize=address,undefined \
		-Db_lundef=false -Dbuildtype=debugoptimized
fi
ninja -C "$dir" test/api-fuzz
mkdir -p "$dir/corpus-api"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:allocator_may_return_null=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# -timeout: one input may legitimately wait ~5 s for a due timer (settle).
exec "$dir/test/api-fuzz" -max_total_time="$secs" -timeout=30 -max_len=2048 \
	-print_final_stats=1 -artifact_prefix="$dir/" \
	"$dir/corpus-api" test/fuzz/corpus/api

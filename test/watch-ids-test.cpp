// SPDX-License-Identifier: GPL-2.0-or-later
// watch-ids-test.cpp - vent/watch.h: -ENOSPC once the process-wide id
// counter is exhausted. Linked against the library's internal objects, to
// start the counter near INT_MAX instead of making 2^31 registrations.
#include <cerrno>
#include <climits>
#include <ctime>

#include <unistd.h>

#include <vent/event.h>
#include <vent/watch.h>

#include "watch/watch.hpp"

#include "util/case.h"

namespace {

void on_handle(int, int, int, void *) {}
void on_timeout(int, void *) {}

int frees;
void on_free(void *) { frees++; }

void test_ids_exhausted(void **)
{
	struct dispatcher *dsp = new_dispatcher(CLOCK_MONOTONIC);
	int p[2];

	assert_non_null(dsp);
	assert_int_equal(pipe(p), 0);
	vent::detail::watch_next_id.store(INT_MAX - 2);
	// The last two ids are handed out...
	int h = vent_add_handle(dsp, p[0], VENT_HANDLE_READABLE, on_handle, nullptr, on_free);
	assert_int_equal(h, INT_MAX - 2);
	int t = vent_add_timeout(dsp, 1000, on_timeout, nullptr, on_free);
	assert_int_equal(t, INT_MAX - 1);
	// ...then both kinds fail, and the failures leave nothing behind:
	// the free callback is not called and nothing is registered.
	assert_int_equal(vent_add_handle(dsp, p[0], VENT_HANDLE_READABLE, on_handle, nullptr,
					 on_free),
			 -ENOSPC);
	assert_int_equal(vent_add_timeout(dsp, 1000, on_timeout, nullptr, on_free), -ENOSPC);
	assert_int_equal(vent_add_handle(dsp, p[0], 0, on_handle, nullptr, nullptr), -ENOSPC);
	assert_int_equal(frees, 0);
	// The watches that got ids work on.
	assert_int_equal(vent_update_handle(dsp, h, VENT_HANDLE_WRITABLE), 0);
	assert_int_equal(vent_update_timeout(dsp, t, -1), 0);
	assert_int_equal(vent_remove_handle(dsp, h), 0);
	assert_int_equal(vent_remove_timeout(dsp, t), 0);
	// The free callbacks run on the loop thread, in the next wait.
	for (int i = 0; i < 10 && frees < 2; i++)
		assert_true(vent_wait(dsp, 100, nullptr) >= 0);
	assert_int_equal(frees, 2);
	// Exhausted for good: ids are never reused.
	assert_int_equal(vent_add_timeout(dsp, 1000, on_timeout, nullptr, nullptr), -ENOSPC);
	free_dispatcher(dsp);
	close(p[0]);
	close(p[1]);
}

} // namespace

int main()
{
	const struct CMUnitTest tests[] = {
		CASE(test_ids_exhausted),
	};
	return cmocka_run_group_tests(tests, nullptr, nullptr);
}

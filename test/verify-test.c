/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * verify-test.c - the debug build's invariant check (lib/core/verify.cpp,
 * linked through vent_verify) catches broken state: each case breaks one
 * invariant through the fields of struct event that belong to the library,
 * in a child, and expects the next batch to abort with verify's message.
 */
#include <stdio.h>
#include <sys/eventfd.h>
#include <sys/wait.h>

#include <vent/event.h>

#include "util/case.h"
#include "util/nop.h"

enum breakage { NONE, MASK, SLOT, TIMEOUT };

/* In a child: add an fd event with a timeout, break @how, run a batch.
 * Returns the child's wait status. */
static int run_child(enum breakage how)
{
	fflush(NULL);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct dispatcher *d = new_dispatcher(CLOCK_MONOTONIC);
		int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		struct event e = { .fd = fd, .callback = nop_cb, .tmo = { 100, 0 } };

		e.ep.events = EPOLLIN;
		if (!d || fd < 0 || event_add(d, &e) != 0)
			_exit(10);
		if (vent_wait(d, 0, NULL) != 0)
			_exit(11);
		switch (how) {
		case NONE:
			break;
		case MASK: /* the registered mask the library keeps: now EPOLLOUT */
			e.ep.data.u64 = (e.ep.data.u64 & 0xffffffffu) | (uint64_t)EPOLLOUT << 32;
			break;
		case SLOT: /* the slot index the library keeps */
			e.ep.data.u64 += 1;
			break;
		case TIMEOUT: /* a timeout the heap does not have */
			e.tmo.tv_sec = 0;
			e.tmo.tv_nsec = 0;
			break;
		}
		vent_wait(d, 0, NULL);
		_exit(0);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return status;
}

static void test_verify_passes_intact_state(void **state)
{
	(void)state;
	int status = run_child(NONE);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 0);
}

static void test_verify_catches_breakage(void **state)
{
	(void)state;
	for (int how = MASK; how <= TIMEOUT; how++) {
		int status = run_child((enum breakage)how);
		if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGABRT)
			fail_msg("breakage %d: child status %#x, want SIGABRT from verify", how,
				 status);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		CASE(test_verify_passes_intact_state),
		CASE(test_verify_catches_breakage),
	};

	return cmocka_run_group_tests_name("verify", tests, NULL, NULL);
}

// SPDX-License-Identifier: GPL-2.0-or-later
// loop-task-test.cpp - the core's loop-task hook (lib/core/loop_task.hpp),
// which vent/watch.h uses to reach the loop thread from any thread. Linked
// against the library's internal objects: the hook is not exported.
#include <atomic>
#include <cerrno>
#include <ctime>

#include <pthread.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <vent/event.h>

#include "core/loop_task.hpp"

#include "util/case.h"

namespace {

struct Probe : vent::LoopTask {
	std::atomic<int> runs{0};
	std::atomic<int> cancels{0};
	pthread_t thread{};
	int result = 0;
	struct dispatcher *repost = nullptr; // post again from run()
};

int probe_run(vent::LoopTask *t, bool cancelled) noexcept
{
	auto *p = static_cast<Probe *>(t);
	p->thread = pthread_self();
	if (cancelled) {
		p->cancels++;
		return 0;
	}
	p->runs++;
	if (p->repost) {
		struct dispatcher *d = p->repost;
		p->repost = nullptr;
		vent::post_loop_task(d, p);
	}
	return p->result;
}

void test_task_runs_in_wait_and_counts(void **)
{
	struct dispatcher *d = new_dispatcher(CLOCK_MONOTONIC);
	Probe p;
	p.run = probe_run;
	p.result = 3;

	assert_non_null(d);
	assert_int_equal(vent::post_loop_task(d, &p), 0);
	assert_int_equal(p.runs.load(), 0); // never inside the post
	assert_int_equal(vent_wait(d, 1000, nullptr), 3);
	assert_int_equal(p.runs.load(), 1);
	// A task posted again from its run() runs in the next wait, not this one.
	p.repost = d;
	p.result = 1;
	assert_int_equal(vent::post_loop_task(d, &p), 0);
	assert_int_equal(vent_wait(d, 1000, nullptr), 1);
	assert_int_equal(p.runs.load(), 2);
	assert_int_equal(vent_wait(d, 1000, nullptr), 1);
	assert_int_equal(p.runs.load(), 3);
	assert_int_equal(vent_wait(d, 0, nullptr), 0);
	assert_int_equal(p.cancels.load(), 0);
	free_dispatcher(d);
}

struct LoopArg {
	struct dispatcher *d;
	pthread_t self;
};

void *loop_main(void *arg)
{
	auto *a = static_cast<LoopArg *>(arg);
	a->self = pthread_self();
	event_loop(a->d, nullptr, nullptr);
	return nullptr;
}

void test_task_from_foreign_thread_runs_on_loop_thread(void **)
{
	struct dispatcher *d = new_dispatcher(CLOCK_MONOTONIC);
	Probe p;
	p.run = probe_run;
	LoopArg a{d, {}};
	pthread_t th;

	assert_non_null(d);
	assert_int_equal(pthread_create(&th, nullptr, loop_main, &a), 0);
	usleep(20000); // usually asleep in epoll_wait by now; either way works
	assert_int_equal(vent::post_loop_task(d, &p), 0);
	for (int i = 0; i < 10000 && p.runs.load() == 0; i++)
		usleep(1000);
	assert_int_equal(p.runs.load(), 1);
	assert_int_equal(vent_loop_stop(d), 0);
	assert_int_equal(pthread_join(th, nullptr), 0);
	assert_true(pthread_equal(p.thread, a.self));
	free_dispatcher(d);
}

Probe *busy_probe;
int busy_rc;

void post_from_cleanup(struct event *)
{
	busy_rc = vent::post_loop_task(busy_probe->repost, busy_probe);
}

void test_task_cancelled_by_cleanup_and_free(void **)
{
	struct dispatcher *d = new_dispatcher(CLOCK_MONOTONIC);
	Probe p;
	p.run = probe_run;

	assert_non_null(d);
	// Pending at cleanup_dispatcher(): cancelled inside it, on this thread.
	assert_int_equal(vent::post_loop_task(d, &p), 0);
	assert_int_equal(cleanup_dispatcher(d), 0);
	assert_int_equal(p.cancels.load(), 1);
	assert_true(pthread_equal(p.thread, pthread_self()));
	assert_int_equal(vent_wait(d, 0, nullptr), 0);
	assert_int_equal(p.runs.load(), 0);
	// The dispatcher takes tasks again after the cleanup.
	assert_int_equal(vent::post_loop_task(d, &p), 0);
	assert_true(vent_wait(d, 1000, nullptr) >= 0);
	assert_int_equal(p.runs.load(), 1);

	// Posted from a cleanup callback that free_dispatcher() runs: -EBUSY;
	// a task pending at free_dispatcher() is cancelled inside it.
	Probe late;
	late.run = probe_run;
	late.repost = d;
	busy_probe = &late;
	busy_rc = 0;
	struct event e = __EVENT_INIT(nullptr, post_from_cleanup, -1, 0, 100, 0);
	e.callback = [](struct event *, uint32_t) { return static_cast<int>(EVENTCB_CONTINUE); };
	assert_int_equal(event_add(d, &e), 0);
	assert_int_equal(vent::post_loop_task(d, &p), 0);
	free_dispatcher(d);
	assert_int_equal(busy_rc, -EBUSY);
	assert_int_equal(late.runs.load() + late.cancels.load(), 0);
	assert_int_equal(p.cancels.load(), 2);
	assert_int_equal(p.runs.load(), 1);
}

/*
 * Foreign threads post tasks back to back while the loop thread frees the
 * dispatcher (from a task's run, so the memory stays until the wait
 * returns and the posters can be joined first). The rule: a post that
 * returned 0 has its task run or cancelled exactly once, never lost; once
 * the dispatcher is closing, posts return -EBUSY and the posters stop.
 * More posters than cores, so that some are preempted inside a post when
 * the free comes.
 */
constexpr int kRacePosters = 3;
constexpr int kRacePosts = 1 << 15; // per poster

struct Poster {
	Probe probes[kRacePosts];
	std::atomic<int> posted{0};
	int last_rc = 0;
	pthread_t thread{};
};

struct Race {
	struct dispatcher *d = nullptr;
	Poster posters[kRacePosters];
	std::atomic<bool> killed{false};
};

Race *race;

void *race_poster(void *arg)
{
	auto *p = static_cast<Poster *>(arg);
	int i = 0;
	int rc = 0;
	while (i < kRacePosts && (rc = vent::post_loop_task(race->d, &p->probes[i])) == 0)
		p->posted.store(++i, std::memory_order_release);
	p->last_rc = rc;
	return nullptr;
}

int race_kill(vent::LoopTask *t, bool cancelled) noexcept
{
	static_cast<Probe *>(t)->runs++;
	if (!cancelled) {
		free_dispatcher(race->d);
		// closing_ stays set after a free: the posters' next posts are
		// refused, so they stop, never touching the freed dispatcher.
		for (auto &p : race->posters)
			pthread_join(p.thread, nullptr);
		race->killed = true;
	}
	return 0;
}

void test_post_racing_free_is_cancelled_not_lost(void **)
{
	const int64_t end = now_ns() + 3000000000LL * slowdown();
	int rounds = 0;

	for (; rounds < 2000 && (rounds < 20 || now_ns() < end); rounds++) {
		race = new Race;
		for (auto &p : race->posters)
			for (auto &probe : p.probes)
				probe.run = probe_run;
		race->d = new_dispatcher(CLOCK_MONOTONIC);
		assert_non_null(race->d);
		Probe killer;
		killer.run = race_kill;
		for (auto &p : race->posters)
			assert_int_equal(pthread_create(&p.thread, nullptr, race_poster, &p), 0);
		// Free at a varying point of the posters' run.
		while (race->posters[0].posted.load(std::memory_order_acquire) < (rounds % 16) * 256)
			sched_yield();
		assert_int_equal(vent::post_loop_task(race->d, &killer), 0);
		while (!race->killed)
			assert_true(vent_wait(race->d, 100, nullptr) >= 0);
		// race->d is gone: the wait that ran the killer deleted it.
		assert_int_equal(killer.runs.load(), 1);
		for (auto &p : race->posters) {
			const int posted = p.posted.load();
			if (posted < kRacePosts)
				assert_int_equal(p.last_rc, -EBUSY);
			for (int i = 0; i < kRacePosts; i++)
				assert_int_equal(p.probes[i].runs.load() + p.probes[i].cancels.load(),
						 i < posted ? 1 : 0);
		}
		delete race;
	}
	print_message("%d rounds\n", rounds);
}

void test_task_einval_echild(void **)
{
	struct dispatcher *d = new_dispatcher(CLOCK_MONOTONIC);
	Probe p;

	assert_non_null(d);
	assert_int_equal(vent::post_loop_task(nullptr, &p), -EINVAL);
	assert_int_equal(vent::post_loop_task(d, nullptr), -EINVAL);
	assert_int_equal(vent::post_loop_task(d, &p), -EINVAL); // no run
	p.run = probe_run;
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0)
		_exit(vent::post_loop_task(d, &p) == -ECHILD ? 0 : 1);
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	free_dispatcher(d);
	assert_int_equal(p.runs.load() + p.cancels.load(), 0);
}

} // namespace

int main()
{
	const struct CMUnitTest tests[] = {
		CASE(test_task_runs_in_wait_and_counts),
		CASE(test_task_from_foreign_thread_runs_on_loop_thread),
		CASE(test_task_cancelled_by_cleanup_and_free),
		CASE(test_task_einval_echild),
		CASE(test_post_racing_free_is_cancelled_not_lost),
	};
	return cmocka_run_group_tests_name("loop-task", tests, nullptr, nullptr);
}

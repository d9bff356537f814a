// SPDX-License-Identifier: LGPL-2.1-or-later
// loop_task.hpp - work that any thread hands to a dispatcher's loop thread.
#pragma once

struct dispatcher;

namespace vent {

/*
 * The one way for a module built on the public API (lib/watch) to get onto
 * a dispatcher's loop thread from a thread that does not own it, without
 * touching the dispatcher's tables there: the task is pushed on a lock-free
 * list and the dispatcher's own wake eventfd is signalled; the loop runs
 * the task when it handles that wakeup, on its own thread, where the task
 * may call event_add() and friends like any callback.
 *
 * The poster owns the memory and keeps it alive until run() is called; a
 * task is on at most one list at a time, and may be posted again from (or
 * after) its run().
 */
struct LoopTask {
	/*
	 * Called once per post: on the loop thread, inside a wait, with
	 * @cancelled false (the return value, callbacks run, counts in the
	 * wait's result); or with @cancelled true, inside cleanup_dispatcher()
	 * or free_dispatcher() on their caller's thread (also in a forked
	 * child), when the dispatcher drops the task unrun.
	 */
	int (*run)(LoopTask *task, bool cancelled) noexcept = nullptr;
	LoopTask *next = nullptr; // the dispatcher's
};

/*
 * Hands @task to the loop thread of @dsp and wakes the loop. Any thread;
 * lock-free, never allocates. Returns 0; -EINVAL for a NULL argument or
 * run; -EBUSY while @dsp is being cleaned or freed (the task is not
 * queued; the poster keeps it); -ECHILD in a forked child.
 *
 * Racing cleanup_dispatcher() or free_dispatcher() on another thread: a
 * post that returns 0 has its task run or cancelled exactly once, never
 * lost. A post that got in before the cleanup or free saw it is cancelled
 * inside that call, which waits for posts under way before it cancels the
 * list; one that came after is refused (-EBUSY) until a cleanup returns,
 * and for good once free_dispatcher() began. The caller keeps @dsp valid
 * until post_loop_task() returns: a post may not start once a
 * free_dispatcher() of @dsp can have returned (the watch adapter posts
 * only under its mutex while attached, and detaches inside the free).
 */
int post_loop_task(struct dispatcher *dsp, LoopTask *task) noexcept;

/*
 * True while @dsp is being cleaned or freed (cleanup callbacks are running),
 * when post_loop_task() refuses. Any thread; a relaxed answer for a thread
 * racing with the cleanup, exact on the thread running it.
 */
bool loop_closing(const struct dispatcher *dsp) noexcept;

} // namespace vent

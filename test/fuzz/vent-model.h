/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vent-model.h - a reference model of vent's event.h semantics, driven by a
 * byte stream. The libFuzzer target, the corpus replay test and the soak test
 * all run the same engine: bytes decode into operations on up to 64 events,
 * and every callback, cleanup and return code is checked against the model.
 * A violation prints a diagnosis and abort()s.
 */
#ifndef VENT_MODEL_H
#define VENT_MODEL_H

#include <stddef.h>
#include <stdint.h>

struct vm_source {
	/* Returns the next byte, or -1 at the end of the input. */
	int (*next)(void *ctx);
	void *ctx;
};

struct vm_stats {
	uint64_t ops;
	uint64_t callbacks;
	uint64_t fd_callbacks;
	uint64_t timeouts;
	uint64_t cleanups;
	uint64_t waits;
	/* Timer lateness (callback time minus deadline), nanoseconds. */
	uint64_t late_sum_ns;
	uint64_t late_max_ns;
	/* Timeouts whose deadline was in the future when armed (lateness of
	 * these is what a user perceives; past deadlines are excluded). */
	uint64_t late_count;
};

/*
 * vm_run() - decode and execute one input, then free everything
 * @src: the byte source
 * @max_wait_ms: upper bound for the blocking waits the input may ask for
 *               (0: only vent_wait(.., 0, ..) and short settles)
 * @stats: accumulated (may be NULL)
 *
 * Checks that no fd leaked across the run. Aborts on any violation.
 */
void vm_run(struct vm_source *src, int max_wait_ms, struct vm_stats *stats);

/* vm_run() over a buffer. */
void vm_run_buffer(const uint8_t *data, size_t size, struct vm_stats *stats);

#endif

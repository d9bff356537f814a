/* SPDX-License-Identifier: GPL-2.0-or-later */
/* util/nop.h - callbacks that do nothing (or only count), for tests that only need one. */
#ifndef VENT_TEST_NOP_UTIL_H
#define VENT_TEST_NOP_UTIL_H

#include <stdint.h>

#include <vent/event.h>
#include <vent/watch.h>

static inline int nop_cb(struct event *evt, uint32_t events)
{
	(void)evt;
	(void)events;
	return EVENTCB_CONTINUE;
}

/* An event callback that only counts its calls, in counted_calls. */
static int counted_calls __attribute__((unused));

static inline int counting_cb(struct event *evt, uint32_t events)
{
	(void)evt;
	(void)events;
	counted_calls++;
	return EVENTCB_CONTINUE;
}

static inline void nop_handle(int watch, int fd, int events, void *opaque)
{
	(void)watch;
	(void)fd;
	(void)events;
	(void)opaque;
}

static inline void nop_timeout(int timer, void *opaque)
{
	(void)timer;
	(void)opaque;
}

#endif

// SPDX-License-Identifier: GPL-2.0-or-later
// heap-test.cpp - unit test of vent::detail::TimeoutHeap (lib/core/
// timeout_heap.hpp) against a reference model (std::map on (deadline, arm
// sequence)), and of the deadline helpers of lib/base/time.hpp. Linked
// against the library's internal objects.
#include <algorithm>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <random>
#include <utility>
#include <vector>

#include "base/time.hpp"
#include "core/timeout_heap.hpp"

#include "util/case.h"

using vent::detail::deadline_to_timespec;
using vent::detail::kInBatch;
using vent::detail::kNever;
using vent::detail::kNotQueued;
using vent::detail::relative_deadline;
using vent::detail::timespec_to_deadline;

namespace {

// The owner's per-id position table, as the dispatcher keeps it.
struct Positions {
	std::vector<uint32_t> *pos;
	void set(uint32_t id, uint32_t p) noexcept { (*pos)[id] = p; }
};

using Heap = vent::detail::TimeoutHeap<Positions>;

// Reference: (deadline, sequence) -> id. The sequence is counted here the
// same way the heap counts arms: every push and every update is a new arm.
struct Model {
	std::map<std::pair<int64_t, uint64_t>, uint32_t> order;
	std::vector<std::pair<int64_t, uint64_t>> key; // per id, if queued
	std::vector<bool> queued;
	uint64_t seq = 0;

	explicit Model(size_t n) : key(n), queued(n, false) {}
	void push(uint32_t id, int64_t when)
	{
		key[id] = {when, seq++};
		order.emplace(key[id], id);
		queued[id] = true;
	}
	void erase(uint32_t id)
	{
		order.erase(key[id]);
		queued[id] = false;
	}
	void update(uint32_t id, int64_t when)
	{
		erase(id);
		push(id, when);
	}
};

// Every queued id has a distinct position below size(), every other id
// kNotQueued (or kInBatch if popped with that mark): the positions are a
// permutation of [0, size).
void check_positions(const Heap &h, const Model &m, const std::vector<uint32_t> &pos)
{
	std::vector<uint32_t> seen;
	for (size_t id = 0; id < pos.size(); id++) {
		if (m.queued[id]) {
			assert_true(pos[id] < h.size());
			seen.push_back(pos[id]);
		} else {
			assert_true(pos[id] == kNotQueued || pos[id] == kInBatch);
		}
	}
	assert_int_equal(seen.size(), h.size());
	std::sort(seen.begin(), seen.end());
	for (size_t i = 0; i < seen.size(); i++)
		assert_int_equal(seen[i], i);
}

void check_top(const Heap &h, const Model &m)
{
	assert_int_equal(h.size(), m.order.size());
	assert_int_equal(h.empty(), m.order.empty());
	if (m.order.empty())
		return;
	const auto &ref = *m.order.begin();
	assert_int_equal(h.top().id, ref.second);
	assert_true(h.top().when == ref.first.first);
}

// Deadlines from a narrow range (many ties) or a wide one, with extremes.
int64_t pick_when(std::mt19937_64 &rng, int mode)
{
	switch (rng() % 16) {
	case 0:
		return kNever;
	case 1:
		return INT64_MIN;
	case 2:
		return 0;
	default:
		break;
	}
	if (mode == 0)
		return static_cast<int64_t>(rng() % 8);
	return static_cast<int64_t>(rng() % 2000001) - 1000000;
}

void run_random(uint64_t seed, size_t nids, unsigned ops, int mode)
{
	std::mt19937_64 rng(seed);
	std::vector<uint32_t> pos(nids, kNotQueued);
	Heap h(Positions{&pos});
	Model m(nids);

	for (unsigned op = 0; op < ops; op++) {
		const uint32_t id = static_cast<uint32_t>(rng() % nids);
		const unsigned what = static_cast<unsigned>(rng() % 10);
		if (!m.queued[id]) {
			if (what < 7) {
				int64_t when = pick_when(rng, mode);
				h.reserve_one();
				h.push(when, id);
				m.push(id, when);
			}
		} else if (what < 3) {
			h.erase(pos[id]);
			m.erase(id);
			assert_int_equal(pos[id], kNotQueued);
		} else if (what < 6) {
			int64_t when = pick_when(rng, mode);
			h.update(pos[id], when);
			m.update(id, when);
		} else if (what < 8) {
			// Pop the minimum (whatever id was drawn).
			auto ref = *m.order.begin();
			auto e = h.pop(what == 6 ? kInBatch : kNotQueued);
			assert_int_equal(e.id, ref.second);
			assert_true(e.when == ref.first.first);
			m.erase(ref.second);
			assert_int_equal(pos[e.id], what == 6 ? kInBatch : kNotQueued);
			pos[e.id] = kNotQueued;
		}
		check_top(h, m);
		if (op % 64 == 0 || nids <= 16)
			check_positions(h, m, pos);
	}
	// Drain: the whole order, ties in arming order.
	check_positions(h, m, pos);
	while (!m.order.empty()) {
		auto ref = *m.order.begin();
		auto e = h.pop();
		assert_int_equal(e.id, ref.second);
		assert_true(e.when == ref.first.first);
		m.erase(ref.second);
	}
	assert_true(h.empty());
	for (uint32_t p : pos)
		assert_int_equal(p, kNotQueued);
}

void test_heap_random_small(void **)
{
	unsigned ops = scaled(200000, 20000);
	for (uint64_t seed = 1; seed <= 4; seed++)
		run_random(seed, 16, ops / 4, 0);
}

void test_heap_random_ties(void **)
{
	run_random(42, 2000, scaled(400000, 30000), 0);
}

void test_heap_random_wide(void **)
{
	run_random(7, 5000, scaled(400000, 30000), 1);
}

// Equal deadlines pop in arming order; an update re-arms (goes behind).
void test_heap_ties_fifo(void **)
{
	const uint32_t n = 1000;
	std::vector<uint32_t> pos(n, kNotQueued);
	Heap h(Positions{&pos});

	for (uint32_t id = 0; id < n; id++) {
		h.reserve_one();
		h.push(5, id);
	}
	// Re-arm id 0 at the same deadline: now last. Move id 1 earlier.
	h.update(pos[0], 5);
	h.update(pos[1], 4);
	assert_int_equal(h.pop().id, 1);
	for (uint32_t id = 2; id < n; id++) {
		auto e = h.pop();
		assert_int_equal(e.id, id);
		assert_true(e.when == 5);
	}
	assert_int_equal(h.pop().id, 0);
	assert_true(h.empty());

	// Interleaved deadlines: stable within each deadline.
	for (uint32_t id = 0; id < n; id++) {
		h.reserve_one();
		h.push(static_cast<int64_t>(id % 3), id);
	}
	for (int64_t when = 0; when < 3; when++)
		for (uint32_t id = static_cast<uint32_t>(when); id < n; id += 3) {
			auto e = h.pop();
			assert_int_equal(e.id, id);
			assert_true(e.when == when);
		}
	assert_true(h.empty());
}

void test_heap_clear_and_shrink(void **)
{
	std::vector<uint32_t> pos(100, kNotQueued);
	Heap h(Positions{&pos});

	for (uint32_t id = 0; id < 100; id++) {
		h.reserve_one();
		h.push(100 - id, id);
	}
	assert_int_equal(h.size(), 100);
	assert_int_equal(h.top().id, 99);
	h.clear();
	assert_true(h.empty());
	h.shrink();
	h.reserve_one();
	h.push(1, 3);
	assert_int_equal(h.top().id, 3);
	assert_int_equal(pos[3], 0);
	h.erase(0);
	assert_true(h.empty());
	assert_int_equal(pos[3], kNotQueued);
}

// ------------------------------------------------------------------------
// timespec <-> deadline

struct timespec ts(long long s, long long ns)
{
	struct timespec t;
	t.tv_sec = static_cast<time_t>(s);
	t.tv_nsec = static_cast<long>(ns);
	return t;
}

int64_t conv(long long s, long long ns, bool abs, int64_t now, bool *ok = nullptr)
{
	int64_t d = 12345;
	bool r = timespec_to_deadline(ts(s, ns), abs, now, d);
	if (ok)
		*ok = r;
	else
		assert_true(r);
	return d;
}

void test_deadline_conversion(void **)
{
	const int64_t now = 1000 * vent::detail::kNsPerSec;
	bool ok;

	// Relative: added to now; normalised.
	assert_true(conv(1, 500, false, now) == now + 1000000500);
	assert_true(conv(0, 2500000000LL, false, now) == now + 2500000000LL);
	assert_true(conv(2, -500000000, false, now) == now + 1500000000);
	assert_true(conv(0, 1, false, now) == now + 1);
	// Negative after normalisation: refused, deadline untouched.
	int64_t d = conv(-1, 0, false, now, &ok);
	assert_false(ok);
	assert_true(d == 12345);
	conv(0, -1, false, now, &ok);
	assert_false(ok);
	conv(1, -1000000001, false, now, &ok);
	assert_false(ok);
	// Zero is not negative.
	assert_true(conv(1, -1000000000, false, now) == now);
	// Absolute: now ignored; negative is fine (the past).
	assert_true(conv(5, 7, true, now) == 5000000007LL);
	assert_true(conv(-5, 7, true, now) == -4999999993LL);
	assert_true(conv(0, -1, true, now) == -1);
	// Huge: clamped, no overflow (UBSan watches).
	assert_true(conv(LLONG_MAX, 999999999, false, now) == kNever);
	assert_true(conv(LLONG_MAX, 999999999, true, now) == kNever);
	assert_true(conv(INT64_MAX / 1000000000, 999999999, false, now) == kNever);
	// LONG_MAX ns (~292 years) after now does not fit: clamped.
	assert_true(conv(0, LONG_MAX, false, now) == kNever);
	assert_true(conv(0, LONG_MAX, false, 0) == LONG_MAX);
	assert_true(conv(LLONG_MIN, 0, true, now) == INT64_MIN);
	assert_true(conv(LLONG_MIN, -999999999, true, now) == INT64_MIN);
	conv(LLONG_MIN, 0, false, now, &ok);
	assert_false(ok);
	// Just below the clamp: exact.
	const int64_t s = INT64_MAX / 1000000000;
	assert_true(conv(s, 0, true, 0) == s * 1000000000);
	// Relative near the top with a large now: clamps.
	assert_true(conv(s, 0, false, now) == kNever);
}

void test_deadline_to_timespec(void **)
{
	struct timespec t = deadline_to_timespec(0);
	assert_int_equal(t.tv_sec, 0);
	assert_int_equal(t.tv_nsec, 0);
	t = deadline_to_timespec(1500000000);
	assert_int_equal(t.tv_sec, 1);
	assert_int_equal(t.tv_nsec, 500000000);
	// Floor division: stays normalised below zero.
	t = deadline_to_timespec(-1);
	assert_int_equal(t.tv_sec, -1);
	assert_int_equal(t.tv_nsec, 999999999);
	t = deadline_to_timespec(-1000000000);
	assert_int_equal(t.tv_sec, -1);
	assert_int_equal(t.tv_nsec, 0);
	// INT64_MIN = -9223372037 s + 145224192 ns; INT64_MAX = 9223372036 s +
	// 854775807 ns.
	t = deadline_to_timespec(INT64_MIN);
	assert_true(t.tv_sec == -9223372037LL);
	assert_int_equal(t.tv_nsec, 145224192);
	t = deadline_to_timespec(kNever);
	assert_true(t.tv_sec == 9223372036LL);
	assert_int_equal(t.tv_nsec, 854775807);

	// Round trip through the absolute conversion.
	std::mt19937_64 rng(99);
	for (unsigned i = 0; i < scaled(100000, 10000); i++) {
		int64_t v = static_cast<int64_t>(rng());
		struct timespec x = deadline_to_timespec(v);
		assert_true(x.tv_nsec >= 0 && x.tv_nsec < 1000000000);
		int64_t back = 0;
		assert_true(timespec_to_deadline(x, true, 0, back));
		assert_true(back == v);
	}
}

// relative_deadline()'s short path (no 128-bit arithmetic) must agree with
// the general conversion on both sides of its bounds: tv_sec just below and
// at INT32_MAX, tv_nsec at 0, 999999999 and out of range, a carry into
// tv_sec, and a base whose sum leaves int64 nanoseconds.
void test_relative_deadline(void **)
{
	const long long secs[] = {0, 1, 10, INT32_MAX - 1LL, INT32_MAX, INT32_MAX + 1LL, -1};
	const long long nsecs[] = {0, 1, 500000000, 999999999, 1000000000, -1, 2500000000LL};
	const struct timespec bases[] = {
		ts(0, 0),
		ts(1000, 999999999),
		ts(1700000000, 600000000),
		ts(INT64_MAX / 1000000000 - 5, 854775807),
	};
	for (const struct timespec &base : bases) {
		const int64_t base_ns = static_cast<int64_t>(base.tv_sec) * 1000000000 +
					base.tv_nsec;
		for (long long s : secs) {
			for (long long ns : nsecs) {
				int64_t want = 7, got = 7;
				struct timespec abs = {0, 0};
				bool ok_want = timespec_to_deadline(ts(s, ns), false, base_ns, want);
				bool ok_got = relative_deadline(base, ts(s, ns), got, abs);
				assert_true(ok_want == ok_got);
				if (!ok_want)
					continue;
				assert_true(want == got);
				struct timespec w = deadline_to_timespec(want);
				assert_true(abs.tv_sec == w.tv_sec);
				assert_true(abs.tv_nsec == w.tv_nsec);
			}
		}
	}
}

} // namespace

int main()
{
	const struct CMUnitTest tests[] = {
		CASE(test_heap_ties_fifo),
		CASE(test_heap_clear_and_shrink),
		CASE(test_heap_random_small),
		CASE(test_heap_random_ties),
		CASE(test_heap_random_wide),
		CASE(test_deadline_conversion),
		CASE(test_deadline_to_timespec),
		CASE(test_relative_deadline),
	};

	return cmocka_run_group_tests_name("heap", tests, nullptr, nullptr);
}

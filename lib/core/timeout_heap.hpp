// SPDX-License-Identifier: LGPL-2.1-or-later
// timeout_heap.hpp - indexed 4-ary min-heap of deadlines.
#pragma once

#include <cstdint>

#include "base/pod_array.hpp"
#include "base/time.hpp"

namespace vent::detail {

// Heap positions with a special meaning.
constexpr uint32_t kNotQueued = UINT32_MAX;
constexpr uint32_t kInBatch = UINT32_MAX - 1;

/*
 * Min-heap on (deadline, arm sequence). Equal deadlines pop in the order
 * they were armed; the 32-bit sequence is compared with wrap-around, which
 * is exact while fewer than 2^31 arms separate two equal deadlines.
 *
 * Entries carry an id (the dispatcher's slot index). The heap reports every
 * move through Pos::set(id, index), so the owner can find an entry in O(1)
 * and update or erase it in O(log n): the owner keeps the position in its
 * own per-id record instead of the heap keeping a second table.
 *
 * 4-ary: half the depth of a binary heap, and the four children share a
 * cache line (PodArray places them so), which matters once the heap
 * outgrows the cache.
 */
template <class Pos> class TimeoutHeap {
public:
	struct Entry {
		int64_t when;
		uint32_t id;
		uint32_t seq;
	};

	explicit TimeoutHeap(Pos pos) : pos_(pos) {}

	// The heap's order, true if @a comes before @b: deadline, then arm
	// sequence (with wrap-around).
	static bool less(const Entry &a, const Entry &b) noexcept
	{
		if (a.when != b.when)
			return a.when < b.when;
		return static_cast<int32_t>(a.seq - b.seq) < 0;
	}

	bool empty() const noexcept { return h_.empty(); }
	size_t size() const noexcept { return h_.size(); }
	const Entry &top() const noexcept { return h_.front(); }
	// Entry @i in heap order (the dispatcher's re-arm and verify()).
	const Entry &at(size_t i) const noexcept { return h_[i]; }
	// Makes the next push() unable to throw (geometric growth).
	void reserve_one() { h_.reserve_one(); }
	void clear() noexcept { h_.clear(); }
	void shrink() { h_.shrink_to_fit(); }

	// The arm sequence the next arm takes (push() and update() without a
	// @seq take it themselves). An owner that keeps a key of its own (see
	// the dispatcher's lazy re-queue) takes it here and passes it on.
	uint32_t next_seq() noexcept { return seq_++; }

	// Precondition: capacity for one more entry (reserve_one()).
	void push(int64_t when, uint32_t id) noexcept { push(when, id, seq_++); }
	void push(int64_t when, uint32_t id, uint32_t seq) noexcept
	{
		h_.push_back(Entry{when, id, seq});
		sift_up(h_.size() - 1);
	}

	/*
	 * Starts loading what update(@idx) or push() will read: the entry,
	 * its parent and its children (one line each, see PodArray). Called
	 * before the clock read of an arm or re-arm: the vDSO's clock read orders
	 * loads but not prefetches, so the cache misses of a large heap
	 * overlap with it instead of following it.
	 */
	// @idx may be size(): the place of the next push().
	void prefetch(size_t idx) const noexcept
	{
		if (h_.empty())
			return;
		const Entry *d = &h_[0];
		__builtin_prefetch(d + idx, 1);
		if (idx > 0)
			__builtin_prefetch(d + parent(idx), 1);
		if (4 * idx + 1 < h_.size())
			__builtin_prefetch(d + 4 * idx + 1, 1);
	}

	// Starts loading the entry at @idx alone (a re-arm that may not need
	// more).
	void prefetch_entry(size_t idx) const noexcept { __builtin_prefetch(&h_[idx], 1); }

	// Moves the entry at @idx to a new deadline (re-sequenced: a re-arm
	// counts as a new arm for tie-breaking).
	void update(uint32_t idx, int64_t when) noexcept { update(idx, when, seq_++); }
	// The same with a sequence from next_seq().
	void update(uint32_t idx, int64_t when, uint32_t seq) noexcept
	{
		Entry &e = h_[idx];
		const Entry old = e;
		e.when = when;
		e.seq = seq;
		if (less(e, old))
			sift_up(idx);
		else
			sift_down(idx);
	}

	void erase(uint32_t idx) noexcept
	{
		pos_.set(h_[idx].id, kNotQueued);
		size_t last = h_.size() - 1;
		if (idx != last) {
			place(idx, h_[last]);
			h_.pop_back();
			if (idx > 0 && less(h_[idx], h_[parent(idx)]))
				sift_up(idx);
			else
				sift_down(idx);
		} else {
			h_.pop_back();
		}
	}

	// Removes the top entry; its position is set to @mark.
	Entry pop(uint32_t mark = kNotQueued) noexcept
	{
		Entry e = h_.front();
		erase(0);
		pos_.set(e.id, mark);
		return e;
	}

private:
	static size_t parent(size_t i) noexcept { return (i - 1) / 4; }

	// Writes @e at @i and tells the owner where it is.
	void place(size_t i, const Entry &e) noexcept
	{
		h_[i] = e;
		pos_.set(e.id, static_cast<uint32_t>(i));
	}

	// Hole-based sifting: the moving entry is written once at the end.
	void sift_up(size_t i) noexcept
	{
		Entry e = h_[i];
		while (i > 0) {
			size_t p = parent(i);
			if (!less(e, h_[p]))
				break;
			place(i, h_[p]);
			i = p;
		}
		place(i, e);
	}

	void sift_down(size_t i) noexcept
	{
		const size_t n = h_.size();
		Entry e = h_[i];
		for (;;) {
			size_t c = 4 * i + 1;
			if (c >= n)
				break;
			size_t best = c;
			size_t end = c + 4 < n ? c + 4 : n;
			for (size_t k = c + 1; k < end; k++)
				if (less(h_[k], h_[best]))
					best = k;
			if (!less(h_[best], e))
				break;
			place(i, h_[best]);
			i = best;
		}
		place(i, e);
	}

	PodArray<Entry, true> h_;
	Pos pos_;
	uint32_t seq_ = 0;
};

} // namespace vent::detail

// SPDX-License-Identifier: LGPL-2.1-or-later
// slot_table.hpp - records with stable indices and a free list.
#pragma once

#include <algorithm>
#include <cstdint>

#include "base/pod_array.hpp"

namespace vent::detail {

/*
 * A table of records (slots) addressed by index, for the dispatcher's
 * events and the timeout list's entries. An index stays valid while its
 * slot is taken: the heap and the kernel's epoll records carry it. Freed
 * slots form a free list through T::next_free (a field the record does not
 * use while free, typically in a union with one it uses while taken) and
 * are reused before the table grows.
 *
 * Only reserve_one() allocates (throws std::bad_alloc, nothing changed);
 * take() after it cannot fail, so an owner can make every allocation
 * before it changes anything.
 */
template <class T> class SlotTable {
public:
	static constexpr uint32_t kNone = UINT32_MAX;

	size_t size() const noexcept { return slots_.size(); }
	T &operator[](size_t i) noexcept { return slots_[i]; }
	const T &operator[](size_t i) const noexcept { return slots_[i]; }
	// The first free slot, or kNone; the rest follow T::next_free.
	uint32_t free_head() const noexcept { return free_; }

	// Makes the next take() unable to throw: geometric growth, at least
	// to @min_cap slots.
	void reserve_one(size_t min_cap = 16)
	{
		if (free_ == kNone && slots_.size() == slots_.capacity())
			slots_.reserve(std::max(min_cap, slots_.capacity() * 2));
	}

	// A slot to fill: the head of the free list (its fields as they were
	// left), or a new value-initialised one at the end. Precondition:
	// reserve_one().
	uint32_t take() noexcept
	{
		uint32_t id = free_;
		if (id == kNone) {
			id = static_cast<uint32_t>(slots_.size());
			slots_.push_back(T{}); // reserved: cannot throw
		} else {
			free_ = slots_[id].next_free;
		}
		return id;
	}

	// Puts slot @id on the free list (T::next_free is overwritten).
	void release(uint32_t id) noexcept
	{
		slots_[id].next_free = free_;
		free_ = id;
	}

	// Forgets every slot; the memory is kept for reuse.
	void clear() noexcept
	{
		slots_.clear();
		free_ = kNone;
	}

private:
	PodArray<T> slots_;
	uint32_t free_ = kNone;
};

} // namespace vent::detail

// SPDX-License-Identifier: LGPL-2.1-or-later
// ptr_map.hpp - an index from an address to a 32-bit value, without a
// node per entry.
#pragma once

#include <cstdint>

#include "base/pod_array.hpp"

namespace vent::detail {

/*
 * Open addressing with linear probing over one array of (key, value)
 * buckets, a power of two in size and at most half full; an empty bucket
 * has a null key. Deletion shifts the rest of the probe run back (no
 * tombstones), so a lookup never walks past entries that are gone and the
 * table never needs a rebuild except to grow.
 *
 * For an owner that must make its allocations up front: only reserve_one()
 * allocates (throws std::bad_alloc, nothing changed); insert() after it
 * cannot fail. Growth doubles the array, so an insert costs amortised O(1)
 * and none allocates once the table has held as many entries.
 */
class PtrMap {
public:
	static constexpr uint32_t kAbsent = UINT32_MAX;

	size_t size() const noexcept { return n_; }

	// The value of @key, or kAbsent.
	uint32_t find(const void *key) const noexcept
	{
		if (n_ == 0)
			return kAbsent;
		for (size_t i = home(key);; i = next(i)) {
			const Bucket &b = t_[i];
			if (b.key == key)
				return b.value;
			if (!b.key)
				return kAbsent;
		}
	}

	// Makes the next insert() unable to throw.
	void reserve_one()
	{
		if (2 * (n_ + 1) > t_.size())
			rehash(t_.size() ? 2 * t_.size() : 16);
	}

	// Precondition: @key is not null and not in the map; reserve_one().
	void insert(const void *key, uint32_t value) noexcept
	{
		size_t i = home(key);
		while (t_[i].key)
			i = next(i);
		t_[i] = Bucket{key, value};
		n_++;
	}

	// Precondition: @key is in the map.
	void erase(const void *key) noexcept
	{
		size_t hole = home(key);
		while (t_[hole].key != key)
			hole = next(hole);
		// Backward shift: an entry further along the run moves into the
		// hole unless its home lies after the hole (it would then be
		// before its home, where no lookup looks).
		for (size_t j = next(hole); t_[j].key; j = next(j)) {
			const size_t mask = t_.size() - 1;
			if (((j - home(t_[j].key)) & mask) >= ((j - hole) & mask)) {
				t_[hole] = t_[j];
				hole = j;
			}
		}
		t_[hole].key = nullptr;
		n_--;
	}

	// Empties the map; the memory is kept for reuse.
	void clear() noexcept
	{
		for (size_t i = 0; i < t_.size(); i++)
			t_[i].key = nullptr;
		n_ = 0;
	}

private:
	struct Bucket {
		const void *key; // nullptr: empty
		uint32_t value;
	};

	// Fibonacci hashing: the top bits of the address times 2^64 / phi,
	// which spreads the aligned, evenly spaced addresses of an array of
	// events.
	size_t home(const void *key) const noexcept
	{
		const uint64_t h = static_cast<uint64_t>(reinterpret_cast<uintptr_t>(key)) *
				   0x9e3779b97f4a7c15ull;
		return static_cast<size_t>(h >> shift_);
	}
	size_t next(size_t i) const noexcept { return (i + 1) & (t_.size() - 1); }

	// Moves every entry into a table of @cap buckets (a power of two).
	void rehash(size_t cap)
	{
		PodArray<Bucket> old;
		old.resize(cap, Bucket{nullptr, 0}); // the only allocation
		old.swap(t_);
		int bits = 0;
		while ((size_t{1} << bits) < cap)
			bits++;
		shift_ = 64 - bits;
		n_ = 0;
		for (size_t i = 0; i < old.size(); i++)
			if (old[i].key)
				insert(old[i].key, old[i].value);
	}

	PodArray<Bucket> t_;
	size_t n_ = 0;
	int shift_ = 64;
};

} // namespace vent::detail

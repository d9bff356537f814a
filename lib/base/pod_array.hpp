// SPDX-License-Identifier: LGPL-2.1-or-later
// pod_array.hpp - a growable array of trivially copyable records on realloc().
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <type_traits>
#include <utility>

namespace vent::detail {

/*
 * Like std::vector for trivially copyable T, with two differences that
 * matter for the dispatcher's tables:
 *
 * - Growth uses realloc(). Large blocks are mmap()ed by glibc, and realloc()
 *   moves them with mremap(): no copy and no fresh page faults for what is
 *   already there. std::vector allocates anew, copies and faults every page
 *   again at each doubling, which showed as a third of the cost of adding
 *   100k timers.
 * - With kGroup64 (for 16-byte records), the array is placed inside its
 *   block so that element 1 + 4k starts a 64-byte cache line: the four
 *   children of a node of a 4-ary heap (4i+1 .. 4i+4) then share one cache
 *   line instead of straddling two. realloc() may return a block with
 *   another alignment; the contents are then moved within it.
 *
 * Only reserve(), push_back() and resize() allocate; they throw
 * std::bad_alloc and leave the array unchanged on failure.
 */
template <class T, bool kGroup64 = false> class PodArray {
	static_assert(std::is_trivially_copyable_v<T>, "PodArray holds trivially copyable records");
	static_assert(!kGroup64 || sizeof(T) == 16, "cache-line groups need 16-byte records");
	// Spare records at the front of the block to place element 1 on a line.
	static constexpr size_t kSpare = kGroup64 ? 3 : 0;

public:
	PodArray() noexcept = default;
	PodArray(const PodArray &) = delete;
	PodArray &operator=(const PodArray &) = delete;
	~PodArray() { std::free(raw_); }

	size_t size() const noexcept { return size_; }
	size_t capacity() const noexcept { return cap_; }
	bool empty() const noexcept { return size_ == 0; }
	T &operator[](size_t i) noexcept { return data_[i]; }
	const T &operator[](size_t i) const noexcept { return data_[i]; }
	T &front() noexcept { return data_[0]; }
	const T &front() const noexcept { return data_[0]; }

	void reserve(size_t n)
	{
		if (n <= cap_)
			return;
		if (n > SIZE_MAX / sizeof(T) - kSpare)
			throw std::bad_alloc();
		const size_t old_shift = static_cast<size_t>(data_ - raw_);
		void *p = std::realloc(raw_, (n + kSpare) * sizeof(T));
		if (!p)
			throw std::bad_alloc();
		raw_ = static_cast<T *>(p);
		const size_t shift = shift_for(raw_);
		if (shift != old_shift && size_)
			std::memmove(static_cast<void *>(raw_ + shift), raw_ + old_shift,
				     size_ * sizeof(T));
		data_ = raw_ + shift;
		cap_ = n;
	}

	// Geometric growth: amortised O(1) push_back().
	void reserve_one()
	{
		if (size_ == cap_)
			reserve(cap_ < 16 ? 16 : cap_ * 2);
	}

	void push_back(const T &v)
	{
		reserve_one();
		data_[size_++] = v;
	}
	void pop_back() noexcept { size_--; }
	// Exchanges the contents (a table rebuilt into a fresh array).
	void swap(PodArray &o) noexcept
	{
		std::swap(raw_, o.raw_);
		std::swap(data_, o.data_);
		std::swap(size_, o.size_);
		std::swap(cap_, o.cap_);
	}
	void clear() noexcept { size_ = 0; }

	// Grows to @n records (at least doubling), new ones set to @v.
	void resize(size_t n, const T &v)
	{
		if (n > cap_)
			reserve(n > 2 * cap_ ? n : 2 * cap_);
		for (size_t i = size_; i < n; i++)
			data_[i] = v;
		size_ = n;
	}

	// Gives memory back; never fails (keeps the block if realloc() does).
	void shrink_to_fit() noexcept
	{
		if (size_ == cap_)
			return;
		if (size_ == 0) {
			std::free(raw_);
			raw_ = data_ = nullptr;
			cap_ = 0;
			return;
		}
		// Compact to the front first: the shrunk block may move.
		const size_t old_shift = static_cast<size_t>(data_ - raw_);
		if (old_shift)
			std::memmove(static_cast<void *>(raw_), data_, size_ * sizeof(T));
		void *p = std::realloc(raw_, (size_ + kSpare) * sizeof(T));
		if (p) {
			raw_ = static_cast<T *>(p);
			cap_ = size_;
		}
		const size_t shift = shift_for(raw_);
		if (shift)
			std::memmove(static_cast<void *>(raw_ + shift), raw_, size_ * sizeof(T));
		data_ = raw_ + shift;
	}

private:
	// Where element 0 goes in a block at @raw (0 without kGroup64).
	static size_t shift_for(const T *raw) noexcept
	{
		if (!kGroup64)
			return 0;
		const auto a = reinterpret_cast<uintptr_t>(raw);
		// Want (a + 16 * (shift + 1)) % 64 == 0; malloc() gives 16-byte
		// alignment, so some shift in 0..3 does it.
		for (size_t shift = 0; shift < 4; shift++)
			if ((a + sizeof(T) * (shift + 1)) % 64 == 0)
				return shift;
		return 0;
	}

	T *raw_ = nullptr;
	T *data_ = nullptr;
	size_t size_ = 0;
	size_t cap_ = 0;
};

} // namespace vent::detail

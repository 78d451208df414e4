// weft/primitives/detail/ring_buffer.hpp: the item storage of weft::queue and weft::channel.
//
// A FIFO ring over one array whose capacity is a power of two (index arithmetic is a mask), grown
// by doubling when full, so a queue in a steady state allocates nothing. Not thread-safe: the
// queue's lock guards it. Requires: T's move constructor is noexcept (growth moves the items and
// must not fail half-way).
#pragma once

#include <cstddef>
#include <memory>
#include <new>
#include <utility>

namespace weft::detail {

// A growable FIFO ring of T; capacity is a power of two, doubled when full. Not thread-safe.
template <class T>
class ring_buffer {
 public:
  ring_buffer() = default;
  ring_buffer(const ring_buffer&) = delete;
  ring_buffer& operator=(const ring_buffer&) = delete;
  ~ring_buffer() {
    clear();
    std::allocator<T>().deallocate(slots_, capacity_);
  }

  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] bool empty() const noexcept { return size_ == 0; }

  // Strong guarantee: on std::bad_alloc nothing changed.
  void push_back(T&& value) {
    if (size_ == capacity_) grow();
    ::new (static_cast<void*>(slots_ + ((head_ + size_) & (capacity_ - 1)))) T(std::move(value));
    ++size_;
  }
  // Requires: !empty().
  T pop_front() noexcept {
    T* slot = slots_ + head_;
    T value(std::move(*slot));
    slot->~T();
    head_ = (head_ + 1) & (capacity_ - 1);
    --size_;
    return value;
  }
  void clear() noexcept {
    while (size_ != 0)
      (void)pop_front();
  }
  void swap(ring_buffer& other) noexcept {
    std::swap(slots_, other.slots_);
    std::swap(capacity_, other.capacity_);
    std::swap(head_, other.head_);
    std::swap(size_, other.size_);
  }

 private:
  void grow() {
    const std::size_t capacity = capacity_ == 0 ? 8 : capacity_ * 2;
    T* slots = std::allocator<T>().allocate(capacity);
    for (std::size_t i = 0; i < size_; ++i) {
      T* from = slots_ + ((head_ + i) & (capacity_ - 1));
      ::new (static_cast<void*>(slots + i)) T(std::move(*from));
      from->~T();
    }
    std::allocator<T>().deallocate(slots_, capacity_);
    slots_ = slots;
    capacity_ = capacity;
    head_ = 0;
  }

  T* slots_ = nullptr;
  std::size_t capacity_ = 0;
  std::size_t head_ = 0;
  std::size_t size_ = 0;
};

}  // namespace weft::detail

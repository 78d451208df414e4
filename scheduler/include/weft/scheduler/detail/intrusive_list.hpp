// weft/scheduler/detail/intrusive_list.hpp: the one intrusive doubly linked list of weft.
//
// Every list of waiting things in weft links nodes that live somewhere else: a wait_node in an
// awaiter (mutex, semaphore, event, ...), a queue_waiter in a queue's or channel's awaiter, a
// timer_entry in a sleeping frame, a task_header at the top of a spawned frame. The list owns
// nothing and allocates nothing: a node embeds a list_links<T> and the list threads those links.
// Push, pop and removal from anywhere (a cancelled waiter, a disarmed timer, a finished task) are
// O(1) and write only the node and its neighbours.
//
//   struct waiter { list_links<waiter> links; ... };
//   intrusive_list<waiter, &waiter::links> fifo;   // head and tail: FIFO queues
//   fifo.push_back(&w);
//   waiter* first = fifo.pop_front();               // null when empty
//   fifo.remove(&w);                                // w must be linked in fifo
//   for (waiter& each : fifo) { ... }
//
// Two shapes, because their users need different things and neither may cost the other a word:
//   intrusive_list       head and tail: push at both ends, pop at the front (the primitives' FIFO
//                        wait queues, queue_core's getters, putters and joiners)
//   intrusive_head_list  the head alone, one pointer: push at the front only (the registry's
//                        shards, which only insert, unlink and walk, and the timer wheel's 384
//                        slots, where a tail would double the slot arrays for nothing)
//
// Invariants (of a list L over links member M), which every member function keeps:
//   - L is empty iff its head is null (and, for intrusive_list, iff its tail is null);
//   - the head's M.prev is null, the last node's M.next is null (the tail, for intrusive_list);
//   - for every linked node n: n.M.next.M.prev == n when n.M.next is set, and n.M.prev.M.next == n
//     when n.M.prev is set; so remove(n) needs nothing but n and L;
//   - a node is linked into at most one list through M at a time (a node that sits in two lists at
//     once needs two links members);
//   - a node that remove() or pop_front() unlinked has both links null again; so has a node that
//     was never linked (list_links' initializers).
// The list never reads a node that is not linked into it. Hence an owner may reuse the links of a
// node it unlinked until it links it again (the primitives chain their granted waiters through
// M.next to wake them after their lock is dropped; see queue_core.hpp and wait_list.hpp); the
// next push overwrites both links.
//
// Not thread-safe: every list has an owner that serializes its operations (a primitive's
// spinlock, a registry shard's lock or owning worker, the timer wheel's lock); each user says
// which. There is no element count: the users that need one keep it beside the list (wait_queue's
// size, the registry's per-shard count, the wheel's size), so the lists that need none (the
// wheel's slots) do not pay a word for it.
//
// Iteration: a forward range of T&. Unlinking the node an iterator stands on invalidates that
// iterator (step past it first, or use pop_front in a loop).
#pragma once

#include <cassert>
#include <cstddef>
#include <iterator>
#include <utility>

namespace weft::detail {

template <class T>
struct list_links {
  T* prev = nullptr;
  T* next = nullptr;
};

// A forward iterator over the nodes linked through Links, from a node to null.
template <class T, list_links<T> T::*Links>
class intrusive_list_iterator {
 public:
  using iterator_category = std::forward_iterator_tag;
  using value_type = T;
  using difference_type = std::ptrdiff_t;
  using pointer = T*;
  using reference = T&;

  intrusive_list_iterator() noexcept = default;
  explicit intrusive_list_iterator(T* node) noexcept : node_(node) {}

  T& operator*() const noexcept { return *node_; }
  T* operator->() const noexcept { return node_; }
  intrusive_list_iterator& operator++() noexcept {
    node_ = (node_->*Links).next;
    return *this;
  }
  intrusive_list_iterator operator++(int) noexcept {
    intrusive_list_iterator before = *this;
    ++*this;
    return before;
  }
  friend bool operator==(intrusive_list_iterator a, intrusive_list_iterator b) noexcept {
    return a.node_ == b.node_;
  }

 private:
  T* node_ = nullptr;
};

// The head alone: one pointer. Push at the front, remove from anywhere, pop the front.
template <class T, list_links<T> T::*Links>
class intrusive_head_list {
 public:
  using iterator = intrusive_list_iterator<T, Links>;

  intrusive_head_list() noexcept = default;
  // Moving takes the nodes over and leaves the source empty (the wheel takes its far list whole to
  // re-file it); copying would give two heads to one chain, so there is none.
  intrusive_head_list(intrusive_head_list&& other) noexcept
      : head_(std::exchange(other.head_, nullptr)) {}
  intrusive_head_list& operator=(intrusive_head_list&& other) noexcept {
    assert(head_ == nullptr);  // a list is only moved into while empty: nodes would be lost
    head_ = std::exchange(other.head_, nullptr);
    return *this;
  }
  intrusive_head_list(const intrusive_head_list&) = delete;
  intrusive_head_list& operator=(const intrusive_head_list&) = delete;

  [[nodiscard]] bool empty() const noexcept { return head_ == nullptr; }
  // The first node, or null.
  [[nodiscard]] T* front() const noexcept { return head_; }
  // The node after `node` (linked here), or null.
  [[nodiscard]] static T* next(const T* node) noexcept { return (node->*Links).next; }

  // Requires: `node` is not linked through Links.
  void push_front(T* node) noexcept {
    list_links<T>& links = node->*Links;
    links.prev = nullptr;
    links.next = head_;
    if (head_ != nullptr) (head_->*Links).prev = node;
    head_ = node;
  }

  // Requires: `node` is linked into this list.
  void remove(T* node) noexcept {
    list_links<T>& links = node->*Links;
    assert(links.prev != nullptr || head_ == node);
    if (links.prev != nullptr) {
      (links.prev->*Links).next = links.next;
    } else {
      head_ = links.next;
    }
    if (links.next != nullptr) (links.next->*Links).prev = links.prev;
    links.prev = links.next = nullptr;
  }

  // Unlinks and returns the first node; null if the list is empty.
  T* pop_front() noexcept {
    T* node = head_;
    if (node != nullptr) remove(node);
    return node;
  }

  [[nodiscard]] iterator begin() const noexcept { return iterator(head_); }
  [[nodiscard]] iterator end() const noexcept { return iterator(); }

 private:
  T* head_ = nullptr;
};

// Head and tail: a FIFO that also takes a node back at the front.
template <class T, list_links<T> T::*Links>
class intrusive_list {
 public:
  using iterator = intrusive_list_iterator<T, Links>;

  intrusive_list() noexcept = default;
  intrusive_list(const intrusive_list&) = delete;
  intrusive_list& operator=(const intrusive_list&) = delete;

  [[nodiscard]] bool empty() const noexcept { return head_ == nullptr; }
  // The first and the last node, or null.
  [[nodiscard]] T* front() const noexcept { return head_; }
  [[nodiscard]] T* back() const noexcept { return tail_; }
  // The node after `node` (linked here), or null.
  [[nodiscard]] static T* next(const T* node) noexcept { return (node->*Links).next; }

  // Requires: `node` is not linked through Links.
  void push_back(T* node) noexcept {
    list_links<T>& links = node->*Links;
    links.next = nullptr;
    links.prev = tail_;
    if (tail_ != nullptr) {
      (tail_->*Links).next = node;
    } else {
      head_ = node;
    }
    tail_ = node;
  }

  // Requires: `node` is not linked through Links.
  void push_front(T* node) noexcept {
    list_links<T>& links = node->*Links;
    links.prev = nullptr;
    links.next = head_;
    if (head_ != nullptr) {
      (head_->*Links).prev = node;
    } else {
      tail_ = node;
    }
    head_ = node;
  }

  // Requires: `node` is linked into this list.
  void remove(T* node) noexcept {
    list_links<T>& links = node->*Links;
    assert(links.prev != nullptr || head_ == node);
    if (links.prev != nullptr) {
      (links.prev->*Links).next = links.next;
    } else {
      head_ = links.next;
    }
    if (links.next != nullptr) {
      (links.next->*Links).prev = links.prev;
    } else {
      tail_ = links.prev;
    }
    links.prev = links.next = nullptr;
  }

  // Unlinks and returns the first node; null if the list is empty.
  T* pop_front() noexcept {
    T* node = head_;
    if (node != nullptr) remove(node);
    return node;
  }

  [[nodiscard]] iterator begin() const noexcept { return iterator(head_); }
  [[nodiscard]] iterator end() const noexcept { return iterator(); }

 private:
  T* head_ = nullptr;
  T* tail_ = nullptr;
};

}  // namespace weft::detail

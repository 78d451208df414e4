// scheduler/timer_wheel.hpp: a hierarchical timing wheel with 1 ms ticks.
//
// Six levels of 64 slots. A slot at level L spans 64^L ticks, so level 0 holds the next 64 ms one
// tick per slot, level 1 the next 4 s in 64 ms slots, and so on: the six levels cover one aligned
// window of 2^36 ms (about 795 days). Deadlines in a later window wait in an unordered `far_` list
// and are re-filed when time enters a new window (next_expiration() reports that moment).
// Insert and remove are O(1): an entry is linked into the slot list of the level given by the
// highest 6-bit group in which its deadline differs from the current time, `elapsed_`. That choice
// keeps the invariant that every entry at level L expires after every entry at level L - 1, so the
// earliest deadline is found in the first occupied slot of the lowest occupied level (one bit scan
// per level). When time reaches a slot of level > 0, its entries are re-filed at lower levels
// (cascaded); an entry fires only from a slot whose start is at or past its own deadline, so no
// timer ever fires early.
//
// Every slot and the far list are intrusive_head_lists (intrusive_list.hpp): one pointer each,
// since entries are only pushed at the front, unlinked from anywhere and popped from the front; a
// tail would double the 384 slots' 3 KiB for nothing.
//
// Not thread-safe: the poller guards the wheel with a mutex (see poller.hpp for why).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>

#include <weft/scheduler/detail/timer_entry.hpp>

namespace weft::detail {

class timer_wheel {
 public:
  static constexpr unsigned level_count = 6;
  static constexpr unsigned slots_per_level = 64;
  static constexpr unsigned bits_per_level = 6;
  static constexpr std::uint64_t max_span = std::uint64_t{1} << (level_count * bits_per_level);
  static constexpr std::uint8_t far_level = 0xff;  // entry->level of an entry in far_

  // Files `entry`, whose deadline must be later than elapsed().
  void insert(timer_entry* entry) noexcept;
  // Unlinks a filed entry.
  void remove(timer_entry* entry) noexcept;

  // Moves time forward to `now`, calling fire(entry) for each entry whose deadline is <= now, after
  // unlinking it. Stops after `limit` entries (returning limit); time then stays at the slot being
  // processed and the next call continues there.
  template <class Fire>
  std::size_t advance(std::uint64_t now, std::size_t limit, Fire&& fire) noexcept;

  // The start of the earliest occupied slot: no entry fires before it (and the wheel must be
  // advanced at that time to cascade or fire). Empty if the wheel is empty.
  [[nodiscard]] std::optional<std::uint64_t> next_expiration() const noexcept;

  [[nodiscard]] std::uint64_t elapsed() const noexcept { return elapsed_; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }

  // Unlinks every entry without firing it (shutdown).
  template <class Visit>
  void clear(Visit&& visit) noexcept;

 private:
  struct slot_position {
    unsigned level;
    unsigned slot;
    std::uint64_t start;
  };
  using entry_list = intrusive_head_list<timer_entry, &timer_entry::links>;
  struct level {
    std::uint64_t occupied = 0;  // bit i set iff slots[i] is non-empty
    std::array<entry_list, slots_per_level> slots{};
  };

  [[nodiscard]] std::optional<slot_position> earliest_slot() const noexcept;
  [[nodiscard]] std::uint64_t next_window() const noexcept {
    return (elapsed_ | (max_span - 1)) + 1;
  }
  void refile_far() noexcept;
  void link(timer_entry* entry, unsigned level, unsigned slot) noexcept;
  timer_entry* unlink_head(unsigned level, unsigned slot) noexcept;

  std::array<level, level_count> levels_{};
  entry_list far_;  // deadlines beyond the current window
  std::uint64_t elapsed_ = 0;
  std::size_t size_ = 0;
};

template <class Fire>
std::size_t timer_wheel::advance(std::uint64_t now, std::size_t limit, Fire&& fire) noexcept {
  std::size_t fired = 0;
  while (fired < limit) {
    const auto position = earliest_slot();
    if (!position || position->start > now) {
      // Nothing more is due in this window. If time has passed into the next one, every entry of
      // this window has fired, so move there and file the far entries that now fit.
      if (far_.empty() || now < next_window()) break;
      elapsed_ = next_window();
      refile_far();
      continue;
    }
    if (position->start > elapsed_) elapsed_ = position->start;
    // Drain the slot: entries due at this slot's start fire; later ones (from a slot of level > 0,
    // or clamped far-future deadlines) are re-filed below this level.
    while (fired < limit) {
      timer_entry* entry = unlink_head(position->level, position->slot);
      if (entry == nullptr) break;
      if (entry->deadline <= elapsed_) {
        ++fired;
        fire(entry);
      } else {
        insert(entry);
      }
    }
  }
  if (fired < limit && now > elapsed_) elapsed_ = now;
  return fired;
}

template <class Visit>
void timer_wheel::clear(Visit&& visit) noexcept {
  while (timer_entry* entry = far_.front()) {
    remove(entry);
    visit(entry);
  }
  for (unsigned l = 0; l < level_count; ++l) {
    for (unsigned s = 0; s < slots_per_level; ++s) {
      while (timer_entry* entry = unlink_head(l, s))
        visit(entry);
    }
  }
}

}  // namespace weft::detail

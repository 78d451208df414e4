// scheduler/timer_wheel.cpp: see timer_wheel.hpp.
#include "timer_wheel.hpp"

#include <bit>
#include <utility>

namespace weft::detail {

void timer_wheel::insert(timer_entry* entry) noexcept {
  const std::uint64_t when = entry->deadline;
  if (((elapsed_ ^ when) >> (level_count * bits_per_level)) != 0) {
    // A later window: park it in far_ until time gets there (refile_far).
    entry->level = far_level;
    far_.push_front(entry);
    ++size_;
    return;
  }
  // The level is the highest 6-bit group in which `when` differs from now (`| 63` keeps level 0
  // for deadlines in the current 64-tick window).
  const std::uint64_t differing = (elapsed_ ^ when) | (slots_per_level - 1);
  const unsigned significant = 63U - static_cast<unsigned>(std::countl_zero(differing));
  const unsigned level_index = significant / bits_per_level;
  const unsigned slot =
      static_cast<unsigned>(when >> (level_index * bits_per_level)) & (slots_per_level - 1);
  link(entry, level_index, slot);
}

void timer_wheel::refile_far() noexcept {
  entry_list filing = std::move(far_);
  while (timer_entry* entry = filing.pop_front()) {
    --size_;
    insert(entry);  // into the wheel if it is in this window now, else back into far_
  }
}

void timer_wheel::remove(timer_entry* entry) noexcept {
  --size_;
  if (entry->level == far_level) {
    far_.remove(entry);
    return;
  }
  level& lvl = levels_[entry->level];
  // The slot empties iff the entry is its only one, which its own links tell without loading the
  // slot's head (a disarm in the middle of a slot touches only the entry and its neighbours).
  const bool only_entry = entry->links.prev == nullptr && entry->links.next == nullptr;
  lvl.slots[entry->slot].remove(entry);
  if (only_entry) lvl.occupied &= ~(std::uint64_t{1} << entry->slot);
}

void timer_wheel::link(timer_entry* entry, unsigned level_index, unsigned slot) noexcept {
  level& lvl = levels_[level_index];
  entry->level = static_cast<std::uint8_t>(level_index);
  entry->slot = static_cast<std::uint8_t>(slot);
  lvl.slots[slot].push_front(entry);
  lvl.occupied |= std::uint64_t{1} << slot;
  ++size_;
}

timer_entry* timer_wheel::unlink_head(unsigned level_index, unsigned slot) noexcept {
  timer_entry* entry = levels_[level_index].slots[slot].front();
  if (entry != nullptr) remove(entry);
  return entry;
}

std::optional<timer_wheel::slot_position> timer_wheel::earliest_slot() const noexcept {
  for (unsigned l = 0; l < level_count; ++l) {
    const std::uint64_t occupied = levels_[l].occupied;
    if (occupied == 0) continue;
    const unsigned shift = l * bits_per_level;
    const unsigned position = static_cast<unsigned>(elapsed_ >> shift) & (slots_per_level - 1);
    // Invariant: slots before the current position are empty (their span is in the past and was
    // drained when time passed it), so the next occupied slot is at or after `position`.
    // The one exception is the top level's slot 0 filed by insert() for the next span: an
    // occupied slot behind the position belongs to the next turn of the level.
    const std::uint64_t ahead = occupied & (~std::uint64_t{0} << position);
    const bool next_turn = ahead == 0;
    const unsigned slot = static_cast<unsigned>(std::countr_zero(next_turn ? occupied : ahead));
    const std::uint64_t level_span = std::uint64_t{1} << (shift + bits_per_level);
    const std::uint64_t start = (elapsed_ & ~(level_span - 1)) + (next_turn ? level_span : 0) +
                                (static_cast<std::uint64_t>(slot) << shift);
    return slot_position{l, slot, start};
  }
  return std::nullopt;
}

std::optional<std::uint64_t> timer_wheel::next_expiration() const noexcept {
  if (const auto position = earliest_slot()) return position->start;
  // Only far entries: the poller must wake when time enters the next window to re-file them.
  if (!far_.empty()) return next_window();
  return std::nullopt;
}

}  // namespace weft::detail

// scheduler/timer_wheel.cpp: see timer_wheel.hpp.
#include "timer_wheel.hpp"

#include <bit>

namespace weft::detail {

void timer_wheel::insert(timer_entry* entry) noexcept {
  // Far-future deadlines are filed at the end of the current top-level span and re-filed from
  // there; advance() never fires an entry before its real deadline.
  const std::uint64_t span_end = elapsed_ | (max_span - 1);
  const std::uint64_t when = entry->deadline < span_end ? entry->deadline : span_end;
  // The level is the highest 6-bit group in which `when` differs from now (`| 63` keeps level 0
  // for deadlines in the current 64-tick window).
  const std::uint64_t differing = (elapsed_ ^ when) | (slots_per_level - 1);
  const unsigned significant = 63U - static_cast<unsigned>(std::countl_zero(differing));
  const unsigned level_index = significant / bits_per_level;
  const unsigned slot =
      static_cast<unsigned>(when >> (level_index * bits_per_level)) & (slots_per_level - 1);
  link(entry, level_index, slot);
}

void timer_wheel::remove(timer_entry* entry) noexcept {
  level& lvl = levels_[entry->level];
  if (entry->prev != nullptr) {
    entry->prev->next = entry->next;
  } else {
    lvl.slots[entry->slot] = entry->next;
    if (entry->next == nullptr) lvl.occupied &= ~(std::uint64_t{1} << entry->slot);
  }
  if (entry->next != nullptr) entry->next->prev = entry->prev;
  entry->prev = entry->next = nullptr;
  --size_;
}

void timer_wheel::link(timer_entry* entry, unsigned level_index, unsigned slot) noexcept {
  level& lvl = levels_[level_index];
  entry->level = static_cast<std::uint8_t>(level_index);
  entry->slot = static_cast<std::uint8_t>(slot);
  entry->prev = nullptr;
  entry->next = lvl.slots[slot];
  if (entry->next != nullptr) entry->next->prev = entry;
  lvl.slots[slot] = entry;
  lvl.occupied |= std::uint64_t{1} << slot;
  ++size_;
}

timer_entry* timer_wheel::unlink_head(unsigned level_index, unsigned slot) noexcept {
  timer_entry* entry = levels_[level_index].slots[slot];
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
    const std::uint64_t ahead = occupied & (~std::uint64_t{0} << position);
    const unsigned slot = static_cast<unsigned>(std::countr_zero(ahead != 0 ? ahead : occupied));
    const std::uint64_t level_span = std::uint64_t{1} << (shift + bits_per_level);
    const std::uint64_t start =
        (elapsed_ & ~(level_span - 1)) + (static_cast<std::uint64_t>(slot) << shift);
    return slot_position{l, slot, start};
  }
  return std::nullopt;
}

std::optional<std::uint64_t> timer_wheel::next_expiration() const noexcept {
  const auto position = earliest_slot();
  if (!position) return std::nullopt;
  return position->start;
}

}  // namespace weft::detail

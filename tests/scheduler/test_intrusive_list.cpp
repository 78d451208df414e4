// tests/scheduler/test_intrusive_list.cpp: the intrusive doubly linked list that the primitives'
// wait queues, queue_core's waiter lists, the task registry and the timer wheel share
// (weft/scheduler/detail/intrusive_list.hpp). Both shapes: intrusive_list (head and tail) and
// intrusive_head_list (the head alone). After every operation the whole list is checked against
// the header's invariants (null ends, each neighbour pointing back, unlinked nodes' links null)
// and against a std::deque that models its order.
#include <doctest/doctest.h>

#include <algorithm>
#include <array>
#include <deque>
#include <vector>

#include <weft/scheduler/detail/intrusive_list.hpp>

namespace {

using weft::detail::intrusive_head_list;
using weft::detail::intrusive_list;
using weft::detail::list_links;

struct node {
  node(int v = 0) : value(v) {}  // NOLINT(google-explicit-constructor): {{0}, {1}} arrays below
  int value;
  list_links<node> links;
  list_links<node> other;  // a second membership: the node is in two lists at once
};

using fifo = intrusive_list<node, &node::links>;
using head_only = intrusive_head_list<node, &node::links>;

// The nodes in list order, walking forward by iteration.
template <class List>
std::vector<int> values(const List& list) {
  std::vector<int> out;
  for (const node& n : list)
    out.push_back(n.value);
  return out;
}

// Checks every invariant of the header against `expected` (the order the list must have).
template <class List>
void check(const List& list, const std::deque<node*>& expected) {
  REQUIRE(list.empty() == expected.empty());
  if (expected.empty()) {
    CHECK(list.front() == nullptr);
    return;
  }
  CHECK(list.front() == expected.front());
  CHECK(expected.front()->links.prev == nullptr);
  CHECK(expected.back()->links.next == nullptr);
  if constexpr (requires { list.back(); }) CHECK(list.back() == expected.back());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    node* n = expected[i];
    if (i + 1 < expected.size()) {
      CHECK(n->links.next == expected[i + 1]);
      CHECK(n->links.next->links.prev == n);
      CHECK(List::next(n) == expected[i + 1]);
    }
    if (i > 0) CHECK(n->links.prev->links.next == n);
  }
  std::vector<int> want;
  for (node* n : expected)
    want.push_back(n->value);
  CHECK(values(list) == want);
}

void check_unlinked(const node& n) {
  CHECK(n.links.prev == nullptr);
  CHECK(n.links.next == nullptr);
}

}  // namespace

TEST_SUITE("scheduler") {
  TEST_CASE("intrusive list: a new list is empty and iterates over nothing") {
    fifo list;
    CHECK(list.empty());
    CHECK(list.front() == nullptr);
    CHECK(list.back() == nullptr);
    CHECK(list.pop_front() == nullptr);
    CHECK(list.begin() == list.end());
    head_only stack;
    CHECK(stack.empty());
    CHECK(stack.pop_front() == nullptr);
    CHECK(stack.begin() == stack.end());
  }

  TEST_CASE("intrusive list: push_back and pop_front keep FIFO order") {
    std::array<node, 5> nodes{};
    fifo list;
    std::deque<node*> model;
    for (int i = 0; i < 5; ++i) {
      nodes[i].value = i;
      list.push_back(&nodes[i]);
      model.push_back(&nodes[i]);
      check(list, model);
    }
    for (int i = 0; i < 5; ++i) {
      node* n = list.pop_front();
      REQUIRE(n == &nodes[i]);
      check_unlinked(*n);
      model.pop_front();
      check(list, model);
    }
    CHECK(list.pop_front() == nullptr);
  }

  TEST_CASE("intrusive list: push_front puts a node ahead of those waiting") {
    std::array<node, 3> nodes{{{1}, {2}, {3}}};
    fifo list;
    list.push_front(&nodes[0]);  // into an empty list: head and tail at once
    check(list, {&nodes[0]});
    list.push_back(&nodes[1]);
    list.push_front(&nodes[2]);
    check(list, {&nodes[2], &nodes[0], &nodes[1]});
  }

  TEST_CASE("intrusive list: remove unlinks the head or the tail or a node in the middle") {
    // Every position of every list length up to 5.
    for (std::size_t length = 1; length <= 5; ++length) {
      for (std::size_t victim = 0; victim < length; ++victim) {
        std::array<node, 5> nodes{};
        fifo list;
        std::deque<node*> model;
        for (std::size_t i = 0; i < length; ++i) {
          nodes[i].value = static_cast<int>(i);
          list.push_back(&nodes[i]);
          model.push_back(&nodes[i]);
        }
        list.remove(&nodes[victim]);
        model.erase(model.begin() + static_cast<std::ptrdiff_t>(victim));
        check_unlinked(nodes[victim]);
        check(list, model);
        // The removed node can be linked again (here at the back).
        list.push_back(&nodes[victim]);
        model.push_back(&nodes[victim]);
        check(list, model);
      }
    }
  }

  TEST_CASE("intrusive list: removing every node in any order leaves an empty list") {
    std::array<node, 4> nodes{{{0}, {1}, {2}, {3}}};
    std::array<int, 4> order{0, 1, 2, 3};
    do {
      fifo list;
      std::deque<node*> model;
      for (node& n : nodes) {
        list.push_back(&n);
        model.push_back(&n);
      }
      for (int i : order) {
        list.remove(&nodes[i]);
        model.erase(std::find(model.begin(), model.end(), &nodes[i]));
        check(list, model);
      }
      CHECK(list.empty());
      CHECK(list.back() == nullptr);
    } while (std::next_permutation(order.begin(), order.end()));
  }

  TEST_CASE("intrusive list: a node sits in two lists through two links members") {
    std::array<node, 3> nodes{{{0}, {1}, {2}}};
    fifo by_links;
    intrusive_list<node, &node::other> by_other;
    for (node& n : nodes) {
      by_links.push_back(&n);
      by_other.push_front(&n);
    }
    by_links.remove(&nodes[1]);
    CHECK(values(by_links) == std::vector<int>{0, 2});
    CHECK(values(by_other) == std::vector<int>{2, 1, 0});
  }

  TEST_CASE("intrusive head list: push_front stacks and remove unlinks at every position") {
    for (std::size_t victim = 0; victim < 4; ++victim) {
      std::array<node, 4> nodes{{{0}, {1}, {2}, {3}}};
      head_only list;
      std::deque<node*> model;
      for (node& n : nodes) {
        list.push_front(&n);
        model.push_front(&n);
        check(list, model);
      }
      list.remove(&nodes[victim]);
      model.erase(std::find(model.begin(), model.end(), &nodes[victim]));
      check_unlinked(nodes[victim]);
      check(list, model);
      while (node* n = list.pop_front()) {
        CHECK(n == model.front());
        check_unlinked(*n);
        model.pop_front();
        check(list, model);
      }
    }
  }

  TEST_CASE("intrusive head list: moving takes every node and leaves the source empty") {
    std::array<node, 3> nodes{{{0}, {1}, {2}}};
    head_only list;
    for (node& n : nodes)
      list.push_front(&n);
    head_only taken(std::move(list));
    CHECK(list.empty());
    check(taken, {&nodes[2], &nodes[1], &nodes[0]});
    // Popping from the taken list while pushing onto the emptied one (the wheel's re-filing).
    while (node* n = taken.pop_front())
      list.push_front(n);
    check(list, {&nodes[0], &nodes[1], &nodes[2]});
    head_only assigned;
    assigned = std::move(list);
    CHECK(list.empty());
    check(assigned, {&nodes[0], &nodes[1], &nodes[2]});
  }

  TEST_CASE("intrusive list: an unlinked node's links may be reused until it is linked again") {
    // The primitives chain granted waiters through links.next after unlinking them; the list
    // reads only linked nodes, and the next push overwrites both links.
    std::array<node, 3> nodes{{{0}, {1}, {2}}};
    fifo list;
    for (node& n : nodes)
      list.push_back(&n);
    node* first = list.pop_front();
    first->links.next = &nodes[2];  // a foreign chain through the unlinked node
    first->links.prev = &nodes[1];
    check(list, {&nodes[1], &nodes[2]});
    list.push_back(first);
    check(list, {&nodes[1], &nodes[2], &nodes[0]});
  }
}

//! The order in which a bounded tier gives up its entries: LRU, LFU or FIFO, each O(1).
//!
//! One doubly linked list over a slab of nodes, head = next victim:
//! - LRU: insert at the tail; a use moves the node to the tail.
//! - FIFO: insert at the tail; a use changes nothing.
//! - LFU: the list is sorted by use count, ascending, and within one count by recency. A map from
//!   each count to the last node having it lets a used node jump to its new place in O(1): right
//!   after the last node of count + 1, or, when there is none, after the last node of its old count.

use crate::config::EvictionPolicy;
use crate::fast_hash::FastMap;

const NIL: u32 = u32::MAX;

/// A node of the order; stable until removed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Handle(u32);

struct Node<K> {
    key: Option<K>,
    prev: u32,
    next: u32,
    uses: u64,
}

/// Keys in eviction order.
pub struct EvictionOrder<K> {
    policy: EvictionPolicy,
    nodes: Vec<Node<K>>,
    free: Vec<u32>,
    head: u32,
    tail: u32,
    len: usize,
    /// LFU only: use count → the last node with that count.
    last_with_uses: FastMap<u64, u32>,
}

impl<K: Clone> EvictionOrder<K> {
    pub fn new(policy: EvictionPolicy) -> Self {
        EvictionOrder {
            policy,
            nodes: Vec::new(),
            free: Vec::new(),
            head: NIL,
            tail: NIL,
            len: 0,
            last_with_uses: FastMap::default(),
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    /// Adds a key as newly inserted (one use).
    pub fn insert(&mut self, key: K) -> Handle {
        let node = Node {
            key: Some(key),
            prev: NIL,
            next: NIL,
            uses: 1,
        };
        let idx = match self.free.pop() {
            Some(i) => {
                self.nodes[i as usize] = node;
                i
            }
            None => {
                self.nodes.push(node);
                u32::try_from(self.nodes.len() - 1).expect("fewer than 4 billion entries")
            }
        };
        self.len += 1;
        match self.policy {
            EvictionPolicy::Lru | EvictionPolicy::Fifo => self.link_after(self.tail, idx),
            EvictionPolicy::Lfu => {
                let after = self.last_with_uses.get(&1).copied().unwrap_or(NIL);
                self.link_after(after, idx);
                self.last_with_uses.insert(1, idx);
            }
        }
        Handle(idx)
    }

    /// Records a use of the key at `h`.
    pub fn touch(&mut self, h: Handle) {
        let idx = h.0;
        match self.policy {
            EvictionPolicy::Fifo => {}
            EvictionPolicy::Lru => {
                if self.tail != idx {
                    self.unlink(idx);
                    self.link_after(self.tail, idx);
                }
            }
            EvictionPolicy::Lfu => {
                let uses = self.nodes[idx as usize].uses;
                let old_prev = self.nodes[idx as usize].prev;
                self.forget_as_last(idx);
                let after = match self.last_with_uses.get(&(uses + 1)) {
                    Some(&i) => i,
                    None => self.last_with_uses.get(&uses).copied().unwrap_or(old_prev),
                };
                if after != old_prev {
                    self.unlink(idx);
                    self.link_after(after, idx);
                }
                self.nodes[idx as usize].uses = uses + 1;
                self.last_with_uses.insert(uses + 1, idx);
            }
        }
    }

    /// Removes the key at `h` and returns it.
    pub fn remove(&mut self, h: Handle) -> K {
        let idx = h.0;
        if self.policy == EvictionPolicy::Lfu {
            self.forget_as_last(idx);
        }
        self.unlink(idx);
        self.len -= 1;
        self.free.push(idx);
        self.nodes[idx as usize]
            .key
            .take()
            .expect("a handle is removed once")
    }

    /// The key that would be evicted next (the property tests compare it with a model).
    #[cfg(test)]
    pub fn victim(&self) -> Option<&K> {
        (self.head != NIL).then(|| {
            self.nodes[self.head as usize]
                .key
                .as_ref()
                .expect("linked nodes hold keys")
        })
    }

    /// Removes and returns the next victim.
    pub fn pop_victim(&mut self) -> Option<K> {
        (self.head != NIL).then(|| self.remove(Handle(self.head)))
    }

    pub fn clear(&mut self) {
        self.nodes.clear();
        self.free.clear();
        self.last_with_uses.clear();
        self.head = NIL;
        self.tail = NIL;
        self.len = 0;
    }

    /// Keys from the next victim to the last.
    pub fn iter(&self) -> impl Iterator<Item = &K> {
        let mut at = self.head;
        std::iter::from_fn(move || {
            (at != NIL).then(|| {
                let node = &self.nodes[at as usize];
                at = node.next;
                node.key.as_ref().expect("linked nodes hold keys")
            })
        })
    }

    /// LFU: if `idx` is the last node of its count, its predecessor of the same count takes over.
    fn forget_as_last(&mut self, idx: u32) {
        let uses = self.nodes[idx as usize].uses;
        if self.last_with_uses.get(&uses) == Some(&idx) {
            let prev = self.nodes[idx as usize].prev;
            if prev != NIL && self.nodes[prev as usize].uses == uses {
                self.last_with_uses.insert(uses, prev);
            } else {
                self.last_with_uses.remove(&uses);
            }
        }
    }

    fn unlink(&mut self, idx: u32) {
        let (prev, next) = {
            let n = &self.nodes[idx as usize];
            (n.prev, n.next)
        };
        if prev == NIL {
            self.head = next;
        } else {
            self.nodes[prev as usize].next = next;
        }
        if next == NIL {
            self.tail = prev;
        } else {
            self.nodes[next as usize].prev = prev;
        }
    }

    /// Links `idx` after `after` (`NIL` = at the head).
    fn link_after(&mut self, after: u32, idx: u32) {
        let next = if after == NIL {
            self.head
        } else {
            self.nodes[after as usize].next
        };
        {
            let n = &mut self.nodes[idx as usize];
            n.prev = after;
            n.next = next;
        }
        if after == NIL {
            self.head = idx;
        } else {
            self.nodes[after as usize].next = idx;
        }
        if next == NIL {
            self.tail = idx;
        } else {
            self.nodes[next as usize].prev = idx;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// A plain model: each key with its insertion sequence, last use and use count.
    #[derive(Default)]
    struct Model {
        keys: Vec<(u32, u64, u64, u64)>, // key, inserted, last_used, uses
        clock: u64,
    }

    impl Model {
        fn victim(&self, policy: EvictionPolicy) -> Option<u32> {
            let best = match policy {
                EvictionPolicy::Lru => self.keys.iter().min_by_key(|k| k.2),
                EvictionPolicy::Fifo => self.keys.iter().min_by_key(|k| k.1),
                EvictionPolicy::Lfu => self.keys.iter().min_by_key(|k| (k.3, k.2)),
            };
            best.map(|k| k.0)
        }
    }

    #[derive(Clone, Debug)]
    enum Op {
        Insert(u32),
        Touch(u32),
        Remove(u32),
        Pop,
    }

    fn ops() -> impl Strategy<Value = Vec<Op>> {
        prop::collection::vec(
            prop_oneof![
                (0u32..12).prop_map(Op::Insert),
                (0u32..12).prop_map(Op::Touch),
                (0u32..12).prop_map(Op::Remove),
                Just(Op::Pop),
            ],
            0..200,
        )
    }

    fn check(policy: EvictionPolicy, ops: Vec<Op>) {
        let mut order = EvictionOrder::new(policy);
        let mut handles: std::collections::HashMap<u32, Handle> = Default::default();
        let mut model = Model::default();
        for op in ops {
            model.clock += 1;
            let now = model.clock;
            match op {
                Op::Insert(k) if !handles.contains_key(&k) => {
                    handles.insert(k, order.insert(k));
                    model.keys.push((k, now, now, 1));
                }
                Op::Touch(k) if handles.contains_key(&k) => {
                    order.touch(handles[&k]);
                    let m = model.keys.iter_mut().find(|m| m.0 == k).unwrap();
                    m.2 = now;
                    m.3 += 1;
                }
                Op::Remove(k) if handles.contains_key(&k) => {
                    assert_eq!(order.remove(handles.remove(&k).unwrap()), k);
                    model.keys.retain(|m| m.0 != k);
                }
                Op::Pop => {
                    let expected = model.victim(policy);
                    assert_eq!(order.pop_victim(), expected);
                    if let Some(k) = expected {
                        handles.remove(&k);
                        model.keys.retain(|m| m.0 != k);
                    }
                }
                _ => {}
            }
            assert_eq!(order.len(), model.keys.len());
            assert_eq!(order.victim().copied(), model.victim(policy));
        }
    }

    proptest! {
        #[test]
        fn lru_matches_the_model(ops in ops()) { check(EvictionPolicy::Lru, ops) }
        #[test]
        fn lfu_matches_the_model(ops in ops()) { check(EvictionPolicy::Lfu, ops) }
        #[test]
        fn fifo_matches_the_model(ops in ops()) { check(EvictionPolicy::Fifo, ops) }
    }
}

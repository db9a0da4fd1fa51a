//! The decision cache: bounded, sharded, keyed on the full request.
//!
//! A slot is found through a 64-bit hash (randomly keyed per cache) but only used when its
//! stored key equals the request field by field, so two requests that collide never share a
//! decision. Every slot carries the policy generation it was computed under and is ignored
//! once the generation moves on; a reload also empties the cache.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher};
use std::net::IpAddr;
use std::sync::{PoisonError, RwLock};

use crate::matcher::{Decision, Request};
use crate::{Operation, Principal, ResourceType};

const SHARDS: usize = 16;

/// Which question a slot answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Kind {
    /// `authorize` on one named resource.
    Resource,
    /// `authorize_by_resource_type` (the name is ignored).
    ByType,
}

#[derive(Debug)]
struct Key {
    kind: Kind,
    principal: Principal,
    groups: Box<[Principal]>,
    host: IpAddr,
    resource_type: ResourceType,
    name: Box<str>,
    operation: Operation,
}

impl Key {
    fn new(kind: Kind, req: &Request<'_>) -> Self {
        Key {
            kind,
            principal: req.principal.clone(),
            groups: req.groups.into(),
            host: req.host,
            resource_type: req.resource_type,
            name: req.name.into(),
            operation: req.operation,
        }
    }

    fn is(&self, kind: Kind, req: &Request<'_>) -> bool {
        self.kind == kind
            && self.resource_type == req.resource_type
            && self.operation == req.operation
            && self.host == req.host
            && *self.name == *req.name
            && self.principal == *req.principal
            && *self.groups == *req.groups
    }
}

#[derive(Debug)]
struct Slot {
    generation: u64,
    key: Key,
    decision: Decision,
}

/// The hash is already random; do not hash it again.
#[derive(Default)]
struct Identity(u64);

impl Hasher for Identity {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type Shard = HashMap<u64, Vec<Slot>, BuildHasherDefault<Identity>>;

/// See the module doc.
#[derive(Debug)]
pub(crate) struct DecisionCache {
    shards: Box<[RwLock<Shard>]>,
    hasher: RandomState,
    /// Slots per shard before the shard is emptied (0 disables the cache).
    shard_capacity: usize,
}

impl DecisionCache {
    /// A cache holding about `capacity` decisions.
    pub(crate) fn new(capacity: usize) -> Self {
        DecisionCache {
            shards: (0..SHARDS).map(|_| RwLock::new(Shard::default())).collect(),
            hasher: RandomState::new(),
            shard_capacity: capacity.div_ceil(SHARDS),
        }
    }

    fn hash(&self, kind: Kind, req: &Request<'_>) -> u64 {
        let mut h = self.hasher.build_hasher();
        kind.hash(&mut h);
        req.principal.hash(&mut h);
        req.groups.hash(&mut h);
        req.host.hash(&mut h);
        req.resource_type.hash(&mut h);
        req.name.hash(&mut h);
        req.operation.hash(&mut h);
        h.finish()
    }

    fn shard(&self, hash: u64) -> &RwLock<Shard> {
        &self.shards[(hash >> 60) as usize % SHARDS]
    }

    /// The cached decision for `req` under `generation`, if any.
    pub(crate) fn get(&self, generation: u64, kind: Kind, req: &Request<'_>) -> Option<Decision> {
        if self.shard_capacity == 0 {
            return None;
        }
        let hash = self.hash(kind, req);
        let shard = self
            .shard(hash)
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        shard
            .get(&hash)?
            .iter()
            .find(|s| s.generation == generation && s.key.is(kind, req))
            .map(|s| s.decision.clone())
    }

    /// Remembers `decision` for `req` under `generation`.
    pub(crate) fn insert(
        &self,
        generation: u64,
        kind: Kind,
        req: &Request<'_>,
        decision: &Decision,
    ) {
        if self.shard_capacity == 0 {
            return;
        }
        let hash = self.hash(kind, req);
        let mut shard = self
            .shard(hash)
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if shard.len() >= self.shard_capacity {
            // Bounded memory with O(1) bookkeeping: start the shard afresh.
            shard.clear();
        }
        let slots = shard.entry(hash).or_default();
        slots.retain(|s| !s.key.is(kind, req));
        slots.push(Slot {
            generation,
            key: Key::new(kind, req),
            decision: decision.clone(),
        });
    }

    /// Forgets everything.
    pub(crate) fn clear(&self) {
        for s in self.shards.iter() {
            s.write().unwrap_or_else(PoisonError::into_inner).clear();
        }
    }

    /// How many decisions are held.
    pub(crate) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                s.read()
                    .unwrap_or_else(PoisonError::into_inner)
                    .values()
                    .map(Vec::len)
                    .sum::<usize>()
            })
            .sum()
    }
}

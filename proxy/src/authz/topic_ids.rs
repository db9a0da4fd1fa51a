//! Topic ids → names, learned from the Metadata answers kgate passes on.
//!
//! Kafka authorizes a request that names a topic by id with the topic's name. kgate has no
//! other way to learn the name than the upstream's own Metadata answers (which kgate decodes
//! anyway, to rewrite broker addresses), so it records every (id, name) pair they carry. A
//! request naming an id kgate has not seen is answered UNKNOWN_TOPIC_ID, never forwarded
//! unchecked; the client then refreshes its metadata (by name), which teaches kgate the id.

use std::collections::HashMap;
use std::sync::{Arc, PoisonError, RwLock};

use kafka_protocol::messages::MetadataResponse;
use uuid::Uuid;

/// How many ids kgate remembers at most: past it, the map is cleared and learned again (a
/// bound on memory, not a limit any cluster is expected to reach).
const MAX_IDS: usize = 1 << 20;

/// The id → name map, shared by every connection of a gateway.
#[derive(Debug, Clone, Default)]
pub struct TopicIds {
    names: Arc<RwLock<HashMap<Uuid, String>>>,
}

impl TopicIds {
    /// The name of a topic id, if an answer of the upstream has named it.
    pub fn name(&self, id: Uuid) -> Option<String> {
        self.names
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&id)
            .cloned()
    }

    /// Records one id and its name (the nil id, which means "no id", is ignored).
    pub fn learn(&self, id: Uuid, name: &str) {
        if id.is_nil() || name.is_empty() {
            return;
        }
        let mut names = self.names.write().unwrap_or_else(PoisonError::into_inner);
        if names.get(&id).is_some_and(|n| n == name) {
            return;
        }
        if names.len() >= MAX_IDS {
            names.clear();
        }
        names.insert(id, name.to_owned());
    }

    /// Records every (id, name) pair of a Metadata answer.
    pub fn learn_metadata(&self, resp: &MetadataResponse) {
        for t in &resp.topics {
            if let Some(name) = &t.name {
                if t.error_code == 0 {
                    self.learn(t.topic_id, name);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn learns_and_forgets_nothing_it_was_not_told() {
        let ids = TopicIds::default();
        let id = Uuid::from_u128(7);
        assert_eq!(ids.name(id), None);
        ids.learn(id, "orders");
        assert_eq!(ids.name(id).as_deref(), Some("orders"));
        ids.learn(Uuid::nil(), "x");
        assert_eq!(ids.name(Uuid::nil()), None);
    }
}

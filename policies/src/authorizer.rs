//! The [`Authorizer`]: the policy in force, compiled and cached, shared by every connection;
//! reloads and ACL admin (CreateAcls, DescribeAcls, DeleteAcls) swap in a new generation.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use crate::cache::{DecisionCache, Kind};
use crate::matcher::{Compiled, Decision, Request};
use crate::{
    AclBinding, AclBindingFilter, Operation, Policy, PolicyError, PolicyLock, Principal,
    ResourceType,
};

/// How many decisions the cache holds by default.
pub const DEFAULT_CACHE_CAPACITY: usize = 100_000;

/// Longest wait for the policy file's lock in [`Authorizer::update`], which runs on a request
/// path: a `kgate acl` stopped while holding the lock must not hold requests forever.
pub const GATEWAY_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Settings that do not live in the policy file.
#[derive(Clone, Debug)]
pub struct AuthorizerOptions {
    /// Super users on top of the file's (`kgate proxy --super-user User:admin`).
    pub super_users: Vec<Principal>,
    /// Decision cache size; 0 turns the cache off.
    pub cache_capacity: usize,
    /// Topics no client may touch, super users included (kgate's shared state topic): every
    /// operation on them is denied, so they are refused by name and left out of listings.
    pub reserved_topics: Vec<Arc<str>>,
}

impl Default for AuthorizerOptions {
    fn default() -> Self {
        AuthorizerOptions {
            super_users: Vec::new(),
            cache_capacity: DEFAULT_CACHE_CAPACITY,
            reserved_topics: Vec::new(),
        }
    }
}

/// Where the policy lives when it is not a file: the shared state topic of several gateways.
///
/// The store owns the policy: [`Authorizer::update`] hands it the change and the store makes
/// it durable, then puts it in force through [`Authorizer::install_from_store`] (as it does
/// for changes made by other instances), so that one path applies every change in one order.
pub trait PolicyStore: Send + Sync + std::fmt::Debug {
    /// Makes the change from `before` (the policy in force) to `after` durable and returns
    /// once it is in force here.
    ///
    /// # Errors
    /// The store could not take the change; nothing changed.
    fn commit(&self, before: &Policy, after: &Policy) -> Result<(), PolicyError>;
}

#[derive(Debug)]
struct Snapshot {
    generation: u64,
    policy: Arc<Policy>,
    compiled: Compiled,
}

/// The authorizer the proxy asks on every request. Cheap to share (`Arc<Authorizer>`), safe
/// to call from any thread.
///
/// Every change (reload, replace, CreateAcls, DeleteAcls) builds a new compiled policy, bumps
/// the generation and empties the decision cache; the next decision uses the new policy. A
/// change that cannot be persisted or a file that does not parse changes nothing.
#[derive(Debug)]
pub struct Authorizer {
    state: RwLock<Arc<Snapshot>>,
    cache: DecisionCache,
    /// Where the policy lives; `None` for an in-memory policy.
    file: Option<PathBuf>,
    options: AuthorizerOptions,
    /// Serializes changes, so that read-modify-write-persist sequences do not interleave.
    admin: Mutex<()>,
    /// The shared store that owns the policy, if any (then `file` is `None`).
    store: Option<Arc<dyn PolicyStore>>,
}

impl Authorizer {
    /// An authorizer over an in-memory policy (changes are not persisted).
    pub fn new(policy: Policy, options: AuthorizerOptions) -> Self {
        Self::build(policy, options, None)
    }

    /// An authorizer over the policy file at `path`; ACL admin changes are written back to it
    /// atomically.
    ///
    /// # Errors
    /// When the file cannot be read or parsed (file, line and reason).
    pub fn open(path: &Path, options: AuthorizerOptions) -> Result<Self, PolicyError> {
        let policy = Policy::load(path)?;
        Ok(Self::build(policy, options, Some(path.to_owned())))
    }

    fn build(policy: Policy, options: AuthorizerOptions, file: Option<PathBuf>) -> Self {
        let compiled = Compiled::new(&policy, &options.super_users);
        Authorizer {
            state: RwLock::new(Arc::new(Snapshot {
                generation: 1,
                policy: Arc::new(policy),
                compiled,
            })),
            cache: DecisionCache::new(options.cache_capacity),
            file,
            options,
            admin: Mutex::new(()),
            store: None,
        }
    }

    /// An authorizer whose policy lives in a shared [`PolicyStore`]: changes go to the store,
    /// and the store puts every change (this instance's and others') in force with
    /// [`Authorizer::install_from_store`].
    pub fn with_store(
        policy: Policy,
        options: AuthorizerOptions,
        store: Arc<dyn PolicyStore>,
    ) -> Self {
        let mut authorizer = Self::build(policy, options, None);
        authorizer.store = Some(store);
        authorizer
    }

    /// Puts in force a policy the shared store has read (a change from any instance).
    /// Returns the new generation, or the current one if nothing changed.
    pub fn install_from_store(&self, policy: Policy) -> u64 {
        // Not under `admin`: `update` holds it while the store waits for this very call.
        let current = self.snapshot();
        if *current.policy == policy {
            return current.generation;
        }
        self.install(policy)
    }

    /// Whether the policy lives in a shared store rather than a file.
    pub fn is_shared(&self) -> bool {
        self.store.is_some()
    }

    fn snapshot(&self) -> Arc<Snapshot> {
        self.state
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The policy file, if any.
    pub fn file(&self) -> Option<&Path> {
        self.file.as_deref()
    }

    /// The policy generation: starts at 1 and grows by one with every change.
    pub fn generation(&self) -> u64 {
        self.state
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .generation
    }

    /// The policy in force.
    pub fn policy(&self) -> Arc<Policy> {
        self.snapshot().policy.clone()
    }

    /// Decides one request, from the cache when it can.
    pub fn authorize(&self, req: &Request<'_>) -> Decision {
        if let Some(d) = self.reserved(req) {
            return d;
        }
        let state = self.state.read().unwrap_or_else(PoisonError::into_inner);
        if let Some(d) = self.cache.get(state.generation, Kind::Resource, req) {
            return d;
        }
        let d = state.compiled.authorize(req);
        self.cache.insert(state.generation, Kind::Resource, req, &d);
        d
    }

    /// Decides one request without the cache (for tools and benchmarks).
    pub fn authorize_uncached(&self, req: &Request<'_>) -> Decision {
        if let Some(d) = self.reserved(req) {
            return d;
        }
        let state = self.state.read().unwrap_or_else(PoisonError::into_inner);
        state.compiled.authorize(req)
    }

    /// Whether a topic is reserved (kgate's own state topic): answers that list resources
    /// without a per-resource check (ListConfigResources) leave it out.
    pub fn is_reserved_topic(&self, name: &str) -> bool {
        self.options.reserved_topics.iter().any(|t| **t == *name)
    }

    /// The denial of a request on a reserved topic, checked before super users.
    fn reserved(&self, req: &Request<'_>) -> Option<Decision> {
        if req.resource_type != ResourceType::Topic {
            return None;
        }
        self.options
            .reserved_topics
            .iter()
            .find(|t| ***t == *req.name)
            .map(|t| Decision::reserved(t.clone()))
    }

    /// Kafka's `authorizeByResourceType` (reference §2.3): is `operation` allowed on at least
    /// one resource of `resource_type`? InitProducerId without a transactional id asks this
    /// for WRITE on TOPIC after IDEMPOTENT_WRITE on the cluster failed.
    pub fn authorize_by_resource_type(
        &self,
        principal: &Principal,
        groups: &[Principal],
        host: IpAddr,
        operation: Operation,
        resource_type: ResourceType,
    ) -> Decision {
        let req = Request {
            principal,
            groups,
            host,
            resource_type,
            name: "",
            operation,
        };
        let state = self.state.read().unwrap_or_else(PoisonError::into_inner);
        if let Some(d) = self.cache.get(state.generation, Kind::ByType, &req) {
            return d;
        }
        let d = state.compiled.authorize_by_resource_type(
            principal,
            groups,
            host,
            operation,
            resource_type,
        );
        self.cache.insert(state.generation, Kind::ByType, &req, &d);
        d
    }

    /// The `authorized_operations` bitmask of Metadata, DescribeGroups, DescribeCluster, ...
    /// (reference §1.0 item 7): bit `1 << op.code()` for each operation the type supports that
    /// the principal may do on the resource.
    pub fn authorized_operations(
        &self,
        principal: &Principal,
        groups: &[Principal],
        host: IpAddr,
        resource_type: ResourceType,
        name: &str,
    ) -> i32 {
        resource_type
            .supported_operations()
            .iter()
            .filter(|&&operation| {
                self.authorize(&Request {
                    principal,
                    groups,
                    host,
                    resource_type,
                    name,
                    operation,
                })
                .allowed
            })
            .fold(0, |mask, op| mask | (1i32 << op.code()))
    }

    // === changes ===

    /// Re-reads the policy file. On error the policy in force stays and the error says where
    /// the file is wrong. Returns the generation in force. An in-memory authorizer has nothing
    /// to reload.
    ///
    /// # Errors
    /// The file cannot be read or parsed.
    pub fn reload(&self) -> Result<u64, PolicyError> {
        let _guard = self.admin.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(file) = &self.file else {
            return Ok(self.generation());
        };
        let policy = Policy::load(file)?;
        Ok(self.install(policy))
    }

    /// Puts `policy` in force (and writes it to the file, if any). Returns the new generation.
    ///
    /// # Errors
    /// The file cannot be written; nothing changed.
    pub fn replace(&self, policy: Policy) -> Result<u64, PolicyError> {
        self.update(|p| *p = policy).map(|((), g)| g)
    }

    /// CreateAcls: adds the bindings (an existing one is a no-op, as in Kafka) and persists.
    /// Returns, per binding in order, whether it was new.
    ///
    /// # Errors
    /// The file cannot be written; nothing changed.
    pub fn create_acls(&self, acls: Vec<AclBinding>) -> Result<Vec<bool>, PolicyError> {
        self.update(|p| acls.into_iter().map(|a| p.add_acl(a)).collect())
            .map(|(r, _)| r)
    }

    /// DescribeAcls: the bindings the filter matches, in file order.
    pub fn describe_acls(&self, filter: &AclBindingFilter) -> Vec<AclBinding> {
        self.snapshot()
            .policy
            .matching_acls(filter)
            .cloned()
            .collect()
    }

    /// DeleteAcls: removes what each filter matches and returns, per filter in order, the
    /// bindings it deleted. A binding matched by several filters is reported by the first.
    ///
    /// # Errors
    /// The file cannot be written; nothing changed.
    pub fn delete_acls(
        &self,
        filters: &[AclBindingFilter],
    ) -> Result<Vec<Vec<AclBinding>>, PolicyError> {
        self.update(|p| filters.iter().map(|f| p.remove_acls(f)).collect())
            .map(|(r, _)| r)
    }

    /// Applies `change` to the policy on disk (under its lock, waited for at most
    /// [`GATEWAY_LOCK_WAIT`]), persists it, and puts it in force. A change
    /// that changes nothing writes nothing and keeps the generation.
    ///
    /// # Errors
    /// The file cannot be written; nothing changed.
    pub fn update<R>(
        &self,
        change: impl FnOnce(&mut Policy) -> R,
    ) -> Result<(R, u64), PolicyError> {
        let _guard = self.admin.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(store) = &self.store {
            let current = self.snapshot();
            let mut policy = (*current.policy).clone();
            let out = change(&mut policy);
            if policy != *current.policy {
                store.commit(&current.policy, &policy)?;
            }
            return Ok((out, self.generation()));
        }
        // Another process (`kgate acl add`) may have changed the file since the last reload:
        // change what is on disk, under the file's lock, so neither change is lost.
        let _file_lock = match &self.file {
            Some(file) => Some(PolicyLock::acquire_within(file, Some(GATEWAY_LOCK_WAIT))?),
            None => None,
        };
        let current = self.snapshot();
        let base = match &self.file {
            Some(file) => match Policy::load(file) {
                Ok(on_disk) => on_disk,
                Err(PolicyError::Io { source, .. })
                    if source.kind() == std::io::ErrorKind::NotFound =>
                {
                    (*current.policy).clone()
                }
                // A file someone is editing by hand and left broken is not overwritten.
                Err(e) => return Err(e),
            },
            None => (*current.policy).clone(),
        };
        let mut policy = base.clone();
        let out = change(&mut policy);
        if policy != base {
            if let Some(file) = &self.file {
                policy.save(file)?;
            }
        }
        if policy == *current.policy {
            return Ok((out, current.generation));
        }
        Ok((out, self.install(policy)))
    }

    /// Compiles and swaps in `policy`; the caller holds `admin` (or is the shared store,
    /// the only writer then).
    fn install(&self, policy: Policy) -> u64 {
        let compiled = Compiled::new(&policy, &self.options.super_users);
        let generation = {
            let mut state = self.state.write().unwrap_or_else(PoisonError::into_inner);
            let generation = state.generation + 1;
            *state = Arc::new(Snapshot {
                generation,
                policy: Arc::new(policy),
                compiled,
            });
            generation
        };
        self.cache.clear();
        generation
    }

    /// Decisions held by the cache (for metrics and tests).
    pub fn cached_decisions(&self) -> usize {
        self.cache.len()
    }
}

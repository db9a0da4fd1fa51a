//! APIs kgate answers itself: ACL administration (DescribeAcls, CreateAcls, DeleteAcls)
//! against the policy file, and SCRAM-credential administration (DescribeUserScramCredentials,
//! AlterUserScramCredentials) against the credential store.
//!
//! The upstream cluster has no authorizer and no say in who may log in to kgate, so these
//! requests never reach it: kgate plays Kafka 4.0's broker and controller for them
//! (`AclApis`, `AclControlManager`, `ScramImage`, `ScramControlManager`, reference §2.5 and
//! §3.6), with the same authorization (DESCRIBE / ALTER on the cluster), the same validation
//! order, the same error codes and messages and the same response shapes. Changes go through
//! the [`Authorizer`](kgate_policies::Authorizer) and
//! [`SharedCredentials`](kgate_auth::SharedCredentials), which write their files atomically
//! and put the change in force for the next decision or login; a change that cannot be
//! written changes nothing.

use std::collections::{BTreeSet, HashSet};

use kafka_protocol::messages::alter_user_scram_credentials_request::ScramCredentialUpsertion;
use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::create_acls_request::AclCreation;
use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::delete_acls_response::{
    DeleteAclsFilterResult, DeleteAclsMatchingAcl,
};
use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse, ApiKey, CreateAclsRequest,
    CreateAclsResponse, DeleteAclsRequest, DeleteAclsResponse, DescribeAclsRequest,
    DescribeAclsResponse, DescribeUserScramCredentialsRequest,
    DescribeUserScramCredentialsResponse,
};
use kafka_protocol::protocol::StrBytes;
use kgate_auth::{
    CredentialError, CredentialStore, Mechanism, UserCredentials, MAX_ITERATIONS, MIN_ITERATIONS,
};
use kgate_policies::{
    AclBinding, AclBindingFilter, Operation, PatternType, PatternTypeFilter, Permission,
    ResourcePattern, ResourceType, CLUSTER_NAME,
};

use super::answers::CLUSTER_AUTHORIZATION_MESSAGE;
use super::codes::{CLUSTER_AUTHORIZATION_FAILED, INVALID_REQUEST, SECURITY_DISABLED};
use super::{AuthzError, Incoming, Outcome, Session, CLUSTER};

/// UNKNOWN_SERVER_ERROR: a change kgate could not persist. Kafka sends it without a message
/// (`ApiError.fromThrowable` never carries one for this code); the cause goes to kgate's log.
const UNKNOWN_SERVER_ERROR: i16 = -1;
/// The ANY wire code of resource types, operations and permissions (and of pattern types).
const ANY: i8 = 1;
/// The MATCH pattern-type filter code.
const MATCH: i8 = 2;
/// The UNKNOWN wire code: Kafka cannot even parse a request that carries it.
const UNKNOWN: i8 = 0;
/// What a client is told when kgate authenticates without a SCRAM credential store.
const NO_CREDENTIAL_STORE: &str = "kgate has no SCRAM credential store configured: users of \
     this gateway are not authenticated with SCRAM credentials kgate could describe or alter";

fn text(s: &'static str) -> Option<StrBytes> {
    Some(StrBytes::from_static_str(s))
}

fn owned(s: String) -> Option<StrBytes> {
    Some(StrBytes::from_string(s))
}

fn string(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_owned())
}

// === ACLs ===

/// Kafka's parse-time checks of an ACL filter (`DescribeAclsRequest` / `DeleteAclsRequest`
/// `normalizeAndValidate`): v0 knows only literal patterns, so pattern ANY reads as LITERAL
/// (legacy clients never see or delete prefixed ACLs) and any other non-literal filter is
/// unparsable; so is an UNKNOWN (0) code in any field. A broker closes the connection on a
/// request it cannot parse; the reason to do the same is returned.
fn normalize_filter(version: i16, pattern_type: &mut i8, others: [i8; 3]) -> Option<String> {
    if version == 0 {
        match *pattern_type {
            ANY => *pattern_type = PatternType::Literal.code(),
            p if p == PatternType::Literal.code() => {}
            p => return Some(format!("ACL filter v0 with pattern type {p}")),
        }
    }
    if *pattern_type == UNKNOWN || others.contains(&UNKNOWN) {
        return Some("ACL filter with an UNKNOWN (0) code".into());
    }
    None
}

/// The filter a request carries, as Kafka's authorizer applies it: `Ok(None)` for a filter
/// that can match nothing (an unrecognised code reads as UNKNOWN, and a principal or host no
/// ACL can have compares unequal to every stored one). `Err` says which half of the filter is
/// UNKNOWN, in `AclControlManager.validateFilter`'s words.
#[allow(clippy::too_many_arguments)]
fn wire_filter(
    resource_type: i8,
    name: Option<&StrBytes>,
    pattern_type: i8,
    principal: Option<&StrBytes>,
    host: Option<&StrBytes>,
    operation: i8,
    permission: i8,
) -> Result<Option<AclBindingFilter>, &'static str> {
    if ResourceType::filter_from_code(resource_type).is_err()
        || PatternTypeFilter::from_code(pattern_type).is_err()
    {
        return Err("Unknown patternFilter.");
    }
    if Operation::filter_from_code(operation).is_err()
        || Permission::filter_from_code(permission).is_err()
    {
        return Err("Unknown entryFilter.");
    }
    AclBindingFilter::from_wire(
        resource_type,
        name.map(|n| &**n),
        pattern_type,
        principal.map(|p| &**p),
        host.map(|h| &**h),
        operation,
        permission,
    )
    .map_err(|_| "Unknown entryFilter.")
}

/// `DescribeAclsResponse.aclsResources`: one resource per pattern, with its entries.
fn acl_resources(acls: &[AclBinding]) -> Vec<DescribeAclsResource> {
    let mut groups: Vec<(&ResourcePattern, Vec<AclDescription>)> = Vec::new();
    for acl in acls {
        let entry = AclDescription::default()
            .with_principal(string(acl.principal.as_str()))
            .with_host(StrBytes::from_string(acl.host.to_string()))
            .with_operation(acl.operation.code())
            .with_permission_type(acl.permission.code());
        match groups.iter_mut().find(|(p, _)| *p == &acl.pattern) {
            Some((_, entries)) => entries.push(entry),
            None => groups.push((&acl.pattern, vec![entry])),
        }
    }
    groups
        .into_iter()
        .map(|(pattern, entries)| {
            DescribeAclsResource::default()
                .with_resource_type(pattern.resource_type().code())
                .with_resource_name(string(pattern.name()))
                .with_pattern_type(pattern.pattern_type().code())
                .with_acls(entries)
        })
        .collect()
}

/// DescribeAcls: DESCRIBE on the cluster, else 31 for the whole request; then the ACLs the
/// filter matches (Kafka's ANY / MATCH / LITERAL / PREFIXED semantics), grouped by pattern.
pub fn describe_acls(s: &Session, inc: &Incoming) -> Result<Outcome, AuthzError> {
    let mut req: DescribeAclsRequest = inc.decode()?;
    if let Some(reason) = normalize_filter(
        inc.version,
        &mut req.pattern_type_filter,
        [req.resource_type_filter, req.operation, req.permission_type],
    ) {
        return Ok(Outcome::Close(reason));
    }
    let Some(authz) = &s.authz else {
        return Ok(inc.respond(
            &DescribeAclsResponse::default()
                .with_error_code(SECURITY_DISABLED)
                .with_error_message(text("No Authorizer is configured on the broker")),
        ));
    };
    if !s.allow(
        ApiKey::DescribeAcls,
        ResourceType::Cluster,
        CLUSTER,
        Operation::Describe,
    ) {
        return Ok(inc.respond(
            &DescribeAclsResponse::default()
                .with_error_code(CLUSTER_AUTHORIZATION_FAILED)
                .with_error_message(text(CLUSTER_AUTHORIZATION_MESSAGE)),
        ));
    }
    let filter = wire_filter(
        req.resource_type_filter,
        req.resource_name_filter.as_ref(),
        req.pattern_type_filter,
        req.principal_filter.as_ref(),
        req.host_filter.as_ref(),
        req.operation,
        req.permission_type,
    );
    // The broker's authorizer applies an unrecognised code as UNKNOWN: it matches nothing.
    let acls = match filter {
        Ok(Some(f)) => authz.authorizer.describe_acls(&f),
        Ok(None) | Err(_) => Vec::new(),
    };
    Ok(inc.respond(&DescribeAclsResponse::default().with_resources(acl_resources(&acls))))
}

/// One CreateAcls creation checked in Kafka's order: `AclApis` (the cluster resource's name,
/// an empty name), then `AclControlManager.validateNewAcl` (unrecognised codes read as
/// UNKNOWN), then kgate's own rules (a `Type:name` principal, a `*` or IP host), all answered
/// with INVALID_REQUEST and the reason.
fn checked_creation(c: &AclCreation) -> Result<AclBinding, String> {
    let name: &str = &c.resource_name;
    if c.resource_type == ResourceType::Cluster.code() && name != CLUSTER_NAME {
        return Err(format!(
            "The only valid name for the CLUSTER resource is {CLUSTER_NAME}"
        ));
    }
    if name.is_empty() {
        return Err("Invalid empty resource name".into());
    }
    if ResourceType::from_code(c.resource_type).is_none() {
        return Err("Invalid resourceType UNKNOWN".into());
    }
    if PatternType::from_code(c.resource_pattern_type).is_none() {
        return Err("Invalid patternType UNKNOWN".into());
    }
    if Operation::from_code(c.operation).is_none() {
        return Err("Invalid operation UNKNOWN".into());
    }
    if Permission::from_code(c.permission_type).is_none() {
        return Err("Invalid permissionType UNKNOWN".into());
    }
    AclBinding::from_wire(
        c.resource_type,
        name,
        c.resource_pattern_type,
        &c.principal,
        &c.host,
        c.operation,
        c.permission_type,
    )
    .map_err(|e| e.to_string())
}

/// CreateAcls: ALTER on the cluster, else every creation gets 31. A creation naming ANY or
/// MATCH cannot be built into a binding, which fails the whole request in Kafka
/// (UNKNOWN_SERVER_ERROR everywhere); otherwise each creation is checked on its own
/// ([`checked_creation`]) and the valid ones are added (an existing ACL is a no-op success)
/// and written to the policy file.
pub fn create_acls(s: &Session, inc: &Incoming) -> Result<Outcome, AuthzError> {
    let req: CreateAclsRequest = inc.decode()?;
    for c in &req.creations {
        if inc.version == 0 && c.resource_pattern_type != PatternType::Literal.code() {
            return Ok(Outcome::Close(
                "CreateAcls v0 with a non-literal pattern".into(),
            ));
        }
        if [
            c.resource_type,
            c.resource_pattern_type,
            c.operation,
            c.permission_type,
        ]
        .contains(&UNKNOWN)
        {
            return Ok(Outcome::Close(
                "CreateAcls creation with an UNKNOWN (0) code".into(),
            ));
        }
    }
    let every = |code: i16, message: Option<StrBytes>| {
        let results = req
            .creations
            .iter()
            .map(|_| {
                AclCreationResult::default()
                    .with_error_code(code)
                    .with_error_message(message.clone())
            })
            .collect();
        inc.respond(&CreateAclsResponse::default().with_results(results))
    };
    let Some(authz) = &s.authz else {
        return Ok(every(
            SECURITY_DISABLED,
            text("No Authorizer is configured."),
        ));
    };
    if !s.allow(
        ApiKey::CreateAcls,
        ResourceType::Cluster,
        CLUSTER,
        Operation::Alter,
    ) {
        return Ok(every(
            CLUSTER_AUTHORIZATION_FAILED,
            text(CLUSTER_AUTHORIZATION_MESSAGE),
        ));
    }
    if req.creations.iter().any(|c| {
        c.resource_type == ANY
            || c.resource_pattern_type == ANY
            || c.resource_pattern_type == MATCH
            || c.operation == ANY
            || c.permission_type == ANY
    }) {
        return Ok(every(UNKNOWN_SERVER_ERROR, None));
    }
    let checked: Vec<Result<AclBinding, String>> =
        req.creations.iter().map(checked_creation).collect();
    let valid: Vec<AclBinding> = checked
        .iter()
        .filter_map(|c| c.as_ref().ok())
        .cloned()
        .collect();
    let persisted = valid.is_empty()
        || {
            match authz.authorizer.create_acls(valid) {
                Ok(_) => true,
                Err(e) => {
                    tracing::error!(error = %e, "CreateAcls: the policy file could not be written; nothing changed");
                    false
                }
            }
        };
    let results = checked
        .into_iter()
        .map(|c| match c {
            Ok(_) if persisted => AclCreationResult::default(),
            Ok(_) => AclCreationResult::default()
                .with_error_code(UNKNOWN_SERVER_ERROR)
                .with_error_message(None),
            Err(message) => AclCreationResult::default()
                .with_error_code(INVALID_REQUEST)
                .with_error_message(owned(message)),
        })
        .collect();
    Ok(inc.respond(&CreateAclsResponse::default().with_results(results)))
}

fn matching_acl(acl: &AclBinding) -> DeleteAclsMatchingAcl {
    DeleteAclsMatchingAcl::default()
        .with_error_code(0)
        .with_error_message(None)
        .with_resource_type(acl.pattern.resource_type().code())
        .with_resource_name(string(acl.pattern.name()))
        .with_pattern_type(acl.pattern.pattern_type().code())
        .with_principal(string(acl.principal.as_str()))
        .with_host(StrBytes::from_string(acl.host.to_string()))
        .with_operation(acl.operation.code())
        .with_permission_type(acl.permission.code())
}

/// DeleteAcls: ALTER on the cluster, else every filter gets 31. A filter with an unrecognised
/// code gets INVALID_REQUEST ("Unknown patternFilter." / "Unknown entryFilter."); the others
/// delete every ACL they match, atomically and written to the policy file, and each reports
/// the ACLs it matched (an ACL matched by two filters is reported by both, as Kafka's
/// controller does).
pub fn delete_acls(s: &Session, inc: &Incoming) -> Result<Outcome, AuthzError> {
    let mut req: DeleteAclsRequest = inc.decode()?;
    for f in &mut req.filters {
        if let Some(reason) = normalize_filter(
            inc.version,
            &mut f.pattern_type_filter,
            [f.resource_type_filter, f.operation, f.permission_type],
        ) {
            return Ok(Outcome::Close(reason));
        }
    }
    let every = |code: i16, message: Option<StrBytes>| {
        let results = req
            .filters
            .iter()
            .map(|_| {
                DeleteAclsFilterResult::default()
                    .with_error_code(code)
                    .with_error_message(message.clone())
            })
            .collect();
        inc.respond(&DeleteAclsResponse::default().with_filter_results(results))
    };
    let Some(authz) = &s.authz else {
        return Ok(every(
            SECURITY_DISABLED,
            text("No Authorizer is configured."),
        ));
    };
    if !s.allow(
        ApiKey::DeleteAcls,
        ResourceType::Cluster,
        CLUSTER,
        Operation::Alter,
    ) {
        return Ok(every(
            CLUSTER_AUTHORIZATION_FAILED,
            text(CLUSTER_AUTHORIZATION_MESSAGE),
        ));
    }
    let filters: Vec<Result<Option<AclBindingFilter>, &'static str>> = req
        .filters
        .iter()
        .map(|f| {
            wire_filter(
                f.resource_type_filter,
                f.resource_name_filter.as_ref(),
                f.pattern_type_filter,
                f.principal_filter.as_ref(),
                f.host_filter.as_ref(),
                f.operation,
                f.permission_type,
            )
        })
        .collect();
    let applied: Vec<&AclBindingFilter> = filters
        .iter()
        .filter_map(|f| f.as_ref().ok().and_then(Option::as_ref))
        .collect();
    // Every filter sees the ACLs as they were before the request, as in Kafka's controller.
    let matched = if applied.is_empty() {
        Ok(Vec::new())
    } else {
        authz
            .authorizer
            .update(|policy| {
                let matched: Vec<Vec<AclBinding>> = applied
                    .iter()
                    .map(|f| policy.matching_acls(f).cloned().collect())
                    .collect();
                for f in &applied {
                    policy.remove_acls(f);
                }
                matched
            })
            .map(|(matched, _generation)| matched)
    };
    let mut matched = match matched {
        Ok(m) => Some(m.into_iter()),
        Err(e) => {
            tracing::error!(error = %e, "DeleteAcls: the policy file could not be written; nothing changed");
            None
        }
    };
    let results = filters
        .iter()
        .map(|f| match f {
            Err(message) => DeleteAclsFilterResult::default()
                .with_error_code(INVALID_REQUEST)
                .with_error_message(text(message)),
            Ok(None) => DeleteAclsFilterResult::default().with_error_message(None),
            Ok(Some(_)) => match matched.as_mut().and_then(Iterator::next) {
                Some(acls) => DeleteAclsFilterResult::default()
                    .with_error_message(None)
                    .with_matching_acls(acls.iter().map(matching_acl).collect()),
                None => DeleteAclsFilterResult::default()
                    .with_error_code(UNKNOWN_SERVER_ERROR)
                    .with_error_message(None),
            },
        })
        .collect();
    Ok(inc.respond(&DeleteAclsResponse::default().with_filter_results(results)))
}

// === SCRAM credentials ===

fn credential_infos(user: &UserCredentials) -> Vec<CredentialInfo> {
    user.iter()
        .map(|(mechanism, credential)| {
            CredentialInfo::default()
                .with_mechanism(mechanism.kafka_type())
                .with_iterations(i32::try_from(credential.iterations()).unwrap_or(i32::MAX))
        })
        .collect()
}

/// DescribeUserScramCredentials (KRaft `ScramImage.describe`): DESCRIBE on the cluster, else
/// 31 (Kafka's error response: the code at the top and on one nameless result per user asked
/// for, no message). No users asked for means every user; a user asked for twice gets
/// DUPLICATE_RESOURCE, an unknown one RESOURCE_NOT_FOUND. Only mechanisms and iteration counts
/// are returned, never salts or keys.
pub fn describe_user_scram_credentials(s: &Session, inc: &Incoming) -> Result<Outcome, AuthzError> {
    const RESOURCE_NOT_FOUND: i16 = 91;
    const DUPLICATE_RESOURCE: i16 = 92;
    let req: DescribeUserScramCredentialsRequest = inc.decode()?;
    if !s.allow(
        ApiKey::DescribeUserScramCredentials,
        ResourceType::Cluster,
        CLUSTER,
        Operation::Describe,
    ) {
        let results = req
            .users
            .iter()
            .flatten()
            .map(|_| {
                DescribeUserScramCredentialsResult::default()
                    .with_error_code(CLUSTER_AUTHORIZATION_FAILED)
                    .with_error_message(None)
            })
            .collect();
        return Ok(inc.respond(
            &DescribeUserScramCredentialsResponse::default()
                .with_error_code(CLUSTER_AUTHORIZATION_FAILED)
                .with_error_message(None)
                .with_results(results),
        ));
    }
    let Some(credentials) = s.authz.as_ref().and_then(|a| a.credentials.as_ref()) else {
        return Ok(inc.respond(
            &DescribeUserScramCredentialsResponse::default()
                .with_error_code(SECURITY_DISABLED)
                .with_error_message(text(NO_CREDENTIAL_STORE)),
        ));
    };
    let store = credentials.snapshot();
    let asked: Vec<&str> = req.users.iter().flatten().map(|u| &*u.name).collect();
    let results = if asked.is_empty() {
        store
            .list()
            .into_iter()
            .filter_map(|summary| {
                let user = store.user(&summary.name)?;
                Some(
                    DescribeUserScramCredentialsResult::default()
                        .with_user(StrBytes::from_string(summary.name.clone()))
                        .with_credential_infos(credential_infos(user)),
                )
            })
            .collect()
    } else {
        let mut seen = HashSet::new();
        let mut distinct: Vec<&str> = Vec::new();
        for name in &asked {
            if seen.insert(*name) {
                distinct.push(name);
            }
        }
        distinct
            .into_iter()
            .map(|name| {
                let result = DescribeUserScramCredentialsResult::default().with_user(string(name));
                if asked.iter().filter(|a| **a == name).count() > 1 {
                    result
                        .with_error_code(DUPLICATE_RESOURCE)
                        .with_error_message(owned(format!(
                        "Cannot describe SCRAM credentials for the same user twice in a single \
                         request: {name}"
                    )))
                } else if let Some(user) = store.user(name) {
                    result.with_credential_infos(credential_infos(user))
                } else {
                    result
                        .with_error_code(RESOURCE_NOT_FOUND)
                        .with_error_message(owned(format!(
                            "Attempt to describe a user credential that does not exist: {name}"
                        )))
                }
            })
            .collect()
    };
    Ok(inc.respond(&DescribeUserScramCredentialsResponse::default().with_results(results)))
}

/// One user's alteration that passed validation.
enum Alteration<'a> {
    Delete(Mechanism),
    Upsert(Mechanism, &'a ScramCredentialUpsertion),
}

/// What an AlterUserScramCredentials request does to a store, decided as Kafka's controller
/// (`ScramControlManager.alterCredentials`) decides it: one alteration per user per request
/// (a second one, whatever its mechanism, makes the user DUPLICATE_RESOURCE and cancels the
/// first); each alteration validated when met (name, mechanism, existence of a deleted
/// credential, iteration range), a user's first error standing.
struct Plan<'a> {
    valid: Vec<(&'a str, Alteration<'a>)>,
    errors: Vec<(&'a str, CredentialError)>,
}

fn plan<'a>(req: &'a AlterUserScramCredentialsRequest, store: &CredentialStore) -> Plan<'a> {
    let mut plan = Plan {
        valid: Vec::new(),
        errors: Vec::new(),
    };
    let mut consider =
        |name: &'a str, validated: &dyn Fn() -> Result<Alteration<'a>, CredentialError>| {
            if plan.errors.iter().any(|(n, _)| *n == name) {
                return;
            }
            if let Some(i) = plan.valid.iter().position(|(n, _)| *n == name) {
                plan.valid.remove(i);
                plan.errors.push((name, CredentialError::Duplicate));
                return;
            }
            match validated() {
                Ok(alteration) => plan.valid.push((name, alteration)),
                Err(e) => plan.errors.push((name, e)),
            }
        };
    let mechanism = |name: &str, code: i8| {
        if name.is_empty() {
            return Err(CredentialError::EmptyUsername);
        }
        Mechanism::from_kafka_type(code).ok_or(CredentialError::UnknownMechanism)
    };
    for d in &req.deletions {
        let name: &str = &d.name;
        consider(name, &|| {
            let m = mechanism(name, d.mechanism)?;
            if store.credential(name, m).is_none() {
                return Err(CredentialError::NotFound);
            }
            Ok(Alteration::Delete(m))
        });
    }
    for u in &req.upsertions {
        let name: &str = &u.name;
        consider(name, &|| {
            let m = mechanism(name, u.mechanism)?;
            if i64::from(u.iterations) < i64::from(MIN_ITERATIONS) {
                return Err(CredentialError::TooFewIterations);
            }
            if i64::from(u.iterations) > i64::from(MAX_ITERATIONS) {
                return Err(CredentialError::TooManyIterations);
            }
            Ok(Alteration::Upsert(m, u))
        });
    }
    plan
}

/// Applies a plan: successes first (deletions, then upsertions), then the errors, each user
/// once. kgate's store may still refuse an upsertion (an unprintable name, an empty salt, a
/// salted password of the wrong length): that user gets the store's error instead.
fn apply(plan: Plan<'_>, store: &mut CredentialStore) -> Vec<AlterUserScramCredentialsResult> {
    let mut errors = plan.errors;
    let mut results = Vec::new();
    for (name, alteration) in plan.valid {
        let outcome = match alteration {
            Alteration::Delete(m) => store.delete(name, m),
            Alteration::Upsert(m, u) => {
                store.upsert_salted_password(name, m, u.iterations, &u.salt, &u.salted_password)
            }
        };
        match outcome {
            Ok(()) => results.push(
                AlterUserScramCredentialsResult::default()
                    .with_user(string(name))
                    .with_error_code(0)
                    .with_error_message(None),
            ),
            Err(e) => errors.push((name, e)),
        }
    }
    results.extend(errors.into_iter().map(|(name, e)| {
        AlterUserScramCredentialsResult::default()
            .with_user(string(name))
            .with_error_code(e.kafka_error_code())
            .with_error_message(owned(e.to_string()))
    }));
    results
}

/// AlterUserScramCredentials: ALTER on the cluster, else every user gets 31 (Kafka's error
/// response: each distinct user once, sorted). Upsertions carry the salt, the salted password
/// the client computed and the iteration count; kgate derives and stores StoredKey and
/// ServerKey, so the new credential is in force for the very next SCRAM or PLAIN login.
pub fn alter_user_scram_credentials(s: &Session, inc: &Incoming) -> Result<Outcome, AuthzError> {
    let req: AlterUserScramCredentialsRequest = inc.decode()?;
    let users: BTreeSet<&str> = req
        .deletions
        .iter()
        .map(|d| &*d.name)
        .chain(req.upsertions.iter().map(|u| &*u.name))
        .collect();
    let every = |code: i16, message: Option<StrBytes>| {
        let results = users
            .iter()
            .map(|u| {
                AlterUserScramCredentialsResult::default()
                    .with_user(string(u))
                    .with_error_code(code)
                    .with_error_message(message.clone())
            })
            .collect();
        inc.respond(&AlterUserScramCredentialsResponse::default().with_results(results))
    };
    if !s.allow(
        ApiKey::AlterUserScramCredentials,
        ResourceType::Cluster,
        CLUSTER,
        Operation::Alter,
    ) {
        return Ok(every(
            CLUSTER_AUTHORIZATION_FAILED,
            text(CLUSTER_AUTHORIZATION_MESSAGE),
        ));
    }
    let Some(credentials) = s.authz.as_ref().and_then(|a| a.credentials.as_ref()) else {
        return Ok(every(SECURITY_DISABLED, text(NO_CREDENTIAL_STORE)));
    };
    // Nothing valid to apply: answer without rewriting the file.
    let mut snapshot = CredentialStore::clone(&credentials.snapshot());
    let first = plan(&req, &snapshot);
    if first.valid.is_empty() {
        let results = apply(first, &mut snapshot);
        return Ok(inc.respond(&AlterUserScramCredentialsResponse::default().with_results(results)));
    }
    match credentials.update(|store| {
        let fresh = plan(&req, store);
        apply(fresh, store)
    }) {
        Ok(results) => {
            Ok(inc.respond(&AlterUserScramCredentialsResponse::default().with_results(results)))
        }
        Err(e) => {
            tracing::error!(error = %e, "AlterUserScramCredentials: the credential file could not be written; nothing changed");
            Ok(every(UNKNOWN_SERVER_ERROR, None))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use bytes::BytesMut;
    use kafka_protocol::messages::alter_user_scram_credentials_request::ScramCredentialDeletion;
    use kafka_protocol::messages::delete_acls_request::DeleteAclsFilter;
    use kafka_protocol::messages::describe_user_scram_credentials_request::UserName;
    use kafka_protocol::messages::RequestHeader;
    use kafka_protocol::protocol::{Decodable, Encodable};
    use kgate_auth::{crypto, SharedCredentials};
    use kgate_policies::{Authorizer, AuthorizerOptions, Host, Policy};

    use super::*;
    use crate::authz::Authz;

    /// A scratch directory under the system temp dir, removed on drop.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new() -> Self {
            static N: AtomicUsize = AtomicUsize::new(0);
            let dir = std::env::temp_dir().join(format!(
                "kgate-local-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            ));
            std::fs::create_dir_all(&dir).expect("scratch dir");
            Scratch(dir)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// Sessions of `User:admin` (a super user) and `User:alice` sharing one authorizer over
    /// a policy file and, optionally, a credential store with alice's SCRAM-SHA-256
    /// credential.
    struct Lab {
        admin: Session,
        alice: Session,
        authorizer: Arc<Authorizer>,
        credentials: Option<SharedCredentials>,
        dir: Scratch,
    }

    fn new_lab(with_store: bool) -> Lab {
        let dir = Scratch::new();
        let policy_file = dir.0.join("policy.toml");
        Policy::new().save(&policy_file).expect("policy file");
        let authorizer = Arc::new(
            Authorizer::open(
                &policy_file,
                AuthorizerOptions {
                    super_users: vec!["User:admin".parse().expect("principal")],
                    cache_capacity: 0,
                    ..AuthorizerOptions::default()
                },
            )
            .expect("authorizer"),
        );
        let credentials = with_store.then(|| {
            let mut store = CredentialStore::new();
            store
                .add("alice", Mechanism::ScramSha256, b"alice-secret", 4096)
                .expect("alice");
            SharedCredentials::with_store(dir.0.join("users.toml"), store)
        });
        let authz = Arc::new(Authz {
            authorizer: authorizer.clone(),
            audit: None,
            credentials: credentials.clone(),
            topic_ids: Default::default(),
        });
        let session = |who: &str| Session {
            principal: who.parse().expect("principal"),
            host: "10.0.0.1".parse().expect("ip"),
            authz: Some(authz.clone()),
            share_sessions: Default::default(),
        };
        Lab {
            admin: session("User:admin"),
            alice: session("User:alice"),
            authorizer,
            credentials,
            dir,
        }
    }

    fn run<T: Encodable>(s: &Session, api: ApiKey, version: i16, body: &T) -> Outcome {
        let mut buf = BytesMut::new();
        body.encode(&mut buf, version).expect("encode request");
        let inc = Incoming {
            api,
            version,
            header: RequestHeader::default()
                .with_request_api_key(api as i16)
                .with_request_api_version(version)
                .with_correlation_id(9),
            body: buf.freeze(),
        };
        crate::authz::authorize(s, &inc)
    }

    fn answered<R: Decodable, T: Encodable>(s: &Session, api: ApiKey, version: i16, body: &T) -> R {
        let outcome = run(s, api, version, body);
        let Outcome::Respond(frame) = outcome else {
            panic!("expected an answer, got {outcome:?}");
        };
        let (header, body) =
            crate::header::decode_response_header(api, version, &frame).expect("header");
        assert_eq!(header.correlation_id, 9);
        R::decode(&mut body.clone(), version).expect("body")
    }

    fn creation(rt: i8, name: &str, pt: i8, principal: &str, op: i8, perm: i8) -> AclCreation {
        AclCreation::default()
            .with_resource_type(rt)
            .with_resource_name(string(name))
            .with_resource_pattern_type(pt)
            .with_principal(string(principal))
            .with_host(string("*"))
            .with_operation(op)
            .with_permission_type(perm)
    }

    const TOPIC: i8 = 2;
    const GROUP: i8 = 3;
    const CLUSTER_TYPE: i8 = 4;
    const LITERAL: i8 = 3;
    const PREFIXED: i8 = 4;
    const READ: i8 = 3;
    const WRITE: i8 = 4;
    const ALLOW: i8 = 3;
    const DENY: i8 = 2;

    fn msg(m: &Option<StrBytes>) -> Option<&str> {
        m.as_deref()
    }

    /// Kafka's null filters are wildcards; kafka-protocol's defaults are empty strings.
    fn describe_all() -> DescribeAclsRequest {
        DescribeAclsRequest::default()
            .with_resource_name_filter(None)
            .with_principal_filter(None)
            .with_host_filter(None)
            .with_resource_type_filter(ANY)
            .with_pattern_type_filter(ANY)
            .with_operation(ANY)
            .with_permission_type(ANY)
    }

    #[test]
    fn acl_admin_needs_the_cluster_and_denials_have_kafkas_shape() {
        let lab = new_lab(false);
        let r: DescribeAclsResponse =
            answered(&lab.alice, ApiKey::DescribeAcls, 3, &describe_all());
        assert_eq!(r.error_code, 31);
        assert_eq!(msg(&r.error_message), Some(CLUSTER_AUTHORIZATION_MESSAGE));
        let req = CreateAclsRequest::default().with_creations(vec![
            creation(TOPIC, "t", LITERAL, "User:bob", READ, ALLOW),
            creation(TOPIC, "u", LITERAL, "User:bob", READ, ALLOW),
        ]);
        let r: CreateAclsResponse = answered(&lab.alice, ApiKey::CreateAcls, 3, &req);
        assert_eq!(r.results.len(), 2);
        assert!(r.results.iter().all(|x| x.error_code == 31));
        assert!(lab.authorizer.policy().acls().is_empty());
        let req = DeleteAclsRequest::default().with_filters(vec![DeleteAclsFilter::default()
            .with_resource_name_filter(None)
            .with_principal_filter(None)
            .with_host_filter(None)
            .with_resource_type_filter(ANY)
            .with_pattern_type_filter(ANY)
            .with_operation(ANY)
            .with_permission_type(ANY)]);
        let r: DeleteAclsResponse = answered(&lab.alice, ApiKey::DeleteAcls, 3, &req);
        assert_eq!(r.filter_results[0].error_code, 31);
        // Granting alice ALTER on the cluster lets her through.
        lab.authorizer
            .create_acls(vec![AclBinding::from_wire(
                CLUSTER_TYPE,
                CLUSTER_NAME,
                LITERAL,
                "User:alice",
                "*",
                Operation::Alter.code(),
                ALLOW,
            )
            .expect("acl")])
            .expect("grant");
        let r: DeleteAclsResponse = answered(&lab.alice, ApiKey::DeleteAcls, 3, &req);
        assert_eq!(r.filter_results[0].error_code, 0);
        assert_eq!(r.filter_results[0].matching_acls.len(), 1, "her own grant");
    }

    #[test]
    fn create_acls_validates_each_creation_in_kafkas_order_and_persists() {
        let lab = new_lab(false);
        let req = CreateAclsRequest::default().with_creations(vec![
            creation(TOPIC, "orders", LITERAL, "User:bob", READ, ALLOW),
            creation(
                CLUSTER_TYPE,
                "other",
                LITERAL,
                "User:bob",
                Operation::Alter.code(),
                ALLOW,
            ),
            creation(
                CLUSTER_TYPE,
                "",
                LITERAL,
                "User:bob",
                Operation::Alter.code(),
                ALLOW,
            ),
            creation(TOPIC, "", LITERAL, "User:bob", READ, ALLOW),
            creation(TOPIC, "t", LITERAL, "User:bob", 99, ALLOW),
            creation(TOPIC, "t", 9, "User:bob", READ, ALLOW),
            creation(42, "t", LITERAL, "User:bob", READ, ALLOW),
            creation(TOPIC, "t", LITERAL, "User:bob", READ, 7),
            creation(TOPIC, "t", LITERAL, "bob", READ, ALLOW),
            creation(GROUP, "app-", PREFIXED, "User:bob", READ, DENY),
            creation(TOPIC, "orders", LITERAL, "User:bob", READ, ALLOW),
        ]);
        let r: CreateAclsResponse = answered(&lab.admin, ApiKey::CreateAcls, 3, &req);
        let got: Vec<(i16, Option<&str>)> = r
            .results
            .iter()
            .map(|x| (x.error_code, msg(&x.error_message)))
            .collect();
        assert_eq!(got[0], (0, Some("")));
        assert_eq!(
            got[1],
            (
                42,
                Some("The only valid name for the CLUSTER resource is kafka-cluster")
            )
        );
        assert_eq!(
            got[2],
            (
                42,
                Some("The only valid name for the CLUSTER resource is kafka-cluster")
            )
        );
        assert_eq!(got[3], (42, Some("Invalid empty resource name")));
        assert_eq!(got[4], (42, Some("Invalid operation UNKNOWN")));
        assert_eq!(got[5], (42, Some("Invalid patternType UNKNOWN")));
        assert_eq!(got[6], (42, Some("Invalid resourceType UNKNOWN")));
        assert_eq!(got[7], (42, Some("Invalid permissionType UNKNOWN")));
        assert_eq!(got[8].0, 42);
        assert!(got[8]
            .1
            .is_some_and(|m| m.contains("malformed principal `bob`")));
        assert_eq!(got[9], (0, Some("")));
        assert_eq!(got[10], (0, Some("")), "an existing ACL is a no-op success");
        assert_eq!(lab.authorizer.policy().acls().len(), 2);
        // Written to the policy file: a fresh authorizer sees them.
        let reopened =
            Authorizer::open(&lab.dir.0.join("policy.toml"), AuthorizerOptions::default())
                .expect("reopen");
        assert_eq!(reopened.policy().acls().len(), 2);

        // ANY cannot be built into a binding: Kafka fails the whole request.
        let any = CreateAclsRequest::default().with_creations(vec![
            creation(TOPIC, "x", LITERAL, "User:bob", READ, ALLOW),
            creation(TOPIC, "x", LITERAL, "User:bob", ANY, ALLOW),
        ]);
        let r: CreateAclsResponse = answered(&lab.admin, ApiKey::CreateAcls, 3, &any);
        assert!(r
            .results
            .iter()
            .all(|x| x.error_code == -1 && x.error_message.is_none()));
        assert_eq!(lab.authorizer.policy().acls().len(), 2);
        // UNKNOWN (0) makes the request unparsable: the broker closes the connection.
        let unknown = CreateAclsRequest::default()
            .with_creations(vec![creation(TOPIC, "x", LITERAL, "User:bob", 0, ALLOW)]);
        assert!(matches!(
            run(&lab.admin, ApiKey::CreateAcls, 3, &unknown),
            Outcome::Close(_)
        ));
    }

    #[test]
    fn describe_and_delete_acls_follow_kafkas_filter_semantics() {
        let lab = new_lab(false);
        let req = CreateAclsRequest::default().with_creations(vec![
            creation(TOPIC, "orders", LITERAL, "User:bob", READ, ALLOW),
            creation(TOPIC, "orders", LITERAL, "User:carol", WRITE, ALLOW),
            creation(TOPIC, "ord", PREFIXED, "User:bob", READ, DENY),
            creation(TOPIC, "*", LITERAL, "User:dave", READ, ALLOW),
            creation(GROUP, "g", LITERAL, "User:bob", READ, ALLOW),
        ]);
        let r: CreateAclsResponse = answered(&lab.admin, ApiKey::CreateAcls, 3, &req);
        assert!(r.results.iter().all(|x| x.error_code == 0));

        let r: DescribeAclsResponse =
            answered(&lab.admin, ApiKey::DescribeAcls, 3, &describe_all());
        assert_eq!(r.error_code, 0);
        assert_eq!(r.resources.len(), 4, "grouped by pattern");
        assert_eq!(&*r.resources[0].resource_name, "orders");
        assert_eq!(r.resources[0].acls.len(), 2);
        assert_eq!(&*r.resources[0].acls[1].principal, "User:carol");
        assert_eq!(&*r.resources[0].acls[1].host, "*");

        // MATCH on a name: every pattern that applies to it.
        let matching = describe_all()
            .with_resource_type_filter(TOPIC)
            .with_resource_name_filter(Some(string("orders")))
            .with_pattern_type_filter(MATCH)
            .with_operation(ANY)
            .with_permission_type(ANY);
        let r: DescribeAclsResponse = answered(&lab.admin, ApiKey::DescribeAcls, 3, &matching);
        let names: Vec<(&str, i8)> = r
            .resources
            .iter()
            .map(|x| (&*x.resource_name, x.pattern_type))
            .collect();
        assert_eq!(
            names,
            [("orders", LITERAL), ("ord", PREFIXED), ("*", LITERAL)]
        );
        // An unrecognised code matches nothing; UNKNOWN (0) is unparsable.
        let odd = describe_all().with_operation(77);
        let r: DescribeAclsResponse = answered(&lab.admin, ApiKey::DescribeAcls, 3, &odd);
        assert_eq!((r.error_code, r.resources.len()), (0, 0));
        assert!(matches!(
            run(
                &lab.admin,
                ApiKey::DescribeAcls,
                3,
                &describe_all().with_permission_type(0)
            ),
            Outcome::Close(_)
        ));

        // Two overlapping filters both report bob's literal ACL; a bad filter gets 42.
        let filter = |rt: i8, name: Option<&str>, pt: i8, principal: Option<&str>, op: i8| {
            DeleteAclsFilter::default()
                .with_resource_type_filter(rt)
                .with_resource_name_filter(name.map(string))
                .with_pattern_type_filter(pt)
                .with_principal_filter(principal.map(string))
                .with_host_filter(None)
                .with_operation(op)
                .with_permission_type(ANY)
        };
        let req = DeleteAclsRequest::default().with_filters(vec![
            filter(TOPIC, Some("orders"), LITERAL, Some("User:bob"), ANY),
            filter(ANY, None, ANY, Some("User:bob"), READ),
            filter(TOPIC, None, 9, None, ANY),
            filter(TOPIC, None, ANY, None, 99),
            filter(ANY, None, ANY, Some("not a principal"), ANY),
        ]);
        let r: DeleteAclsResponse = answered(&lab.admin, ApiKey::DeleteAcls, 3, &req);
        let summary: Vec<(i16, Option<&str>, usize)> = r
            .filter_results
            .iter()
            .map(|f| (f.error_code, msg(&f.error_message), f.matching_acls.len()))
            .collect();
        assert_eq!(
            summary,
            [
                (0, None, 1),
                (0, None, 3),
                (42, Some("Unknown patternFilter."), 0),
                (42, Some("Unknown entryFilter."), 0),
                (0, None, 0),
            ]
        );
        let m = &r.filter_results[0].matching_acls[0];
        assert_eq!(
            (
                &*m.resource_name,
                m.resource_type,
                m.pattern_type,
                &*m.principal,
                &*m.host,
                m.operation,
                m.permission_type
            ),
            ("orders", TOPIC, LITERAL, "User:bob", "*", READ, ALLOW)
        );
        let left: Vec<String> = lab
            .authorizer
            .policy()
            .acls()
            .iter()
            .map(|a| a.principal.to_string())
            .collect();
        assert_eq!(left, ["User:carol", "User:dave"]);
        let reopened =
            Authorizer::open(&lab.dir.0.join("policy.toml"), AuthorizerOptions::default())
                .expect("reopen");
        assert_eq!(reopened.policy().acls().len(), 2);
        assert_eq!(reopened.policy().acls()[1].host, Host::Any);
    }

    fn upsertion(
        name: &str,
        mechanism: Mechanism,
        password: &str,
        iterations: i32,
    ) -> ScramCredentialUpsertion {
        let salt = b"kgate-test-salt".to_vec();
        let salted = crypto::salted_password(
            mechanism,
            password.as_bytes(),
            &salt,
            u32::try_from(iterations.max(1)).expect("iterations"),
        );
        ScramCredentialUpsertion::default()
            .with_name(string(name))
            .with_mechanism(mechanism.kafka_type())
            .with_iterations(iterations)
            .with_salt(salt.into())
            .with_salted_password(salted.to_vec().into())
    }

    #[test]
    fn alter_and_describe_scram_credentials() {
        let lab = new_lab(true);
        let store = lab.credentials.clone().expect("store");
        let req = AlterUserScramCredentialsRequest::default().with_upsertions(vec![upsertion(
            "carol",
            Mechanism::ScramSha512,
            "carol-secret",
            8192,
        )]);
        let r: AlterUserScramCredentialsResponse =
            answered(&lab.admin, ApiKey::AlterUserScramCredentials, 0, &req);
        assert_eq!(r.results.len(), 1);
        assert_eq!((&*r.results[0].user, r.results[0].error_code), ("carol", 0));
        assert!(r.results[0].error_message.is_none());
        let credential = store
            .snapshot()
            .credential("carol", Mechanism::ScramSha512)
            .cloned()
            .expect("carol's credential");
        assert_eq!(credential.iterations(), 8192);
        assert!(credential.verify_password(Mechanism::ScramSha512, b"carol-secret"));
        // Written to the file.
        let on_disk = CredentialStore::load(&lab.dir.0.join("users.toml")).expect("file");
        assert!(on_disk
            .credential("carol", Mechanism::ScramSha512)
            .is_some());

        // Describe: everyone, then by name (never a secret on the wire).
        let all = DescribeUserScramCredentialsRequest::default().with_users(None);
        let r: DescribeUserScramCredentialsResponse =
            answered(&lab.admin, ApiKey::DescribeUserScramCredentials, 0, &all);
        let users: Vec<(&str, Vec<(i8, i32)>)> = r
            .results
            .iter()
            .map(|u| {
                (
                    &*u.user,
                    u.credential_infos
                        .iter()
                        .map(|c| (c.mechanism, c.iterations))
                        .collect(),
                )
            })
            .collect();
        assert_eq!(
            users,
            [("alice", vec![(1, 4096)]), ("carol", vec![(2, 8192)])]
        );
        let user = |n: &str| UserName::default().with_name(string(n));
        let named = DescribeUserScramCredentialsRequest::default().with_users(Some(vec![
            user("carol"),
            user("nobody"),
            user("alice"),
            user("alice"),
        ]));
        let r: DescribeUserScramCredentialsResponse =
            answered(&lab.admin, ApiKey::DescribeUserScramCredentials, 0, &named);
        let got: Vec<(&str, i16, Option<&str>)> = r
            .results
            .iter()
            .map(|u| (&*u.user, u.error_code, msg(&u.error_message)))
            .collect();
        assert_eq!(
            got,
            [
                ("carol", 0, Some("")),
                ("nobody", 91, Some("Attempt to describe a user credential that does not exist: nobody")),
                ("alice", 92, Some("Cannot describe SCRAM credentials for the same user twice in a single request: alice")),
            ]
        );

        // Kafka's per-user errors; only dave's valid upsertion is applied.
        let deletion = |n: &str, m: i8| {
            ScramCredentialDeletion::default()
                .with_name(string(n))
                .with_mechanism(m)
        };
        let req = AlterUserScramCredentialsRequest::default()
            .with_deletions(vec![
                deletion("carol", 2),
                deletion("ghost", 1),
                deletion("", 1),
                deletion("erin", 5),
            ])
            .with_upsertions(vec![
                upsertion("carol", Mechanism::ScramSha256, "x", 4096),
                upsertion("dave", Mechanism::ScramSha256, "dave-secret", 4096),
                upsertion("few", Mechanism::ScramSha256, "x", 1000),
                upsertion("many", Mechanism::ScramSha256, "x", 20000),
                upsertion("ghost", Mechanism::ScramSha256, "x", 4096),
            ]);
        let r: AlterUserScramCredentialsResponse =
            answered(&lab.admin, ApiKey::AlterUserScramCredentials, 0, &req);
        let got: Vec<(&str, i16, Option<&str>)> = r
            .results
            .iter()
            .map(|u| (&*u.user, u.error_code, msg(&u.error_message)))
            .collect();
        assert_eq!(
            got,
            [
                ("dave", 0, None),
                (
                    "ghost",
                    91,
                    Some("Attempt to delete a user credential that does not exist")
                ),
                ("", 93, Some("Username must not be empty")),
                ("erin", 33, Some("Unknown SCRAM mechanism")),
                (
                    "carol",
                    92,
                    Some("A user credential cannot be altered twice in the same request")
                ),
                ("few", 93, Some("Too few iterations")),
                ("many", 93, Some("Too many iterations")),
            ]
        );
        let now = store.snapshot();
        assert!(now.credential("dave", Mechanism::ScramSha256).is_some());
        assert!(
            now.credential("carol", Mechanism::ScramSha512).is_some(),
            "duplicate: untouched"
        );
        assert!(now.user("few").is_none() && now.user("ghost").is_none());

        // A deletion on its own removes the credential.
        let req =
            AlterUserScramCredentialsRequest::default().with_deletions(vec![deletion("carol", 2)]);
        let r: AlterUserScramCredentialsResponse =
            answered(&lab.admin, ApiKey::AlterUserScramCredentials, 0, &req);
        assert_eq!(r.results[0].error_code, 0);
        assert!(store.snapshot().user("carol").is_none());
    }

    #[test]
    fn scram_admin_is_denied_without_the_cluster_and_explained_without_a_store() {
        let lab = new_lab(true);
        let req = AlterUserScramCredentialsRequest::default().with_upsertions(vec![
            upsertion("zed", Mechanism::ScramSha256, "x", 4096),
            upsertion("bob", Mechanism::ScramSha256, "x", 4096),
            upsertion("bob", Mechanism::ScramSha512, "x", 4096),
        ]);
        let r: AlterUserScramCredentialsResponse =
            answered(&lab.alice, ApiKey::AlterUserScramCredentials, 0, &req);
        let got: Vec<(&str, i16)> = r.results.iter().map(|u| (&*u.user, u.error_code)).collect();
        assert_eq!(got, [("bob", 31), ("zed", 31)], "each user once, sorted");
        assert!(lab
            .credentials
            .as_ref()
            .expect("store")
            .snapshot()
            .user("zed")
            .is_none());
        let named = DescribeUserScramCredentialsRequest::default()
            .with_users(Some(vec![UserName::default().with_name(string("alice"))]));
        let r: DescribeUserScramCredentialsResponse =
            answered(&lab.alice, ApiKey::DescribeUserScramCredentials, 0, &named);
        assert_eq!((r.error_code, r.error_message.is_none()), (31, true));
        assert_eq!(r.results.len(), 1);
        assert_eq!((&*r.results[0].user, r.results[0].error_code), ("", 31));

        let bare = new_lab(false);
        let r: AlterUserScramCredentialsResponse =
            answered(&bare.admin, ApiKey::AlterUserScramCredentials, 0, &req);
        assert!(r.results.iter().all(|u| u.error_code == SECURITY_DISABLED
            && msg(&u.error_message) == Some(NO_CREDENTIAL_STORE)));
        let r: DescribeUserScramCredentialsResponse =
            answered(&bare.admin, ApiKey::DescribeUserScramCredentials, 0, &named);
        assert_eq!(r.error_code, SECURITY_DISABLED);
    }
}

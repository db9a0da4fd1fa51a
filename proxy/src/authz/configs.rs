//! Config administration: DescribeConfigs, AlterConfigs, IncrementalAlterConfigs and
//! ListConfigResources, per resource type with the checks Kafka makes (reference §1.1).
//!
//! Each API asks the checks Kafka 4.0's `KafkaApis` / `ControllerApis` ask and answers a denial
//! with the response Kafka builds for it (see [`super::answers`] for the shared texts). When
//! some resources of a request are denied, the allowed ones are forwarded and the denials merged
//! into the broker's answer, in the order Kafka puts them.

use std::collections::{HashMap, HashSet};

use kafka_protocol::messages::describe_configs_response::DescribeConfigsResult;
use kafka_protocol::messages::{
    alter_configs_response, incremental_alter_configs_response, AlterConfigsRequest,
    AlterConfigsResponse, ApiKey, DescribeConfigsRequest, DescribeConfigsResponse,
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse, ListConfigResourcesRequest,
    ListConfigResourcesResponse,
};
use kafka_protocol::protocol::StrBytes;
use kgate_policies::{Operation, ResourceType};

#[allow(unused_imports)]
use super::answers::*;
use super::codes::{
    CLUSTER_AUTHORIZATION_FAILED, GROUP_AUTHORIZATION_FAILED, INVALID_REQUEST,
    TOPIC_AUTHORIZATION_FAILED,
};
use super::AuthzError;
use super::{Incoming, Outcome, Session, CLUSTER};

// === configs ===

/// DescribeConfigs (`ConfigHelper`): DESCRIBE_CONFIGS on the cluster for BROKER, BROKER_LOGGER
/// and CLIENT_METRICS resources (31), on the topic for TOPIC (29), on the group for GROUP (30);
/// a denied resource gets the error, Kafka's message and no configs. An unknown resource type
/// fails the whole request: every resource gets INVALID_REQUEST.
pub fn describe_configs(s: &Session, inc: &Incoming) -> Result<Outcome, AuthzError> {
    let mut req: DescribeConfigsRequest = inc.decode()?;
    let resources = std::mem::take(&mut req.resources);
    let mut allowed = Vec::new();
    let mut errors = Vec::new();
    for (i, r) in resources.iter().enumerate() {
        let api = ApiKey::DescribeConfigs;
        let denial = match r.resource_type {
            CONFIG_BROKER | CONFIG_BROKER_LOGGER | CONFIG_CLIENT_METRICS => (!s.allow(
                api,
                ResourceType::Cluster,
                CLUSTER,
                Operation::DescribeConfigs,
            ))
            .then_some((CLUSTER_AUTHORIZATION_FAILED, CLUSTER_AUTHORIZATION_MESSAGE)),
            CONFIG_TOPIC => (!s.allow(
                api,
                ResourceType::Topic,
                &r.resource_name,
                Operation::DescribeConfigs,
            ))
            .then_some((TOPIC_AUTHORIZATION_FAILED, TOPIC_AUTHORIZATION_MESSAGE)),
            CONFIG_GROUP => (!s.allow(
                api,
                ResourceType::Group,
                &r.resource_name,
                Operation::DescribeConfigs,
            ))
            .then_some((GROUP_AUTHORIZATION_FAILED, GROUP_AUTHORIZATION_MESSAGE)),
            _ => {
                let results = resources
                    .iter()
                    .map(|r| {
                        DescribeConfigsResult::default()
                            .with_error_code(INVALID_REQUEST)
                            .with_error_message(text(INVALID_REQUEST_MESSAGE))
                            .with_resource_name(r.resource_name.clone())
                            .with_resource_type(r.resource_type)
                    })
                    .collect();
                return Ok(inc.respond(&DescribeConfigsResponse::default().with_results(results)));
            }
        };
        match denial {
            None => allowed.push(i),
            Some((code, message)) => errors.push(
                DescribeConfigsResult::default()
                    .with_error_code(code)
                    .with_error_message(text(message))
                    .with_configs(Vec::new())
                    .with_resource_name(r.resource_name.clone())
                    .with_resource_type(r.resource_type),
            ),
        }
    }
    if errors.is_empty() {
        return Ok(Outcome::forward());
    }
    let nothing_left = allowed.is_empty();
    req.resources = resources
        .into_iter()
        .enumerate()
        .filter(|(i, _)| allowed.contains(i))
        .map(|(_, r)| r)
        .collect();
    Ok(
        inc.forward_with::<_, DescribeConfigsResponse, _>(&req, true, nothing_left, move |r| {
            r.results.extend(errors)
        }),
    )
}

/// One resource of AlterConfigs / IncrementalAlterConfigs as Kafka's checks see it.
pub(crate) struct ConfigChange<'a> {
    resource_type: i8,
    name: &'a str,
    keys: Vec<&'a str>,
    /// Keys whose value is null where Kafka refuses null (every key in AlterConfigs; every
    /// key but DELETE operations in IncrementalAlterConfigs).
    null_values: Vec<&'a str>,
}

/// kgate's answer for one config resource: (error code, message).
pub(crate) type LocalAnswer = Option<(i16, Option<StrBytes>)>;

/// Kafka's checks for (Incremental)AlterConfigs, per resource: the broker's preprocessing
/// (`ConfigAdminManager.preprocess`: duplicate resources, duplicate keys, null values,
/// BROKER_LOGGER authorization, broker-id syntax, unknown types), then the controller's
/// `authorizeAlterResource` (ALTER_CONFIGS on the cluster, topic or group). `None` means
/// forward the resource.
pub(crate) fn alter_config_checks(
    s: &Session,
    api: ApiKey,
    changes: &[ConfigChange<'_>],
) -> Vec<LocalAnswer> {
    let incremental = api == ApiKey::IncrementalAlterConfigs;
    let mut counts: HashMap<(i8, &str), usize> = HashMap::new();
    for c in changes {
        *counts.entry((c.resource_type, c.name)).or_default() += 1;
    }
    let cluster = |code_message: (i16, Option<StrBytes>)| {
        (!s.allow(api, ResourceType::Cluster, CLUSTER, Operation::AlterConfigs))
            .then_some(code_message)
    };
    changes
        .iter()
        .map(|c| {
            let invalid = |m: String| Some((INVALID_REQUEST, owned(m)));
            if counts.get(&(c.resource_type, c.name)).copied().unwrap_or(0) > 1 {
                return invalid("Each resource must appear at most once.".into());
            }
            let mut keys = HashSet::new();
            if !c.keys.iter().all(|k| keys.insert(*k)) {
                return invalid("Error due to duplicate config keys".into());
            }
            if !c.null_values.is_empty() {
                return invalid(format!(
                    "Null value not supported for : {}",
                    c.null_values.join(", ")
                ));
            }
            match c.resource_type {
                // Log levels are changed by the broker itself, which throws Kafka's default
                // ClusterAuthorizationException: the message is null on the wire.
                CONFIG_BROKER_LOGGER if incremental => {
                    cluster((CLUSTER_AUTHORIZATION_FAILED, None))
                }
                CONFIG_BROKER => {
                    if !c.name.is_empty() && c.name.parse::<i32>().is_err() {
                        return invalid(format!(
                            "Node id must be an integer, but it is: {}",
                            c.name
                        ));
                    }
                    cluster((
                        CLUSTER_AUTHORIZATION_FAILED,
                        text(CLUSTER_AUTHORIZATION_MESSAGE),
                    ))
                }
                CONFIG_CLIENT_METRICS => cluster((
                    CLUSTER_AUTHORIZATION_FAILED,
                    text(CLUSTER_AUTHORIZATION_MESSAGE),
                )),
                CONFIG_TOPIC => {
                    (!s.allow(api, ResourceType::Topic, c.name, Operation::AlterConfigs)).then(
                        || {
                            (
                                TOPIC_AUTHORIZATION_FAILED,
                                text(TOPIC_AUTHORIZATION_MESSAGE),
                            )
                        },
                    )
                }
                CONFIG_GROUP => {
                    (!s.allow(api, ResourceType::Group, c.name, Operation::AlterConfigs)).then(
                        || {
                            (
                                GROUP_AUTHORIZATION_FAILED,
                                text(GROUP_AUTHORIZATION_MESSAGE),
                            )
                        },
                    )
                }
                other => invalid(format!("Unknown resource type {other}")),
            }
        })
        .collect()
}

/// Kafka's `ConfigAdminManager.reassemble*Response`: one answer per requested resource, in
/// request order; a forwarded resource the broker did not answer gets UNKNOWN_SERVER_ERROR.
pub(crate) fn reassemble<T>(
    keys: &[(i8, String)],
    local: Vec<LocalAnswer>,
    upstream: Vec<T>,
    key_of: impl Fn(&T) -> (i8, &str),
    make: impl Fn(i8, &str, i16, Option<StrBytes>) -> T,
) -> Vec<T> {
    let mut upstream: Vec<Option<T>> = upstream.into_iter().map(Some).collect();
    keys.iter()
        .zip(local)
        .map(|((resource_type, name), answer)| match answer {
            Some((code, message)) => make(*resource_type, name, code, message),
            None => upstream
                .iter_mut()
                .find(|u| {
                    u.as_ref()
                        .is_some_and(|u| key_of(u) == (*resource_type, name.as_str()))
                })
                .and_then(Option::take)
                .unwrap_or_else(|| {
                    make(
                        *resource_type,
                        name,
                        UNKNOWN_SERVER_ERROR,
                        text(UNKNOWN_SERVER_ERROR_MESSAGE),
                    )
                }),
        })
        .collect()
}

/// AlterConfigs (legacy): see [`alter_config_checks`]; BROKER_LOGGER is not supported by the
/// legacy API ("Unknown resource type 8"). Answers come back in request order, as Kafka's
/// broker reassembles them.
pub fn alter_configs(s: &Session, inc: &Incoming) -> Result<Outcome, AuthzError> {
    let mut req: AlterConfigsRequest = inc.decode()?;
    let changes: Vec<ConfigChange<'_>> = req
        .resources
        .iter()
        .map(|r| ConfigChange {
            resource_type: r.resource_type,
            name: &r.resource_name,
            keys: r.configs.iter().map(|c| &*c.name).collect(),
            null_values: r
                .configs
                .iter()
                .filter(|c| c.value.is_none())
                .map(|c| &*c.name)
                .collect(),
        })
        .collect();
    let local = alter_config_checks(s, ApiKey::AlterConfigs, &changes);
    if local.iter().all(Option::is_none) {
        return Ok(Outcome::forward());
    }
    let keys: Vec<(i8, String)> = req
        .resources
        .iter()
        .map(|r| (r.resource_type, r.resource_name.to_string()))
        .collect();
    let resources = std::mem::take(&mut req.resources);
    req.resources = resources
        .into_iter()
        .zip(&local)
        .filter(|(_, answer)| answer.is_none())
        .map(|(r, _)| r)
        .collect();
    let nothing_left = req.resources.is_empty();
    Ok(
        inc.forward_with::<_, AlterConfigsResponse, _>(&req, true, nothing_left, move |r| {
            let upstream = std::mem::take(&mut r.responses);
            r.responses = reassemble(
                &keys,
                local,
                upstream,
                |u| (u.resource_type, &*u.resource_name),
                |resource_type, name, code, message| {
                    alter_configs_response::AlterConfigsResourceResponse::default()
                        .with_error_code(code)
                        .with_error_message(message)
                        .with_resource_type(resource_type)
                        .with_resource_name(StrBytes::from_string(name.to_owned()))
                },
            );
        }),
    )
}

/// IncrementalAlterConfigs: see [`alter_config_checks`]. Answers come back in request order.
pub fn incremental_alter_configs(s: &Session, inc: &Incoming) -> Result<Outcome, AuthzError> {
    /// `AlterConfigOp.OpType.DELETE`: the one operation that needs no value.
    const DELETE: i8 = 1;
    let mut req: IncrementalAlterConfigsRequest = inc.decode()?;
    let changes: Vec<ConfigChange<'_>> = req
        .resources
        .iter()
        .map(|r| ConfigChange {
            resource_type: r.resource_type,
            name: &r.resource_name,
            keys: r.configs.iter().map(|c| &*c.name).collect(),
            null_values: r
                .configs
                .iter()
                .filter(|c| c.config_operation != DELETE && c.value.is_none())
                .map(|c| &*c.name)
                .collect(),
        })
        .collect();
    let local = alter_config_checks(s, ApiKey::IncrementalAlterConfigs, &changes);
    if local.iter().all(Option::is_none) {
        return Ok(Outcome::forward());
    }
    let keys: Vec<(i8, String)> = req
        .resources
        .iter()
        .map(|r| (r.resource_type, r.resource_name.to_string()))
        .collect();
    let resources = std::mem::take(&mut req.resources);
    req.resources = resources
        .into_iter()
        .zip(&local)
        .filter(|(_, answer)| answer.is_none())
        .map(|(r, _)| r)
        .collect();
    let nothing_left = req.resources.is_empty();
    Ok(inc.forward_with::<_, IncrementalAlterConfigsResponse, _>(
        &req,
        true,
        nothing_left,
        move |r| {
            let upstream = std::mem::take(&mut r.responses);
            r.responses = reassemble(
                &keys,
                local,
                upstream,
                |u| (u.resource_type, &*u.resource_name),
                |resource_type, name, code, message| {
                    incremental_alter_configs_response::AlterConfigsResourceResponse::default()
                        .with_error_code(code)
                        .with_error_message(message)
                        .with_resource_type(resource_type)
                        .with_resource_name(StrBytes::from_string(name.to_owned()))
                },
            );
        },
    ))
}

/// ConfigResource type of a topic in ListConfigResources.
const TOPIC_RESOURCE: i8 = 2;

/// ListConfigResources (KIP-1142; v0 is ListClientMetricsResources): DESCRIBE_CONFIGS on the
/// cluster, else the whole request fails with 31. The broker then lists every resource of the
/// types asked for (v1 lists topics too), so kgate's own state topic, which no client may see,
/// is taken out of the answer.
pub fn list_config_resources(s: &Session, inc: &Incoming) -> Result<Outcome, AuthzError> {
    let req: ListConfigResourcesRequest = inc.decode()?;
    if !s.allow(
        ApiKey::ListConfigResources,
        ResourceType::Cluster,
        CLUSTER,
        Operation::DescribeConfigs,
    ) {
        return Ok(inc.respond(
            &ListConfigResourcesResponse::default().with_error_code(CLUSTER_AUTHORIZATION_FAILED),
        ));
    }
    let lists_topics = inc.version >= 1
        && (req.resource_types.is_empty() || req.resource_types.contains(&TOPIC_RESOURCE));
    if !lists_topics {
        return Ok(Outcome::forward());
    }
    let session = s.clone();
    Ok(
        inc.forward_with::<_, ListConfigResourcesResponse, _>(&req, false, false, move |r| {
            r.config_resources.retain(|c| {
                c.resource_type != TOPIC_RESOURCE || !session.is_reserved_topic(&c.resource_name)
            })
        }),
    )
}

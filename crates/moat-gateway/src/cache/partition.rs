//! The provider-side cache partition: every forwarded request carries HMAC(server secret, tenant)
//! in the field its provider partitions or routes its prompt cache by, so two tenants never share
//! one provider cache through moatd's credential. A client's own partition value is never forwarded
//! as sent: it is hashed under its tenant, so it can split the tenant's cache further but never
//! reach another tenant's.

use moat_policy::cache::{validate_client_value, CachePartition, PARTITION_FIELDS};

use crate::handlers::request_kinds::Forward;
use crate::identity::Principal;
use crate::secret::ServerSecret;
use crate::GatewayError;

/// Whose cache a request may use: the key's team, else the key itself; every static key shares
/// `static`, an open gateway's callers share `open` (neither has anything to tell callers apart).
pub(crate) fn tenant(principal: &Principal) -> String {
    match principal {
        Principal::Open => "open".to_string(),
        Principal::Static => "static".to_string(),
        Principal::Virtual(k) => match &k.team_id {
            Some(team) => format!("team:{team}"),
            None => format!("key:{}", k.id),
        },
    }
}

/// The partition members a client sent, taken out of its request (and checked) before anything
/// is forwarded.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct ClientValues {
    /// In [`PARTITION_FIELDS`] order.
    values: [Option<String>; 3],
}

/// Removes `cache_salt`, `prompt_cache_key` and `user` from the request, refusing (400) values that
/// are not short printable strings.
pub(crate) fn take_client_values<T: Forward>(request: &mut T) -> Result<ClientValues, GatewayError> {
    let mut out = ClientValues::default();
    for (slot, partition) in out.values.iter_mut().zip(PARTITION_FIELDS) {
        let Some(field) = partition.field() else {
            continue;
        };
        let value = request
            .take_partition_field(field)
            .map_err(GatewayError::BadRequest)?;
        if let Some(v) = &value {
            validate_client_value(field, v).map_err(|e| GatewayError::BadRequest(e.to_string()))?;
        }
        *slot = value;
    }
    Ok(out)
}

/// What one provider wants done to each request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ProviderCacheRules {
    pub(crate) partition: CachePartition,
    pub(crate) cache_prompt: Option<bool>,
}

/// The members to set on a request for one provider: the provider's partition field always gets the
/// tenant's value (namespacing the client's own value in that field when it sent one); the other
/// partition members the client sent are namespaced the same way. Pure, so it is tested directly.
pub(crate) fn members(
    secret: &ServerSecret,
    tenant: &str,
    rules: ProviderCacheRules,
    client: &ClientValues,
    prompt_cache: bool,
) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    for (partition, sent) in PARTITION_FIELDS.into_iter().zip(&client.values) {
        let Some(field) = partition.field() else {
            continue;
        };
        let value = match sent {
            Some(v) => Some(secret.cache_partition(tenant, Some((field, v)))),
            None if prompt_cache && partition == rules.partition => {
                Some(secret.cache_partition(tenant, None))
            }
            None => None,
        };
        if let Some(v) = value {
            out.push((field, v));
        }
    }
    out
}

/// Sets the tenant's partition members (and `cache_prompt`) on a request about to go to a provider.
pub(crate) fn apply<T: Forward>(
    request: &mut T,
    secret: &ServerSecret,
    tenant: &str,
    rules: ProviderCacheRules,
    client: &ClientValues,
) {
    for partition in PARTITION_FIELDS {
        if let Some(field) = partition.field() {
            // A previous target's values must not leak into this one's request.
            let _ = request.take_partition_field(field);
        }
    }
    for (field, value) in members(secret, tenant, rules, client, T::PROMPT_CACHE) {
        request.set_partition_field(field, value);
    }
    if let (Some(on), true) = (rules.cache_prompt, T::PROMPT_CACHE) {
        request.set_cache_prompt(on);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use moat_wire::openai::ChatCompletionRequest;

    use super::*;
    use crate::identity::KeyEntry;

    fn key(id: &str, team: Option<&str>) -> Principal {
        Principal::Virtual(Arc::new(KeyEntry {
            id: id.into(),
            name: id.into(),
            prefix: "moat-x".into(),
            team_id: team.map(str::to_string),
            team_name: team.map(str::to_string),
            models: Default::default(),
            local_only: false,
            expires_at: None,
            revoked: false,
        }))
    }

    fn rules(partition: CachePartition) -> ProviderCacheRules {
        ProviderCacheRules {
            partition,
            cache_prompt: None,
        }
    }

    #[test]
    fn tenants_are_teams_else_keys() {
        assert_eq!(tenant(&key("k1", Some("t1"))), "team:t1");
        assert_eq!(tenant(&key("k2", Some("t1"))), "team:t1");
        assert_eq!(tenant(&key("k1", None)), "key:k1");
        assert_eq!(tenant(&Principal::Static), "static");
        assert_eq!(tenant(&Principal::Open), "open");
    }

    #[test]
    fn the_provider_field_carries_the_tenant_hash() {
        let s = ServerSecret::from_text("s");
        let none = ClientValues::default();
        let m = members(&s, "team:a", rules(CachePartition::CacheSalt), &none, true);
        assert_eq!(m, vec![("cache_salt", s.cache_partition("team:a", None))]);
        let other = members(&s, "team:b", rules(CachePartition::CacheSalt), &none, true);
        assert_ne!(m, other);
        let m = members(&s, "team:a", rules(CachePartition::User), &none, true);
        assert_eq!(m[0].0, "user");
        assert!(members(&s, "team:a", rules(CachePartition::None), &none, true).is_empty());
        assert!(
            members(&s, "team:a", rules(CachePartition::CacheSalt), &none, false).is_empty(),
            "embeddings get no partition member"
        );
    }

    #[test]
    fn client_values_are_namespaced_never_forwarded() {
        let s = ServerSecret::from_text("s");
        let mut req: ChatCompletionRequest = serde_json::from_value(serde_json::json!({
            "model": "m", "messages": [{"role": "user", "content": "hi"}],
            "user": "alice", "cache_salt": "mine"
        }))
        .unwrap();
        let client = take_client_values(&mut req).unwrap();
        apply(
            &mut req,
            &s,
            "team:a",
            ProviderCacheRules {
                partition: CachePartition::PromptCacheKey,
                cache_prompt: Some(false),
            },
            &client,
        );
        let body = serde_json::to_value(&req).unwrap();
        assert_eq!(body["user"], s.cache_partition("team:a", Some(("user", "alice"))));
        assert_eq!(
            body["cache_salt"],
            s.cache_partition("team:a", Some(("cache_salt", "mine")))
        );
        assert_eq!(body["prompt_cache_key"], s.cache_partition("team:a", None));
        assert_eq!(body["cache_prompt"], false);
        let text = body.to_string();
        assert!(!text.contains("alice") && !text.contains("mine"), "{text}");
        // The same client value under another tenant is another value.
        assert_ne!(body["user"], s.cache_partition("team:b", Some(("user", "alice"))));
        // A second target with another partition field gets a clean set.
        apply(&mut req, &s, "team:a", rules(CachePartition::User), &client);
        let body = serde_json::to_value(&req).unwrap();
        assert!(body.get("prompt_cache_key").is_none(), "{body}");
    }

    #[test]
    fn bad_client_values_are_refused() {
        for bad in [
            serde_json::json!({"cache_salt": "tab\there"}),
            serde_json::json!({"user": ""}),
            serde_json::json!({"prompt_cache_key": "x".repeat(300)}),
        ] {
            let mut body = serde_json::json!({"model": "m", "prompt": "p"});
            body.as_object_mut()
                .unwrap()
                .extend(bad.as_object().unwrap().clone());
            let mut req: moat_wire::openai::CompletionRequest = serde_json::from_value(body).unwrap();
            let err = take_client_values(&mut req).unwrap_err();
            assert_eq!(err.status(), http::StatusCode::BAD_REQUEST, "{bad}");
        }
        let mut req: moat_wire::openai::CompletionRequest =
            serde_json::from_value(serde_json::json!({"model": "m", "prompt": "p", "cache_salt": 5}))
                .unwrap();
        assert!(take_client_values(&mut req).is_err());
    }
}

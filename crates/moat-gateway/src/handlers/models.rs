//! `GET /v1/models`: every provider's model list merged into one, each id prefixed with its provider's
//! name (the form requests use), plus the configured aliases. Cached briefly: clients such as IDE
//! plug-ins ask often, and a provider's list rarely changes within a minute.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{header, HeaderMap, HeaderValue};
use moat_upstream::relay;
use moat_wire::openai::ModelList;
use serde_json::{json, Value};

use super::caller::Caller;
use crate::gateway::Gateway;
use crate::GatewayError;

/// Longest we wait for any one provider's list; a slow provider must not stall the whole listing.
const FETCH_TIMEOUT: Duration = Duration::from_secs(10);

/// The merged list, serialized, with the time it was made. A mutex rather than a lock-free swap: it
/// also makes concurrent misses wait for one fetch instead of each asking every provider.
#[derive(Debug)]
pub(crate) struct ModelsCache {
    ttl: Duration,
    slot: tokio::sync::Mutex<Option<(Instant, Bytes)>>,
}

impl ModelsCache {
    pub(crate) fn new(ttl: Duration) -> Self {
        ModelsCache {
            ttl,
            slot: tokio::sync::Mutex::new(None),
        }
    }
}

/// The merged list, from the cache when fresh.
async fn cached(gw: &Gateway) -> Result<Bytes, GatewayError> {
    let mut slot = gw.models.slot.lock().await;
    match slot.as_ref() {
        Some((made, body)) if made.elapsed() < gw.models.ttl => Ok(body.clone()),
        _ => {
            let body = merged(gw).await?;
            *slot = Some((Instant::now(), body.clone()));
            Ok(body)
        }
    }
}

fn json_response(body: Bytes) -> Response {
    (
        [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        body,
    )
        .into_response()
}

pub(crate) async fn list_models(
    State(gw): State<Arc<Gateway>>,
    _: Caller,
    headers: HeaderMap,
) -> Result<Response, GatewayError> {
    let body = cached(&gw).await?;
    // Anthropic's SDKs list models in Anthropic's shape; they say so with `anthropic-version`.
    // OpenRouter's shape is a superset of OpenAI's, so both prefixes get it: OpenAI clients read the
    // members they know, OpenRouter clients find `pricing`, `context_length` and `name`.
    let body = openrouter_shape(&gw, &body);
    let body = match headers.contains_key("anthropic-version") {
        true => super::messages::anthropic_model_list(&body),
        false => body,
    };
    Ok(json_response(body))
}

/// `GET /v1/models/{id}` (`models.retrieve`): one entry of the merged list, or 404.
pub(crate) async fn retrieve_model(
    State(gw): State<Arc<Gateway>>,
    Path(id): Path<String>,
    _: Caller,
    headers: HeaderMap,
) -> Result<Response, GatewayError> {
    let body = openrouter_shape(&gw, &cached(&gw).await?);
    let mut list = serde_json::from_slice::<ModelList>(&body)
        .map_err(|_| GatewayError::Internal("the model list could not be read".into()))?;
    list.data.retain(|m| m.id == id);
    if list.data.is_empty() {
        return Err(GatewayError::NotFound(format!("The model '{id}' does not exist")));
    }
    if headers.contains_key("anthropic-version") {
        let anthropic = moat_translate::anthropic::models_from_openai(&list);
        return Ok(axum::Json(anthropic["data"][0].clone()).into_response());
    }
    Ok(axum::Json(list.data.swap_remove(0)).into_response())
}

/// A price in nano-dollars per million tokens as OpenRouter writes it: a decimal string of dollars
/// per token, exact (no float rounding).
fn usd_per_token(nanos_per_mtok: u64) -> String {
    const SCALE: u64 = 1_000_000_000_000_000;
    let (int, frac) = (nanos_per_mtok / SCALE, nanos_per_mtok % SCALE);
    if frac == 0 {
        return int.to_string();
    }
    let text = format!("{int}.{frac:015}");
    text.trim_end_matches('0').to_owned()
}

/// The merged list in OpenRouter's shape (served under `/v1` and `/api/v1`): every entry with a `name`, a
/// `context_length` (the provider's, where it gives one, else null) and `pricing` per token in dollars
/// as decimal strings — the configured price where the operator set one, else the provider's own.
fn openrouter_shape(gw: &Gateway, body: &Bytes) -> Bytes {
    let Ok(mut list) = serde_json::from_slice::<ModelList>(body) else {
        return body.clone();
    };
    for model in &mut list.data {
        model.name.get_or_insert_with(|| model.id.clone());
        if model.context_length.is_none() {
            model.extra.entry("context_length").or_insert(Value::Null);
        }
        let target = gw
            .catalog
            .resolve(&model.id)
            .ok()
            .and_then(|t| t.into_iter().next());
        let configured = target
            .as_ref()
            .and_then(|t| gw.prices.configured(t.provider, &t.model));
        let price = match (&model.pricing, configured) {
            (_, Some(p)) => Some(p),
            (None, None) => target.and_then(|t| gw.prices.lookup(t.provider, &t.model).price),
            (Some(_), None) => None,
        };
        if let Some(price) = price {
            let mut pricing = model.pricing.take().unwrap_or_default();
            pricing.prompt = Some(Value::String(usd_per_token(price.input_per_mtok)));
            pricing.completion = Some(Value::String(usd_per_token(price.output_per_mtok)));
            model.pricing = Some(pricing);
        }
    }
    serde_json::to_vec(&list).map_or_else(|_| body.clone(), Bytes::from)
}

/// Refreshes the merged list (and so the learned prices) if it is older than a few seconds; used when
/// a budgeted request meets a model whose price is not known yet.
pub(crate) async fn refresh(gw: &Gateway) {
    let mut slot = gw.models.slot.lock().await;
    if slot
        .as_ref()
        .is_some_and(|(made, _)| made.elapsed() < Duration::from_secs(5))
    {
        return;
    }
    if let Ok(body) = merged(gw).await {
        *slot = Some((Instant::now(), body));
    }
}

async fn fetch(gw: &Gateway, id: usize) -> Result<ModelList, String> {
    let provider = gw.provider(id).map_err(|e| e.to_string())?;
    if !provider.adapter.lists_models() {
        // Its models are reachable through aliases and PROVIDER/MODEL; there is no list to fetch.
        return Ok(ModelList::new(Vec::new()));
    }
    let up = &provider.upstream;
    let work = async {
        let path = provider.adapter.models_path();
        let resp = up.send(path, None, false, &HeaderMap::new()).await?;
        relay::read_body(resp, up.settings()).await
    };
    let body = match tokio::time::timeout(FETCH_TIMEOUT, work).await {
        Err(_) => return Err(format!("`{}` timed out", up.settings().name)),
        Ok(Err(e)) => return Err(e.to_string()),
        Ok(Ok(body)) => body,
    };
    provider
        .adapter
        .model_list(&body)
        .map_err(|e| format!("`{}` sent a malformed model list: {e}", up.settings().name))
}

async fn merged(gw: &Gateway) -> Result<Bytes, GatewayError> {
    let lists = futures_util::future::join_all((0..gw.providers.len()).map(|id| fetch(gw, id))).await;
    let mut data: Vec<Value> = Vec::new();
    let mut failures = Vec::new();
    for (id, list) in lists.into_iter().enumerate() {
        let name = gw.catalog.provider_name(id);
        match list {
            Ok(list) => {
                gw.prices.learn(id, &list);
                for mut model in list.data {
                    model.id = format!("{name}/{}", model.id);
                    data.push(
                        serde_json::to_value(model).map_err(|e| GatewayError::Internal(e.to_string()))?,
                    );
                }
            }
            Err(e) => {
                tracing::warn!(provider = name, error = %e, "model list unavailable");
                failures.push(e);
            }
        }
    }
    if !gw.providers.is_empty() && failures.len() == gw.providers.len() {
        return Err(GatewayError::BadGateway(format!(
            "no provider returned its model list: {}",
            failures.join("; ")
        )));
    }
    let mut aliases: Vec<_> = gw.catalog.aliases().collect();
    aliases.sort_by(|a, b| a.0.cmp(b.0));
    for (alias, route) in aliases {
        let route: Vec<String> = route
            .iter()
            .map(|t| format!("{}/{}", gw.catalog.provider_name(t.provider), t.model))
            .collect();
        data.push(
            json!({"id": alias, "object": "model", "created": 0, "owned_by": "moat", "moat_route": route}),
        );
    }
    let body = serde_json::to_vec(&json!({"object": "list", "data": data}))
        .map_err(|e| GatewayError::Internal(e.to_string()))?;
    Ok(Bytes::from(body))
}

#[cfg(test)]
mod tests {
    #[test]
    fn prices_are_exact_decimal_dollars_per_token() {
        assert_eq!(super::usd_per_token(150_000_000), "0.00000015");
        assert_eq!(super::usd_per_token(3_000_000_000), "0.000003");
        assert_eq!(super::usd_per_token(0), "0");
        assert_eq!(super::usd_per_token(2_000_000_000_000_000), "2");
    }
}

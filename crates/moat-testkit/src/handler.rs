//! One request in, one response out: routing, the API-key check, body parsing, `emulate` directives,
//! and the choice between a JSON answer and a stream.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, RETRY_AFTER};
use http::{HeaderValue, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use serde_json::Value;

use crate::completion::{outputs_of, Completion, Kind, Prompt};
use crate::directive::{Directive, Failure};
use crate::server::Shared;
use crate::{embeddings, stream, wire, RecordedRequest, ResponseBody};

/// Bodies larger than this are refused; tests never need more.
const MAX_BODY: usize = 32 * 1024 * 1024;

/// What a path names, once the `/v1` or `/api/v1` prefix is gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Endpoint {
    Models,
    Model(String),
    Key,
    Complete(Kind),
    Embeddings,
}

impl Endpoint {
    fn parse(method: &Method, path: &str) -> Option<Endpoint> {
        let rest = path
            .strip_prefix("/api/v1")
            .or_else(|| path.strip_prefix("/v1"))?;
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        let endpoint = match (method, rest) {
            (&Method::GET, "/models") => Endpoint::Models,
            (&Method::GET, "/key" | "/auth/key") => Endpoint::Key,
            (&Method::POST, "/chat/completions") => Endpoint::Complete(Kind::Chat),
            (&Method::POST, "/completions") => Endpoint::Complete(Kind::Text),
            (&Method::POST, "/embeddings") => Endpoint::Embeddings,
            (&Method::GET, other) => Endpoint::Model(other.strip_prefix("/models/")?.to_owned()),
            _ => return None,
        };
        Some(endpoint)
    }
}

/// Serves one request; never fails, because every failure is itself an answer.
pub(crate) async fn handle(shared: Arc<Shared>, request: Request<Incoming>) -> Response<ResponseBody> {
    let (parts, body) = request.into_parts();
    let body = match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(_) => {
            let message = "The request body could not be read or is too large.";
            return error(StatusCode::BAD_REQUEST, message, None);
        }
    };
    shared.record(RecordedRequest {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        version: parts.version,
        headers: parts.headers.clone(),
        body: body.clone(),
    });
    // Anthropic's and Ollama's own wires, told apart by path (and Anthropic's version header), and
    // the enterprise clouds' wires and identity services.
    let (method, path, headers) = (&parts.method, parts.uri.path(), &parts.headers);
    let query = parts.uri.query().unwrap_or("");
    if let Some(response) = crate::cloud::route(&shared, method, path, &body) {
        return response;
    }
    if let Some(response) = crate::azure::route(&shared, method, path, query, headers, &body).await {
        return response;
    }
    if let Some(response) = crate::gemini::route(&shared, method, path, query, headers, &body).await {
        return response;
    }
    if let Some(response) = crate::bedrock::route(&shared, &parts, &body).await {
        return response;
    }
    if let Some(response) = crate::anthropic::route(&shared, method, path, headers, &body).await {
        return response;
    }
    if let Some(response) = crate::ollama::route(&shared, method, path, &body).await {
        return response;
    }
    if let Some(response) = crate::responses::route(&shared, method, path, headers, &body) {
        return response;
    }
    let Some(endpoint) = Endpoint::parse(&parts.method, parts.uri.path()) else {
        let message = format!("Invalid URL ({} {})", parts.method, parts.uri.path());
        return error(StatusCode::NOT_FOUND, &message, None);
    };
    if !authorized(&shared, &parts.headers) {
        let message = "Incorrect API key provided. You can find your API key in your account settings.";
        return error(StatusCode::UNAUTHORIZED, message, None);
    }
    match endpoint {
        Endpoint::Models => json(StatusCode::OK, &wire::model_list(&shared.models)),
        Endpoint::Model(id) => match wire::find_model(&shared.models, &id) {
            Some(model) => json(StatusCode::OK, model),
            None => error(
                StatusCode::NOT_FOUND,
                &format!("The model '{id}' does not exist"),
                Some("model"),
            ),
        },
        Endpoint::Key => json(
            StatusCode::OK,
            &wire::key_report(shared.key_report.as_ref(), shared.spent()),
        ),
        Endpoint::Complete(_) | Endpoint::Embeddings => {
            let authorization = parts.headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok());
            let openrouter = parts.uri.path().starts_with("/api/v1");
            generate(&shared, &endpoint, &body, authorization, openrouter).await
        }
    }
}

fn authorized(shared: &Shared, headers: &http::HeaderMap) -> bool {
    let Some(key) = &shared.api_key else {
        return true;
    };
    let presented = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok());
    presented.and_then(|v| v.strip_prefix("Bearer ")) == Some(key.as_str())
}

/// The endpoints that take a JSON body and may carry directives.
pub(crate) async fn generate(
    shared: &Shared,
    endpoint: &Endpoint,
    body: &Bytes,
    authorization: Option<&str>,
    openrouter: bool,
) -> Response<ResponseBody> {
    let request: Value = match serde_json::from_slice(body) {
        Ok(value @ Value::Object(_)) => value,
        _ => {
            let message = "We could not parse the JSON body of your request. (HINT: This likely means you \
                           aren't using your HTTP library correctly.)";
            return error(StatusCode::BAD_REQUEST, message, None);
        }
    };
    if shared.strict {
        let kind = match endpoint {
            Endpoint::Complete(kind) => Some(*kind),
            _ => None,
        };
        if let Some(member) = crate::strict::unknown_member(&request, kind, openrouter) {
            let message = format!("Unrecognized request argument supplied: {member}");
            return error(StatusCode::BAD_REQUEST, &message, Some(&member));
        }
    }
    let directive = match shared.directive_for(&request) {
        Ok(directive) => directive,
        Err(message) => return error(StatusCode::BAD_REQUEST, &message, Some("emulate")),
    };
    if let Some(delay) = directive.first_byte_delay {
        tokio::time::sleep(delay).await;
    }
    if directive.hang {
        // Dropped with its connection, or with the server on shutdown.
        std::future::pending::<()>().await;
    }
    if let Some(failure) = &directive.failure {
        if shared.should_fail(&directive.key, failure.times) {
            return emulated_failure(failure, authorization);
        }
    }
    let mut cached_tokens = 0;
    if let (Some(cache), Endpoint::Complete(_)) = (&shared.prefix_cache, endpoint) {
        let lookup = cache.observe(&request, authorization);
        tokio::time::sleep(lookup.delay).await;
        cached_tokens = lookup.cached_tokens;
    }
    match endpoint {
        Endpoint::Complete(kind) => complete(shared, *kind, &request, &directive, cached_tokens),
        _ => match embeddings::respond(&request) {
            Ok(response) => json(StatusCode::OK, &response),
            Err((message, param)) => error(StatusCode::BAD_REQUEST, &message, Some(param)),
        },
    }
}

fn complete(
    shared: &Shared,
    kind: Kind,
    request: &Value,
    directive: &Directive,
    cached_tokens: u64,
) -> Response<ResponseBody> {
    let prompt = match Prompt::read(kind, request) {
        Ok(prompt) => prompt,
        Err((message, param)) => return error(StatusCode::BAD_REQUEST, &message, Some(param)),
    };
    let prefix = match kind {
        Kind::Chat => "chatcmpl",
        Kind::Text => "cmpl",
    };
    // A model that has just been given a tool's result answers it in text, as real ones do; so an
    // agent loop that repeats the directive on every turn still ends.
    let answered = request["messages"]
        .as_array()
        .and_then(|m| m.last())
        .is_some_and(|m| m["role"] == "tool");
    let tool_call = directive
        .tool_call
        .clone()
        .filter(|_| kind == Kind::Chat && !answered);
    let completion = Completion {
        kind,
        id: format!("{prefix}-emu-{}", shared.next_id()),
        created: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default(),
        price: wire::price_of(&shared.models, &prompt.model),
        content: match &tool_call {
            // A tool-calling answer has only the text the directive gives it.
            Some(_) => directive.content.clone().unwrap_or_default(),
            None => Completion::answer_for(&prompt, directive.content.as_deref()),
        },
        model: prompt.model.clone(),
        prompt_tokens: prompt.prompt_tokens,
        probe: request.get("x_probe").cloned().unwrap_or(Value::Null),
        reasoning: match kind {
            Kind::Chat => Completion::reasoning_for(&prompt, request),
            Kind::Text => None,
        },
        tool_call,
        cached_tokens,
        choices: outputs_of(request).0,
        outputs: outputs_of(request).1,
        usage_nulls: request["stream_options"]["include_usage"] == true,
    };
    if prompt.stream {
        let plan = stream::plan(&completion, directive);
        let streamed: String = plan_text(&completion, directive);
        shared.add_spend(completion.cost(&streamed));
        let mut response = Response::new(stream::shaped_body(plan, directive, shared.streams.clone()));
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        return response;
    }
    if directive.reset_after_chunks.is_some() {
        let mut response = Response::new(stream::reset_body());
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        return response;
    }
    shared.add_spend(completion.cost(&completion.content));
    json(StatusCode::OK, &completion.response())
}

/// The text a stream carries, for the spend report.
fn plan_text(completion: &Completion, directive: &Directive) -> String {
    stream::split(&completion.content, directive.chunks).concat()
}

fn emulated_failure(failure: &Failure, authorization: Option<&str>) -> Response<ResponseBody> {
    let mut message = failure
        .message
        .clone()
        .unwrap_or_else(|| wire::default_message(failure.status));
    if failure.echo_auth {
        // Some providers quote the credential they were sent; a gateway must not pass it on.
        message.push_str(&format!(" (Authorization: {})", authorization.unwrap_or("none")));
    }
    let body = if failure.openrouter {
        wire::openrouter_error(failure.status, &message)
    } else {
        let (kind, code) = wire::error_kind(failure.status);
        wire::openai_error(&message, kind, None, code)
    };
    let mut response = json(failure.status, &body);
    if let Some(seconds) = failure.retry_after {
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

/// An OpenAI-shaped error with the type and code that go with `status`.
fn error(status: StatusCode, message: &str, param: Option<&str>) -> Response<ResponseBody> {
    let (kind, code) = wire::error_kind(status);
    json(status, &wire::openai_error(message, kind, param, code))
}

pub(crate) fn json(status: StatusCode, value: &Value) -> Response<ResponseBody> {
    let mut response = Response::new(
        Full::new(Bytes::from(value.to_string()))
            .map_err(|e| match e {})
            .boxed_unsync(),
    );
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_under_both_prefixes() {
        let chat = Some(Endpoint::Complete(Kind::Chat));
        assert_eq!(Endpoint::parse(&Method::POST, "/v1/chat/completions"), chat);
        assert_eq!(Endpoint::parse(&Method::POST, "/api/v1/chat/completions"), chat);
        assert_eq!(
            Endpoint::parse(&Method::GET, "/api/v1/models"),
            Some(Endpoint::Models)
        );
        assert_eq!(
            Endpoint::parse(&Method::GET, "/v1/models/a/b"),
            Some(Endpoint::Model("a/b".to_owned()))
        );
        assert_eq!(Endpoint::parse(&Method::GET, "/v1/chat/completions"), None);
        assert_eq!(Endpoint::parse(&Method::POST, "/v2/chat/completions"), None);
        assert_eq!(Endpoint::parse(&Method::GET, "/v1/other"), None);
    }
}

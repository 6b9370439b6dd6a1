//! Round-trip properties: any body made of well-typed known members plus arbitrary unknown ones
//! comes back from deserialize → serialize exactly as it went in.

use proptest::prelude::*;
use serde_json::Value;

use super::*;
use crate::error::tests::error_detail_json as error_detail;
use crate::test_support::{
    any_json, assert_round_trip, j_array, j_bool, j_f64, j_i64, j_string, j_strings, j_u32, j_u64, Obj,
};

/// For `Option<Value>` members: `null` there normalizes to absent, so generate anything else.
fn j_present() -> BoxedStrategy<Value> {
    any_json()
        .prop_filter("null normalizes to absent", |v| !v.is_null())
        .boxed()
}

pub(crate) fn usage() -> BoxedStrategy<Value> {
    Obj::new()
        .req("prompt_tokens", j_u64())
        .req("completion_tokens", j_u64())
        .req("total_tokens", j_u64())
        .opt("cost", j_f64())
        .opt(
            "cost_details",
            Obj::new().opt("upstream_inference_cost", j_f64()).build(),
        )
        .opt(
            "prompt_tokens_details",
            Obj::new().opt("cached_tokens", j_u64()).build(),
        )
        .opt(
            "completion_tokens_details",
            Obj::new().opt("reasoning_tokens", j_u64()).build(),
        )
        .build()
}

fn tool_call() -> BoxedStrategy<Value> {
    let function = Obj::new()
        .req("name", j_string())
        .req("arguments", j_string())
        .build();
    Obj::new()
        .req("id", j_string())
        .req("type", j_string())
        .req("function", function)
        .build()
}

fn tool_call_delta() -> BoxedStrategy<Value> {
    let function = Obj::new()
        .opt("name", j_string())
        .opt("arguments", j_string())
        .build();
    Obj::new()
        .req("index", j_u32())
        .opt("id", j_string())
        .opt("type", j_string())
        .opt("function", function)
        .build()
}

fn tool() -> BoxedStrategy<Value> {
    let function = Obj::new()
        .req("name", j_string())
        .opt("description", j_string())
        .opt("parameters", j_present())
        .opt("strict", j_bool())
        .build();
    Obj::new()
        .req("type", j_string())
        .opt("function", function)
        .build()
}

fn content_part() -> BoxedStrategy<Value> {
    let image = Obj::new()
        .req("url", j_string())
        .opt("detail", j_string())
        .build();
    Obj::new()
        .req("type", j_string())
        .opt("text", j_string())
        .opt("image_url", image)
        .build()
}

fn message_content() -> BoxedStrategy<Value> {
    prop_oneof![j_string(), j_array(content_part())].boxed()
}

fn chat_message() -> BoxedStrategy<Value> {
    Obj::new()
        .req("role", j_string())
        .opt("content", message_content())
        .opt("name", j_string())
        .opt("tool_calls", j_array(tool_call()))
        .opt("tool_call_id", j_string())
        .opt("refusal", j_string())
        .opt("reasoning", j_string())
        .build()
}

fn stop() -> BoxedStrategy<Value> {
    prop_oneof![j_string(), j_strings()].boxed()
}

fn provider() -> BoxedStrategy<Value> {
    let max_price = Obj::new()
        .opt("prompt", j_present())
        .opt("completion", j_present())
        .opt("request", j_present())
        .opt("image", j_present())
        .build();
    Obj::new()
        .opt("order", j_strings())
        .opt("allow_fallbacks", j_bool())
        .opt("require_parameters", j_bool())
        .opt("data_collection", j_string())
        .opt("zdr", j_bool())
        .opt("only", j_strings())
        .opt("ignore", j_strings())
        .opt("quantizations", j_strings())
        .opt("sort", j_present())
        .opt("max_price", max_price)
        .build()
}

fn reasoning() -> BoxedStrategy<Value> {
    Obj::new()
        .opt("effort", j_string())
        .opt("max_tokens", j_u64())
        .opt("exclude", j_bool())
        .opt("enabled", j_bool())
        .build()
}

fn flag_object(name: &'static str) -> BoxedStrategy<Value> {
    Obj::new().opt(name, j_bool()).build()
}

fn chat_request() -> BoxedStrategy<Value> {
    Obj::new()
        .opt("model", j_string())
        .req("messages", j_array(chat_message()))
        .opt("models", j_strings())
        .opt("stream", j_bool())
        .opt("stream_options", flag_object("include_usage"))
        .opt("max_tokens", j_u64())
        .opt("max_completion_tokens", j_u64())
        .opt("temperature", j_f64())
        .opt("top_p", j_f64())
        .opt("top_k", j_u64())
        .opt("frequency_penalty", j_f64())
        .opt("presence_penalty", j_f64())
        .opt("n", j_u32())
        .opt("stop", stop())
        .opt("seed", j_i64())
        .opt("logprobs", j_bool())
        .opt("top_logprobs", j_u32())
        .opt("tools", j_array(tool()))
        .opt("tool_choice", j_present())
        .opt("parallel_tool_calls", j_bool())
        .opt("response_format", j_present())
        .opt("user", j_string())
        .opt("reasoning_effort", j_string())
        .opt("prompt_cache_key", j_string())
        .opt("cache_salt", j_string())
        .opt("cache_prompt", j_bool())
        .opt("provider", provider())
        .opt("reasoning", reasoning())
        .opt("usage", flag_object("include"))
        .build()
}

fn choice() -> BoxedStrategy<Value> {
    Obj::new()
        .req("index", j_u32())
        .req("message", chat_message())
        .opt("finish_reason", j_string())
        .opt("logprobs", j_present())
        .build()
}

fn chat_response() -> BoxedStrategy<Value> {
    Obj::new()
        .req("id", j_string())
        .req("object", j_string())
        .req("created", j_u64())
        .req("model", j_string())
        .req("choices", j_array(choice()))
        .opt("usage", usage())
        .opt("system_fingerprint", j_string())
        .opt("service_tier", j_string())
        .opt("provider", j_string())
        .build()
}

fn chunk_choice() -> BoxedStrategy<Value> {
    let delta = Obj::new()
        .opt("role", j_string())
        .opt("content", j_string())
        .opt("reasoning", j_string())
        .opt("refusal", j_string())
        .opt("tool_calls", j_array(tool_call_delta()))
        .build();
    Obj::new()
        .req("index", j_u32())
        .req("delta", delta)
        .opt("finish_reason", j_string())
        .opt("logprobs", j_present())
        .build()
}

pub(crate) fn chat_chunk() -> BoxedStrategy<Value> {
    Obj::new()
        .req("id", j_string())
        .req("object", j_string())
        .req("created", j_u64())
        .req("model", j_string())
        .req("choices", j_array(chunk_choice()))
        .opt("usage", usage())
        .opt("system_fingerprint", j_string())
        .opt("provider", j_string())
        .opt("error", error_detail())
        .build()
}

fn model() -> BoxedStrategy<Value> {
    let pricing = Obj::new()
        .opt("prompt", j_present())
        .opt("completion", j_present())
        .opt("request", j_present())
        .opt("image", j_present())
        .opt("input_cache_read", j_present())
        .opt("input_cache_write", j_present())
        .opt("internal_reasoning", j_present())
        .build();
    Obj::new()
        .req("id", j_string())
        .opt("object", j_string())
        .opt("created", j_u64())
        .opt("owned_by", j_string())
        .opt("name", j_string())
        .opt("context_length", j_u64())
        .opt("pricing", pricing)
        .build()
}

fn model_list() -> BoxedStrategy<Value> {
    Obj::new()
        .req("object", j_string())
        .req("data", j_array(model()))
        .build()
}

fn prompt_input() -> BoxedStrategy<Value> {
    let tokens = || j_array(j_u32());
    let other = proptest::collection::btree_map("[a-z]{1,6}", any_json(), 0..3)
        .prop_map(|m| Value::Object(m.into_iter().collect()));
    prop_oneof![j_string(), j_strings(), tokens(), j_array(tokens()), other].boxed()
}

fn embedding_request() -> BoxedStrategy<Value> {
    Obj::new()
        .req("model", j_string())
        .req("input", prompt_input())
        .opt("encoding_format", j_string())
        .opt("dimensions", j_u32())
        .opt("user", j_string())
        .opt("provider", provider())
        .build()
}

fn embedding_response() -> BoxedStrategy<Value> {
    let vector = prop_oneof![j_array(j_f64()), j_string()].boxed();
    let embedding = Obj::new()
        .req("object", j_string())
        .req("index", j_u32())
        .req("embedding", vector)
        .build();
    Obj::new()
        .req("object", j_string())
        .req("data", j_array(embedding))
        .req("model", j_string())
        .opt("usage", usage())
        .build()
}

fn completion_request() -> BoxedStrategy<Value> {
    Obj::new()
        .opt("model", j_string())
        .opt("prompt", prompt_input())
        .opt("models", j_strings())
        .opt("suffix", j_string())
        .opt("stream", j_bool())
        .opt("stream_options", flag_object("include_usage"))
        .opt("max_tokens", j_u64())
        .opt("temperature", j_f64())
        .opt("top_p", j_f64())
        .opt("n", j_u32())
        .opt("stop", stop())
        .opt("seed", j_i64())
        .opt("echo", j_bool())
        .opt("logprobs", j_u32())
        .opt("user", j_string())
        .opt("provider", provider())
        .opt("reasoning", reasoning())
        .opt("usage", flag_object("include"))
        .build()
}

fn completion_response() -> BoxedStrategy<Value> {
    let choice = Obj::new()
        .req("index", j_u32())
        .req("text", j_string())
        .opt("finish_reason", j_string())
        .opt("logprobs", j_present())
        .build();
    Obj::new()
        .req("id", j_string())
        .req("object", j_string())
        .req("created", j_u64())
        .req("model", j_string())
        .req("choices", j_array(choice))
        .opt("usage", usage())
        .opt("system_fingerprint", j_string())
        .opt("provider", j_string())
        .build()
}

proptest! {
    #[test]
    fn chat_request_round_trips(json in chat_request()) {
        assert_round_trip::<ChatCompletionRequest>(&json)?;
    }

    #[test]
    fn chat_message_round_trips(json in chat_message()) {
        assert_round_trip::<ChatMessage>(&json)?;
    }

    #[test]
    fn chat_response_round_trips(json in chat_response()) {
        assert_round_trip::<ChatCompletionResponse>(&json)?;
    }

    #[test]
    fn chat_chunk_round_trips(json in chat_chunk()) {
        assert_round_trip::<ChatCompletionChunk>(&json)?;
    }

    #[test]
    fn usage_round_trips(json in usage()) {
        assert_round_trip::<Usage>(&json)?;
    }

    #[test]
    fn model_list_round_trips(json in model_list()) {
        assert_round_trip::<ModelList>(&json)?;
    }

    #[test]
    fn embedding_request_round_trips(json in embedding_request()) {
        assert_round_trip::<EmbeddingRequest>(&json)?;
    }

    #[test]
    fn embedding_response_round_trips(json in embedding_response()) {
        assert_round_trip::<EmbeddingResponse>(&json)?;
    }

    #[test]
    fn completion_request_round_trips(json in completion_request()) {
        assert_round_trip::<CompletionRequest>(&json)?;
    }

    #[test]
    fn completion_response_round_trips(json in completion_response()) {
        assert_round_trip::<CompletionResponse>(&json)?;
    }
}

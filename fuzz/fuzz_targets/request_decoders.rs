//! Every endpoint's request decoder, as its handler runs it (`moat_gateway::fuzzing::decode`): no
//! panic on any body. For the OpenAI request types, what moatd re-serializes to forward must decode
//! to the same request again (unknown members pass through untouched).
#![no_main]

use libfuzzer_sys::fuzz_target;
use moat_gateway::fuzzing::{decode, Endpoint};
use moat_wire::openai::{ChatCompletionRequest, CompletionRequest, EmbeddingRequest};

fn round_trip<T: serde::de::DeserializeOwned + serde::Serialize>(body: &[u8]) {
    let Ok(first) = serde_json::from_slice::<T>(body) else {
        return;
    };
    let once = serde_json::to_value(&first).expect("a decoded request serializes");
    let again: T = serde_json::from_value(once.clone()).expect("what moatd forwards decodes again");
    assert_eq!(
        once,
        serde_json::to_value(&again).expect("serializes"),
        "forwarding changed the request"
    );
}

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    let endpoint = Endpoint::ALL[which as usize % Endpoint::ALL.len()];
    decode(endpoint, body);
    match endpoint {
        Endpoint::Chat => round_trip::<ChatCompletionRequest>(body),
        Endpoint::Completions => round_trip::<CompletionRequest>(body),
        Endpoint::Embeddings => round_trip::<EmbeddingRequest>(body),
        _ => {}
    }
});

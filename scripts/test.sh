#!/usr/bin/env bash
# The whole test suite, from a fresh checkout: installs what the tests need, then checks formatting,
# lints, and runs every test (unit, property, integration, and the real `openai` Python SDK against
# moatd). CI runs exactly this (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."

# tmux gives crates/moat/tests/cli/tty.rs a real terminal (spinner, stats line). Debian's package;
# skipped when already present so a warm machine pays nothing.
if ! command -v tmux >/dev/null 2>&1; then
    echo "== installing tmux (apt)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tmux >/dev/null
fi

# Real PostgreSQL and Valkey/Redis servers for the cluster tests (crates/moat-store/tests/postgres.rs,
# crates/moatd/tests/cluster*.rs): the tests start their own on free ports in temporary directories,
# so only the Debian packages are needed (their services are not started). Valkey where Debian ships
# it, else Redis.
if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
    echo "== installing PostgreSQL (apt)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
if ! command -v valkey-server >/dev/null 2>&1 && ! command -v redis-server >/dev/null 2>&1; then
    echo "== installing Valkey or Redis (apt)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq valkey-server >/dev/null 2>&1 \
        || DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null
fi

# The real openai Python SDK drives moatd in crates/moatd/tests/openai_sdk.rs and whole_request.rs.
if ! python3 -c 'import openai' 2>/dev/null; then
    echo "== installing the openai Python SDK (PyPI)"
    python3 -m pip install --quiet --disable-pip-version-check 'openai>=1.40'
fi

# A real llama.cpp server for crates/moatd/tests/llamacpp.rs: llama-cpp-python compiles llama.cpp from
# source (minutes on a small machine), so pip's cache is left on: the built wheel is reused by later
# runs. GGML_NATIVE=OFF builds for any x86-64/arm64 CPU, so a cached wheel also runs on another runner.
# gguf (and numpy) write the test's tiny model.
if ! python3 -c 'import llama_cpp.server, gguf, numpy' 2>/dev/null; then
    echo "== installing llama-cpp-python[server] and gguf (PyPI; the first build takes minutes)"
    CMAKE_ARGS="${CMAKE_ARGS:--DGGML_NATIVE=OFF}" python3 -m pip install --quiet --disable-pip-version-check \
        'llama-cpp-python[server]>=0.3' 'gguf>=0.10' numpy
fi

# The real anthropic Python SDK drives moatd's /v1/messages in crates/moatd/tests/translate_sdk.rs.
if ! python3 -c 'import anthropic' 2>/dev/null; then
    echo "== installing the anthropic Python SDK (PyPI)"
    python3 -m pip install --quiet --disable-pip-version-check 'anthropic>=0.40'
fi

# The clients people point at moatd (crates/moatd/tests/clients.rs): LangChain's ChatOpenAI, LiteLLM
# and the OpenAI Agents SDK from PyPI, the openai package from npm (into tests/node, from its lockfile).
if ! python3 -c 'import langchain_openai, litellm, agents' 2>/dev/null; then
    echo "== installing langchain-openai, litellm and openai-agents (PyPI)"
    python3 -m pip install --quiet --disable-pip-version-check 'langchain-openai>=0.3' 'litellm>=1.60' 'openai-agents>=0.2'
fi
if [ ! -d tests/node/node_modules/openai ]; then
    echo "== installing the openai npm package (tests/node)"
    (cd tests/node && npm ci --no-audit --no-fund --loglevel=error)
fi

# The official ollama Python client checks the testkit's Ollama emulator (crates/moatd/tests/translate_sdk.rs).
if ! python3 -c 'import ollama' 2>/dev/null; then
    echo "== installing the ollama Python client (PyPI)"
    python3 -m pip install --quiet --disable-pip-version-check 'ollama>=0.4'
fi

# Headless Chromium drives the admin console in crates/moatd/tests/console.rs (Debian's package).
if ! command -v chromium >/dev/null 2>&1; then
    echo "== installing chromium (apt)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi

# Node programs the Rust tests run: playwright-core (drives that Chromium) and oidc-provider (a real
# OpenID provider for crates/moat-gateway/tests/sso.rs), pinned by tests/node/package-lock.json.
if [ ! -d tests/node/node_modules/playwright-core ] || [ ! -d tests/node/node_modules/oidc-provider ]; then
    echo "== installing the tests' npm packages (tests/node)"
    (cd tests/node && npm ci --no-audit --no-fund --loglevel=error)
fi

# The enterprise clouds' official SDKs check the testkit's Azure, Bedrock and Gemini emulators and drive
# moatd in front of them (crates/moatd/tests/cloud_sdk.rs): boto3's bedrock-runtime and google-genai
# (the openai SDK above brings AzureOpenAI).
if ! python3 -c 'import boto3' 2>/dev/null; then
    echo "== installing boto3 (PyPI)"
    python3 -m pip install --quiet --disable-pip-version-check 'boto3>=1.34'
fi
if ! python3 -c 'import google.genai' 2>/dev/null; then
    echo "== installing google-genai (PyPI)"
    python3 -m pip install --quiet --disable-pip-version-check 'google-genai>=1.0'
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check

echo "== cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings

echo "== cargo test"
cargo test --workspace --locked

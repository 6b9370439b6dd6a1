//! The server-side scripts that make every step on shared counters atomic, and the key names they
//! touch. Each account (a key or a team) owns a handful of Valkey keys under `moat:k:ID` / `moat:t:ID`:
//!
//! - `spent:W` settled spend in the budget window starting at W (absent = not loaded yet: the node
//!   rebuilds it from the store's usage rows, see `LOAD`); `early:W` spend settled before it was loaded;
//! - `held` the sum of outstanding holds, `holds` (sorted set: request id → expiry, server time in ms)
//!   and `holdcost` (hash: request id → cost), so a hold whose node died expires by itself;
//! - `rpm:M` and `tpm:M` requests and tokens in clock minute M.
//!
//! `moat:done:RID` marks a settled (or released) request: settling twice is a no-op. Times inside the
//! scripts come from the server's clock (`TIME`), so nodes with skewed clocks agree on expiry. Lua
//! numbers are doubles: sums stay exact up to 2^53 nano-dollars (about $9 million) per window.

use redis::Script;

/// Reserve a hold on every account or on none. KEYS: per account `spent held holds holdcost rpm tpm`.
/// ARGV: request id, cost, tokens, hold ttl ms, then per account `budget rpm tpm` (-1 = none).
/// Returns `{0}` reserved, `{1, i}` account i not loaded, `{2, i}` rpm, `{3, i}` tpm, `{4, i}` budget.
const RESERVE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rid, cost, tokens, ttl = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local n = #KEYS / 6
if redis.call('HEXISTS', KEYS[4], rid) == 1 then return {0} end
for i = 0, n - 1 do
  local k, a = i * 6, 5 + i * 3
  local budget, rpm, tpm = tonumber(ARGV[a]), tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2])
  local spent = 0
  if budget >= 0 then
    local s = redis.call('GET', KEYS[k + 1])
    if not s then return {1, i} end
    spent = tonumber(s)
  end
  local expired = redis.call('ZRANGEBYSCORE', KEYS[k + 3], '-inf', now)
  if #expired > 0 then
    local gone = 0
    for _, r in ipairs(expired) do
      gone = gone + tonumber(redis.call('HGET', KEYS[k + 4], r) or '0')
      redis.call('HDEL', KEYS[k + 4], r)
    end
    redis.call('ZREMRANGEBYSCORE', KEYS[k + 3], '-inf', now)
    local held = redis.call('DECRBY', KEYS[k + 2], gone)
    if held < 0 then redis.call('SET', KEYS[k + 2], 0) end
  end
  if rpm >= 0 and tonumber(redis.call('GET', KEYS[k + 5]) or '0') >= rpm then return {2, i} end
  if tpm >= 0 and tonumber(redis.call('GET', KEYS[k + 6]) or '0') + tokens > tpm then return {3, i} end
  if budget >= 0 then
    local held = tonumber(redis.call('GET', KEYS[k + 2]) or '0')
    if spent + held + cost > budget then return {4, i} end
  end
end
for i = 0, n - 1 do
  local k, a = i * 6, 5 + i * 3
  redis.call('INCRBY', KEYS[k + 2], cost)
  redis.call('ZADD', KEYS[k + 3], now + ttl, rid)
  redis.call('HSET', KEYS[k + 4], rid, cost)
  if tonumber(ARGV[a + 1]) >= 0 then
    redis.call('INCR', KEYS[k + 5])
    redis.call('EXPIRE', KEYS[k + 5], 120)
  end
  if tonumber(ARGV[a + 2]) >= 0 then
    redis.call('INCRBY', KEYS[k + 6], tokens)
    redis.call('EXPIRE', KEYS[k + 6], 120)
  end
end
return {0}
";

/// Settle (or release, with cost and tokens 0) once. KEYS: `done`, then per account
/// `spent early held holds holdcost tpm_then tpm_now`. ARGV: request id, cost, actual tokens, held
/// tokens, then per account `spent_ttl has_tpm` (ttl -1 = never expires).
/// Returns 1 when applied, 0 when this request was already settled.
const SETTLE: &str = r"
if not redis.call('SET', KEYS[1], '1', 'NX', 'EX', 172800) then return 0 end
local rid, cost, actual, held_tokens = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local n = (#KEYS - 1) / 7
for i = 0, n - 1 do
  local k, a = 1 + i * 7, 5 + i * 2
  local ttl, has_tpm = tonumber(ARGV[a]), ARGV[a + 1] == '1'
  local c = redis.call('HGET', KEYS[k + 5], rid)
  local was_held = c ~= false
  if was_held then
    local held = redis.call('DECRBY', KEYS[k + 3], tonumber(c))
    if held < 0 then redis.call('SET', KEYS[k + 3], 0) end
    redis.call('HDEL', KEYS[k + 5], rid)
    redis.call('ZREM', KEYS[k + 4], rid)
  end
  if cost > 0 then
    if redis.call('EXISTS', KEYS[k + 1]) == 1 then
      redis.call('INCRBY', KEYS[k + 1], cost)
    else
      redis.call('INCRBY', KEYS[k + 2], cost)
      if ttl > 0 then redis.call('EXPIRE', KEYS[k + 2], ttl) end
    end
  end
  if has_tpm then
    if was_held and KEYS[k + 6] == KEYS[k + 7] then
      local v = redis.call('INCRBY', KEYS[k + 7], actual - held_tokens)
      if v < 0 then redis.call('SET', KEYS[k + 7], 0, 'KEEPTTL') end
    elseif actual > 0 then
      redis.call('INCRBY', KEYS[k + 7], actual)
    end
    redis.call('EXPIRE', KEYS[k + 7], 120)
  end
end
return 1
";

/// Loads an account's window spend rebuilt from the store, unless another node did first. KEYS:
/// `spent early`; ARGV: spend, ttl (-1 = none). Spend settled while it was not loaded is added.
const LOAD: &str = r"
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
local v = tonumber(ARGV[1]) + tonumber(redis.call('GET', KEYS[2]) or '0')
if tonumber(ARGV[2]) > 0 then
  redis.call('SET', KEYS[1], v, 'EX', tonumber(ARGV[2]))
else
  redis.call('SET', KEYS[1], v)
end
redis.call('DEL', KEYS[2])
return 1
";

/// Pushes the expiry of live holds forward. KEYS: `holds` per hold; ARGV: ttl ms, then request ids.
const RENEW: &str = r"
local t = redis.call('TIME')
local at = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000) + tonumber(ARGV[1])
for i, k in ipairs(KEYS) do
  redis.call('ZADD', k, 'XX', at, ARGV[i + 1])
end
return #KEYS
";

/// The scripts, hashed once; `invoke` sends EVALSHA and loads a script the server lacks.
#[derive(Debug)]
pub(crate) struct Scripts {
    pub reserve: Script,
    pub settle: Script,
    pub load: Script,
    pub renew: Script,
}

impl Scripts {
    pub fn new() -> Scripts {
        Scripts {
            reserve: Script::new(RESERVE),
            settle: Script::new(SETTLE),
            load: Script::new(LOAD),
            renew: Script::new(RENEW),
        }
    }

    pub fn all(&self) -> [&Script; 4] {
        [&self.reserve, &self.settle, &self.load, &self.renew]
    }
}

/// One account's key prefix: `moat:k:ID` or `moat:t:ID`.
pub(crate) fn account(kind: char, id: &str) -> String {
    format!("moat:{kind}:{id}")
}

/// The six keys `RESERVE` takes for one account.
pub(crate) fn reserve_keys(acct: &str, window: i64, minute: i64) -> [String; 6] {
    [
        format!("{acct}:spent:{window}"),
        format!("{acct}:held"),
        format!("{acct}:holds"),
        format!("{acct}:holdcost"),
        format!("{acct}:rpm:{minute}"),
        format!("{acct}:tpm:{minute}"),
    ]
}

/// The seven keys `SETTLE` takes for one account.
pub(crate) fn settle_keys(acct: &str, window: i64, minute_then: i64, minute_now: i64) -> [String; 7] {
    [
        format!("{acct}:spent:{window}"),
        format!("{acct}:early:{window}"),
        format!("{acct}:held"),
        format!("{acct}:holds"),
        format!("{acct}:holdcost"),
        format!("{acct}:tpm:{minute_then}"),
        format!("{acct}:tpm:{minute_now}"),
    ]
}

/// `moat:done:RID`, the settle-once marker.
pub(crate) fn done_key(request_id: &str) -> String {
    format!("moat:done:{request_id}")
}

/// The key recording which incarnation of the server's data this node has seen.
pub(crate) const EPOCH: &str = "moat:epoch";

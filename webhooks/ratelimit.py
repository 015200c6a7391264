"""Per-subscription rate limits: a token bucket in Redis, shared by every delivery worker.

The bucket holds up to ``rate`` tokens (one second's worth) and refills continuously.
``take`` grants as many of the wanted tokens as are there and says how long until the next
one; deliveries without a token wait for it, they are never failed for the limit.
"""

from __future__ import annotations

import time

from core.redis import get_redis

# KEYS[1] bucket; ARGV: rate per second, tokens wanted, now (seconds, float)
TAKE = """
local rate = tonumber(ARGV[1])
local wanted = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1])
local at = tonumber(state[2])
if tokens == nil then
  tokens = rate
  at = now
end
tokens = math.min(rate, tokens + math.max(0, now - at) * rate)
local granted = math.min(wanted, math.floor(tokens))
tokens = tokens - granted
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('EXPIRE', KEYS[1], 60)
local wait = 0
if granted < wanted then
  wait = (1 - tokens) / rate
end
return {granted, tostring(wait)}
"""


def take(subscription_id: int, rate: int, wanted: int) -> tuple[int, float]:
    """Take up to ``wanted`` tokens; returns (granted, seconds until the next token).

    The n-th delivery left without a token (0-based) is due ``wait + n / rate`` from now.
    """
    script = get_redis().register_script(TAKE)
    granted, wait = script(
        keys=[f"eventhub:ratelimit:{subscription_id}"], args=[rate, wanted, time.time()]
    )
    return int(granted), float(wait)

package main

import (
	"strconv"

	"github.com/shardfleet/shardfleet/internal/cache"
)

// CacheSettings are the state cache's settings (CACHE, CACHE_MESSAGES,
// CACHE_OLD), kept apart from the rest so that they are found in one place.
type CacheSettings struct {
	Kinds    cache.Kinds // CACHE; derived from INTENTS when not set
	Messages int         // CACHE_MESSAGES: per channel; 0 = off
	Old      bool        // CACHE_OLD
}

// config is what the sink keeps.
func (s CacheSettings) config() cache.Config {
	return cache.Config{Kinds: s.Kinds, Messages: s.Messages, Old: s.Old}
}

// maxCacheMessages bounds CACHE_MESSAGES: each message event reads the
// channel's list in the commit script.
const maxCacheMessages = 1000

func cacheSettings(c *Config) []setting {
	return []setting{
		{"cache", "CACHE", "", "fleet mode: kinds of the shared state cache in Redis, a comma list of " + cache.KindNames() +
			", or none (default: follows INTENTS: guilds,channels,roles, and emojis, voice_states, members, presences when their intent is on; messages when CACHE_MESSAGES is set)", false,
			bind(func(v string) error {
				k, err := cache.ParseKinds(v)
				if err != nil {
					return err
				}
				c.Cache.Kinds = k
				return nil
			})},
		{"cache-messages", "CACHE_MESSAGES", "0", "fleet mode: messages the cache keeps per channel; 0: none", false, bind(integer(&c.Cache.Messages))},
		{"cache-old", "CACHE_OLD", "false", "fleet mode: update and delete events in the stream carry the cached object as it was (field old)", true, bind(boolean(&c.Cache.Old))},
	}
}

// validateCache checks the cache settings together and derives CACHE from
// INTENTS when it is not set.
func (c *Config) validateCache(bad func(setting, value, reason string) error) error {
	const kinds, msgs = "CACHE (-cache)", "CACHE_MESSAGES (-cache-messages)"
	n := strconv.Itoa(c.Cache.Messages)
	if c.Cache.Messages < 0 || c.Cache.Messages > maxCacheMessages {
		return bad(msgs, n, "must be 0 (no messages) to "+strconv.Itoa(maxCacheMessages))
	}
	if !c.isSet("CACHE") {
		c.Cache.Kinds = cache.DefaultKinds(c.Intents)
		if c.Cache.Messages > 0 {
			if !c.Cache.Kinds.Has(cache.Guilds) {
				return bad(msgs, n, "keeps messages in a cache that INTENTS leaves empty (no GUILDS intent): add GUILDS (1) to INTENTS, or set CACHE_MESSAGES=0")
			}
			c.Cache.Kinds |= cache.Messages
		}
		return nil
	}
	switch has := c.Cache.Kinds.Has(cache.Messages); {
	case has && c.Cache.Messages == 0:
		return bad(kinds, c.Cache.Kinds.String(), "keeps messages but CACHE_MESSAGES is 0: set CACHE_MESSAGES to how many per channel (1-"+strconv.Itoa(maxCacheMessages)+"), or drop messages from CACHE")
	case !has && c.Cache.Messages > 0:
		return bad(msgs, n, "is set but CACHE ("+c.Cache.Kinds.String()+") has no messages: add messages to CACHE, or set CACHE_MESSAGES=0")
	}
	return nil
}

package cache

import (
	"fmt"
	"strings"

	"github.com/shardfleet/shardfleet/pkg/gateway"
)

// Kinds is a set of the kinds of state the cache keeps.
type Kinds uint8

// The kinds (CACHE's words, in this order).
const (
	Guilds Kinds = 1 << iota
	Channels
	Roles
	Emojis // emojis and stickers
	VoiceStates
	Members
	Presences
	Messages
)

var kindNames = []string{"guilds", "channels", "roles", "emojis", "voice_states", "members", "presences", "messages"}

// KindNames lists the valid words of a kind list.
func KindNames() string { return strings.Join(kindNames, ",") }

// Has reports whether every kind of want is in k.
func (k Kinds) Has(want Kinds) bool { return k&want == want }

// String is the comma list of the kinds, "none" when empty.
func (k Kinds) String() string {
	var words []string
	for i, name := range kindNames {
		if k.Has(1 << i) {
			words = append(words, name)
		}
	}
	if len(words) == 0 {
		return "none"
	}
	return strings.Join(words, ",")
}

// ParseKinds reads a comma list of kinds, or "none". Every kind needs guilds
// (a guild's entry is how the cache finds, reconciles and removes its other
// kinds) and messages need channels (a guild's message lists are found
// through its channels).
func ParseKinds(s string) (Kinds, error) {
	s = strings.TrimSpace(s)
	if s == "none" {
		return 0, nil
	}
	var k Kinds
	for word := range strings.SplitSeq(s, ",") {
		i := indexOf(strings.TrimSpace(word))
		if i < 0 {
			return 0, fmt.Errorf("unknown kind %q: want none, or a comma list of %s", strings.TrimSpace(word), KindNames())
		}
		k |= 1 << i
	}
	switch {
	case k != 0 && !k.Has(Guilds):
		return 0, fmt.Errorf("every kind needs guilds (the guild's entry is how the cache finds and removes the rest): add guilds")
	case k.Has(Messages) && !k.Has(Channels):
		return 0, fmt.Errorf("messages need channels (a guild's message lists are found through its channels): add channels")
	}
	return k, nil
}

func indexOf(word string) int {
	for i, name := range kindNames {
		if name == word {
			return i
		}
	}
	return -1
}

// DefaultKinds are the kinds worth keeping with intents: a kind whose
// dispatches the intents do not bring would only ever hold GUILD_CREATE's
// first picture. Messages are never on by default (they are many).
func DefaultKinds(intents gateway.Intents) Kinds {
	if intents&gateway.IntentGuilds == 0 {
		return 0
	}
	k := Guilds | Channels | Roles
	for _, p := range []struct {
		intent gateway.Intents
		kind   Kinds
	}{
		{gateway.IntentGuildExpressions, Emojis},
		{gateway.IntentGuildVoiceStates, VoiceStates},
		{gateway.IntentGuildMembers, Members},
		{gateway.IntentGuildPresences, Presences},
	} {
		if intents&p.intent != 0 {
			k |= p.kind
		}
	}
	return k
}

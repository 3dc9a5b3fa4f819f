package gatewaytest

import (
	"math/rand/v2"
	"slices"
	"strconv"

	"github.com/disgoorg/snowflake/v2"
)

// mutateTries bounds the picks per mutation (a pick fails when its guild is
// unavailable or holds nothing of the kind drawn).
const mutateTries = 32

// Mutate applies n random valid changes to random guilds of the world, each
// sent as the dispatches Discord would (see Change), and returns how many it
// applied (fewer when no guild can take one: none, or all unavailable). It
// draws every kind except guild-leave, guild-unavailable and
// guild-available (tests aim those on purpose), and message changes only
// when World.Messages keeps messages. The same rng seed on the same world
// draws the same changes.
func (s *Server) Mutate(rng *rand.Rand, n int) int {
	applied := 0
	for range n {
		for range mutateTries {
			s.mu.Lock()
			ch, ok := s.randomChange(rng)
			s.mu.Unlock()
			if !ok {
				continue
			}
			if _, err := s.Change(ch); err == nil { // a concurrent change may have made it invalid
				applied++
				break
			}
		}
	}
	return applied
}

// mutateOne is the emit of the MutationsPerSecond generator: one change,
// from a generator of its own.
func (s *Server) mutateOne() func() {
	rng := rand.New(rand.NewPCG(s.cfg.World.Seed, 0x6d75746174696f6e))
	return func() {
		if s.Mutate(rng, 1) == 0 {
			s.log.Debug("steady mutations: no guild can take a change")
		}
	}
}

// SetMutationsPerSecond changes the steady world changes (0 stops them); like
// SetEventsPerSecond, it returns once no change at the old rate is under way.
func (s *Server) SetMutationsPerSecond(rate float64) { s.mutations.setRate(rate) }

// MutationsPerSecond is the current rate of steady world changes.
func (s *Server) MutationsPerSecond() float64 { return s.mutations.current() }

// mutator draws one change of a kind for a guild; false when the guild has
// nothing it could change.
type mutator func(rng *rand.Rand, g snowflake.ID, gs *GuildState) (Change, bool)

var mutators = []mutator{
	func(rng *rand.Rand, _ snowflake.ID, _ *GuildState) (Change, bool) {
		return Change{Kind: ChannelCreate, Fields: Object{"type": float64([]int{chanText, chanVoice, chanCategory}[rng.IntN(3)])}}, true
	},
	pickOne(ChannelUpdate, channels(isGuildChannel), func(rng *rand.Rand, _ *GuildState) Object {
		return Object{"name": "renamed-" + strconv.Itoa(rng.IntN(1000)), "topic": "topic " + strconv.Itoa(rng.IntN(1000))}
	}),
	func(rng *rand.Rand, g snowflake.ID, gs *GuildState) (Change, bool) {
		if countOf(gs.Channels, isGuildChannel) <= 3 { // keep some channels to change
			return Change{}, false
		}
		return pickOne(ChannelDelete, channels(isGuildChannel), nil)(rng, g, gs)
	},
	func(rng *rand.Rand, _ snowflake.ID, gs *GuildState) (Change, bool) {
		parent, ok := pick(rng, gs.Channels, isTextParent)
		return Change{Kind: ThreadCreate, Channel: parent, Fields: Object{}}, ok
	},
	pickOne(ThreadUpdate, channels(isThread), func(rng *rand.Rand, _ *GuildState) Object {
		return Object{"name": "thread-renamed-" + strconv.Itoa(rng.IntN(1000))}
	}),
	pickOne(ThreadDelete, channels(isThread), nil),
	func(rng *rand.Rand, _ snowflake.ID, _ *GuildState) (Change, bool) {
		return Change{Kind: RoleCreate, Fields: Object{"permissions": strconv.FormatUint(rng.Uint64()&(1<<41-1)&^8, 10)}}, true
	},
	pickOne(RoleUpdate, roles, func(rng *rand.Rand, _ *GuildState) Object {
		return Object{"color": float64(rng.IntN(1 << 24)), "hoist": rng.IntN(2) == 0}
	}),
	func(rng *rand.Rand, g snowflake.ID, gs *GuildState) (Change, bool) {
		id, ok := pick(rng, gs.Roles, func(r Object) bool { return r["id"] != g.String() })
		return Change{Kind: RoleDelete, ID: id}, ok
	},
	listMutator(EmojisUpdate, func(gs *GuildState) map[string]Object { return gs.Emojis }),
	listMutator(StickersUpdate, func(gs *GuildState) map[string]Object { return gs.Stickers }),
	func(*rand.Rand, snowflake.ID, *GuildState) (Change, bool) {
		return Change{Kind: MemberAdd, Fields: Object{}}, true
	},
	func(rng *rand.Rand, g snowflake.ID, gs *GuildState) (Change, bool) {
		uid, ok := pick(rng, gs.Members, nil)
		mine := []any{}
		if r, ok := pick(rng, gs.Roles, func(r Object) bool { return r["id"] != g.String() }); ok {
			mine = append(mine, r.String())
		}
		return Change{Kind: MemberUpdate, User: uid, Fields: Object{"nick": "nick-" + strconv.Itoa(rng.IntN(1000)), "roles": mine}}, ok
	},
	func(rng *rand.Rand, _ snowflake.ID, gs *GuildState) (Change, bool) {
		uid, ok := pick(rng, gs.Members, nil)
		return Change{Kind: MemberRemove, User: uid}, ok && len(gs.Members) > 1
	},
	func(rng *rand.Rand, _ snowflake.ID, gs *GuildState) (Change, bool) {
		uid, ok := pick(rng, gs.Members, nil)
		if ok && gs.VoiceStates[uid.String()] != nil && rng.IntN(2) == 0 {
			return Change{Kind: Voice, User: uid}, true // leave
		}
		ch, chOK := pick(rng, gs.Channels, isVoice)
		return Change{Kind: Voice, User: uid, Channel: ch, Fields: Object{"self_mute": rng.IntN(2) == 0}}, ok && chOK
	},
	func(rng *rand.Rand, _ snowflake.ID, gs *GuildState) (Change, bool) {
		uid, ok := pick(rng, gs.Members, nil)
		status := []string{"online", "idle", "dnd"}[rng.IntN(3)]
		return Change{Kind: Presence, User: uid, Fields: Object{"status": status, "client_status": map[string]any{"desktop": status}}}, ok
	},
	func(rng *rand.Rand, _ snowflake.ID, _ *GuildState) (Change, bool) {
		return Change{Kind: GuildUpdate, Fields: Object{"description": "changed " + strconv.Itoa(rng.IntN(1000))}}, true
	},
}

// messageMutators draw message changes (only when the world keeps messages).
var messageMutators = []mutator{
	func(rng *rand.Rand, _ snowflake.ID, gs *GuildState) (Change, bool) {
		ch, ok := pick(rng, gs.Channels, hasMessages)
		author, _ := pick(rng, gs.Members, nil)
		return Change{Kind: MessageCreate, Channel: ch, User: author}, ok
	},
	messageMutator(MessageUpdate, 1),
	messageMutator(MessageDelete, 1),
	messageMutator(MessageDeleteBulk, 3),
}

// randomChange draws one change of a random guild. Needs s.mu.
func (s *Server) randomChange(rng *rand.Rand) (Change, bool) {
	all := len(s.guilds) + len(s.added)
	if all == 0 {
		return Change{}, false
	}
	g := s.guildAt(rng.IntN(all))
	gs, _, err := s.worldGuild(g)
	if err != nil || gs.Unavailable {
		return Change{}, false
	}
	draw := mutators
	if s.cfg.World.Messages > 0 {
		draw = append(slices.Clip(draw), messageMutators...)
	}
	ch, ok := draw[rng.IntN(len(draw))](rng, g, gs)
	ch.Guild = g
	return ch, ok
}

// pick draws the id of a random object of m that ok accepts (nil: any).
func pick(rng *rand.Rand, m map[string]Object, ok func(Object) bool) (snowflake.ID, bool) {
	var ids []string
	for _, id := range sortedKeys(m) {
		if ok == nil || ok(m[id]) {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return 0, false
	}
	id, err := snowflake.Parse(ids[rng.IntN(len(ids))])
	return id, err == nil
}

func countOf(m map[string]Object, ok func(Object) bool) int {
	n := 0
	for _, o := range m {
		if ok(o) {
			n++
		}
	}
	return n
}

func channels(ok func(Object) bool) func(*GuildState) (map[string]Object, func(Object) bool) {
	return func(gs *GuildState) (map[string]Object, func(Object) bool) { return gs.Channels, ok }
}

func roles(gs *GuildState) (map[string]Object, func(Object) bool) { return gs.Roles, nil }

// pickOne draws a change of one existing object (by ID) with fields (nil: none).
func pickOne(kind ChangeKind, of func(*GuildState) (map[string]Object, func(Object) bool),
	fields func(*rand.Rand, *GuildState) Object) mutator {
	return func(rng *rand.Rand, _ snowflake.ID, gs *GuildState) (Change, bool) {
		m, accept := of(gs)
		id, ok := pick(rng, m, accept)
		ch := Change{Kind: kind, ID: id}
		if fields != nil {
			ch.Fields = fields(rng, gs)
		}
		return ch, ok
	}
}

// listMutator adds, renames or removes one emoji or sticker.
func listMutator(kind ChangeKind, of func(*GuildState) map[string]Object) mutator {
	return func(rng *rand.Rand, _ snowflake.ID, gs *GuildState) (Change, bool) {
		id, ok := pick(rng, of(gs), nil)
		switch rng.IntN(3) {
		case 0:
			return Change{Kind: kind, Fields: Object{}}, true
		case 1:
			return Change{Kind: kind, ID: id, Fields: Object{"name": "renamed_" + strconv.Itoa(rng.IntN(1000))}}, ok
		}
		return Change{Kind: kind, IDs: []snowflake.ID{id}}, ok
	}
}

// messageMutator changes up to n kept messages of one channel.
func messageMutator(kind ChangeKind, n int) mutator {
	return func(rng *rand.Rand, _ snowflake.ID, gs *GuildState) (Change, bool) {
		chans := sortedKeys(gs.Messages)
		if len(chans) == 0 {
			return Change{}, false
		}
		chID := chans[rng.IntN(len(chans))]
		msgs := gs.Messages[chID]
		if len(msgs) == 0 {
			return Change{}, false
		}
		ch := Change{Kind: kind}
		ch.Channel, _ = snowflake.Parse(chID)
		for range min(n, len(msgs)) {
			id, _ := msgs[rng.IntN(len(msgs))]["id"].(string)
			sf, _ := snowflake.Parse(id)
			if !slices.Contains(ch.IDs, sf) {
				ch.IDs = append(ch.IDs, sf)
			}
		}
		ch.ID = ch.IDs[0]
		if kind == MessageUpdate {
			ch.Fields = Object{"content": "edited " + strconv.Itoa(rng.IntN(1000))}
		}
		if kind != MessageDeleteBulk {
			ch.IDs = nil
		}
		return ch, true
	}
}

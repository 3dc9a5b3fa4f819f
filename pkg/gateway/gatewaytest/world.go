package gatewaytest

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/disgoorg/snowflake/v2"
)

// maxWorldCount bounds each World count.
const maxWorldCount = 100000

// maxObjectIDs bounds the objects (channels, roles, users, messages...) one
// guild can ever hold: their ids are guild_id + n, which must stay inside
// the guild's millisecond (the low 22 bits, of which the guild uses 12).
const maxObjectIDs = 1<<22 - 4096

// worldGuild is what the fake keeps about a built guild besides its State.
// Guarded by Server.mu.
type worldGuild struct {
	index  int             // guild number (guildAt)
	nextID uint64          // the next object's id is guild id + nextID
	create json.RawMessage // GUILD_CREATE d of the current state; nil after a change
}

// errNotInGuild: a change aimed at a guild the bot is not in.
var errNotInGuild = errors.New("the bot is not in this guild")

// guildIndex finds guild g's number (guildAt). Needs s.mu.
func (s *Server) guildIndex(g snowflake.ID) (int, bool) {
	if i := int(uint64(g)>>22) - guildEpochMs; i >= 0 && i < len(s.guilds) && s.guilds[i] == g {
		return i, true
	}
	if i := slices.Index(s.added, g); i >= 0 {
		return len(s.guilds) + i, true
	}
	return 0, false
}

// worldGuild returns guild g's state, building it the first time. Needs s.mu.
func (s *Server) worldGuild(g snowflake.ID) (*GuildState, *worldGuild, error) {
	if meta := s.worldMeta[g]; meta != nil {
		return s.world.Guilds[g.String()], meta, nil
	}
	i, ok := s.guildIndex(g)
	if !ok || s.left[g] {
		return nil, nil, errNotInGuild
	}
	if err := ApplyDispatch(s.world, "GUILD_CREATE", guildCreateData(i, g)); err != nil {
		return nil, nil, err
	}
	gs, meta := s.world.Guilds[g.String()], &worldGuild{index: i, nextID: 2} // 1 is "general"
	s.worldMeta[g] = meta
	if s.cfg.World.generates() {
		generate(s.cfg.World, g, gs, meta)
	}
	return gs, meta, nil
}

// guildCreateFor is GUILD_CREATE's d for guild number i: the default
// guild's fixed bytes until the guild has a world of its own. Needs s.mu.
func (s *Server) guildCreateFor(i int, g snowflake.ID) json.RawMessage {
	if s.worldMeta[g] == nil && !s.cfg.World.generates() {
		return guildCreateData(i, g)
	}
	gs, meta, err := s.worldGuild(g)
	if err != nil {
		return guildCreateData(i, g) // unreachable: i is one of the bot's guilds
	}
	if meta.create == nil {
		meta.create = encodeGuildCreate(gs)
	}
	return meta.create
}

// encodeGuildCreate builds GUILD_CREATE's d from a guild's state: its
// arrays sorted by id, threads apart from channels.
func encodeGuildCreate(gs *GuildState) json.RawMessage {
	d := maps.Clone(gs.Guild)
	var channels, threads []any
	for _, c := range sortedValues(gs.Channels) {
		if isThread(c.(Object)) {
			threads = append(threads, c)
		} else {
			channels = append(channels, c)
		}
	}
	d["channels"], d["threads"] = nonNil(channels), nonNil(threads)
	d["roles"], d["emojis"], d["stickers"] = sortedValues(gs.Roles), sortedValues(gs.Emojis), sortedValues(gs.Stickers)
	d["members"], d["voice_states"], d["presences"] = sortedValues(gs.Members), sortedValues(gs.VoiceStates), sortedValues(gs.Presences)
	d["stage_instances"], d["guild_scheduled_events"], d["soundboard_sounds"] = []any{}, []any{}, []any{}
	d["unavailable"] = false
	return appendJSON(nil, d)
}

// sortedValues lists m's objects by id (snowflakes of one length sort as strings).
func sortedValues(m map[string]Object) []any {
	keys := slices.SortedFunc(maps.Keys(m), func(a, b string) int {
		if len(a) != len(b) {
			return len(a) - len(b)
		}
		return cmp.Compare(a, b)
	})
	out := make([]any, len(keys))
	for i, k := range keys {
		out[i] = m[k]
	}
	return out
}

// channel types (Discord's numbers).
const (
	chanText         = 0
	chanVoice        = 2
	chanCategory     = 4
	chanAnnouncement = 5
	chanPublicThread = 11
	chanPrivThread   = 12
	chanStage        = 13
	chanForum        = 15
)

func channelType(c Object) int {
	t, _ := c["type"].(float64)
	return int(t)
}

func isThread(c Object) bool {
	t := channelType(c)
	return t == 10 || t == chanPublicThread || t == chanPrivThread
}

// State returns the ground truth: every guild the bot is in, with all its
// kinds, in the cache contract's shape (a copy: the caller may change it).
// It builds the guilds no one has touched yet.
func (s *Server) State() *State {
	s.mu.Lock()
	for i := range len(s.guilds) + len(s.added) {
		if g := s.guildAt(i); !s.left[g] {
			_, _, _ = s.worldGuild(g) // cannot fail: g is one of the bot's guilds
		}
	}
	b := appendJSON(nil, s.world)
	s.mu.Unlock()
	st := NewState(s.cfg.World.Messages)
	if err := json.Unmarshal(b, st); err != nil {
		panic(fmt.Sprintf("gatewaytest: the state does not unmarshal: %v", err))
	}
	return st
}

// worldTx is one change of one guild in progress: it applies each dispatch
// to the world and routes it to the guild's shard. Needs s.mu throughout.
type worldTx struct {
	s    *Server
	g    snowflake.ID
	gs   *GuildState
	meta *worldGuild
	now  time.Time
	slow []*conn
}

// emit applies the dispatch to the world and sends it to every session of
// the guild's shard (buffered for RESUME when disconnected).
func (tx *worldTx) emit(t string, d Object) error {
	raw, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("%s: %w", t, err)
	}
	return tx.emitRaw(t, raw)
}

func (tx *worldTx) emitRaw(t string, raw json.RawMessage) error {
	if err := ApplyDispatch(tx.s.world, t, raw); err != nil {
		return err
	}
	tx.meta.create = nil
	_, tx.slow = tx.s.route(tx.now, jsonString(t), tx.g, raw, tx.slow)
	return nil
}

// newID allocates an id for a new object of the guild.
func (tx *worldTx) newID() (string, error) {
	if tx.meta.nextID >= maxObjectIDs {
		return "", errors.New("the guild has no object ids left")
	}
	id := tx.g + snowflake.ID(tx.meta.nextID)
	tx.meta.nextID++
	return id.String(), nil
}

// withGuild adds guild_id to a copy of obj, as dispatches carry it.
func (tx *worldTx) withGuild(obj Object) Object {
	d := maps.Clone(obj)
	d["guild_id"] = tx.g.String()
	return d
}

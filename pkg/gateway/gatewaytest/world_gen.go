package gatewaytest

import (
	"math/rand/v2"
	"slices"
	"strconv"

	"github.com/disgoorg/snowflake/v2"
)

// generate fills a new guild's state with the World's counts, the same for
// the same Seed and guild number. Ids follow the guild's: guild id + n.
func generate(w World, g snowflake.ID, gs *GuildState, meta *worldGuild) {
	rng := rand.New(rand.NewPCG(w.Seed, uint64(meta.index)))
	next := func() string {
		id := g + snowflake.ID(meta.nextID)
		meta.nextID++
		return id.String()
	}
	texts := []string{(g + 1).String()} // "general"
	var voices []string
	var category any
	for k := 1; k <= w.Channels; k++ {
		id := next()
		var c Object
		switch k % 3 {
		case 1:
			c = newChannel(id, chanCategory, "category-"+strconv.Itoa(k), k, nil)
			category = id
		case 2:
			c = newChannel(id, chanText, "text-"+strconv.Itoa(k), k, category)
			if rng.IntN(4) == 0 { // @everyone may not send here
				c["permission_overwrites"] = []any{map[string]any{"id": g.String(), "type": 0.0, "allow": "0", "deny": "2048"}}
			}
			texts = append(texts, id)
		default:
			c = newChannel(id, chanVoice, "voice-"+strconv.Itoa(k), k, category)
			voices = append(voices, id)
		}
		gs.Channels[id] = c
	}
	for k := range w.Threads {
		id := next()
		gs.Channels[id] = newThread(id, "thread-"+strconv.Itoa(k), texts[rng.IntN(len(texts))])
	}
	var roles []string
	for k := 1; k <= w.Roles; k++ {
		id := next()
		perms := rng.Uint64() & (1<<41 - 1) &^ 8 // documented bits, without ADMINISTRATOR...
		if k == 1 {
			perms |= 8 // ...but for the first role
		}
		gs.Roles[id] = newRole(id, "role-"+strconv.Itoa(k), k, perms)
		roles = append(roles, id)
	}
	for k := range w.Emojis {
		id := next()
		gs.Emojis[id] = newEmoji(id, "emoji_"+strconv.Itoa(k), k%5 == 0)
	}
	for k := range w.Stickers {
		id := next()
		gs.Stickers[id] = newSticker(id, "sticker-"+strconv.Itoa(k))
	}
	statuses := []string{"online", "idle", "dnd"}
	for k := range w.Members {
		uid := next()
		mine := []any{}
		for range rng.IntN(3) {
			if len(roles) > 0 {
				if r := roles[rng.IntN(len(roles))]; !slices.Contains(mine, any(r)) {
					mine = append(mine, r)
				}
			}
		}
		gs.Members[uid] = newMember(newUser(uid), mine)
		if k < w.VoiceStates {
			gs.VoiceStates[uid] = newVoiceState(uid, voices[rng.IntN(len(voices))])
		}
		if k < w.Presences {
			gs.Presences[uid] = newPresence(uid, statuses[rng.IntN(len(statuses))])
		}
	}
	if w.Members > 0 {
		gs.Guild["member_count"] = float64(w.Members)
		gs.Guild["large"] = w.Members > 50 // the default large_threshold
	}
}

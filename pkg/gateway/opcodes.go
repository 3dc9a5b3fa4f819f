package gateway

// Opcode is a gateway opcode (reference: Discord's opcodes-and-status-codes).
type Opcode int

// Gateway opcodes.
const (
	OpDispatch                Opcode = 0
	OpHeartbeat               Opcode = 1
	OpIdentify                Opcode = 2
	OpPresenceUpdate          Opcode = 3
	OpVoiceStateUpdate        Opcode = 4
	OpResume                  Opcode = 6
	OpReconnect               Opcode = 7
	OpRequestGuildMembers     Opcode = 8
	OpInvalidSession          Opcode = 9
	OpHello                   Opcode = 10
	OpHeartbeatACK            Opcode = 11
	OpRequestSoundboardSounds Opcode = 31
	OpRequestChannelInfo      Opcode = 43
)

// Status is where a connection is in its lifecycle.
type Status int

// Connection statuses, in lifecycle order.
const (
	StatusUnconnected Status = iota
	StatusConnecting
	StatusWaitingForHello
	StatusIdentifying
	StatusResuming
	StatusWaitingForReady
	StatusReady
	StatusDisconnected
	// StatusStopped: a fatal close; the connection will not reconnect by itself.
	StatusStopped
)

var statusNames = [...]string{"unconnected", "connecting", "waiting_for_hello", "identifying",
	"resuming", "waiting_for_ready", "ready", "disconnected", "stopped"}

func (s Status) String() string {
	if s < 0 || int(s) >= len(statusNames) {
		return "unknown"
	}
	return statusNames[s]
}

// IsConnected reports whether a websocket is up (from HELLO to READY, resuming included).
func (s Status) IsConnected() bool {
	return s >= StatusWaitingForHello && s <= StatusReady
}

// Intents is the bit set sent in IDENTIFY.
type Intents int64

// Intent bits.
const (
	IntentGuilds                      Intents = 1 << 0
	IntentGuildMembers                Intents = 1 << 1 // privileged
	IntentGuildModeration             Intents = 1 << 2
	IntentGuildExpressions            Intents = 1 << 3
	IntentGuildIntegrations           Intents = 1 << 4
	IntentGuildWebhooks               Intents = 1 << 5
	IntentGuildInvites                Intents = 1 << 6
	IntentGuildVoiceStates            Intents = 1 << 7
	IntentGuildPresences              Intents = 1 << 8 // privileged
	IntentGuildMessages               Intents = 1 << 9
	IntentGuildMessageReactions       Intents = 1 << 10
	IntentGuildMessageTyping          Intents = 1 << 11
	IntentDirectMessages              Intents = 1 << 12
	IntentDirectMessageReactions      Intents = 1 << 13
	IntentDirectMessageTyping         Intents = 1 << 14
	IntentMessageContent              Intents = 1 << 15 // privileged
	IntentGuildScheduledEvents        Intents = 1 << 16
	IntentAutoModerationConfiguration Intents = 1 << 20
	IntentAutoModerationExecution     Intents = 1 << 21
	IntentGuildMessagePolls           Intents = 1 << 24
	IntentDirectMessagePolls          Intents = 1 << 25

	// IntentsPrivileged are the bits a bot must have enabled in the developer portal.
	IntentsPrivileged = IntentGuildMembers | IntentGuildPresences | IntentMessageContent
	// IntentsAll is every documented bit.
	IntentsAll = IntentGuilds | IntentGuildMembers | IntentGuildModeration | IntentGuildExpressions |
		IntentGuildIntegrations | IntentGuildWebhooks | IntentGuildInvites | IntentGuildVoiceStates |
		IntentGuildPresences | IntentGuildMessages | IntentGuildMessageReactions | IntentGuildMessageTyping |
		IntentDirectMessages | IntentDirectMessageReactions | IntentDirectMessageTyping | IntentMessageContent |
		IntentGuildScheduledEvents | IntentAutoModerationConfiguration | IntentAutoModerationExecution |
		IntentGuildMessagePolls | IntentDirectMessagePolls
	// IntentsNonPrivileged is IntentsAll without the privileged bits.
	IntentsNonPrivileged = IntentsAll &^ IntentsPrivileged
)

// Compression selects how the server compresses what it sends.
type Compression string

// Compression modes.
const (
	// CompressionNone: plain JSON text frames.
	CompressionNone Compression = ""
	// CompressionZlibStream: transport compression, one zlib context per connection.
	CompressionZlibStream Compression = "zlib-stream"
	// CompressionZstdStream: transport compression, one zstd context per connection.
	CompressionZstdStream Compression = "zstd-stream"
	// CompressionZlibPayload: IDENTIFY `compress: true`; some payloads come zlib-compressed one by one.
	CompressionZlibPayload Compression = "zlib-payload"
)

package gateway

// Settings for bad messages from the server (frames.go). The fields live in
// Config:
//
//   - FrameFaultHook is told of every message the gateway refused or
//     recovered from, by kind (for a counter). Default: none.
//   - UnreadableRetries is how many RESUMEs in a row may find the message at
//     the same seq of the same session unreadable (over ReadLimit, compressed
//     or not, or undecodable) before the session is given up for a fresh
//     IDENTIFY: a replay sends the same message again, so resuming forever
//     would loop. 1-10; default DefaultUnreadableRetries.

// DefaultUnreadableRetries is Config.UnreadableRetries's default: a message
// that a connection failed to read gets three more connections' worth of
// tries (a transient failure rarely hits the same seq twice).
const DefaultUnreadableRetries = 3

// maxUnreadableRetries bounds UnreadableRetries: every retry is a connection
// that reads the whole bad message again.
const maxUnreadableRetries = 10

// WithFrameFaultHook sets the hook told of every refused or recovered message.
func WithFrameFaultHook(hook FrameFaultHook) ConfigOpt {
	return func(c *Config) { c.FrameFaultHook = hook }
}

// WithUnreadableRetries sets how many RESUMEs may find the same message
// unreadable before the session is given up (1-10).
func WithUnreadableRetries(n int) ConfigOpt { return func(c *Config) { c.UnreadableRetries = n } }

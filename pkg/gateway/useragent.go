package gateway

// UserAgent is sent on the websocket handshake and on every REST call of the
// project (Discord asks bots for "DiscordBot (url, version)").
const UserAgent = "DiscordBot (https://github.com/shardfleet/shardfleet, 0.1)"

// Package faultproxy is a TCP proxy for tests that injects the network faults
// a fleet must survive between a client and a server (typically workers and
// redis-server): added latency, a black hole (bytes are held, not delivered,
// until the fault heals, as a partition does to a TCP stream), connection
// resets (RST), refused connections, and lost replies (DropReplies: a
// request reaches the server, which acts on it, and the client's connection
// is reset before the answer arrives, so a client that retries runs the
// command twice).
//
// A Proxy forwards every accepted connection to one upstream address. Faults
// apply to every connection, open or new, the moment they are set; Heal
// returns to plain forwarding and releases held bytes in order. Close stops
// the listener, resets every connection and waits for every goroutine the
// proxy started.
//
// It is for tests and chaos runs on loopback. It is not a production proxy:
// it has no TLS, no per-direction faults other than lost replies, no
// bandwidth shaping and no authentication.
package faultproxy

// Package failover builds the worker's Redis Sentinel client so that it leaves
// an old master as soon as any one sentinel reports the switch.
//
// go-redis's failover client asks one sentinel for the master and listens to
// that sentinel alone. A sentinel that did not lead a failover hears of it
// from the leader's hello messages, up to two seconds later, and until then
// it names the old master, which keeps taking writes until the sentinels
// demote it. Workers that happened to pick different sentinels then write to
// different masters: each side sees the other side's fleet memberships lapse
// and takes its shards, and the commits of the side on the old master are
// lost with the sessions it started there (one CI run of
// TestSentinelPlannedFailoverLosesNothing lost 1,282 committed events so).
//
// The client here is go-redis's failover client with a dial hook: the watch
// subscribes to +switch-master on every sentinel it is given, asks the
// sentinel that reported a switch for the master and its config epoch, and
// keeps the master of the highest epoch any sentinel reported. It dials that
// master whatever go-redis's own sentinel says, and closes the
// connections it dialed to any other server, so the pools redial. All
// workers then move within milliseconds of the first sentinel's report,
// rather than when their own sentinel catches up.
//
// It is for the data connections of a Sentinel deployment only: a single
// node or a Cluster needs none of it, and it does not choose replicas.
package failover

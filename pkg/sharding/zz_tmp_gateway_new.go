package sharding

// TEMPORARY until pkg/gateway's New lands: then this file goes and
// defaultGatewayCreateFunc becomes gateway.New.

import "github.com/shardfleet/shardfleet/pkg/gateway"

var defaultGatewayCreateFunc gateway.CreateFunc = func(string, gateway.EventHandlerFunc, ...gateway.ConfigOpt) gateway.Gateway {
	panic("gateway.New not implemented yet")
}

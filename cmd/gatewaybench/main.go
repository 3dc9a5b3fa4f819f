package main

import (
	"fmt"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: gatewaybench flood|idle|instructions|serve|client|idleclient [flags]")
		os.Exit(2)
	}
	cmds := map[string]func([]string) error{
		"flood": runFlood, "idle": runIdle, "instructions": runInstructions,
		"serve": serve, "client": floodClient, "idleclient": idleClient,
	}
	run, ok := cmds[os.Args[1]]
	if !ok {
		fmt.Fprintf(os.Stderr, "gatewaybench: unknown command %q (want flood, idle, instructions, serve, client or idleclient)\n", os.Args[1])
		os.Exit(2)
	}
	if err := run(os.Args[2:]); err != nil {
		fmt.Fprintln(os.Stderr, "gatewaybench:", err)
		os.Exit(1)
	}
}

package main

import (
	"errors"
	"fmt"
	"os"
)

func main() {
	os.Exit(run(os.Args[1:]))
}

// run is main without os.Exit, so deferred cleanups run. It returns the exit code.
func run(args []string) int {
	cfg, err := parseConfig(args, osEnv, os.Stderr)
	if errors.Is(err, ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "worker:", err)
		return 2
	}
	_ = cfg
	return 0
}

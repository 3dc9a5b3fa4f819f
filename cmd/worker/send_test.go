package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestSendBadArgs: `worker send` refuses what it cannot send before it
// reaches Redis, naming the flag to fix; exit 2.
func TestSendBadArgs(t *testing.T) {
	for _, tc := range []struct {
		args []string
		env  []string
		want string
	}{
		{[]string{"-op", "3", "-d", "{}"}, nil, "REDIS_URL (-redis-url): required"},
		{[]string{"-all", "-guild", "1", "-op", "3"}, []string{"REDIS_URL", "redis://x:1"}, "config: -guild, -shard/-count, -all: give only one of them"},
		{[]string{"-shard", "4", "-count", "4", "-op", "3"}, []string{"REDIS_URL", "redis://x:1"}, `config: -shard/-count="4/4": want 0 <= shard < count`},
		{[]string{"-all", "-op", "3", "-deadline", "-1s"}, []string{"REDIS_URL", "redis://x:1"}, `config: -deadline="-1s": must not be negative`},
		{[]string{"-all", "-op", "3", "-wait", "0s"}, []string{"REDIS_URL", "redis://x:1"}, `config: -wait="0s": must be positive`},
		{[]string{"-all", "-op", "3"}, []string{"REDIS_URL", "redis://x:1", "KEY_PREFIX", "{a}{b}"}, "KEY_PREFIX (-key-prefix)"},
	} {
		var out, errOut bytes.Buffer
		code := run(append([]string{"send"}, tc.args...), envOf(tc.env...), &out, &errOut)
		if code != exitBadArgs || !strings.Contains(errOut.String(), tc.want) {
			t.Errorf("send %v: exit %d, stderr %q; want exit %d naming %q", tc.args, code, errOut.String(), exitBadArgs, tc.want)
		}
	}
}

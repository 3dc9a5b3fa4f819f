// Package testutil holds the small helpers that the tests of several
// packages share. It is not for production code.
package testutil

import (
	"bytes"
	"strings"
	"sync"
)

// LogBuffer collects what loggers and child processes write from many
// goroutines, for a test that reads it (String) while they still write.
type LogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p.
func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String returns everything written so far.
func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// HasLine reports whether one line of text holds every needle.
func HasLine(text string, needles ...string) bool {
lines:
	for _, l := range strings.Split(text, "\n") {
		for _, n := range needles {
			if !strings.Contains(l, n) {
				continue lines
			}
		}
		return true
	}
	return false
}

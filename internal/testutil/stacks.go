package testutil

import "runtime"

// AllStacks returns the stack traces of every goroutine (runtime.Stack with
// all set), in a buffer grown until they fit: for tests that count the
// goroutines running some function.
func AllStacks() []byte {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return buf[:n]
		}
		buf = make([]byte, 2*len(buf))
	}
}

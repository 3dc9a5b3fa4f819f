package worker

// onFreshStack runs f on a goroutine of its own and waits for it. A
// goroutine that parks between rounds of Redis calls keeps the stack its
// deepest round grew (go-redis's call path takes it from 4 KiB to 8-16 KiB)
// until a GC shrinks it, one halving per collection, and an idle fleet worker
// collects rarely; run on a goroutine that exits, the round's stack is freed
// when the round ends. Per round it costs one goroutine start. Measured with
// BenchmarkScale2000's worker_stack_KiB/shard (docs/benchmarks.md).
func onFreshStack(f func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
	}()
	<-done
}

package outboxtest

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/outbox"
	"github.com/stockbus/stockbus/service"
)

// BenchFactory returns a new, empty store whose commits write the outbox, as both ports; b's
// cleanup closes it.
type BenchFactory func(b *testing.B) (service.Store, outbox.Store)

// BenchmarkRelay times one relay draining a store's outbox, per row: b.N rows are committed
// first (not timed), then the relay claims, sends to a sender that does nothing, and marks them
// done, on the system clock. It runs once per claim size: the simulator's 16 and DefaultBatch.
// What it measures is the port's cost per row (claims and marks), which is what a relay pays on
// top of its sender's. The untimed commits cost more than the timed drain on a real store, so run
// it for a fixed count of rows: -benchtime 2000x.
func BenchmarkRelay(b *testing.B, open BenchFactory) {
	for _, batch := range []int{16, outbox.DefaultBatch} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			store, ob := open(b)
			Orders(b, store, "HOT", b.N, b.N)
			var marked atomic.Int64
			all := make(chan struct{})
			hook := func(_ context.Context, at outbox.Point, _ string, _ outbox.Row) error {
				if at == outbox.Marked && marked.Add(1) == int64(b.N) {
					close(all)
				}
				return nil
			}
			send := func(context.Context, domain.Event) error { return nil }
			relay, err := outbox.New("bench", ob, send, outbox.WithBatch(batch), outbox.WithHook(hook))
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			b.ReportAllocs()
			b.ResetTimer()
			go func() { done <- relay.Run(ctx) }()
			<-all
			b.StopTimer()
			cancel()
			if err := <-done; err != nil {
				b.Fatal(err)
			}
			if s := relay.Stats(); s.Sent != b.N || s.StoreErrors != 0 {
				b.Fatalf("relay stats %+v, want %d sent and no store error", s, b.N)
			}
		})
	}
}

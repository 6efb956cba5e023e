package nats_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/nats"
	"github.com/stockbus/stockbus/service"
)

// BenchmarkPublish measures one synchronous Publish (send, store in a file-backed stream, wait for
// the acknowledgement) against the embedded server on loopback: what a request pays for publishing
// Allocated inline. It reports the median and the 99th percentile of the single publishes beside
// the mean that ns/op is.
func BenchmarkPublish(b *testing.B) {
	brk := startBroker(b, nats.Config{})
	ctx := b.Context()
	lat := make([]time.Duration, 0, b.N)
	i := 0
	for b.Loop() {
		e := domain.Allocated{Meta: domain.Meta{ID: fmt.Sprintf("bench-%d", i)}, OrderID: "o", SKU: "LAMP", Qty: 1, BatchRef: "b1"}
		i++
		start := time.Now()
		if err := brk.pub.Publish(ctx, service.AllocatedChannel, e); err != nil {
			b.Fatalf("Publish(%s): %v", e.ID, err)
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(lat[len(lat)*99/100].Nanoseconds()), "p99-ns")
}

package nats_test

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/fakes"
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

// BenchmarkAllocate measures service.Allocate end to end on the fake store, once with the fake
// publisher and once with the NATS publisher on the embedded server: what publishing Allocated to
// a real broker adds to a synchronous request. It reports the median of the single calls.
func BenchmarkAllocate(b *testing.B) {
	rows := []struct {
		name      string
		publisher func(b *testing.B) service.Publisher
	}{
		{"publisher=fake", func(*testing.B) service.Publisher { return fakes.NewPublisher() }},
		{"publisher=nats", func(b *testing.B) service.Publisher { return startBroker(b, nats.Config{}).pub }},
	}
	for _, r := range rows {
		b.Run(r.name, func(b *testing.B) {
			ctx := b.Context()
			uow := service.Bootstrap(fakes.NewStore(), fakes.NewMailer(), service.WithPublisher(r.publisher(b)))
			if err := service.AddBatch(ctx, uow, "b1", "LAMP", 1_000_000_000, time.Time{}); err != nil {
				b.Fatal(err)
			}
			lat := make([]time.Duration, 0, b.N)
			i := 0
			for b.Loop() {
				i++
				start := time.Now()
				if _, err := service.Allocate(ctx, uow, fmt.Sprintf("o%d", i), "LAMP", 1); err != nil {
					b.Fatalf("Allocate(o%d): %v", i, err)
				}
				lat = append(lat, time.Since(start))
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Nanoseconds()), "p50-ns")
		})
	}
}

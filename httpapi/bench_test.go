package httpapi_test

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/fakes"
	"github.com/stockbus/stockbus/httpapi"
	"github.com/stockbus/stockbus/service"
)

// BenchmarkAllocate is one allocation of a new order on the fakes, called in the process
// (service.Allocate) and over HTTP on loopback (Client.Allocate to a Handler, one keep-alive
// connection). Both publish the Allocated event to the fake publisher. The ratio of the two is
// what the HTTP hop costs the book's entry point.
func BenchmarkAllocate(b *testing.B) {
	setup := func(b *testing.B) *service.Transactor {
		uow, _, _ := fakes.New(service.WithPublisher(fakes.NewPublisher()))
		if err := service.AddBatch(context.Background(), uow, "batch", "HOT", domain.MaxQty, time.Time{}); err != nil {
			b.Fatal(err)
		}
		return uow
	}
	b.Run("in-process", func(b *testing.B) {
		uow := setup(b)
		ctx := context.Background()
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			if _, err := service.Allocate(ctx, uow, "o"+strconv.Itoa(i), "HOT", 1); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("http", func(b *testing.B) {
		uow := setup(b)
		srv := httptest.NewServer(httpapi.NewHandler(uow, httpapi.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil)))))
		defer srv.Close()
		c, err := httpapi.NewClient(srv.URL)
		if err != nil {
			b.Fatal(err)
		}
		defer c.CloseIdleConnections()
		ctx := context.Background()
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			i++
			if _, err := c.Allocate(ctx, "o"+strconv.Itoa(i), "HOT", 1); err != nil {
				b.Fatal(err)
			}
		}
	})
}

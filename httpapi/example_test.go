package httpapi_test

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"time"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/fakes"
	"github.com/stockbus/stockbus/httpapi"
	"github.com/stockbus/stockbus/service"
)

// The book's out-of-stock scenario over HTTP: the server on the fakes, the client giving back the
// service layer's errors.
func Example() {
	uow, _, mailer := fakes.New()
	srv := httptest.NewServer(httpapi.NewHandler(uow))
	defer srv.Close()
	c, err := httpapi.NewClient(srv.URL)
	if err != nil {
		panic(err)
	}
	defer c.CloseIdleConnections()

	ctx := context.Background()
	if err := c.AddBatch(ctx, "batch1", "POPULAR-CURTAINS", 9, time.Time{}); err != nil {
		panic(err)
	}
	_, err = c.Allocate(ctx, "o1", "POPULAR-CURTAINS", 10)
	fmt.Println(err)
	fmt.Println(errors.Is(err, domain.ErrOutOfStock), mailer.To(service.StockAddress))
	_, err = c.Allocate(ctx, "o2", "NONEXISTENT", 1)
	fmt.Println(errors.Is(err, service.ErrInvalidSKU))
	ref, err := c.Allocate(ctx, "o3", "POPULAR-CURTAINS", 9)
	fmt.Println(ref, err)
	// Output:
	// allocate: 400 Bad Request: Out of stock for sku POPULAR-CURTAINS
	// true [Out of stock for POPULAR-CURTAINS]
	// true
	// batch1 <nil>
}

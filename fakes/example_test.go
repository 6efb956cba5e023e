package fakes_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/fakes"
	"github.com/stockbus/stockbus/service"
)

// The whole stack on fakes takes one line; the store and the mailer it returns capture everything.
func Example() {
	uow, store, mailer := fakes.New()

	ctx := context.Background()
	_ = service.AddBatch(ctx, uow, "batch-1", "POPULAR-CURTAINS", 9, time.Time{})
	_, err := service.Allocate(ctx, uow, "order-1", "POPULAR-CURTAINS", 10)

	fmt.Println(errors.Is(err, domain.ErrOutOfStock))
	fmt.Println(mailer.To("stock@made.com"))
	p, _ := store.Product("POPULAR-CURTAINS")
	fmt.Println(p.Batches[0].AvailableQuantity())
	// Output:
	// true
	// [Out of stock for POPULAR-CURTAINS]
	// 9
}

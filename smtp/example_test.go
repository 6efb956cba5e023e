package smtp_test

import (
	"context"
	"fmt"
	"time"

	"github.com/stockbus/stockbus/fakes"
	"github.com/stockbus/stockbus/service"
	"github.com/stockbus/stockbus/smtp"
	"github.com/stockbus/stockbus/smtp/smtptest"
)

// The book's out-of-stock scenario, with the notice sent over SMTP to the in-process test
// server, and transient failures retried.
func Example() {
	srv, err := smtptest.Start(smtptest.Config{Plan: smtptest.Sequence(smtptest.Fault{Reply: smtptest.Transient})})
	if err != nil {
		panic(err)
	}
	defer srv.Close()
	m, err := smtp.New(smtp.Config{Addr: srv.Addr(), From: "stockbus@example.com", SendTimeout: 10 * time.Second})
	if err != nil {
		panic(err)
	}
	retry := service.Retry(service.RetryPolicy{Attempts: 3, Base: time.Millisecond, Retryable: service.MailRetryable})
	uow := service.Bootstrap(fakes.NewStore(), m, service.WithBusOptions(service.WithMiddleware(retry)))

	ctx := context.Background()
	if err := service.AddBatch(ctx, uow, "batch-1", "POPULAR-CURTAINS", 9, time.Time{}); err != nil {
		panic(err)
	}
	_, err = service.Allocate(ctx, uow, "order-1", "POPULAR-CURTAINS", 10)
	fmt.Println("allocate:", err)
	for _, msg := range srv.Messages() {
		parsed, _ := msg.Parse()
		fmt.Println(msg.Outcome, msg.To, parsed.Header.Get("Subject"))
	}
	// Output:
	// allocate: allocate order "order-1": out of stock for POPULAR-CURTAINS
	// Refused [stock@made.com] Out of stock for POPULAR-CURTAINS
	// Delivered [stock@made.com] Out of stock for POPULAR-CURTAINS
}

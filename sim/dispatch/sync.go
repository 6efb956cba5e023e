package dispatch

import (
	"context"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/fakes"
	"github.com/stockbus/stockbus/service"
)

// syncStrategy is the book's: the bus runs inside the request, on the worker's goroutine.
type syncStrategy struct {
	h     Host
	lives int
}

var _ Strategy = (*syncStrategy)(nil)

func newSync(Options) Strategy { return &syncStrategy{} }

// Promise, per way out: every event mailed or published when nothing fails; a crash between
// commit and dispatch, or a failed send, loses it. At most once, mail and publication: each
// handler runs once per delivery, and nothing sends again.
func (s *syncStrategy) Promise() Promise {
	return Promise{Delivered: true, NoDuplicate: true, NoDuplicatePublish: true}
}

// Durable is false: the events live on the worker's stack until the bus has handled them.
func (s *syncStrategy) Durable() bool { return false }

// MailerOptions is none: the mailer need not de-duplicate.
func (s *syncStrategy) MailerOptions() []fakes.MailerOption { return nil }

// Middleware is none: each handler runs once.
func (s *syncStrategy) Middleware() []service.Middleware { return nil }

// Start starts no goroutine: it only counts the life and keeps the first life's host.
func (s *syncStrategy) Start(_ context.Context, h Host) error {
	if s.lives == 0 { // later lives start while workers read s.h
		s.h = h
	}
	s.lives++
	return nil
}

// Dispatch delivers the events one by one on the worker's goroutine, and stops at the first
// delivery that fails.
func (s *syncStrategy) Dispatch(ctx context.Context, events []domain.Event) error {
	for _, e := range events {
		if err := s.h.Deliver(ctx, e); err != nil {
			return err
		}
	}
	return nil
}

// Stop has nothing to wait for: every event was delivered inside its request.
func (s *syncStrategy) Stop() {}

// Stats reports the lives alone.
func (s *syncStrategy) Stats() Stats { return Stats{Lives: s.lives} }

package dispatch_test

import (
	"context"
	"fmt"
	"slices"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/fakes"
	"github.com/stockbus/stockbus/service"
	"github.com/stockbus/stockbus/sim/dispatch"
	"github.com/stockbus/stockbus/sim/faults"
)

// discard is a strategy that discards every event it is handed and so promises nothing: the
// smallest strategy there is. A real one is a file of this package, registered in registry.go;
// sim's ExampleRun_addAStrategy runs this one through sim.Run.
type discard struct {
	h     dispatch.Host
	lives int
}

var _ dispatch.Strategy = (*discard)(nil)

func (s *discard) Promise() dispatch.Promise           { return dispatch.Promise{} }
func (s *discard) Durable() bool                       { return false }
func (s *discard) MailerOptions() []fakes.MailerOption { return nil }
func (s *discard) Middleware() []service.Middleware    { return nil }
func (s *discard) Stop()                               {}
func (s *discard) Stats() dispatch.Stats               { return dispatch.Stats{Lives: s.lives} }

// Start is called again after every crash; discard has no goroutine to start.
func (s *discard) Start(_ context.Context, h dispatch.Host) error {
	if s.lives == 0 {
		s.h = h
	}
	s.lives++
	return nil
}

// Dispatch records every event as discarded, on the worker's goroutine.
func (s *discard) Dispatch(ctx context.Context, events []domain.Event) error {
	for _, e := range events {
		if !s.h.Discarded(ctx, e) {
			return dispatch.ErrDied
		}
	}
	return nil
}

// printHost is a Host that prints what a strategy asks of the run.
type printHost struct{ store *fakes.Store }

func (printHost) Actor(ctx context.Context, name string) context.Context { return ctx }
func (printHost) Deliver(_ context.Context, e domain.Event) error {
	fmt.Println("deliver", e.Identity().ID)
	return nil
}
func (printHost) Discarded(_ context.Context, e domain.Event) bool {
	fmt.Println("discarded", e.Identity().ID)
	return true
}
func (printHost) Abandoned(_ context.Context, e domain.Event) {
	fmt.Println("abandoned", e.Identity().ID)
}
func (h printHost) Store() dispatch.Store                  { return h.store }
func (printHost) Crash(context.Context, faults.Point) bool { return false }
func (printHost) Alive(context.Context) bool               { return true }
func (printHost) Step(_ context.Context, fn func()) bool   { fn(); return true }
func (printHost) Marked(...string)                         {}

// A strategy is registered by name and made once per run with the run's Options; the run starts
// it, hands it each commit's events and stops it. Here the host only prints what discard does.
func Example_addAStrategy() {
	if err := dispatch.Register("discard", func(dispatch.Options) dispatch.Strategy { return &discard{} }); err != nil {
		fmt.Println(err)
		return
	}
	s, err := dispatch.New("discard", dispatch.Options{Seed: 42})
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx := context.Background()
	if err := s.Start(ctx, printHost{fakes.NewStore()}); err != nil {
		fmt.Println(err)
		return
	}
	err = s.Dispatch(ctx, []domain.Event{
		domain.Allocated{Meta: domain.Meta{ID: "e0-1"}, OrderID: "o1", SKU: "LAMP", Qty: 1, BatchRef: "b1"},
		domain.OutOfStock{Meta: domain.Meta{ID: "e0-2"}, SKU: "LAMP", OrderID: "o2", Qty: 9},
	})
	s.Stop()
	fmt.Printf("dispatch error %v; promise %s; lives %d; registered %t\n",
		err, s.Promise(), s.Stats().Lives, slices.Contains(dispatch.Names(), "discard"))
	// Output:
	// discarded e0-1
	// discarded e0-2
	// dispatch error <nil>; promise nothing; lives 1; registered true
}

// The strategies this package registers, each made with a run's options, and what each promises.
func ExampleNew() {
	for _, name := range []string{dispatch.Async, dispatch.Outbox, dispatch.Sync, dispatch.SyncRetry} {
		s, err := dispatch.New(name, dispatch.Options{Handlers: 1, Queue: 1, Relays: 1, Dedup: true})
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Printf("%s: %s\n", name, s.Promise())
	}
	// Output:
	// async: at-most-once + delivered when nothing fails
	// outbox: at-least-once + at-most-once (mail)
	// sync: at-most-once + delivered when nothing fails
	// sync-retry: at-most-once + delivered when nothing fails
}

package sim_test

import (
	"context"
	"fmt"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/fakes"
	"github.com/stockbus/stockbus/service"
	"github.com/stockbus/stockbus/sim"
	"github.com/stockbus/stockbus/sim/dispatch"
)

// discard is a strategy that discards every event it is handed and so promises nothing. A real
// strategy is a file of package dispatch, registered in its registry.go (see
// dispatch.Example_addAStrategy, which drives this one without a run).
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

func (s *discard) Start(_ context.Context, h dispatch.Host) error {
	if s.lives == 0 {
		s.h = h
	}
	s.lives++
	return nil
}

func (s *discard) Dispatch(ctx context.Context, events []domain.Event) error {
	for _, e := range events {
		if !s.h.Discarded(ctx, e) {
			return dispatch.ErrDied
		}
	}
	return nil
}

// A strategy registered with package dispatch is one sim.Run runs by its name, on the same plan
// and stack as the others, and judges by its own promise: here every committed event is
// discarded, nothing is mailed or published, and since discard promises nothing the invariants
// hold. The run's checks that need no promise (no batch over-allocated, no mail for an event
// that never committed) hold it all the same.
func ExampleRun_addAStrategy() {
	if err := dispatch.Register("discard", func(dispatch.Options) dispatch.Strategy { return &discard{} }); err != nil {
		fmt.Println(err)
		return
	}
	cfg := sim.HotSKU()
	cfg.Strategy, cfg.Mailer = "discard", sim.FixedLatency(0)
	r, err := sim.Run(context.Background(), cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	a := r.Accounting
	fmt.Printf("allocated %d, out of stock %d; events committed %d, discarded %d, lost %d; mails %d, publications %d\n",
		r.Counts.Allocated, r.Counts.OutOfStock, a.Committed, a.Discarded, a.Lost, len(r.History.Mails), len(r.History.Published))
	fmt.Printf("promise %s; invariants ok %t\n", r.Promise, r.OK)
	// Output:
	// allocated 500, out of stock 500; events committed 1000, discarded 1000, lost 0; mails 0, publications 0
	// promise nothing; invariants ok true
}

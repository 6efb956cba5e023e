package sim

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/fakes"
)

// Strategy is what happens to events after the unit of work commits them. The run calls Start
// once before the first order, Dispatch on a worker's goroutine inside each request whose commit
// carried events (its time is the request's dispatch time), and Stop once after the last order.
//
// A strategy never calls the mailer itself: it hands events to Host.Deliver, which runs the bus
// and records every send against the goroutine's own log, so the history stays outside the code
// under test. To add a strategy, write one and register it in strategies.
type Strategy interface {
	// Promise states what the strategy guarantees about mails when nothing fails.
	Promise() Promise
	// MailerOptions are the options the strategy needs on the mailer (the outbox de-duplicates).
	MailerOptions() []fakes.MailerOption
	// Start starts the strategy's goroutines. ctx ends when the run is interrupted: goroutines
	// must then stop at once, leaving what they hold undelivered.
	Start(ctx context.Context, h Host) error
	// Dispatch hands over the events one commit carried. ctx is the worker's.
	Dispatch(ctx context.Context, events []domain.Event) error
	// Stop waits until every event handed over has been delivered, or until the ctx given to
	// Start ends, and then until every goroutine of the strategy has returned.
	Stop()
	// Stats reports what the strategy saw; it is called after Stop.
	Stats() StrategyStats
}

// Host is the run, as a strategy sees it.
type Host interface {
	// Actor returns the context of a new goroutine of the strategy, named like "h0": what it
	// sends is recorded in its own log under that name, and fault points know who they hit.
	Actor(ctx context.Context, name string) context.Context
	// Deliver handles the event on the bus (which mails it) on behalf of the actor in ctx.
	Deliver(ctx context.Context, e domain.Event) error
	// Discarded records, on the worker's goroutine (ctx is Dispatch's), that a committed event
	// was dropped on purpose and will never be mailed.
	Discarded(ctx context.Context, e domain.Event)
	// Abandoned records, on the worker's goroutine, that a committed event was never handed over
	// because the run was stopped first.
	Abandoned(ctx context.Context, e domain.Event)
	// Store is the run's store.
	Store() *fakes.Store
	// Crash reports whether the fault plan crashes the actor in ctx at p. Without faults, never.
	Crash(ctx context.Context, p Point) bool
}

// StrategyStats is what a strategy saw during a run. Fields that do not apply are zero.
type StrategyStats struct {
	MaxDepth      int           `json:"max_depth"`      // async: deepest the queue was at an enqueue; outbox: most rows pending
	MeanDepth     float64       `json:"mean_depth"`     // async: mean queue depth at an enqueue
	Full          int64         `json:"full"`           // async: enqueues that found the queue full (then blocked or dropped)
	Blocked       time.Duration `json:"blocked_ns"`     // async, block: time requests spent waiting for room
	Pending       int           `json:"pending"`        // events handed over but not delivered when the strategy stopped
	HandlerErrors int64         `json:"handler_errors"` // deliveries that returned an error
	Crashes       int64         `json:"crashes"`        // strategy goroutines that crashed at a fault point
}

var strategies = map[string]func(Config) Strategy{
	Sync: func(Config) Strategy { return &syncStrategy{} },
	Async: func(c Config) Strategy {
		return &asyncStrategy{handlers: c.Handlers, queue: c.Queue, drop: c.WhenFull == Drop}
	},
	Outbox: func(c Config) Strategy { return &outboxStrategy{senders: c.Handlers} },
}

// StrategyNames lists the strategies Config.Strategy accepts, sorted.
func StrategyNames() []string {
	var names []string
	for n := range strategies {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

func knownStrategy(name string) bool { _, ok := strategies[name]; return ok }

// syncStrategy is the book's: the bus runs inside the request, on the worker's goroutine.
type syncStrategy struct{ h Host }

func (s *syncStrategy) Promise() Promise                      { return Promise{Delivered: true, NoDuplicate: true} }
func (s *syncStrategy) MailerOptions() []fakes.MailerOption   { return nil }
func (s *syncStrategy) Start(_ context.Context, h Host) error { s.h = h; return nil }
func (s *syncStrategy) Stop()                                 {}
func (s *syncStrategy) Stats() StrategyStats                  { return StrategyStats{} }
func (s *syncStrategy) Dispatch(ctx context.Context, events []domain.Event) error {
	for _, e := range events {
		if err := s.h.Deliver(ctx, e); err != nil {
			return err
		}
	}
	return nil
}

// asyncStrategy puts events on a bounded channel that handler goroutines drain.
type asyncStrategy struct {
	handlers, queue int
	drop            bool

	h    Host
	ctx  context.Context
	q    chan domain.Event
	wg   sync.WaitGroup
	once sync.Once

	depthSum, depthN, maxDepth, full, blocked, errs, crashes atomic.Int64
}

func (s *asyncStrategy) Promise() Promise                    { return Promise{Delivered: true, NoDuplicate: true} }
func (s *asyncStrategy) MailerOptions() []fakes.MailerOption { return nil }

func (s *asyncStrategy) Start(ctx context.Context, h Host) error {
	s.h, s.ctx, s.q = h, ctx, make(chan domain.Event, s.queue)
	for i := range s.handlers {
		actor := h.Actor(ctx, "h"+strconv.Itoa(i))
		s.wg.Go(func() { s.handle(actor) })
	}
	return nil
}

func (s *asyncStrategy) handle(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case e, ok := <-s.q:
			if !ok {
				return
			}
			if err := s.h.Deliver(ctx, e); err != nil {
				s.errs.Add(1)
			}
			if s.h.Crash(ctx, AfterDeliver) {
				s.crashes.Add(1) // the handler died after this event; a new one takes its place
			}
		}
	}
}

func (s *asyncStrategy) Dispatch(ctx context.Context, events []domain.Event) error {
	for _, e := range events {
		depth := int64(len(s.q))
		s.depthSum.Add(depth)
		s.depthN.Add(1)
		for old := s.maxDepth.Load(); depth > old && !s.maxDepth.CompareAndSwap(old, depth); old = s.maxDepth.Load() {
		}
		select {
		case s.q <- e:
			continue
		default:
		}
		s.full.Add(1)
		if s.drop {
			s.h.Discarded(ctx, e)
			continue
		}
		start := time.Now()
		select {
		case s.q <- e:
		case <-s.ctx.Done():
			s.h.Abandoned(ctx, e)
		}
		s.blocked.Add(int64(time.Since(start)))
	}
	return nil
}

func (s *asyncStrategy) Stop() {
	s.once.Do(func() { close(s.q) })
	s.wg.Wait()
}

func (s *asyncStrategy) Stats() StrategyStats {
	st := StrategyStats{
		MaxDepth: int(s.maxDepth.Load()), Full: s.full.Load(), Blocked: time.Duration(s.blocked.Load()),
		Pending: len(s.q), HandlerErrors: s.errs.Load(), Crashes: s.crashes.Load(),
	}
	if n := s.depthN.Load(); n > 0 {
		st.MeanDepth = float64(s.depthSum.Load()) / float64(n)
	}
	return st
}

// outboxStrategy lets the store keep events in the commit; a relay (one fetcher goroutine
// reading pending rows in commit order, and sender goroutines) mails them and marks them done.
type outboxStrategy struct {
	senders int

	h        Host
	ctx      context.Context
	store    *fakes.Store
	work     chan fakes.OutboxRow
	nudge    chan struct{}
	stopping chan struct{}
	refetch  atomic.Bool // a sender crashed between send and mark: the relay's progress is lost
	wg       sync.WaitGroup

	committed, done, maxBacklog, errs, crashes atomic.Int64
}

func (s *outboxStrategy) Promise() Promise { return Promise{Delivered: true, NoDuplicate: true} }
func (s *outboxStrategy) MailerOptions() []fakes.MailerOption {
	return []fakes.MailerOption{fakes.WithDedup()}
}

func (s *outboxStrategy) Start(ctx context.Context, h Host) error {
	s.h, s.ctx, s.store = h, ctx, h.Store()
	s.store.EnableOutbox()
	s.work = make(chan fakes.OutboxRow, s.senders)
	s.nudge = make(chan struct{}, 1)
	s.stopping = make(chan struct{})
	s.wg.Go(s.fetch)
	for i := range s.senders {
		actor := h.Actor(ctx, "r"+strconv.Itoa(i))
		s.wg.Go(func() { s.send(actor) })
	}
	return nil
}

// Dispatch only wakes the relay: the events are already in the outbox, stored by the commit.
func (s *outboxStrategy) Dispatch(_ context.Context, events []domain.Event) error {
	backlog := s.committed.Add(int64(len(events))) - s.done.Load()
	for old := s.maxBacklog.Load(); backlog > old && !s.maxBacklog.CompareAndSwap(old, backlog); old = s.maxBacklog.Load() {
	}
	s.wake()
	return nil
}

func (s *outboxStrategy) wake() {
	select {
	case s.nudge <- struct{}{}:
	default:
	}
}

// fetch hands pending rows to the senders in commit order, each once, until stopped and empty.
func (s *outboxStrategy) fetch() {
	defer close(s.work)
	var last uint64 // the newest row handed over; older pending rows are in a sender's hands
	limit := 4*s.senders + 256
	idle := time.NewTimer(time.Millisecond)
	defer idle.Stop()
	for {
		if s.refetch.CompareAndSwap(true, false) {
			last = 0
		}
		handed := 0
		for _, row := range s.store.Pending(limit) {
			if row.Seq <= last {
				continue
			}
			select {
			case s.work <- row:
				last = row.Seq
				handed++
			case <-s.ctx.Done():
				return
			}
		}
		if handed > 0 {
			continue
		}
		select {
		case <-s.stopping:
			if pending, _ := s.store.OutboxCounts(); pending == 0 {
				return
			}
		default:
		}
		idle.Reset(time.Millisecond)
		select {
		case <-s.ctx.Done():
			return
		case <-s.nudge:
		case <-s.stopping:
		case <-idle.C:
		}
	}
}

func (s *outboxStrategy) send(ctx context.Context) {
	for row := range s.work {
		for attempt := 1; ; attempt++ {
			err := s.h.Deliver(ctx, row.Event)
			if s.h.Crash(ctx, RelaySent) {
				// Died between the send and the mark: the row stays pending and the relay starts
				// again from the oldest pending row, so it is sent again.
				s.crashes.Add(1)
				s.refetch.Store(true)
				break
			}
			if err == nil {
				s.store.MarkDone(row.Event.Identity().ID)
				s.done.Add(1)
				s.wake()
				break
			}
			s.errs.Add(1)
			if ctx.Err() != nil || sleep(ctx, min(time.Duration(attempt)*100*time.Microsecond, 10*time.Millisecond)) != nil {
				return
			}
		}
	}
}

func (s *outboxStrategy) Stop() {
	close(s.stopping)
	s.wake()
	s.wg.Wait()
}

func (s *outboxStrategy) Stats() StrategyStats {
	pending, _ := s.store.OutboxCounts()
	return StrategyStats{MaxDepth: int(s.maxBacklog.Load()), Pending: pending, HandlerErrors: s.errs.Load(), Crashes: s.crashes.Load()}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

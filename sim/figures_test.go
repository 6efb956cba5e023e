package sim_test

// The expected figures of the fault-injection issue, one test each, on the hot-sku workload:
// 1 sku, 1 batch of 500, 1000 orders of quantity 1. Every figure is read from the run's History
// (what clients saw, what the mail server accepted, what the store holds, what each crash found
// in memory), never from the wall clock.

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/fakes"
	"github.com/stockbus/stockbus/service"
	"github.com/stockbus/stockbus/sim"
	"github.com/stockbus/stockbus/sim/output"
)

// hot is the hot-sku workload under one strategy, with no mailer latency, every order recorded
// and a retry budget that never runs out.
func hot(strategy string, workers int) sim.Config {
	cfg := sim.HotSKU()
	cfg.Strategy, cfg.Workers, cfg.Record = strategy, workers, true
	cfg.Mailer = sim.FixedLatency(0)
	cfg.Retries = service.Unlimited
	cfg.HandlerBackoff = 20 * time.Microsecond
	return cfg
}

// figure runs cfg and logs the command that reruns it when the test fails.
func figure(t *testing.T, cfg sim.Config) sim.Report {
	t.Helper()
	r := run(t, cfg)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("rerun: %s", r.Command)
		}
	})
	return r
}

// measured logs a figure, so that `go test -v -run Figure ./sim/` lists what each one measured.
func measured(t *testing.T, format string, args ...any) {
	t.Helper()
	t.Logf("measured: "+format, args...)
}

// outOfStockEvents returns the committed OutOfStock events of the history.
func outOfStockEvents(h *sim.History) []sim.EventOp {
	var out []sim.EventOp
	for _, e := range h.Events {
		if e.Kind == sim.KindOutOfStock && e.State == sim.Committed {
			out = append(out, e)
		}
	}
	return out
}

func lines(h *sim.History) int {
	n := 0
	for _, b := range h.Batches {
		n += len(b.Lines)
	}
	return n
}

func orderHeld(h *sim.History) map[string]bool {
	held := map[string]bool{}
	for _, b := range h.Batches {
		for _, l := range b.Lines {
			held[l.OrderID] = true
		}
	}
	return held
}

// set returns the IDs as a sorted set.
func set(ids ...[]string) []string {
	var all []string
	for _, s := range ids {
		all = append(all, s...)
	}
	slices.Sort(all)
	return slices.Compact(all)
}

func inFlight(h *sim.History) []string {
	var ids [][]string
	for _, c := range h.Crashes {
		ids = append(ids, c.InFlight)
	}
	return set(ids...)
}

// Figure 1: without faults every strategy allocates exactly half, mails the other half once and
// loses nothing, at 2, 8 and 50 writers, with natural conflicts and with forced ones.
func TestFigure1NoFaultsGiveExactFigures(t *testing.T) {
	for _, strategy := range sim.StrategyNames() {
		for _, workers := range []int{2, 8, 50} {
			for _, forced := range []float64{0, 0.3} {
				t.Run(fmt.Sprintf("%s/%d writers/forced %g", strategy, workers, forced), func(t *testing.T) {
					cfg := hot(strategy, workers)
					cfg.ConflictRate = forced
					r := figure(t, cfg)
					requireOK(t, r)
					h, a := r.History, r.Accounting
					assert.Equal(t, 500, lines(h), "allocated in the store")
					assert.Equal(t, int64(500), r.Counts.Allocated, "allocated as the clients saw it")
					assert.Equal(t, int64(500), r.Counts.OutOfStock)
					assert.Len(t, outOfStockEvents(h), 500, "OutOfStock events committed")
					assert.Len(t, h.Mails, 500, "mails")
					assert.Zero(t, a.Lost, "lost")
					assert.Zero(t, a.Duplicated, "duplicated")
					assert.Zero(t, a.Unexpected, "unexpected")
					assert.Equal(t, []sim.ProductState{{SKU: h.Products[0].SKU, Version: 500}}, h.Products, "one version per allocation")
					measured(t, "allocated %d, OutOfStock events %d, mails %d, lost %d, duplicated %d, conflicts %d (forced %d)",
						lines(h), len(outOfStockEvents(h)), len(h.Mails), a.Lost, a.Duplicated, r.Counts.Conflicts, r.Faults.ForcedConflicts)
					if forced > 0 {
						assert.Positive(t, r.Faults.ForcedConflicts, "forced conflicts fired")
						assert.GreaterOrEqual(t, r.Counts.Conflicts, r.Faults.ForcedConflicts)
					}
				})
			}
		}
	}
}

// Figure 1, a budget of 3 retries at 50 writers (with half the commits forced to conflict, so
// that the budget runs out whatever the scheduler does): every order is allocated, out of stock
// or exhausted; an exhausted order got an error, holds nothing and caused no mail.
func TestFigure1ARetryBudgetOfThreeRunsOutCleanly(t *testing.T) {
	for _, strategy := range sim.StrategyNames() {
		t.Run(strategy, func(t *testing.T) {
			cfg := hot(strategy, 50)
			cfg.Retries, cfg.ConflictRate = 3, 0.5
			r := figure(t, cfg)
			requireOK(t, r)
			c, h := r.Counts, r.History
			measured(t, "allocated %d + out of stock %d + exhausted %d = %d; mails %d", c.Allocated, c.OutOfStock, c.Exhausted,
				c.Allocated+c.OutOfStock+c.Exhausted, len(h.Mails))
			assert.Positive(t, c.Exhausted, "the budget ran out")
			assert.Equal(t, int64(1000), c.Allocated+c.OutOfStock+c.Exhausted)
			assert.Equal(t, c.Exhausted, c.Failed, "exhausted is the only failure")
			held := orderHeld(h)
			exhausted := map[string]bool{}
			for _, o := range h.Orders {
				if o.Outcome == sim.Exhausted {
					exhausted[o.ID] = true
					assert.False(t, held[o.ID], "exhausted order %s holds stock", o.ID)
				}
			}
			assert.Len(t, exhausted, int(c.Exhausted), "each exhausted order came back with ErrRetriesExhausted")
			for _, e := range h.Events {
				if exhausted[e.Order] {
					assert.Equal(t, sim.RolledBack, e.State, "event %s of exhausted order %s", e.ID, e.Order)
				}
			}
			assert.Len(t, h.Mails, int(c.OutOfStock), "a mail per out-of-stock order, none for an exhausted one")
			assert.Equal(t, int(c.Allocated), lines(h), "nothing allocated twice")
		})
	}
}

// Figure 2: the book's two writers, forced to load, load, commit, commit.
func TestFigure2TheBooksTwoWriterInterleaving(t *testing.T) {
	for _, tc := range []struct {
		retries        int
		allocated      int64
		version        int
		exhausted      int64
		conflicts      int64
		wantOutcomeSet []sim.Outcome
	}{
		{retries: 0, allocated: 1, version: 1, exhausted: 1, conflicts: 1, wantOutcomeSet: []sim.Outcome{sim.Allocated, sim.Exhausted}},
		{retries: 1, allocated: 2, version: 2, exhausted: 0, conflicts: 1, wantOutcomeSet: []sim.Outcome{sim.Allocated, sim.Allocated}},
	} {
		t.Run(fmt.Sprintf("retries %d", tc.retries), func(t *testing.T) {
			cfg := hot(sim.Sync, 2)
			cfg.Orders, cfg.WarmupOrders, cfg.Rendezvous, cfg.Retries = 2, 1, 2, tc.retries
			cfg.OrderQty = sim.Range{Min: 10, Max: 10}
			r := figure(t, cfg)
			requireOK(t, r)
			measured(t, "conflicts %d, allocated %d, exhausted %d, version %d", r.Counts.Conflicts, r.Counts.Allocated,
				r.Counts.Exhausted, r.History.Products[0].Version)
			assert.Equal(t, tc.allocated, r.Counts.Allocated)
			assert.Equal(t, tc.exhausted, r.Counts.Exhausted)
			assert.Equal(t, tc.conflicts, r.Counts.Conflicts, "one conflict")
			assert.Equal(t, tc.version, r.History.Products[0].Version, "version +%d", tc.version)
			var outcomes []sim.Outcome
			for _, o := range r.History.Orders {
				outcomes = append(outcomes, o.Outcome)
			}
			slices.Sort(outcomes)
			assert.Equal(t, tc.wantOutcomeSet, outcomes)
		})
	}
}

// Figure 3: crashes after commit, at chosen commits (a plan by count: the v-th commit that
// carried an event, over the live process). The crash kills the whole process, so what each
// strategy loses is exactly what it held only in memory at the crashes.
//
// The plan: three crashes on commits of the first 500 orders (each carries an Allocated event)
// and three on later ones (each carries an OutOfStock). Each crash kills at most 7 requests in
// flight at 8 workers, so at least 1000 - 6*7 commits come and the 900th is among them.
var afterCommitPlan = []int{100, 250, 500, 501, 750, 900}

func TestFigure3ACrashAfterCommitLosesWhatWasInMemory(t *testing.T) {
	t.Run("sync, one worker: the crashed commits' events, one each, and nothing else", func(t *testing.T) {
		cfg := hot(sim.Sync, 1)
		cfg.CrashAt = sim.CrashVisits{sim.AfterCommit: afterCommitPlan}
		r := figure(t, cfg)
		requireOK(t, r)
		h, a := r.History, r.Accounting
		require.Len(t, h.Crashes, len(afterCommitPlan), "every crash of the plan fired")
		require.Len(t, h.Orders, 1000)
		events := eventsByID(h)
		var carried []string
		allocatedLost := 0
		for i, c := range h.Crashes {
			// One worker, one commit per order, each with one event: the v-th commit is the v-th order's.
			v := afterCommitPlan[i]
			order := h.Orders[v-1]
			require.Equal(t, sim.AfterCommit, c.Point)
			require.Len(t, c.Carried, 1, "crash %d at commit %d", c.Seq, v)
			assert.Equal(t, order.ID, c.Order, "crash %d is on the order of commit %d", c.Seq, v)
			assert.Equal(t, order.ID, events[c.Carried[0]].Order, "crash %d carried the event of commit %d", c.Seq, v)
			assert.Equal(t, sim.Unknown, order.Outcome, "the client of order %s never learned the outcome", order.ID)
			assert.True(t, events[c.Carried[0]].Unknown, "crash %d: event %s is marked as its client never learned", c.Seq, c.Carried[0])
			assert.Equal(t, c.Carried, c.InFlight, "crash %d: the process held nothing else", c.Seq)
			want := sim.KindOutOfStock
			if v <= 500 {
				want = sim.KindAllocated
				allocatedLost++
			}
			assert.Equal(t, want, events[c.Carried[0]].Kind, "crash %d at commit %d", c.Seq, v)
			carried = append(carried, c.Carried...)
		}
		oosLost := len(afterCommitPlan) - allocatedLost
		measured(t, "crashes after commit %d (on Allocated %d, on OutOfStock %d), lost %d, mails %d",
			len(h.Crashes), allocatedLost, oosLost, a.Lost, len(h.Mails))
		assert.Equal(t, len(afterCommitPlan), a.Lost, "lost == one event per crash")
		assert.Equal(t, a.Lost, a.LostInCrash)
		assert.Equal(t, allocatedLost, a.Kind(sim.KindAllocated).Lost, "Allocated events lost")
		assert.Equal(t, oosLost, a.Kind(sim.KindOutOfStock).Lost, "OutOfStock events lost")
		assert.Equal(t, set(carried), set(h.Undelivered()), "and they are the crashed commits' events")
		assert.Len(t, h.Mails, 500-oosLost, "a mail for every other OutOfStock")
		assert.Equal(t, 500, lines(h), "a crash after commit keeps what it stored")
		assert.EqualValues(t, len(afterCommitPlan), r.Counts.Unknown, "one unknown outcome per crash")
		unknown := 0
		for _, e := range h.Events {
			if e.Unknown {
				unknown++
			}
		}
		assert.Equal(t, len(afterCommitPlan), unknown, "only the crashed requests' events are marked unknown")
	})
	for _, tc := range []struct {
		strategy string
		workers  int
		latency  time.Duration
	}{
		{sim.Sync, 8, 0},
		{sim.Async, 4, 100 * time.Microsecond}, // a slow mailer, so that the queue holds events
		{sim.Outbox, 4, 100 * time.Microsecond},
	} {
		t.Run(fmt.Sprintf("%s, %d workers", tc.strategy, tc.workers), func(t *testing.T) {
			cfg := hot(tc.strategy, tc.workers)
			cfg.CrashAt = sim.CrashVisits{sim.AfterCommit: afterCommitPlan}
			cfg.Mailer = sim.FixedLatency(tc.latency)
			r := figure(t, cfg)
			requireOK(t, r)
			h, a := r.History, r.Accounting
			require.Len(t, h.Crashes, len(afterCommitPlan), "every crash of the plan fired")
			assert.EqualValues(t, len(afterCommitPlan), r.Faults.Crashes.AfterCommit)
			for _, c := range h.Crashes {
				assert.Equal(t, sim.AfterCommit, c.Point)
				assert.NotEmpty(t, c.Carried, "crash %d: the plan counts commits that carried an event", c.Seq)
			}
			measured(t, "crashes %d, events in memory at the crashes %d, lost %d", len(h.Crashes), len(inFlight(h)), a.Lost)
			if tc.strategy == sim.Outbox {
				assert.Zero(t, a.Lost, "the outbox loses nothing")
				assert.Empty(t, inFlight(h), "it holds nothing only in memory")
				assert.Equal(t, len(outOfStockEvents(h)), len(h.Mails), "a mail per committed OutOfStock")
				return
			}
			lostInMemory(t, h, a)
			assert.GreaterOrEqual(t, a.Lost, len(afterCommitPlan), "each crash loses at least the event its commit carried")
		})
	}
}

// lostInMemory asserts the exact statement of a crash of the whole process: each crash held the
// events its commit carried (if any) among those it found in memory, no event was in memory at
// two crashes, and the lost events are exactly those held at the crashes, one for one.
func lostInMemory(t *testing.T, h *sim.History, a sim.Accounting) {
	t.Helper()
	seen := map[string]int{}
	held := 0
	for _, c := range h.Crashes {
		assert.Subset(t, c.InFlight, c.Carried, "crash %d held the events its commit carried", c.Seq)
		for _, id := range c.InFlight {
			assert.Zero(t, seen[id], "event %s in memory at crashes %d and %d", id, seen[id], c.Seq)
			seen[id] = c.Seq
		}
		held += len(c.InFlight)
	}
	assert.Equal(t, held, a.Lost, "lost == the events in memory at the crashes, summed")
	assert.Equal(t, a.Lost, a.LostInCrash, "every loss is a crash's")
	assert.Equal(t, set(h.Undelivered()), inFlight(h), "and they are those events")
}

// eventsByID indexes the history's events.
func eventsByID(h *sim.History) map[string]sim.EventOp {
	m := make(map[string]sim.EventOp, len(h.Events))
	for _, e := range h.Events {
		m[e.ID] = e
	}
	return m
}

// Figure 4: a crash before commit stores nothing and sends nothing for that transaction, in
// every strategy. The plan crashes at the 100th, 500th, 501st and 900th commit attempt.
var beforeCommitPlan = []int{100, 500, 501, 900}

func TestFigure4ACrashBeforeCommitStoresAndSendsNothing(t *testing.T) {
	for _, strategy := range sim.StrategyNames() {
		t.Run(strategy+", one worker", func(t *testing.T) {
			// One worker, no conflict: the v-th commit attempt is the v-th order's only one.
			cfg := hot(strategy, 1)
			cfg.CrashAt = sim.CrashVisits{sim.BeforeCommit: beforeCommitPlan}
			r := figure(t, cfg)
			requireOK(t, r)
			h, a, k := r.History, r.Accounting, len(beforeCommitPlan)
			require.Len(t, h.Crashes, k, "every crash of the plan fired")
			require.Len(t, h.Orders, 1000)
			crashed := crashedOrders(t, h)
			for i, c := range h.Crashes {
				o := h.Orders[beforeCommitPlan[i]-1]
				assert.Equal(t, o.ID, c.Order, "crash %d is on the order of commit attempt %d", c.Seq, beforeCommitPlan[i])
				assert.Equal(t, sim.Unknown, o.Outcome, "order %s", o.ID)
				assert.Empty(t, c.Carried)
			}
			lostInMemory(t, h, a)
			rolledBack := 0
			for _, e := range h.Events {
				if e.State == sim.RolledBack {
					rolledBack++
					assert.True(t, crashed[e.Order], "event %s of order %s rolled back, and no crash was on it", e.ID, e.Order)
				}
			}
			measured(t, "crashes before commit %d; allocated %d, out of stock %d, unknown %d, events rolled back %d, mails %d, lost %d",
				k, lines(h), r.Counts.OutOfStock, r.Counts.Unknown, rolledBack, len(h.Mails), a.Lost)
			assert.Equal(t, k, rolledBack, "one event rolled back per crash: the crashed order's")
			assert.Equal(t, 500, lines(h), "the stock went to the orders after them")
			assert.EqualValues(t, 500, r.Counts.Allocated)
			assert.EqualValues(t, 1000-k-500, r.Counts.OutOfStock, "the crashed orders committed nothing")
			assert.Len(t, outOfStockEvents(h), 1000-k-500)
			assert.EqualValues(t, k, r.Counts.Unknown)
			assert.Len(t, h.Mails, 1000-k-500-a.Kind(sim.KindOutOfStock).Lost, "a mail per committed OutOfStock the crashes did not find in memory")
			if strategy != sim.Async {
				assert.Zero(t, a.Lost, "between requests %s holds nothing in memory", strategy)
			}
		})
		t.Run(strategy+", 4 workers", func(t *testing.T) {
			cfg := hot(strategy, 4)
			cfg.CrashAt = sim.CrashVisits{sim.BeforeCommit: beforeCommitPlan}
			r := figure(t, cfg)
			requireOK(t, r)
			h := r.History
			require.Len(t, h.Crashes, len(beforeCommitPlan), "every crash of the plan fired")
			assert.EqualValues(t, len(beforeCommitPlan), r.Faults.Crashes.BeforeCommit)
			crashedOrders(t, h)
			lostInMemory(t, h, r.Accounting)
			assert.Zero(t, r.Accounting.Unexpected, "no mail for an event that never committed")
			measured(t, "crashes before commit %d; their orders hold nothing, their events rolled back, unexpected mails %d",
				r.Faults.Crashes.BeforeCommit, r.Accounting.Unexpected)
		})
	}
}

// crashedOrders asserts that the order of each crash before commit holds no stock, that its
// events rolled back and that none of them was mailed, and returns those orders.
func crashedOrders(t *testing.T, h *sim.History) map[string]bool {
	t.Helper()
	held := orderHeld(h)
	crashed := map[string]bool{}
	for _, c := range h.Crashes {
		require.Equal(t, sim.BeforeCommit, c.Point)
		require.NotEmpty(t, c.Order, "crash %d: a worker's", c.Seq)
		crashed[c.Order] = true
		assert.False(t, held[c.Order], "order %s crashed before commit but holds stock", c.Order)
	}
	assert.Len(t, crashed, len(h.Crashes), "each crash on another order")
	mailed := map[string]bool{}
	for _, m := range h.Mails {
		mailed[m.Event] = true
	}
	found := 0
	for _, e := range h.Events {
		if crashed[e.Order] {
			found++
			assert.Equal(t, sim.RolledBack, e.State, "event %s of order %s", e.ID, e.Order)
			assert.False(t, mailed[e.ID], "event %s of order %s was mailed", e.ID, e.Order)
		}
	}
	assert.GreaterOrEqual(t, found, len(crashed), "each crashed order raised its event")
	return crashed
}

// eventsOf returns the IDs of the committed events of an order.
func eventsOf(h *sim.History, order string) []string {
	var ids []string
	for _, e := range h.Events {
		if e.Order == order && e.State != sim.RolledBack {
			ids = append(ids, e.ID)
		}
	}
	return ids
}

// planMailer is the fake mailer with a fault plan by send (fakes.WithFaultPlan), as a run's
// mailer (the run's own fake mailer takes no plan).
type planMailer struct{ *fakes.Mailer }

// withPlanMailer runs cfg on a planMailer whose plan decides each send.
func withPlanMailer(cfg sim.Config, plan func(n int) fakes.Fault) sim.Config {
	cfg.OpenMailer = func(_ context.Context, spec sim.MailerSpec) (sim.Mailer, func() error, error) {
		opts := []fakes.MailerOption{fakes.WithSeed(spec.Seed), fakes.WithLatency(fakes.Fixed(spec.Latency.Mean))}
		if spec.Timeout > 0 {
			opts = append(opts, fakes.WithTimeout(spec.Timeout, spec.TimeoutDelivered))
		}
		if spec.Dedup {
			opts = append(opts, fakes.WithDedup())
		}
		return planMailer{fakes.NewMailer(append(opts, fakes.WithFaultPlan(plan))...)}, nil, nil
	}
	return cfg
}

// Mails returns what the server took, as the run reads it.
func (m planMailer) Mails() []sim.Mail {
	var out []sim.Mail
	for _, ml := range m.Mailer.Mails() {
		var id string
		if ml.Cause != nil {
			id = ml.Cause.Identity().ID
		}
		out = append(out, sim.Mail{Event: id, To: ml.To, Body: ml.Body})
	}
	return out
}

// Figure 5: mailer errors.
func TestFigure5MailerErrors(t *testing.T) {
	for _, p := range []float64{0.01, 0.1, 0.5} {
		t.Run(fmt.Sprintf("sync p=%g: each failed send is a lost event and a caller that saw an error for a committed order", p), func(t *testing.T) {
			cfg := hot(sim.Sync, 4)
			cfg.MailErrors = p
			r := figure(t, cfg)
			requireOK(t, r)
			h, a := r.History, r.Accounting
			var failed []string
			for _, s := range h.Sends {
				if s.Err {
					failed = append(failed, s.Event)
				}
			}
			measured(t, "failed sends %d, lost %d, callers that saw an error for a committed order %d", len(failed), a.Lost, r.Counts.PublishErrors)
			assert.Equal(t, len(failed), a.Lost, "lost == failed sends")
			assert.Equal(t, set(failed), set(h.Undelivered()))
			sawError := 0
			for _, o := range h.Orders {
				if o.PublishErr {
					sawError++
					assert.Equal(t, sim.OutOfStock, o.Outcome, "order %s committed", o.ID)
				}
			}
			assert.Equal(t, a.Lost, sawError, "each caller of a lost event saw an error")
			assert.Equal(t, int64(sawError), r.Counts.PublishErrors)
			assert.Equal(t, int64(len(failed)), r.Faults.SendErrors, "the mailer's own count agrees")
		})
	}
	for _, p := range []float64{0.01, 0.1, 0.5, 1} {
		t.Run(fmt.Sprintf("outbox p=%g: nothing lost once drained", p), func(t *testing.T) {
			cfg := hot(sim.Outbox, 4)
			cfg.MailErrors = p
			// The faults stay on until the mailer was tried 300 times, however late the relay
			// starts: the mailer's draws are seeded in send order, so which of those 300 fail is
			// fixed by the seed.
			cfg.HoldFaults = 300
			r := figure(t, cfg)
			requireOK(t, r)
			a := r.Accounting
			measured(t, "send errors %d, lost %d, mails %d, pending when the faults stopped %d, delivered by the drain %d",
				r.Faults.SendErrors, a.Lost, len(r.History.Mails), a.Liveness.PendingAtStart, a.Liveness.Delivered)
			if p >= 0.1 {
				assert.Positive(t, r.Faults.SendErrors, "sends failed during the faults")
			}
			if p == 1 {
				assert.GreaterOrEqual(t, r.Faults.SendErrors, int64(300), "every one of the first 300 sends failed")
			}
			assert.Zero(t, a.Lost)
			assert.Len(t, r.History.Mails, 500)
			assert.Zero(t, a.Liveness.StillPending)
			if p == 1 {
				for _, s := range r.History.Sends {
					if s.Accepted && !s.Publish {
						assert.GreaterOrEqual(t, s.At, r.History.FaultsEnd, "at p = 1 no mail went out during the faults")
					}
				}
				assert.GreaterOrEqual(t, a.Liveness.PendingAtStart, 500, "every OutOfStock was pending when the faults stopped")
				assert.Equal(t, a.Liveness.PendingAtStart, a.Liveness.Delivered, "and the drain delivered it all")
			}
		})
	}
}

// Figure 5, sync-retry: an event is lost exactly when all 3 of its attempts failed. The mailer
// fails sends by a plan (fakes.WithFaultPlan): with one worker the sends come in event order, so
// the plan is written per event, as how many of its first attempts fail.
func TestFigure5SyncRetryLosesOnlyWhenEveryAttemptFailed(t *testing.T) {
	for _, tc := range []struct {
		name  string
		fails func(e int) int // how many of the e-th mailed event's first attempts fail, 0..3
	}{
		{"no send fails", func(int) int { return 0 }},
		{"every event's first two attempts fail", func(int) int { return 2 }},
		{"every tenth event fails three times", func(e int) int {
			if e%10 == 0 {
				return 3
			}
			return 0
		}},
		{"events alternate: three failures, then one", func(e int) int { return 3 - 2*(e%2) }},
		{"every event fails three times", func(int) int { return 3 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var fail []bool // by send, in send order
			lostWant, failedWant := map[int]bool{}, 0
			for e := range 500 {
				f := tc.fails(e)
				for range f {
					fail = append(fail, true)
				}
				if f < 3 {
					fail = append(fail, false)
				} else {
					lostWant[e] = true
				}
				failedWant += f
			}
			cfg := withPlanMailer(hot(sim.SyncRetry, 1), func(n int) fakes.Fault {
				if n < len(fail) && fail[n] {
					return fakes.FailTransient
				}
				return fakes.NoFault
			})
			r := figure(t, cfg)
			requireOK(t, r)
			h, a := r.History, r.Accounting
			require.Len(t, h.Orders, 1000)
			attempts, ok := map[string]int{}, map[string]bool{}
			failed := 0
			for _, s := range h.Sends {
				if s.Publish {
					continue
				}
				attempts[s.Event]++
				ok[s.Event] = ok[s.Event] || s.Accepted
				if s.Err {
					failed++
				}
			}
			var lost []string
			for e, o := range h.Orders[500:] {
				ids := eventsOf(h, o.ID)
				require.Len(t, ids, 1, "order %s raised one OutOfStock", o.ID)
				f := tc.fails(e)
				assert.Equal(t, min(f+1, 3), attempts[ids[0]], "attempts of event %s (mailed event %d)", ids[0], e)
				assert.Equal(t, f < 3, ok[ids[0]], "event %s (mailed event %d) delivered", ids[0], e)
				assert.Equal(t, f >= 3, o.PublishErr, "order %s saw an error", o.ID)
				if lostWant[e] {
					lost = append(lost, ids[0])
				}
			}
			measured(t, "sends %d, failed %d, events whose 3 attempts all failed %d, lost %d, callers that saw an error %d",
				len(fail), failed, len(lostWant), a.Lost, r.Counts.PublishErrors)
			assert.Len(t, h.Sends, len(fail)+500, "the planned sends, and a publication per Allocated")
			assert.Equal(t, failedWant, failed, "failed sends as planned")
			assert.EqualValues(t, failedWant, r.Faults.SendErrors, "the mailer's own count agrees")
			assert.Equal(t, len(lostWant), a.Lost, "lost == events whose every attempt failed")
			assert.Equal(t, a.Lost, a.LostSendFailed)
			assert.Equal(t, set(lost), set(h.Undelivered()), "and they are those events")
			assert.EqualValues(t, a.Lost, r.Counts.PublishErrors, "a caller sees an error only when the retries gave up")
			assert.Len(t, h.Mails, 500-len(lostWant))
		})
	}
}

// Figure 6: a crash in the relay between "mail sent" and "marked done" re-sends the row; the
// mailer's de-duplication swallows exactly those re-sends, and without it they are duplicates.
//
// The crashes are chosen by count, not by chance over wall-clock time: the 600th, 700th, 800th
// and 900th relay sends of live relays. The 500 Allocated rows commit before any OutOfStock row
// (one batch of 500), and until the first crash every send is of a new row, so those sends are
// of OutOfStock rows (mails). Each crash kills the orders in flight (at most 4, one per worker),
// which never commit, so there are at least 1000 - 4*4 rows and as many sends: the 900th comes
// whatever the machine's speed (a plan that ended at the 1000th send missed it when a crash had
// killed orders), and the run keeps the faults on until the four came, however late the relay
// starts.
func TestFigure6ARelayCrashResendsAndDedupSwallowsExactlyThat(t *testing.T) {
	for _, dedup := range []bool{true, false} {
		t.Run(fmt.Sprintf("dedup %v", dedup), func(t *testing.T) {
			cfg := hot(sim.Outbox, 4)
			cfg.CrashAt, cfg.Dedup = sim.CrashVisits{sim.RelaySent: {600, 700, 800, 900}}, dedup
			r := figure(t, cfg)
			requireOK(t, r)
			h, a := r.History, r.Accounting
			require.Len(t, h.Crashes, 4, "every crash of the plan fired")
			assert.EqualValues(t, 4, r.Faults.Crashes.RelaySent)
			// Each re-send repeats a send that a process which then died made: "r1" then "r3@2".
			first := map[string]string{}
			var resent, republished []string
			for _, s := range h.Sends {
				if !s.Accepted {
					continue
				}
				if by, seen := first[s.Event]; seen {
					if s.Publish {
						republished = append(republished, s.Event)
					} else {
						resent = append(resent, s.Event)
					}
					assert.NotEqual(t, life(by), life(s.Actor), "%s re-sent %s in the same life as %s", s.Actor, s.Event, by)
				} else {
					first[s.Event] = s.Actor
				}
			}
			// The row each crash caught between its send and its mark is sent again.
			mailRows := 0
			for _, c := range h.Crashes {
				row := lastSendBefore(h, c.Actor, c.At)
				require.NotNil(t, row, "crash %d: %s sent nothing before it", c.Seq, c.Actor)
				if row.Publish {
					assert.Contains(t, republished, row.Event, "crash %d: row %s published again", c.Seq, row.Event)
				} else {
					mailRows++
					assert.Contains(t, resent, row.Event, "crash %d: row %s mailed again", c.Seq, row.Event)
				}
			}
			require.Positive(t, mailRows, "the crashes caught mails (OutOfStock rows) in the relay's hands")
			assert.Len(t, resent, a.Resends)
			assert.GreaterOrEqual(t, a.Resends, mailRows)
			assert.Len(t, republished, a.DuplicatedPublished, "publications are not de-duplicated")
			assert.Zero(t, a.Lost)
			measured(t, "relay crashes %d (on mails %d), re-sends %d, dedup hits %d, duplicated %d, re-published %d, lost %d",
				r.Faults.Crashes.RelaySent, mailRows, a.Resends, r.Counts.DedupHits, a.Duplicated, a.DuplicatedPublished, a.Lost)
			if dedup {
				assert.Zero(t, a.Duplicated, "0 duplicates delivered")
				assert.Equal(t, int64(a.Resends), r.Counts.DedupHits, "dedup hits == re-sends")
				assert.Equal(t, set(resent), set(h.DedupHits), "and they are the re-sent events")
				assert.Equal(t, len(outOfStockEvents(h)), len(h.Mails), "one mail per committed OutOfStock")
			} else {
				assert.Zero(t, r.Counts.DedupHits)
				assert.Equal(t, a.Resends, a.Duplicated, "duplicated (surplus mails) == re-sends")
				assert.Equal(t, len(outOfStockEvents(h))+a.Resends, len(h.Mails))
			}
		})
	}
}

// lastSendBefore returns the last send actor made at or before at, or nil.
func lastSendBefore(h *sim.History, actor string, at time.Duration) *sim.SendOp {
	var last *sim.SendOp
	for i := range h.Sends {
		if s := &h.Sends[i]; s.Actor == actor && s.At <= at && (last == nil || s.At >= last.At) {
			last = s
		}
	}
	return last
}

// life returns the life of the process an actor belongs to: "r1" 0, "r3@2" 2.
func life(actor string) string {
	_, n, ok := strings.Cut(actor, "@")
	if !ok {
		return "0"
	}
	return n
}

// Figure 7: clients send an order again, same id, after an unknown outcome; allocation is
// idempotent, so no order is allocated twice and no allocated order gets an out-of-stock mail.
//
// One worker, crashes by plan before and after commit: each crash leaves exactly one client (the
// crashing worker's) without an answer, so every unknown outcome is a planned crash. The plan
// crashes twice in a row on one order (before-commit 600 and 601: the resend is the next commit
// attempt) and after two consecutive commits (after-commit 100 and 101).
var clientRetryPlan = sim.CrashVisits{sim.BeforeCommit: {50, 300, 600, 601, 950}, sim.AfterCommit: {100, 101, 400, 700, 800}}

func TestFigure7ClientRetriesAfterUnknownOutcomes(t *testing.T) {
	planned := len(clientRetryPlan[sim.BeforeCommit]) + len(clientRetryPlan[sim.AfterCommit])
	for _, strategy := range sim.StrategyNames() {
		for _, q := range []float64{0.5, 1} {
			t.Run(fmt.Sprintf("%s q=%g", strategy, q), func(t *testing.T) {
				cfg := hot(strategy, 1)
				cfg.CrashAt, cfg.ClientRetry = clientRetryPlan, q
				r := figure(t, cfg)
				requireOK(t, r)
				h, c := r.History, r.Counts
				require.Len(t, h.Crashes, planned, "every crash of the plan fired")
				assert.Equal(t, len(clientRetryPlan[sim.BeforeCommit]), r.Faults.Crashes.BeforeCommit)
				assert.Equal(t, len(clientRetryPlan[sim.AfterCommit]), r.Faults.Crashes.AfterCommit)
				events := eventsByID(h)
				crashesOn, allocatedThenCrashed := map[string]int{}, map[string]bool{}
				for _, cr := range h.Crashes {
					require.NotEmpty(t, cr.Order, "crash %d is a worker's", cr.Seq)
					crashesOn[cr.Order]++
					for _, id := range cr.Carried {
						if events[id].Kind == sim.KindAllocated {
							allocatedThenCrashed[cr.Order] = true
						}
					}
				}
				require.NotEmpty(t, allocatedThenCrashed, "the plan crashed after commits that allocated")
				held := orderHeld(h)
				resentAndHeld, stillUnknown := 0, 0
				for _, o := range h.Orders {
					unknown := 0
					if o.Outcome == sim.Unknown {
						unknown, stillUnknown = 1, stillUnknown+1
					}
					assert.Equal(t, crashesOn[o.ID], o.Resent+unknown, "order %s: every crash on it left its client without an answer, and each such answer was resent or is unknown", o.ID)
					if allocatedThenCrashed[o.ID] {
						assert.True(t, held[o.ID], "order %s committed its allocation before the crash", o.ID)
						if o.Resent > 0 {
							resentAndHeld++
							assert.Equal(t, sim.Allocated, o.Outcome, "resent order %s found the allocation it already had", o.ID)
						}
					}
				}
				measured(t, "crashes %d, unknown outcomes resent %d (resolved %d), still unknown %d, resent orders already allocated %d, orders held twice %d, false out-of-stock mails %d",
					len(h.Crashes), c.Resends, c.Resolved, stillUnknown, resentAndHeld, lines(h)-len(held), r.Accounting.FalseOutOfStock)
				assert.EqualValues(t, planned, c.Resends+c.Unknown, "every unknown outcome was resent or left unknown")
				assert.EqualValues(t, stillUnknown, c.Unknown)
				assert.Zero(t, r.Accounting.FalseOutOfStock, "0 false out-of-stock mails")
				assert.Len(t, held, lines(h), "each order allocated at most once")
				assert.Equal(t, 500, lines(h))
				if q == 1 {
					assert.EqualValues(t, planned, c.Resends, "at q = 1 every unknown outcome was resent")
					assert.Zero(t, c.Unknown, "and every resend learned its outcome")
					assert.EqualValues(t, len(crashesOn), c.Resolved, "one resolved order per crashed order")
					assert.Equal(t, len(allocatedThenCrashed), resentAndHeld, "each order that allocated before its crash found that allocation again")
				}
			})
		}
	}
}

// Figure 8: bad input through the simulator changes nothing, raises nothing, mails nothing.
func TestFigure8BadInputThroughTheSimulator(t *testing.T) {
	for _, strategy := range sim.StrategyNames() {
		t.Run(strategy, func(t *testing.T) {
			cfg := hot(strategy, 4)
			cfg.BadInput = 0.1
			r := figure(t, cfg)
			requireOK(t, r)
			h := r.History
			inv := r.Invariants[7]
			require.Equal(t, sim.InvBadInput, inv.Name)
			assert.Empty(t, inv.Note, "bad input was checked")
			assert.Positive(t, r.Counts.Bad)
			assert.Equal(t, r.Counts.Bad, r.Counts.Rejected, "every bad order, and only those, rejected")
			defects := map[sim.Defect]int{}
			for _, o := range h.Bad {
				defects[o.Bad]++
				assert.Equal(t, sim.Rejected, o.Outcome)
			}
			assert.Len(t, defects, 6, "every kind of defect was sent: %v", defects)
			assert.Len(t, h.BadBatches, 7)
			for _, b := range h.BadBatches {
				assert.NotEmpty(t, b.Err, "bad batch %q refused", b.What)
				assert.False(t, b.Changed, "bad batch %q changed nothing", b.What)
			}
			measured(t, "bad orders %d, rejected %d, kinds %d, bad batches %d refused, events from bad orders 0, mails %d for %d good orders",
				r.Counts.Bad, r.Counts.Rejected, len(defects), len(h.BadBatches), len(h.Mails), 1000-r.Counts.Bad)
			good := 1000 - int(r.Counts.Bad)
			assert.Equal(t, min(good, 500), lines(h))
			assert.Len(t, h.Mails, good-min(good, 500), "mails only for good orders out of stock")
		})
	}
}

// Figure 8, the service's own answers to bad input: a clear error, no change, no mail, no panic.
// FuzzAllocate and FuzzAddBatch in package service cover the same ground with arbitrary input.
func TestFigure8BadInputThroughTheService(t *testing.T) {
	ctx := context.Background()
	uow, store, mailer := fakes.New()
	require.NoError(t, service.AddBatch(ctx, uow, "b1", "LAMP", 10, time.Time{}))
	rev := store.Revision("LAMP")
	for _, tc := range []struct {
		name    string
		call    func() error
		wantErr error
		wantMsg string
	}{
		{"qty 0", func() error { _, err := service.Allocate(ctx, uow, "o1", "LAMP", 0); return err }, domain.ErrInvalidOrderLine, "qty must be between 1 and 1000000000, got 0"},
		{"qty -1", func() error { _, err := service.Allocate(ctx, uow, "o1", "LAMP", -1); return err }, domain.ErrInvalidOrderLine, "got -1"},
		{"huge qty", func() error { _, err := service.Allocate(ctx, uow, "o1", "LAMP", domain.MaxQty+1); return err }, domain.ErrInvalidOrderLine, "got 1000000001"},
		{"empty order id", func() error { _, err := service.Allocate(ctx, uow, "", "LAMP", 1); return err }, domain.ErrInvalidOrderLine, "empty order id"},
		{"empty sku", func() error { _, err := service.Allocate(ctx, uow, "o1", "", 1); return err }, domain.ErrInvalidOrderLine, "empty sku"},
		{"unknown sku", func() error { _, err := service.Allocate(ctx, uow, "o1", sim.UnknownSKUName, 1); return err }, service.ErrInvalidSKU, "invalid sku NO-SUCH-SKU"},
		{"duplicate batch reference", func() error { return service.AddBatch(ctx, uow, "b1", "LAMP", 5, time.Time{}) }, domain.ErrDuplicateBatch, "duplicate batch reference"},
		{"duplicate batch reference, other sku", func() error { return service.AddBatch(ctx, uow, "b1", "CHAIR", 5, time.Time{}) }, domain.ErrDuplicateBatch, "held by LAMP"},
		{"negative batch", func() error { return service.AddBatch(ctx, uow, "b2", "LAMP", -5, time.Time{}) }, domain.ErrInvalidBatch, "got -5"},
		{"empty batch reference", func() error { return service.AddBatch(ctx, uow, "", "LAMP", 5, time.Time{}) }, domain.ErrInvalidBatch, "empty reference"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			require.NotPanics(t, func() { err = tc.call() })
			require.ErrorIs(t, err, tc.wantErr)
			assert.Contains(t, err.Error(), tc.wantMsg)
			assert.Equal(t, rev, store.Revision("LAMP"), "no state change")
			assert.Equal(t, []string{"LAMP"}, store.SKUs())
			assert.Zero(t, mailer.Len(), "no mail")
		})
	}
}

// allFaults turns on every fault a run on one worker replays exactly.
func allFaults(cfg sim.Config) sim.Config {
	cfg.Crash = sim.CrashRates{BeforeCommit: 0.02, AfterCommit: 0.05, AfterHandler: 0.05}
	cfg.ConflictRate, cfg.MailErrors, cfg.ClientRetry, cfg.BadInput = 0.2, 0.1, 0.5, 0.02
	cfg.Mailer = sim.Latency{Dist: "uniform", Min: 0, Max: 40 * time.Microsecond, Mean: 20 * time.Microsecond}
	cfg.MailTimeout = 30 * time.Microsecond
	return cfg
}

// Figure 9: with one worker the same seed gives the same history, faults included. (The async
// handlers and the outbox relay run beside the worker, so their crashes race it: they are left
// out here, and a run with them replays only in distribution.)
func TestFigure9SameSeedSameHistoryWithFaults(t *testing.T) {
	for _, tc := range []struct {
		strategy string
		edit     func(*sim.Config)
	}{
		{sim.Sync, func(*sim.Config) {}},
		{sim.SyncRetry, func(*sim.Config) {}},
		// The bus runs on the relay's goroutines: crashes after a handler there race the worker.
		{sim.Outbox, func(c *sim.Config) { c.Crash.AfterHandler = 0 }},
		// Which sends fail depends on how far the handlers got when the faults stop: only the
		// worker's faults replay.
		{sim.Async, func(c *sim.Config) { c.Crash, c.MailErrors, c.MailTimeout = sim.CrashRates{}, 0, 0 }},
	} {
		t.Run(tc.strategy, func(t *testing.T) {
			cfg := allFaults(hot(tc.strategy, 1))
			tc.edit(&cfg)
			a, b := figure(t, cfg), figure(t, cfg)
			requireOK(t, a)
			require.NotEmpty(t, a.HistoryDigest)
			measured(t, "digests %s and %s; crashes %d, forced conflicts %d, bad orders %d", a.HistoryDigest, b.HistoryDigest,
				a.Faults.Crashes.Total, a.Faults.ForcedConflicts, a.Faults.BadOrders)
			assert.Equal(t, a.HistoryDigest, b.HistoryDigest, "same seed, one worker, same faults: the same history")
			assert.Equal(t, a.Faults.Crashes, b.Faults.Crashes, "the same crashes")
			assert.Equal(t, a.Counts.Forced, b.Counts.Forced, "the same forced conflicts")
			if tc.strategy == sim.Sync || tc.strategy == sim.SyncRetry {
				// Everything happens on the worker's goroutine: every figure replays, timings aside.
				fa, fb := a.Accounting, b.Accounting
				fa.Liveness, fb.Liveness = sim.Liveness{}, sim.Liveness{}
				assert.Equal(t, fa, fb)
				assert.Equal(t, a.Faults, b.Faults, "the same faults fired")
			}
			f := a.Faults
			assert.Positive(t, f.ForcedConflicts, "faults fired: %+v", f)
			assert.Positive(t, f.BadOrders, "faults fired: %+v", f)
			if tc.strategy != sim.Async {
				assert.Positive(t, f.Crashes.Total)
			}
			cfg.Seed++
			assert.NotEqual(t, a.HistoryDigest, figure(t, cfg).HistoryDigest, "another seed, another history")
		})
	}
}

// Figure 9: a failing run says how to rerun it.
func TestFigure9AFailingRunPrintsItsCommand(t *testing.T) {
	cfg := hot(sim.Sync, 1)
	cfg.Crash.AfterCommit, cfg.Require = 0.05, sim.Promise{NoLoss: true}
	r := run(t, cfg)
	require.False(t, r.OK, "sync does not deliver at least once")
	assert.Equal(t, goRun+" -workload hot-sku -strategy sync -workers 1 -mailer-latency 0s -retries -1 -handler-backoff 20µs -record -crash after-commit=0.05 -require no-loss", r.Command)
	var out strings.Builder
	require.NoError(t, output.WriteText(&out, r))
	assert.Contains(t, out.String(), "rerun: "+r.Command)
}

// Figure 10: no goroutine outlives a run, crashes of every kind and an interruption included.
// The crashes come by plan, three at each point the strategy visits (after-deliver is the async
// handlers', relay-sent the outbox relay's), and the mailer, by a plan of its own, fails one send
// in ten and times out two more (one delivered, one not).
func TestFigure10NoGoroutineLeaksAfterCrashes(t *testing.T) {
	// Early visits, so that each comes however many events the crashes took with them.
	visits := []int{5, 50, 100}
	points := map[string][]sim.Point{
		sim.Sync:      {sim.BeforeCommit, sim.AfterCommit, sim.AfterHandler},
		sim.SyncRetry: {sim.BeforeCommit, sim.AfterCommit, sim.AfterHandler},
		sim.Async:     {sim.BeforeCommit, sim.AfterCommit, sim.AfterHandler, sim.AfterDeliver},
		sim.Outbox:    {sim.BeforeCommit, sim.AfterCommit, sim.AfterHandler, sim.RelaySent},
	}
	mailFaults := func(n int) fakes.Fault {
		switch n % 10 {
		case 3:
			return fakes.FailTransient
		case 6:
			return fakes.TimeoutLost
		case 8:
			return fakes.TimeoutDelivered
		}
		return fakes.NoFault
	}
	for _, strategy := range sim.StrategyNames() {
		t.Run(strategy, func(t *testing.T) {
			require.Contains(t, points, strategy, "the points %s visits", strategy)
			cfg := allFaults(hot(strategy, 4))
			// The mailer's timeout stays, longer than a send takes: the plan times sends out, and
			// the strategies' promises allow for timeouts when there is one.
			cfg.Crash, cfg.MailErrors = sim.CrashRates{}, 0
			cfg.Mailer, cfg.MailTimeout = sim.FixedLatency(20*time.Microsecond), 30*time.Microsecond
			cfg.CrashAt = sim.CrashVisits{}
			for _, p := range points[strategy] {
				cfg.CrashAt[p] = visits
			}
			cfg = withPlanMailer(cfg, mailFaults)
			// The outbox's relays may not mail before a fast run's last order: the faults stay on
			// until the mailer was tried 50 times, so its plan fails and times out some sends
			// whatever the machine's speed.
			cfg.HoldFaults = 50
			r := figure(t, cfg)
			requireOK(t, r)
			for _, p := range sim.Points() {
				assert.Equal(t, len(cfg.CrashAt[p]), r.Faults.Crashes.At(p), "crashes at %s", p)
			}
			assert.Equal(t, len(points[strategy])*len(visits), r.Faults.Crashes.Total, "every crash of the plan fired")
			assert.Positive(t, r.Faults.SendErrors, "the mailer's plan failed sends")
			assert.Positive(t, r.Faults.Timeouts, "and timed some out")
			assert.Equal(t, r.Faults.Crashes.Total+1, r.Strategy.Lives, "a life of the strategy's goroutines per crash, and the first")
			goleak.VerifyNone(t)
			measured(t, "crashes %d (%d lives of the strategy's goroutines), send errors %d, timeouts %d, no goroutine left",
				r.Faults.Crashes.Total, r.Strategy.Lives, r.Faults.SendErrors, r.Faults.Timeouts)

			cfg.Orders, cfg.Duration = 20_000, time.Hour // orders only size the stock of a run by duration
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			defer cancel()
			r, err := sim.Run(ctx, cfg)
			require.NoError(t, err)
			assert.True(t, r.Interrupted)
			goleak.VerifyNone(t)
		})
	}
}

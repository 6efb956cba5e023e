package sim_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockbus/stockbus/fakes"
	"github.com/stockbus/stockbus/sim"
	"github.com/stockbus/stockbus/sim/output"
)

func TestParseBrokerDrops(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     []int
		wantErr  string
	}{
		{name: "none", in: "none"},
		{name: "empty", in: ""},
		{name: "one", in: "7", want: []int{7}},
		{name: "several", in: "3/10/50", want: []int{3, 10, 50}},
		{name: "zero", in: "0", wantErr: "counted from 1"},
		{name: "negative", in: "-2", wantErr: "counted from 1"},
		{name: "not a number", in: "x", wantErr: "counted from 1"},
		{name: "empty visit", in: "3//4", wantErr: "counted from 1"},
		{name: "twice", in: "5/5", wantErr: "publication 5 listed twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := sim.ParseBrokerDrops(tc.in)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr, "ParseBrokerDrops(%q)", tc.in)
				assert.Nil(t, got, "nothing parsed on an error")
				return
			}
			require.NoError(t, err, "ParseBrokerDrops(%q)", tc.in)
			assert.Equal(t, tc.want, got)
		})
	}
}

// testBroker is a sim.Broker on a fake publisher that counts the fault knob's calls and can be
// made to lie about what it holds, so that the report is seen to come from Held.
type testBroker struct {
	*fakes.Publisher
	drops, restores atomic.Int64
	tamper          func([]sim.Publication) []sim.Publication
	heldErr         error
	failRestores    atomic.Int64 // the next Restores that fail, with restoreErr
	restoreErr      error
}

func (b *testBroker) Held(context.Context) ([]sim.Publication, error) {
	if b.heldErr != nil {
		return nil, b.heldErr
	}
	var ps []sim.Publication
	for _, p := range b.Published() {
		ps = append(ps, sim.Publication{Event: p.Event.Identity().ID, Channel: p.Channel})
	}
	if b.tamper != nil {
		ps = b.tamper(ps)
	}
	return ps, nil
}

func (b *testBroker) DedupHits() int64 { return int64(len(b.Publisher.DedupHits())) }

func (b *testBroker) Drop(context.Context) error {
	b.drops.Add(1)
	b.Disconnect()
	return nil
}

func (b *testBroker) Restore(context.Context) error {
	b.restores.Add(1)
	if b.failRestores.Add(-1) >= 0 {
		return b.restoreErr
	}
	b.Reconnect()
	return nil
}

// brokers opens a testBroker for each run and keeps them, with how many were closed.
type brokers struct {
	mu     sync.Mutex
	opened []*testBroker
	closed int
	make   func() *testBroker
}

func (bs *brokers) open(context.Context) (sim.Broker, func() error, error) {
	b := &testBroker{Publisher: fakes.NewPublisher()}
	if bs.make != nil {
		b = bs.make()
	}
	bs.mu.Lock()
	defer bs.mu.Unlock()
	bs.opened = append(bs.opened, b)
	return b, func() error {
		bs.mu.Lock()
		defer bs.mu.Unlock()
		bs.closed++
		return nil
	}, nil
}

func (bs *brokers) last(t *testing.T) *testBroker {
	t.Helper()
	bs.mu.Lock()
	defer bs.mu.Unlock()
	require.NotEmpty(t, bs.opened, "no broker opened")
	return bs.opened[len(bs.opened)-1]
}

func onBroker(cfg sim.Config, bs *brokers) sim.Config {
	cfg.Broker, cfg.OpenBroker = "test", bs.open
	return cfg
}

func TestADefaultRunHasNoBrokerReport(t *testing.T) {
	r := run(t, tiny())
	assert.Nil(t, r.Broker, "the fake broker without drops adds nothing to the report")
	var out bytes.Buffer
	require.NoError(t, output.WriteText(&out, r))
	assert.NotContains(t, out.String(), "broker")
	for _, s := range r.History.Sends {
		if s.Publish {
			require.Zero(t, s.Took, "publications are not timed without a broker report")
		}
	}
}

func TestEveryRunOpensAndClosesItsOwnBroker(t *testing.T) {
	bs := &brokers{}
	cfg := onBroker(tiny(), bs)
	cfg.Strategy = sim.Sync // a model check: the calibration run is a run of its own
	r := run(t, cfg)
	requireOK(t, r)
	require.NotNil(t, r.Model, "the sync run had a calibration run")
	assert.Len(t, bs.opened, 2, "the calibration run and the run each open a broker")
	assert.Equal(t, 2, bs.closed, "and close it")
	b := r.Broker
	require.NotNil(t, b)
	assert.Equal(t, "test", b.Name)
	assert.Equal(t, committed(r, sim.KindAllocated), int64(b.Held), "the broker holds every Allocated")
	assert.Equal(t, b.Held, b.Acknowledged)
	assert.EqualValues(t, b.Held, b.Publish.Count, "every acknowledged publication timed")
	assert.Positive(t, b.Publish.P99)
	var out bytes.Buffer
	require.NoError(t, output.WriteText(&out, r))
	assert.Contains(t, out.String(), "store fakes, broker test")
	assert.Contains(t, out.String(), "broker        test: publish p50")
	assert.Contains(t, r.Command, "./cmd/simulate-real", "a real broker reruns on the command that links it")
	assert.Contains(t, r.Command, "-broker test")
}

// The accounting reads what the broker holds, not what the publisher was told: a broker that
// loses or doubles acknowledged messages shows in the report and breaks the invariants.
func TestTheBrokerReportComesFromWhatTheBrokerHolds(t *testing.T) {
	for _, tc := range []struct {
		name            string
		tamper          func([]sim.Publication) []sim.Publication
		lost, twice     int
		brokenInvariant string
	}{
		{"it loses two", func(ps []sim.Publication) []sim.Publication { return ps[2:] }, 2, 0, sim.InvBrokerKeeps},
		{"it stores one twice", func(ps []sim.Publication) []sim.Publication { return append(ps, ps[0]) }, 0, 1, sim.InvNoDuplicatePublish},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bs := &brokers{make: func() *testBroker { return &testBroker{Publisher: fakes.NewPublisher(), tamper: tc.tamper} }}
			cfg := onBroker(tiny(), bs)
			cfg.Strategy = sim.Async
			r := run(t, cfg)
			b := r.Broker
			require.NotNil(t, b)
			assert.Equal(t, tc.lost, b.Lost, "acknowledged but missing")
			assert.Equal(t, tc.twice, b.Duplicated, "stored twice")
			assert.Equal(t, tc.lost, r.Accounting.Lost, "the accounting counts the broker's losses")
			assert.Equal(t, tc.twice, r.Accounting.DuplicatedPublished)
			assert.False(t, r.OK)
			broken := map[string]bool{}
			for _, inv := range r.Invariants {
				if !inv.OK {
					broken[inv.Name] = true
				}
			}
			assert.True(t, broken[tc.brokenInvariant], "broken: %v", broken)
		})
	}
}

func TestBrokerErrorsFailTheRun(t *testing.T) {
	errOpen, errHeld := errors.New("no broker today"), errors.New("cannot read the stream")
	for _, tc := range []struct {
		name string
		cfg  func() sim.Config
		want error
	}{
		{"open fails", func() sim.Config {
			c := tiny()
			c.Broker = "test"
			c.OpenBroker = func(context.Context) (sim.Broker, func() error, error) { return nil, nil, errOpen }
			return c
		}, errOpen},
		{"reading what it holds fails", func() sim.Config {
			bs := &brokers{make: func() *testBroker { return &testBroker{Publisher: fakes.NewPublisher(), heldErr: errHeld} }}
			return onBroker(tiny(), bs)
		}, errHeld},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tc.cfg()
			c.Strategy = sim.Async
			_, err := sim.Run(context.Background(), c)
			require.ErrorIs(t, err, tc.want)
			assert.Contains(t, err.Error(), "broker test")
		})
	}
}

func TestBrokerConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name, field string
		edit        func(*sim.Config)
	}{
		{"a broker without an opener", "broker", func(c *sim.Config) { c.Broker = "nats" }},
		{"a drop at publication 0", "broker-drops", func(c *sim.Config) { c.BrokerDrops = []int{0} }},
		{"a drop listed twice", "broker-drops", func(c *sim.Config) { c.BrokerDrops = []int{4, 4} }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := tiny()
			tc.edit(&c)
			err := c.Validate()
			require.ErrorIs(t, err, sim.ErrConfig)
			var ce *sim.ConfigError
			require.ErrorAs(t, err, &ce)
			assert.Equal(t, tc.field, ce.Field)
		})
	}
}

// A drop at a publication, counted: that publication fails. The strategy decides what becomes of
// the event: sync loses it, sync-retry and the outbox relay publish it again once the connection
// is back.
func TestBrokerDropsFailThePublicationTheyHit(t *testing.T) {
	for _, tc := range []struct {
		strategy string
		lost     bool
	}{
		{sim.Sync, true},
		{sim.SyncRetry, false},
		{sim.Outbox, false},
	} {
		t.Run(tc.strategy, func(t *testing.T) {
			bs := &brokers{}
			cfg := onBroker(tiny(), bs)
			cfg.Strategy, cfg.BrokerDrops = tc.strategy, []int{5, 20, 40}
			r := run(t, cfg)
			requireOK(t, r)
			b := bs.last(t)
			assert.EqualValues(t, 3, b.drops.Load(), "one drop per listed publication")
			assert.EqualValues(t, 3, b.restores.Load(), "each followed by a restore")
			rb := r.Broker
			require.NotNil(t, rb)
			assert.Equal(t, 3, rb.Drops)
			assert.GreaterOrEqual(t, rb.Errors, int64(3), "the publications the drops hit failed")
			assert.Zero(t, rb.Lost, "what the broker acknowledged it holds")
			assert.Zero(t, rb.Duplicated)
			if tc.lost {
				assert.Equal(t, int(rb.Errors), r.Accounting.Lost, "sync loses each event whose publication failed")
				assert.Equal(t, r.Accounting.Lost, r.Accounting.LostSendFailed)
			} else {
				assert.Zero(t, r.Accounting.Lost, "published again after the restore")
				assert.Equal(t, int(committed(r, sim.KindAllocated)), rb.Held)
			}
			var out bytes.Buffer
			require.NoError(t, output.WriteText(&out, r))
			assert.Contains(t, out.String(), "broker connection dropped at publications 5/20/40")
			assert.Contains(t, r.Command, "-broker-drops 5/20/40")
		})
	}
}

// Drops listed at the run's last publications fire however fast the machine: the faults stay on
// after the last order until every listed drop came, as long as the outbox holds rows, and the
// relay's last publications may well come after the last order.
func TestBrokerDropsAtTheLastPublicationsFire(t *testing.T) {
	one := tiny()
	one.Workers = 1 // the same allocations on every run
	// One relay sender that mails each OutOfStock row in 1ms falls behind the worker, so that
	// the last rows are published after the last order.
	one.Handlers, one.Mailer = 1, sim.FixedLatency(time.Millisecond)
	n := int(committedAllocated(t, one))
	require.Greater(t, n, 10)
	bs := &brokers{}
	cfg := onBroker(one, bs)
	cfg.Strategy, cfg.BrokerDrops = sim.Outbox, []int{n - 1, n}
	r := run(t, cfg)
	requireOK(t, r)
	assert.Equal(t, 2, r.Broker.Drops, "both drops fired")
	assert.Zero(t, r.Accounting.Lost)
	assert.Equal(t, n, r.Broker.Held)
}

// A de-duplicating broker under relay crashes: every re-published row is a dedup hit, and the
// broker holds each event once.
func TestADeduplicatingBrokerDropsEveryRelayResend(t *testing.T) {
	bs := &brokers{make: func() *testBroker {
		return &testBroker{Publisher: fakes.NewDedupPublisher(time.Hour, nil)}
	}}
	cfg := onBroker(hot(sim.Outbox, 4), bs)
	cfg.CrashAt = sim.CrashVisits{sim.RelaySent: {100, 200, 300}}
	cfg.Require.NoDuplicatePublish = true
	r := run(t, cfg)
	requireOK(t, r)
	require.Len(t, r.History.Crashes, 3)
	b := r.Broker
	require.NotNil(t, b)
	require.Positive(t, b.Resent, "the crashes made the relay publish rows again")
	assert.Equal(t, int64(b.Resent), b.DedupHits, "dedup hits == rows re-sent")
	assert.Zero(t, b.Duplicated, "0 stored twice")
	assert.Zero(t, r.Accounting.DuplicatedPublished)
	assert.Equal(t, 500, b.Held, "each of the 500 Allocated held once")

	var out bytes.Buffer
	require.NoError(t, output.WriteComparison(&out, []sim.Report{r}, nil))
	for _, want := range []string{`crash at visits relay-sent=100/200/300`, `publish p50 / p99 `, `crashes +3\n`,
		fmt.Sprintf(`broker re-sent / dedup hits +%d / %d\n`, b.Resent, b.DedupHits), `broker holds / stored twice +500 / 0\n`} {
		assert.Regexp(t, want, out.String())
	}
}

// A restore that fails leaves the connection down; the next publications try again until one
// succeeds, so the run goes on and does not hang, and the run reports the failure.
func TestAFailedRestoreIsRetriedAndReported(t *testing.T) {
	errRestore := errors.New("cannot reconnect")
	bs := &brokers{make: func() *testBroker {
		b := &testBroker{Publisher: fakes.NewPublisher(), restoreErr: errRestore}
		b.failRestores.Store(2)
		return b
	}}
	one := tiny()
	one.Workers = 1 // the same allocations on every run
	c := onBroker(one, bs)
	c.Strategy, c.BrokerDrops = sim.Outbox, []int{3}
	_, err := sim.Run(context.Background(), c)
	require.ErrorIs(t, err, errRestore)
	assert.Contains(t, err.Error(), "the fault knob of the broker test")
	b := bs.last(t)
	assert.EqualValues(t, 3, b.restores.Load(), "two failed restores, then one that worked")
	held, err := b.Held(context.Background())
	require.NoError(t, err)
	assert.Len(t, held, int(committedAllocated(t, one)), "the relay published everything once the connection was back")
}

// committedAllocated is how many Allocated events cfg's workload commits on the outbox.
func committedAllocated(t *testing.T, cfg sim.Config) int64 {
	t.Helper()
	cfg.Strategy = sim.Outbox
	return committed(run(t, cfg), sim.KindAllocated)
}

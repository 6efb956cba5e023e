package sim

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/fakes"
	"github.com/stockbus/stockbus/service"
)

// Broker is what a run needs of the broker Allocated events are published to: the publisher
// the bus's handler calls, what the broker holds (the accounting's ground truth, read from the
// broker after the run, not from the publisher's counters), how many re-sent events it dropped
// as duplicates, and a fault knob that drops the connection and restores it.
//
// Its methods must be safe for concurrent use, Drop and Restore included: other goroutines keep
// publishing while the connection is down, and fail.
type Broker interface {
	service.Publisher
	// Held returns every publication the broker holds, in the broker's order. An event the
	// broker stored twice appears twice. It is called once, after the run's last publication.
	Held(ctx context.Context) ([]Publication, error)
	// DedupHits returns how many publications the broker acknowledged as duplicates of an event
	// it already held, and did not store again.
	DedupHits() int64
	// Drop takes the connection to the broker down: until Restore, Publish fails.
	Drop(ctx context.Context) error
	// Restore brings the connection back; what the broker held before the drop is still there.
	Restore(ctx context.Context) error
}

// BrokerOpener opens a new, empty broker for one run (the calibration run and every run of a
// comparison each get their own) and returns it with the function that closes it and removes
// what it made. Config.OpenBroker holds one; nil is the fake broker.
type BrokerOpener func(ctx context.Context) (Broker, func() error, error)

// fakeBroker is the default broker: a fakes.Publisher, which keeps every publication it is given
// (no de-duplication; of each, the channel and event ID the run reads) and can be disconnected.
type fakeBroker struct{ *fakes.Publisher }

var _ Broker = fakeBroker{}

func newFakeBroker() fakeBroker { return fakeBroker{fakes.NewPublisher(fakes.KeepIDs())} }

// Held returns the fake's publications, in order.
func (b fakeBroker) Held(context.Context) ([]Publication, error) {
	log := b.Log()
	ps := make([]Publication, len(log))
	for i, p := range log {
		ps[i] = Publication{Event: p.EventID, Channel: p.Channel}
	}
	return ps, nil
}

// DedupHits returns the repeats the fake recognised: none, as it does not de-duplicate.
func (b fakeBroker) DedupHits() int64 { return int64(len(b.Publisher.DedupHits())) }

// Drop disconnects the fake.
func (b fakeBroker) Drop(context.Context) error { b.Disconnect(); return nil }

// Restore reconnects the fake.
func (b fakeBroker) Restore(context.Context) error { b.Reconnect(); return nil }

// BrokerName is the broker's name for reports: "fakes" when the run publishes to the fake one.
func (c Config) BrokerName() string {
	if c.Broker == "" {
		return "fakes"
	}
	return c.Broker
}

// brokerReported reports whether the run's report has a broker section: on a real broker, or
// with broker drops. A default run's report stays as it was.
func (c Config) brokerReported() bool { return c.OpenBroker != nil || len(c.BrokerDrops) > 0 }

// ParseBrokerDrops parses the publications at which the broker connection drops, "n/n/...",
// counted from 1 over the whole run; "" and "none" are no drops. Visits must be distinct.
func ParseBrokerDrops(s string) ([]int, error) {
	if s == "" || s == "none" {
		return nil, nil
	}
	var ns []int
	for v := range strings.SplitSeq(s, "/") {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("want publications counted from 1, n/n/..., got %q", v)
		}
		ns = append(ns, n)
	}
	if err := validateDrops(ns); err != nil {
		return nil, err
	}
	return ns, nil
}

func validateDrops(ns []int) error {
	seen := map[int]bool{}
	for _, n := range ns {
		switch {
		case n < 1:
			return fmt.Errorf("want publications counted from 1, got %d", n)
		case seen[n]:
			return fmt.Errorf("publication %d listed twice", n)
		}
		seen[n] = true
	}
	return nil
}

// FormatBrokerDrops renders broker drops as ParseBrokerDrops reads them ("none" for no drops).
func FormatBrokerDrops(ns []int) string {
	if len(ns) == 0 {
		return "none"
	}
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, "/")
}

// brokerRun is the run's broker and what the run keeps about it.
type brokerRun struct {
	Broker
	close  func() error  // nil for the fake broker
	faults *brokerFaults // the broker drops (Config.BrokerDrops), nil without them
	held   []Publication // what the broker held after the run
	timed  bool          // publications are timed: the report has a broker section
}

// brokerFaults is the run's broker drops (Config.BrokerDrops): the n-th publication of the run,
// counted over every goroutine, finds the connection dropped, and the connection comes back once
// that publication has failed. Publications of other goroutines meanwhile fail too.
type brokerFaults struct {
	at     map[int64]bool
	visits atomic.Int64
	left   atomic.Int64 // listed drops still to come
	fired  atomic.Int64
	down   atomic.Bool // a restore failed: the next publication tries again

	mu  sync.Mutex // one drop or restore at a time
	err error      // the first error of a drop or a restore, guarded by mu
}

func newBrokerFaults(ns []int) *brokerFaults {
	if len(ns) == 0 {
		return nil
	}
	f := &brokerFaults{at: map[int64]bool{}}
	for _, n := range ns {
		f.at[int64(n)] = true
	}
	f.left.Store(int64(len(ns)))
	return f
}

// spent reports whether every listed drop has come.
func (f *brokerFaults) spent() bool { return f == nil || f.left.Load() == 0 }

// publish publishes through the run's broker, dropping the connection first when this is a
// listed publication (and the faults are on), and restoring it once the publication has failed.
func (r *run) publish(ctx context.Context, channel string, e domain.Event) error {
	f := r.broker.faults
	if f == nil {
		return r.broker.Publish(ctx, channel, e)
	}
	if f.down.Load() { // an earlier restore failed: the outage goes on until one succeeds
		f.mu.Lock()
		if f.down.Load() {
			f.restore(ctx, r.broker.Broker)
		}
		f.mu.Unlock()
	}
	n := f.visits.Add(1)
	if !f.at[n] || r.faultsOff.Load() {
		return r.broker.Publish(ctx, channel, e)
	}
	f.left.Add(-1)
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := r.broker.Drop(ctx); err != nil {
		f.keep(fmt.Errorf("drop the broker connection at publication %d: %w", n, err))
		return r.broker.Publish(ctx, channel, e)
	}
	f.fired.Add(1)
	err := r.broker.Publish(ctx, channel, e)
	f.restore(ctx, r.broker.Broker)
	return err
}

// restore brings the connection back; on failure it stays down, and the next publication tries
// again. The caller holds f.mu.
func (f *brokerFaults) restore(ctx context.Context, b Broker) {
	err := b.Restore(ctx)
	f.down.Store(err != nil)
	if err != nil {
		f.keep(fmt.Errorf("restore the broker connection: %w", err))
	}
}

// keep records err if it is the first. The caller holds f.mu.
func (f *brokerFaults) keep(err error) {
	if f.err == nil {
		f.err = err
	}
}

// BrokerReport is what the broker did in a run, from the history's publications and from what
// the broker holds after it. Publish latency counts every acknowledged publication, warm-up and
// drain included; Lost and Duplicated judge the broker itself: an event whose publication was
// acknowledged must be held, and held once.
type BrokerReport struct {
	Name         string `json:"name"`         // "fakes", "nats" (embedded) or the nats:// URL
	Publish      Dist   `json:"publish"`      // time inside Publish, of the acknowledged publications
	Publications int64  `json:"publications"` // calls to Publish
	Errors       int64  `json:"errors"`       // of them, failed (the connection was down, the ack was lost)
	Acknowledged int    `json:"acknowledged"` // events with at least one acknowledged publication
	// Resent counts the acknowledged publications of an event acknowledged before: the re-sends
	// of a relay that crashed between publishing a row and marking it done, a retried handler.
	Resent int `json:"resent"`
	// DedupHits is the broker's own count of the publications it acknowledged as duplicates and
	// did not store (JetStream's PubAck.Duplicate); a broker that de-duplicates within its window
	// drops every re-send: DedupHits equals Resent.
	DedupHits int64 `json:"dedup_hits"`
	Held      int   `json:"held"` // messages the broker holds after the run
	// Duplicated counts the surplus messages: an event ID the broker stored more than once.
	Duplicated int `json:"duplicated"`
	// Lost counts the events whose publication was acknowledged and that the broker does not hold.
	Lost  int `json:"lost"`
	Drops int `json:"drops"` // connection drops that fired (Config.BrokerDrops)
}

// brokerReport counts what the broker did, from the history (h.Published is what the broker
// holds).
func (r *run) brokerReport(h *History) *BrokerReport {
	if !r.cfg.brokerReported() {
		return nil
	}
	b := &BrokerReport{Name: r.cfg.BrokerName(), DedupHits: r.broker.DedupHits(), Held: len(h.Published)}
	if f := r.broker.faults; f != nil {
		b.Drops = int(f.fired.Load())
	}
	lat := NewHistogram()
	acked := map[string]int{}
	for _, s := range h.Sends {
		if !s.Publish {
			continue
		}
		b.Publications++
		if s.Err {
			b.Errors++
		}
		if !s.Accepted {
			continue
		}
		lat.Record(s.Took)
		acked[s.Event]++
	}
	b.Publish = lat.Dist()
	held := map[string]int{}
	for _, p := range h.Published {
		held[p.Event]++
	}
	for id, n := range acked {
		b.Acknowledged++
		b.Resent += n - 1
		if held[id] == 0 {
			b.Lost++
		}
	}
	for _, n := range held {
		b.Duplicated += n - 1
	}
	return b
}

// InvBrokerKeeps is the invariant of a run with a broker report: every event whose publication
// the broker acknowledged is held by it.
const InvBrokerKeeps = "every acknowledged publication held by the broker"

func checkBroker(b *BrokerReport) Invariant {
	v := newVerdict(InvBrokerKeeps)
	if b.Lost > 0 {
		v.Fail("%d events acknowledged by the broker %s are not in it", b.Lost, b.Name)
	}
	return v.Invariant
}

// openBroker opens the run's broker: cfg.OpenBroker's, or the fake one.
func (r *run) openBroker(ctx context.Context) error {
	r.broker.timed = r.cfg.brokerReported()
	if r.cfg.OpenBroker == nil {
		r.broker.Broker = newFakeBroker()
		return nil
	}
	b, closeBroker, err := r.cfg.OpenBroker(ctx)
	if err != nil {
		return fmt.Errorf("open the broker %s: %w", r.cfg.BrokerName(), err)
	}
	r.broker.Broker, r.broker.close = b, closeBroker
	return nil
}

// readBroker reads what the broker holds into r.held, and reports the fault knob's first error.
func (r *run) readBroker(ctx context.Context) error {
	held, err := r.broker.Held(ctx)
	if err != nil {
		return fmt.Errorf("read the broker %s: %w", r.cfg.BrokerName(), err)
	}
	r.broker.held = held
	if f := r.broker.faults; f != nil {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.err != nil {
			return fmt.Errorf("the fault knob of the broker %s: %w", r.cfg.BrokerName(), f.err)
		}
	}
	return nil
}

package fleet

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/httpapi"
	"github.com/stockbus/stockbus/nats"
	"github.com/stockbus/stockbus/postgres"
	"github.com/stockbus/stockbus/service"
	"github.com/stockbus/stockbus/sim"
	"github.com/stockbus/stockbus/sim/httpload"
	"github.com/stockbus/stockbus/smtp"
	"github.com/stockbus/stockbus/smtp/smtptest"
)

// Outcome is what a client learned of its request.
type Outcome int

// The outcomes of a request.
const (
	// Unknown: a transport error (the instance was killed with the request in flight, or was
	// down when it was sent). It may or may not have committed: the event log decides.
	Unknown Outcome = iota
	// Allocated: 201, the order holds a batch.
	Allocated
	// OutOfStock: 400 out of stock, after the OutOfStock event committed.
	OutOfStock
	// Warned: answered with a warning: committed, but handling its events failed.
	Warned
	// Failed: another status (a 503 after the unit of work gave up): nothing committed.
	Failed
)

var outcomeNames = [...]string{"unknown", "allocated", "out-of-stock", "warned", "failed"}

// String names the outcome.
func (o Outcome) String() string {
	if int(o) < len(outcomeNames) {
		return outcomeNames[o]
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// Request is one order's request as the client saw it: the client-side history.
type Request struct {
	Order    string
	Instance string // the instance's name
	Life     int    // which life of the instance it was sent to, from 1
	Outcome  Outcome
	Err      string        // the batch reference for Allocated, the error otherwise
	Latency  time.Duration // from the send (a closed model: the intended start) to the answer or error
}

// Event is a committed event and the request that caused it.
type Event struct {
	ID, Type string
	Request  Request
}

// Report is the accounting of a run: the event log (what committed), the sink and the stream
// (what was delivered), and the client-side history (what the callers were told).
type Report struct {
	Strategy                             string
	Instances, Orders, Stock             int
	Killed                               string // the instance killed with SIGKILL
	KilledAt                             int    // before the order with this index was handed out
	HeldAtKill                           int    // mail transactions the sink held when the victim was killed
	VictimInFlight                       int    // requests in flight to the victim when it was killed
	Requests                             []Request
	Elapsed                              time.Duration  // from the first order sent to the last answer, the kill included
	Committed                            map[string]int // logged events by type
	LogRepeats                           int            // event IDs logged more than once: 0 when IDs are unique
	Allocations                          int            // allocation rows in the database
	Delivered                            map[string]int // committed events delivered at least once, by type: OutOfStock by mail, Allocated on the stream
	Repeats                              map[string]int // deliveries beyond an event's first: mails the sink read again (and dropped), stream copies
	Lost                                 []Event        // committed, never delivered
	Phantoms                             []string       // delivered, never committed (must be none)
	Mismatches                           []string       // answers the log contradicts (must be none)
	UnknownCommitted, UnknownUncommitted int            // requests of unknown outcome whose order the log holds, and does not
	Pending                              int            // outbox rows neither done nor parked at the end
	// Server merges every life's GET /stats: the killed life's taken just before the kill, the
	// others' at the end (after the drain). Nil, with StatsError set, when one could not be read.
	Server     *httpload.Server
	StatsError string
}

// mergeStats merges the lives' stats into Server, or says in StatsError why it cannot.
func (r *Report) mergeStats(stats []httpapi.Stats, errs []error) {
	if len(errs) > 0 {
		r.StatsError = "server stats: " + errors.Join(errs...).Error()
		return
	}
	srv, err := httpload.MergeStats(stats)
	if err != nil {
		r.StatsError = "server stats: " + err.Error()
		return
	}
	r.Server = srv
}

// Outcomes counts the requests by outcome.
func (r *Report) Outcomes() map[Outcome]int {
	n := map[Outcome]int{}
	for _, q := range r.Requests {
		n[q.Outcome]++
	}
	return n
}

// Latency returns the histogram of the latencies of the answered requests (Unknown left out: the
// kill cut them short).
func (r *Report) Latency() *sim.Histogram {
	h := sim.NewHistogram()
	for _, q := range r.Requests {
		if q.Outcome != Unknown {
			h.Record(q.Latency)
		}
	}
	return h
}

// account fills the report from the database, the sink and the stream, once every instance has
// stopped.
func (r *Report) account(ctx context.Context, store *postgres.Store, sink *smtptest.Server, reader *nats.Publisher) error {
	log, err := store.EventLog(ctx)
	if err != nil {
		return err
	}
	if err := store.Pool().QueryRow(ctx, "SELECT COUNT(*) FROM allocations").Scan(&r.Allocations); err != nil {
		return fmt.Errorf("count allocations: %w", err)
	}
	if r.Pending, err = Pending(ctx, store); err != nil {
		return err
	}
	deliveries, err := Deliveries(ctx, sink, reader)
	if err != nil {
		return err
	}

	byOrder := map[string]Request{}
	for _, q := range r.Requests {
		byOrder[q.Order] = q
	}
	r.Committed, r.Delivered, r.Repeats = map[string]int{}, map[string]int{}, map[string]int{}
	logged := map[string]bool{}
	events := map[string][]postgres.LoggedEvent{} // by order
	for _, l := range log {
		id := l.Event.Identity().ID
		if logged[id] {
			r.LogRepeats++
			continue
		}
		logged[id] = true
		r.Committed[l.Type]++
		order := OrderOf(l.Event)
		events[order] = append(events[order], l)
		switch n := deliveries[id]; {
		case n > 0:
			r.Delivered[l.Type]++
			r.Repeats[l.Type] += n - 1
		case l.Type == "OutOfStock" || l.Type == "Allocated":
			r.Lost = append(r.Lost, Event{ID: id, Type: l.Type, Request: byOrder[order]})
		}
	}
	for id := range deliveries {
		if !logged[id] {
			r.Phantoms = append(r.Phantoms, id)
		}
	}
	sort.Strings(r.Phantoms)

	for _, q := range r.Requests {
		got := events[q.Order]
		want := ""
		switch q.Outcome {
		case Unknown:
			if len(got) > 0 {
				r.UnknownCommitted++
			} else {
				r.UnknownUncommitted++
			}
			continue
		case Allocated:
			want = "Allocated"
		case OutOfStock:
			want = "OutOfStock"
		case Warned:
			if len(got) == 0 {
				r.Mismatches = append(r.Mismatches, fmt.Sprintf("%s answered committed (%s), nothing logged", q.Order, q.Err))
			}
			continue
		case Failed:
			if len(got) > 0 {
				r.Mismatches = append(r.Mismatches, fmt.Sprintf("%s answered %s, yet %s logged", q.Order, q.Err, got[0].Type))
			}
			continue
		}
		switch {
		case len(got) != 1 || got[0].Type != want:
			r.Mismatches = append(r.Mismatches, fmt.Sprintf("%s answered %v, logged %s", q.Order, q.Outcome, types(got)))
		case want == "Allocated" && got[0].Event.(domain.Allocated).BatchRef != q.Err:
			r.Mismatches = append(r.Mismatches, fmt.Sprintf("%s answered batch %s, logged %s", q.Order, q.Err, got[0].Event.(domain.Allocated).BatchRef))
		}
	}
	for order, got := range events {
		if len(got) > 1 {
			r.Mismatches = append(r.Mismatches, fmt.Sprintf("%s logged %s: more than one event for one request", order, types(got)))
		}
	}
	sort.Strings(r.Mismatches)
	return nil
}

// round rounds d to 3 significant digits, as the histograms tell values apart.
func round(d time.Duration) time.Duration {
	unit := time.Duration(1)
	for v := d; v >= 1000; v /= 10 {
		unit *= 10
	}
	return d.Round(unit)
}

// OrderOf returns the order an event is about, or "" for an event about none.
func OrderOf(e domain.Event) string {
	switch e := e.(type) {
	case domain.Allocated:
		return e.OrderID
	case domain.OutOfStock:
		return e.OrderID
	case domain.Deallocated:
		return e.OrderID
	}
	return ""
}

func types(events []postgres.LoggedEvent) string {
	var t []string
	for _, e := range events {
		t = append(t, e.Type)
	}
	return "[" + strings.Join(t, " ") + "]"
}

// String prints the accounting in a few lines.
func (r *Report) String() string {
	var b strings.Builder
	o := r.Outcomes()
	fmt.Fprintf(&b, "strategy %s: %d instances, %d orders of 1 for a batch of %d, %s killed (SIGKILL) before order %d and restarted\n",
		r.Strategy, r.Instances, r.Orders, r.Stock, r.Killed, r.KilledAt)
	fmt.Fprintf(&b, "  at the kill: %d mails held at the sink, %d requests in flight to %s\n", r.HeldAtKill, r.VictimInFlight, r.Killed)
	lat := r.Latency()
	fmt.Fprintf(&b, "  client: %d requests in %v (%.0f/s); latency of the answered from each order's intended start (closed: when a worker took it) p50 %v, p99 %v, p99.9 %v, max %v\n",
		len(r.Requests), r.Elapsed.Round(time.Millisecond), float64(len(r.Requests))/r.Elapsed.Seconds(),
		round(lat.Quantile(50)), round(lat.Quantile(99)), round(lat.Quantile(99.9)), round(lat.Dist().Max))
	switch s := r.Server; {
	case s != nil:
		fmt.Fprintf(&b, "  server, %d lives merged (%s): %d requests p50 %v, p99 %v; dispatch after commit p50 %v, p99 %v, %.1f%% of request time; relayed %d handler calls p50 %v, p99 %v\n",
			len(s.Instances), strings.Join(s.Instances, ", "), s.Requests.Count, round(s.Requests.P50), round(s.Requests.P99),
			round(s.Dispatch.P50), round(s.Dispatch.P99), 100*s.DispatchShare, s.Relayed.Count, round(s.Relayed.P50), round(s.Relayed.P99))
	default:
		fmt.Fprintf(&b, "  %s\n", r.StatsError)
	}
	fmt.Fprintf(&b, "  answers: %d allocated, %d out of stock, %d warned, %d failed, %d unknown (%d of them committed, by the event log)\n",
		o[Allocated], o[OutOfStock], o[Warned], o[Failed], o[Unknown], r.UnknownCommitted)
	fmt.Fprintf(&b, "  event log: %d Allocated, %d OutOfStock (%d allocation rows; %d IDs logged twice)\n",
		r.Committed["Allocated"], r.Committed["OutOfStock"], r.Allocations, r.LogRepeats)
	lost := map[string]int{}
	for _, e := range r.Lost {
		lost[e.Type]++
	}
	fmt.Fprintf(&b, "  mail (OutOfStock): %d delivered, %d lost, %d repeats dropped by the sink\n",
		r.Delivered["OutOfStock"], lost["OutOfStock"], r.Repeats["OutOfStock"])
	fmt.Fprintf(&b, "  stream (Allocated): %d delivered, %d lost, %d stored twice\n",
		r.Delivered["Allocated"], lost["Allocated"], r.Repeats["Allocated"])
	fmt.Fprintf(&b, "  phantoms %d, mismatches %d, outbox pending %d", len(r.Phantoms), len(r.Mismatches), r.Pending)
	return b.String()
}

// Pending counts the outbox rows neither done nor dead: none once the relays drained.
func Pending(ctx context.Context, store *postgres.Store) (int, error) {
	var n int
	if err := store.Pool().QueryRow(ctx, "SELECT COUNT(*) FROM outbox WHERE NOT done AND NOT dead").Scan(&n); err != nil {
		return 0, fmt.Errorf("count pending outbox rows: %w", err)
	}
	return n, nil
}

// Deliveries counts, by event ID, the copies of each event that reached its receiver: the mails
// the sink read (the repeats it dropped by Message-ID too; refused ones not) and the messages of
// the Allocated stream.
func Deliveries(ctx context.Context, sink *smtptest.Server, reader *nats.Publisher) (map[string]int, error) {
	deliveries := map[string]int{}
	for _, m := range sink.Messages() {
		if m.Outcome == smtptest.Refused {
			continue
		}
		id, err := smtp.EventID(m.MessageID, smtp.DefaultDomain)
		if err != nil {
			return nil, fmt.Errorf("mail %d: %w", m.Index, err)
		}
		deliveries[id]++
	}
	published, err := reader.Held(ctx, service.AllocatedChannel)
	if err != nil {
		return nil, fmt.Errorf("read the stream: %w", err)
	}
	for _, e := range published {
		deliveries[e.Identity().ID]++
	}
	return deliveries, nil
}

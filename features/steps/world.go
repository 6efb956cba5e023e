package steps

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/fakes"
	"github.com/stockbus/stockbus/service"
)

// today is the date that ETAs such as "arriving tomorrow" count from. It is fixed so runs replay.
var today = time.Date(2026, time.March, 2, 0, 0, 0, 0, time.UTC)

// etas are the arrival times a batch step may name, by the words of its eta column.
var etas = map[string]time.Time{
	"warehouse": {},
	"today":     today,
	"tomorrow":  today.AddDate(0, 0, 1),
	"later":     today.AddDate(0, 0, 11),
}

// eta returns the arrival time that words such as "in the warehouse" or "arriving later" name.
func eta(words string) time.Time {
	return etas[strings.TrimPrefix(strings.TrimPrefix(words, "arriving "), "in the ")]
}

type worldKey struct{}

// Store is what the step library needs of the store a scenario's stack runs on, beyond
// service.Store: a hook into every commit, a way to play another writer, and read-only snapshots
// for the Then steps. fakes.Store is one; a real store (SQLite, Postgres) plugged into the steps
// through RegisterOn must offer the same.
type Store interface {
	service.Store
	// SetBeforeCommit sets a hook that runs at the start of every commit attempt, on the
	// committing goroutine, before the store checks for conflicts; nil removes it. The steps count
	// commit attempts here, sample "before the commit" here, and hold writers here to force an
	// interleaving.
	SetBeforeCommit(h service.CommitHook)
	// Touch changes the product's revision without changing it, as another writer's commit would,
	// and reports whether the product exists.
	Touch(sku string) bool
	// Product returns a copy of the stored product, which the caller may change freely.
	Product(sku string) (*domain.Product, bool)
	// SKUs returns the skus of the stored products, sorted.
	SKUs() []string
	// Revision returns the product's store revision, which every commit that stores it changes.
	Revision(sku string) uint64
}

var _ Store = (*fakes.Store)(nil)

// world is the state of one scenario: its own stack on fakes, how the scenario configured it, and
// what its When steps did. Steps run one at a time, so only what the stack's goroutines touch
// (the journal, the commit hook's settings, the counters) is guarded.
type world struct {
	store     Store
	storeName string           // names the store in the failure report ("fakes", "sqlite", "postgres")
	release   func() error     // releases the store after the scenario; nil when there is nothing to release
	mailer    *fakes.Mailer    // captures every mail delivered
	down      *fakes.Mailer    // fails every send; the stack uses it instead of mailer once the mailer is down
	publisher *fakes.Publisher // captures what the stack publishes to other systems (Allocated events)

	// What the stack is built from. A change sets uow to nil, and the next step that needs the
	// stack builds it again on the same store and mailer.
	mailerDown bool
	policy     service.ErrorPolicy
	retries    int
	handlers   []handlerSpec
	uow        *service.Transactor
	naming     string // the handler being subscribed, read by record; "" for the stack's own
	unnamed    int

	ids     atomic.Uint64
	journal journal
	trace   trace // every message the bus handled, commands included, in the order it finished them

	hook    hookSettings
	commits atomic.Int64 // commit attempts, counted by the store's before-commit hook

	lone map[string]*domain.Batch // batches on their own, outside any product and store

	// What the When steps did. Bus and mail checks count from the first When step on: what
	// Given steps cause only sets the stage.
	started                bool
	fromDelivery, fromMail int
	fromTrace, fromPublish int
	fromCommit             int64
	action                 string
	before                 string // the store before the last When step
	atStart                *progress
	outcomes               []outcome
	err                    error

	// The first commit attempt since the last When step began, sampled by the store's
	// before-commit hook on the committing goroutine.
	commitMu sync.Mutex
	atCommit *progress
}

// progress is how far the bus and the mailer had got at some moment.
type progress struct{ deliveries, mails int }

// outcome is what one allocation returned.
type outcome struct {
	order, sku string
	qty        int
	ref        string
	err        error
}

// hookSettings say how the store's before-commit hook interferes with commits. Given steps set
// them; they take effect from the first When step on, so they never disturb the stage.
type hookSettings struct {
	mu      sync.Mutex
	touch   string // sku that "another writer" changes before every commit that saw it
	holdSKU string // sku whose first holdN loaders are held until all have loaded
	holdN   int

	touching string            // touch, once armed
	meet     *fakes.Rendezvous // holds the loaders of holdSKU, once armed
}

func newWorld(store Store) *world {
	w := &world{
		store:     store,
		mailer:    fakes.NewMailer(),
		down:      fakes.NewMailer(fakes.WithErrorRate(1)),
		publisher: fakes.NewPublisher(),
		retries:   service.DefaultRetries,
		lone:      map[string]*domain.Batch{},
	}
	w.store.SetBeforeCommit(w.beforeCommit)
	return w
}

func from(ctx context.Context) *world {
	w, ok := ctx.Value(worldKey{}).(*world)
	if !ok {
		panic("steps: the context holds no scenario state: install the steps with steps.Register")
	}
	return w
}

// close stops the store's hook from holding anything back, so that a failed scenario's writers
// cannot stay blocked, and releases the store.
func (w *world) close() error {
	w.store.SetBeforeCommit(nil)
	if w.release == nil {
		return nil
	}
	return w.release()
}

func (w *world) beforeCommit(ctx context.Context, skus []string) {
	w.commits.Add(1)
	w.commitMu.Lock()
	if w.atCommit == nil {
		w.atCommit = w.progress()
	}
	w.commitMu.Unlock()
	w.hook.mu.Lock()
	touch, meet, hold := w.hook.touching, w.hook.meet, w.hook.holdSKU
	w.hook.mu.Unlock()
	if touch != "" && slices.Contains(skus, touch) {
		w.store.Touch(touch)
	}
	if meet != nil && slices.Contains(skus, hold) {
		meet.Wait(ctx, skus)
	}
}

// ctx gives the stack a context whose units of work number events from one counter for the whole
// scenario, so IDs stay unique when the stack is rebuilt.
func (w *world) ctx(ctx context.Context) context.Context {
	return service.WithIDs(ctx, w.nextID)
}

func (w *world) nextID() string { return "ev-" + strconv.FormatUint(w.ids.Add(1), 10) }

func (w *world) note(name string) Note { return Note{Meta: domain.Meta{ID: w.nextID()}, Name: name} }

// stack returns the scenario's unit of work, building it on first use: service.Bootstrap wires
// the handlers of every command and event (the out-of-stock mail, the publication of Allocated on
// the scenario's publisher, the reallocation of Deallocated lines), then the scenario's handlers
// are subscribed in the order the scenario gave them. A middleware records every handler call in
// the journal, and the bus's trace every message it handled.
func (w *world) stack() *service.Transactor {
	if w.uow != nil {
		return w.uow
	}
	var mailer service.Mailer = w.mailer
	if w.mailerDown {
		mailer = w.down
	}
	w.unnamed = 0
	uow := service.Bootstrap(w.store, mailer,
		service.WithRetries(w.retries),
		service.WithPublisher(w.publisher),
		service.WithBusOptions(service.WithErrorPolicy(w.policy), service.WithMiddleware(w.record),
			service.WithTrace(w.trace.add)))
	bus := uow.Bus()
	for _, h := range w.handlers {
		w.naming = h.name
		h.subscribe(w, bus, uow)
	}
	w.naming = ""
	w.uow = uow
	return uow
}

// reconfigure makes the next step that needs the stack build it again.
func (w *world) reconfigure() { w.uow = nil }

// record is the bus middleware that journals every handler call. It is applied once per
// subscription, while the subscription is made, which is how it learns the handler's name.
func (w *world) record(next service.HandlerFunc) service.HandlerFunc {
	name := w.naming
	if name == "" {
		w.unnamed++
		name = fmt.Sprintf("stack handler %d", w.unnamed)
	}
	return func(ctx context.Context, e domain.Event) error {
		i := w.journal.start(name, e)
		err := next(ctx, e)
		w.journal.finish(i, err)
		return err
	}
}

// begin starts a When step: it marks where the checks count from and arms the interference the
// Given steps asked for.
func (w *world) begin(action string) {
	if !w.started {
		w.started = true
		w.fromDelivery, w.fromMail, w.fromCommit = w.journal.len(), w.mailer.Len(), w.commits.Load()
		w.fromTrace, w.fromPublish = w.trace.len(), len(w.publisher.Published())
		w.hook.mu.Lock()
		w.hook.touching = w.hook.touch
		if w.hook.holdN > 0 {
			w.hook.meet = fakes.NewRendezvous(w.hook.holdN)
		}
		w.hook.mu.Unlock()
	}
	w.action = action
	w.before = w.storeState(false)
	w.atStart = w.progress()
	w.commitMu.Lock()
	w.atCommit = nil
	w.commitMu.Unlock()
	w.outcomes = nil
	w.err = nil
}

func (w *world) progress() *progress {
	return &progress{deliveries: w.journal.len(), mails: w.mailer.Len()}
}

// allocate runs one allocation through the service layer and records its outcome.
func (w *world) allocate(ctx context.Context, order, sku string, qty int) outcome {
	o := outcome{order: order, sku: sku, qty: qty}
	o.ref, o.err = service.Allocate(w.ctx(ctx), w.stack(), order, sku, qty)
	return o
}

// mails returns the mails delivered since the first When step.
func (w *world) mails() []service.Mail { return w.mailer.Mails()[w.fromMail:] }

// published returns what the stack published since the first When step.
func (w *world) published() []fakes.Published { return w.publisher.Published()[w.fromPublish:] }

// traced returns the messages the bus handled since the first When step.
func (w *world) traced() []traced { return w.trace.since(w.fromTrace) }

// deliveries returns the handler calls since the first When step.
func (w *world) deliveries() []delivery { return w.journal.since(w.fromDelivery) }

// handled returns the events the bus handled since the first When step, each once, in the order
// of their first handler call.
func (w *world) handled() []domain.Event {
	var events []domain.Event
	seen := map[string]bool{}
	for _, d := range w.deliveries() {
		if id := d.event.Identity().ID; !seen[id] {
			seen[id] = true
			events = append(events, d.event)
		}
	}
	return events
}

// product returns the stored product that holds the batch, and the batch.
func (w *world) batch(ref string) (*domain.Product, *domain.Batch, error) {
	for _, sku := range w.store.SKUs() {
		p, _ := w.store.Product(sku)
		if b, ok := p.Batch(ref); ok {
			return p, b, nil
		}
	}
	return nil, nil, fmt.Errorf("no batch %q is stored (stored: %s)", ref, w.storeState(false))
}

// held returns "order@batch" for every line the stored product of sku holds, sorted.
func (w *world) held(sku string) []string {
	p, ok := w.store.Product(sku)
	if !ok {
		return nil
	}
	var lines []string
	for _, b := range p.Batches {
		for _, l := range b.Lines() {
			lines = append(lines, l.OrderID+"@"+b.Reference)
		}
	}
	slices.Sort(lines)
	return lines
}

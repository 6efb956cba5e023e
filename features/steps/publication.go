package steps

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/cucumber/godog"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/service"
)

// publicationSteps are the steps about publishing events: the bus's error policy, the handlers a
// scenario adds, units of work that commit, fail or panic, and what the bus handled and the
// stack published.
var publicationSteps = []Def{
	{
		Group: "The stack", Keyword: "*", Text: `the bus [propagates|collects] handler errors`,
		Meaning: "Error policy of the bus. propagates (the default, the book's chapter 8): the first handler error stops the call. collects (chapter 10): every handler runs and all errors come back together." + stageUnderWhen,
		Example: `Given the bus collects handler errors`,
		Func:    givenPolicy,
	},
	{
		Group: "The stack", Keyword: "*", Text: `a [working|failing|panicking] handler "<name>" for ` + eventChoice + ` events`,
		Meaning: "Subscribes a handler after the ones already there (the stack's own come first: the out-of-stock mail, the publication of Allocated, the reallocation of a Deallocated line). A working one does nothing, a failing one returns an error, a panicking one panics. Note is an event that exists only in these specs." + stageUnderWhen,
		Example: `Given a failing handler "audit" for OutOfStock events`,
		Func:    givenHandler,
	},
	{
		Group: "The stack", Keyword: "*", Text: `a handler "<name>" for Note events that raises:`,
		Meaning: "Subscribes a handler that, on each note named in column on, hands the bus the notes listed in column raises (comma separated), in that order." + stageUnderWhen,
		Example: "Given a handler \"relay\" for Note events that raises:\n| on | raises |\n| A  | B, C   |",
		Func:    givenRaisingHandler,
	},
	{
		Group: "The stack", Keyword: "*", Text: `a handler "<name>" for OutOfStock events that looks at the store`,
		Meaning: "Subscribes a handler that notes, each time it runs, which orders the store holds for the event's sku." + stageUnderWhen,
		Example: `Given a handler "witness" for OutOfStock events that looks at the store`,
		Func:    givenWitness,
	},
	{
		Group: "Actions", Keyword: "When", Text: `one unit of work allocates:`,
		Meaning: "Allocates every line of the table (columns order, qty, sku) in one unit of work, loading each product when first named, and commits; out of stock does not stop it.",
		Example: "When one unit of work allocates:\n| order | qty | sku |\n| b1 | 5 | B |",
		Func:    whenUnitOfWork,
	},
	{
		Group: "Actions", Keyword: "When", Text: `one unit of work allocates, then [fails|panics]:`,
		Meaning: "Like the step above, but the work then returns an error or panics instead of letting the unit of work commit.",
		Example: "When one unit of work allocates, then fails:\n| order | qty | sku |\n| o1 | 1 | LAMP |",
		Func:    whenUnitOfWorkFails,
	},
	{
		Group: "Actions", Keyword: "When", Text: `a later unit of work loads "<sku>" and commits without changes`,
		Meaning: "Runs a unit of work that only loads the product.",
		Example: `When a later unit of work loads "LAMP" and commits without changes`,
		Func:    whenLoadOnly,
	},
	{
		Group: "Actions", Keyword: "When", Text: `the bus handles note "<name>"`,
		Meaning: "Hands one Note to the bus and keeps the error, if any.",
		Example: `When the bus handles note "A"`,
		Func:    whenBusHandles,
	},
	{
		Group: "The store", Keyword: "Then", Text: `the product "<sku>" as loaded from the store has no pending events`,
		Meaning: "A unit of work that loads the product gets it with no events waiting to be published: publishing took them all, and loading records none.",
		Example: `Then the product "LAMP" as loaded from the store has no pending events`,
		Func:    thenLoadedNoEvents,
	},
	{
		Group: "The store", Keyword: "Then", Text: `a new product "<sku>" has no pending events`,
		Meaning: "A product just made (the domain's NewProduct, with no batches, not stored) has no events waiting to be published.",
		Example: `Then a new product "LAMP" has no pending events`,
		Func:    thenNewProductNoEvents,
	},
	{
		Group: "Publications", Keyword: "Then", Text: `nothing was published`,
		Meaning: "The stack published nothing to other systems from the first When step on.",
		Example: `Then nothing was published`,
		Func:    thenNothingPublished,
	},
	{
		Group: "Publications", Keyword: "Then", Text: `these were published, in this order:`,
		Meaning: "What the stack published to other systems from the first When step on (the book's chapter 11 sends Allocated to a broker), in order. Columns: channel, and event as \"the bus handled, in this order\" writes it.",
		Example: "Then these were published, in this order:\n| channel | event |\n| line_allocated | allocated: LAMP, order o1, batch b1 |",
		Func:    thenPublished,
	},
	{
		Group: "The bus", Keyword: "Then", Text: `the bus handled, in this order:`,
		Meaning: "The events the bus handled from the first When step on, each once, in the order it first called a handler with them. One column, event: \"out of stock: SKU, order ID\", \"allocated: SKU, order ID, batch REF\", \"deallocated: SKU, order ID\" or \"note NAME\".",
		Example: "Then the bus handled, in this order:\n| event |\n| out of stock: B, order b1 |",
		Func:    thenHandledInOrder,
	},
	{
		Group: "The bus", Keyword: "Then", Text: `the bus handled no events`,
		Meaning: "No handler was called from the first When step on.",
		Example: `Then the bus handled no events`,
		Func:    thenHandledNone,
	},
	{
		Group: "The bus", Keyword: "Then", Text: `the bus handled <n> ` + eventChoice + ` [event|events]`,
		Meaning: "Counts the distinct events of that type the bus handled from the first When step on.",
		Example: `Then the bus handled 500 OutOfStock events`,
		Func:    thenHandledCount,
	},
	{
		Group: "The bus", Keyword: "Then", Text: `every event was handled once by each of its handlers`,
		Meaning: "Some event was handled, and no handler was called twice with the same event.",
		Example: `Then every event was handled once by each of its handlers`,
		Func:    thenHandledOnce,
	},
	{
		Group: "The bus", Keyword: "Then", Text: `handler "<name>" was called <n> [time|times]`,
		Meaning: "Counts the calls of a handler the scenario subscribed, from the first When step on.",
		Example: `Then handler "second" was called 0 times`,
		Func:    thenHandlerCalls,
	},
	{
		Group: "The bus", Keyword: "Then", Text: `nothing was handled before the commit`,
		Meaning: "The last When step made a commit attempt, and when the store began its first one (sampled in the store's before-commit hook), the step had caused no handler call and no mail: events are handed to the bus only after the commit.",
		Example: `Then nothing was handled before the commit`,
		Func:    thenNothingBeforeCommit,
	},
	{
		Group: "The bus", Keyword: "Then", Text: `when handler "<name>" ran, batch "<ref>" already held order "<order>"`,
		Meaning: "Each time the handler that looks at the store ran, the stored batch held that order.",
		Example: `Then when handler "witness" ran, batch "b1" already held order "o1"`,
		Func:    thenWitnessSaw,
	},
}

func givenPolicy(ctx context.Context, policy string) error {
	w := from(ctx)
	w.policy = map[string]service.ErrorPolicy{"propagates": service.Propagate, "collects": service.Collect}[policy]
	w.reconfigure()
	return nil
}

func givenHandler(ctx context.Context, behaviour, name, event string) error {
	kind := map[string]handlerKind{"working": working, "failing": failing, "panicking": panicking}[behaviour]
	return addHandler(ctx, handlerSpec{name: name, event: event, kind: kind})
}

func givenRaisingHandler(ctx context.Context, name string, t *godog.Table) error {
	rows, err := table(t, "on", "raises")
	if err != nil {
		return err
	}
	raises := map[string][]string{}
	for _, r := range rows {
		for n := range strings.SplitSeq(r["raises"], ",") {
			if n = strings.TrimSpace(n); n != "" {
				raises[r["on"]] = append(raises[r["on"]], n)
			}
		}
	}
	return addHandler(ctx, handlerSpec{name: name, event: "Note", kind: raising, raises: raises})
}

func givenWitness(ctx context.Context, name string) error {
	return addHandler(ctx, handlerSpec{name: name, event: "OutOfStock", kind: witnessing})
}

func whenUnitOfWork(ctx context.Context, t *godog.Table) error {
	return unitOfWork(ctx, "commits", t)
}

func whenUnitOfWorkFails(ctx context.Context, ending string, t *godog.Table) error {
	return unitOfWork(ctx, ending, t)
}

// errWork is what the work of "one unit of work allocates, then fails" returns.
var errWork = errors.New("the work failed")

func unitOfWork(ctx context.Context, ending string, t *godog.Table) error {
	lines, err := orderLines(t)
	if err != nil {
		return err
	}
	w := from(ctx)
	var said []string
	for _, l := range lines {
		said = append(said, fmt.Sprintf("%s of %d %s", l.OrderID, l.Qty, l.SKU))
	}
	w.begin("one unit of work allocates " + strings.Join(said, ", ") + ", then " + ending)
	uow := w.stack()
	run := func() (err error) {
		defer func() {
			if r := recover(); r != nil {
				err = fmt.Errorf("%v", r)
			}
		}()
		return uow.Do(w.ctx(ctx), func(ctx context.Context, repo service.Repository) error {
			w.outcomes = w.outcomes[:0] // a retried attempt starts again
			for _, l := range lines {
				p, err := repo.Get(ctx, l.SKU)
				if errors.Is(err, service.ErrNotFound) {
					return fmt.Errorf("%w %s", service.ErrInvalidSKU, l.SKU)
				}
				if err != nil {
					return err
				}
				o := outcome{order: l.OrderID, sku: l.SKU, qty: l.Qty}
				o.ref, o.err = p.Allocate(l)
				w.outcomes = append(w.outcomes, o)
				if o.err != nil && !errors.Is(o.err, domain.ErrOutOfStock) {
					return o.err
				}
			}
			switch ending {
			case "fails":
				return errWork
			case "panics":
				panic("the work panicked")
			}
			return nil
		})
	}
	w.err = run()
	return nil
}

func whenLoadOnly(ctx context.Context, sku string) error {
	w := from(ctx)
	w.begin(fmt.Sprintf("a later unit of work loads %q and commits without changes", sku))
	w.err = w.stack().Do(w.ctx(ctx), func(ctx context.Context, repo service.Repository) error {
		_, err := repo.Get(ctx, sku)
		return err
	})
	return nil
}

func whenBusHandles(ctx context.Context, name string) error {
	w := from(ctx)
	w.begin(fmt.Sprintf("the bus handles note %q", name))
	w.err = w.stack().Bus().Handle(w.ctx(ctx), w.note(name))
	return nil
}

func thenLoadedNoEvents(ctx context.Context, sku string) error {
	w := from(ctx)
	tx, err := w.store.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	p, err := tx.Get(ctx, sku)
	if err != nil {
		return fmt.Errorf("loading product %q: %w", sku, err)
	}
	if len(p.Events) > 0 {
		return fmt.Errorf("product %q as loaded has %d pending events; the first is %s", sku, len(p.Events), describe(p.Events[0]))
	}
	return nil
}

func thenNewProductNoEvents(_ context.Context, sku string) error {
	if p := domain.NewProduct(sku, nil); len(p.Events) > 0 {
		return fmt.Errorf("a new product %q has %d pending events; the first is %s", sku, len(p.Events), describe(p.Events[0]))
	}
	return nil
}

func thenNothingPublished(ctx context.Context) error {
	if pub := from(ctx).published(); len(pub) > 0 {
		return fmt.Errorf("%d events were published, want none; the first is %s on %s", len(pub), describe(pub[0].Event), pub[0].Channel)
	}
	return nil
}

func thenPublished(ctx context.Context, t *godog.Table) error {
	rows, err := table(t, "channel", "event")
	if err != nil {
		return err
	}
	var want, got []string
	for _, r := range rows {
		want = append(want, r["channel"]+": "+r["event"])
	}
	for _, p := range from(ctx).published() {
		got = append(got, p.Channel+": "+describe(p.Event))
	}
	if !slices.Equal(got, want) {
		return fmt.Errorf("published, in this order:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	return nil
}

func thenHandledInOrder(ctx context.Context, t *godog.Table) error {
	rows, err := table(t, "event")
	if err != nil {
		return err
	}
	var want, got []string
	for _, r := range rows {
		want = append(want, r["event"])
	}
	for _, e := range from(ctx).handled() {
		got = append(got, describe(e))
	}
	if !slices.Equal(got, want) {
		return fmt.Errorf("the bus handled, in this order:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	return nil
}

func thenHandledNone(ctx context.Context) error {
	if ds := from(ctx).deliveries(); len(ds) > 0 {
		return fmt.Errorf("the bus called %d handlers, want none; the first got %s", len(ds), describe(ds[0].event))
	}
	return nil
}

func thenHandledCount(ctx context.Context, n int, event, _ string) error {
	got := 0
	for _, e := range from(ctx).handled() {
		if reflect.TypeOf(e) == eventTypes[event] {
			got++
		}
	}
	if got != n {
		return fmt.Errorf("the bus handled %d %s events, want %d", got, event, n)
	}
	return nil
}

func thenHandledOnce(ctx context.Context) error {
	ds := from(ctx).deliveries()
	if len(ds) == 0 {
		return errors.New("the bus handled no events")
	}
	calls := map[[2]string]int{}
	for _, d := range ds {
		key := [2]string{d.event.Identity().ID, d.handler}
		if calls[key]++; calls[key] > 1 {
			return fmt.Errorf("the bus called %s with %s (%s) %d times", d.handler, describe(d.event), key[0], calls[key])
		}
	}
	return nil
}

func thenHandlerCalls(ctx context.Context, name string, n int, _ string) error {
	got := 0
	for _, d := range from(ctx).deliveries() {
		if d.handler == name {
			got++
		}
	}
	if got != n {
		return fmt.Errorf("handler %q was called %d times, want %d", name, got, n)
	}
	return nil
}

func thenNothingBeforeCommit(ctx context.Context) error {
	w := from(ctx)
	if !w.started {
		return errNoWhen
	}
	w.commitMu.Lock()
	atCommit := w.atCommit
	w.commitMu.Unlock()
	if atCommit == nil {
		return fmt.Errorf("the last When step (%s) made no commit attempt", w.action)
	}
	if *atCommit != *w.atStart {
		return fmt.Errorf("before the first commit attempt of %s, %d handler calls and %d mails had happened, want none",
			w.action, atCommit.deliveries-w.atStart.deliveries, atCommit.mails-w.atStart.mails)
	}
	return nil
}

func thenWitnessSaw(ctx context.Context, name, ref, order string) error {
	seen := from(ctx).journal.seenBy(name)
	if len(seen) == 0 {
		return fmt.Errorf("handler %q never ran", name)
	}
	for i, held := range seen {
		if !slices.Contains(held, order+"@"+ref) {
			return fmt.Errorf("when handler %q ran the %d. time, the store held %v, not order %q in batch %q", name, i+1, held, order, ref)
		}
	}
	return nil
}

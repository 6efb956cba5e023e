package steps

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/stockbus/stockbus/service"
)

// concurrencySteps are the steps about concurrent writers: the retry budget, the other writers a
// scenario forces in, many writers at once, and what their commits did.
var concurrencySteps = []Def{
	{
		Group: "The stack", Keyword: "*", Text: `conflicting commits are retried up to <n> [time|times]`,
		Meaning: "Retry budget of the unit of work for concurrent updates; 0 never retries. The default is the service layer's (10)." + stageUnderWhen,
		Example: `Given conflicting commits are retried up to 0 times`,
		Func:    givenRetries,
	},
	{
		Group: "The stack", Keyword: "*", Text: `conflicting commits are retried without limit`,
		Meaning: "The unit of work retries concurrent updates until it commits." + stageUnderWhen,
		Example: `Given conflicting commits are retried without limit`,
		Func:    givenUnlimitedRetries,
	},
	{
		Group: "Other writers", Keyword: "Given", Text: `another writer changes "<sku>" before every commit`,
		Meaning: "From the first When step on, every commit that would store the product finds it changed since it was loaded, so it conflicts.",
		Example: `Given another writer changes "LAMP" before every commit`,
		Func:    givenAnotherWriter,
	},
	{
		Group: "Other writers", Keyword: "Given", Text: `<n> writers load "<sku>" before any of them commits`,
		Meaning: "From the first When step on, the first n units of work that load the product wait before committing until all n have loaded: the interleaving is forced, not left to the scheduler.",
		Example: `Given 2 writers load "LAMP" before any of them commits`,
		Func:    givenHeldWriters,
	},
	{
		Group: "Actions", Keyword: "When", Text: `<writers> writers send <orders> orders of <qty> "<sku>" at the same time`,
		Meaning: "Runs that many goroutines that share the orders (order-1, order-2, ...) between them, each through the service layer. Fails if they have not finished within 30 seconds.",
		Example: `When 8 writers send 1000 orders of 1 "HOT-SKU" at the same time`,
		Func:    whenWriters,
	},
	{
		Group: "What the caller is told", Keyword: "Then", Text: `<n> [order was|orders were] told of a concurrent update`,
		Meaning: "Counts the allocations of the last When step that gave up on a concurrent update.",
		Example: `Then 1 order was told of a concurrent update`,
		Func:    thenCountConflicts,
	},
	{
		Group: "The store", Keyword: "Then", Text: `there [was|were] <n> commit [attempt|attempts]`,
		Meaning: "Commit attempts the store saw from the first When step on, conflicting ones included.",
		Example: `Then there were 3 commit attempts`,
		Func:    thenCommitAttempts,
	},
	{
		Group: "The store", Keyword: "Then", Text: `no order is held twice`,
		Meaning: "No order (order id and sku) holds stock in more than one line, in any batch.",
		Example: `Then no order is held twice`,
		Func:    thenNoOrderTwice,
	},
}

// writersTimeout bounds a When step that runs writers at once, so that a scenario whose forced
// interleaving can never complete fails instead of hanging.
const writersTimeout = 30 * time.Second

func givenRetries(ctx context.Context, n int, _ string) error {
	if n < 0 {
		return fmt.Errorf("a retry budget of %d: say \"without limit\" instead", n)
	}
	w := from(ctx)
	w.retries = n
	w.reconfigure()
	return nil
}

func givenUnlimitedRetries(ctx context.Context) error {
	w := from(ctx)
	w.retries = service.Unlimited
	w.reconfigure()
	return nil
}

func givenAnotherWriter(ctx context.Context, sku string) error {
	w := from(ctx)
	w.hook.mu.Lock()
	defer w.hook.mu.Unlock()
	w.hook.touch = sku
	return nil
}

func givenHeldWriters(ctx context.Context, n int, sku string) error {
	if n < 2 {
		return fmt.Errorf("holding %d writers forces no interleaving: say 2 or more", n)
	}
	w := from(ctx)
	w.hook.mu.Lock()
	defer w.hook.mu.Unlock()
	w.hook.holdN, w.hook.holdSKU = n, sku
	return nil
}

func whenWriters(ctx context.Context, writers, orders, qty int, sku string) error {
	if writers < 1 || orders < 1 {
		return fmt.Errorf("%d writers sending %d orders: both must be at least 1", writers, orders)
	}
	w := from(ctx)
	w.begin(fmt.Sprintf("%d writers send %d orders of %d %q at the same time", writers, orders, qty, sku))
	uow := w.stack()
	wctx, cancel := context.WithTimeout(w.ctx(ctx), writersTimeout)
	defer cancel()
	results := make([]outcome, orders)
	var wg sync.WaitGroup
	for k := range writers {
		wg.Go(func() {
			for i := k; i < orders; i += writers {
				o := outcome{order: "order-" + strconv.Itoa(i+1), sku: sku, qty: qty}
				o.ref, o.err = service.Allocate(wctx, uow, o.order, sku, qty)
				results[i] = o
			}
		})
	}
	wg.Wait()
	w.outcomes = results
	var errs []error
	for _, o := range results {
		errs = append(errs, o.err)
	}
	w.err = errors.Join(errs...)
	if err := wctx.Err(); err != nil && ctx.Err() == nil {
		return fmt.Errorf("the writers had not finished after %v: is a writer held waiting for others that never load?", writersTimeout)
	}
	return nil
}

func thenCountConflicts(ctx context.Context, n int, _ string) error {
	return from(ctx).checkCount("gave up on a concurrent update", n, func(o outcome) bool {
		return errors.Is(o.err, service.ErrConcurrentUpdate)
	})
}

func thenCommitAttempts(ctx context.Context, _ string, n int, _ string) error {
	w := from(ctx)
	if got := w.commits.Load() - w.fromCommit; got != int64(n) {
		return fmt.Errorf("the store saw %d commit attempts from the first When step on, want %d", got, n)
	}
	return nil
}

func thenNoOrderTwice(ctx context.Context) error {
	w := from(ctx)
	held := map[[2]string][]string{}
	for _, sku := range w.store.SKUs() {
		p, _ := w.store.Product(sku)
		for _, b := range p.Batches {
			for _, l := range b.Lines() {
				key := [2]string{l.OrderID, l.SKU}
				held[key] = append(held[key], b.Reference)
			}
		}
	}
	for key, batches := range held {
		if len(batches) > 1 {
			return fmt.Errorf("order %q of %q is held %d times, in batches %v", key[0], key[1], len(batches), batches)
		}
	}
	return nil
}

package steps

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/cucumber/godog"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/service"
)

// allocationSteps are the steps that stock batches, allocate orders and check what the store
// holds afterwards.
var allocationSteps = []Def{
	{
		Group: "Stock", Keyword: "*", Text: `a batch "<ref>" of <qty> "<sku>" ` + whenArriving,
		Meaning: "Adds a batch through the service layer; it must be accepted. Today is a fixed date; later is 11 days on." + stageUnderWhen,
		Example: `Given a batch "in-stock-batch" of 100 "RETRO-CLOCK" in the warehouse`,
		Func:    givenBatch,
	},
	{
		Group: "Stock", Keyword: "*", Text: `these batches:`,
		Meaning: "Adds the batches in the table's order. Columns: batch, qty, sku, eta (warehouse, today, tomorrow or later)." + stageUnderWhen,
		Example: "Given these batches:\n| batch | qty | sku | eta |\n| medium | 100 | MINIMALIST-SPOON | tomorrow |",
		Func:    givenBatches,
	},
	{
		Group: "Stock", Keyword: "*", Text: `order "<order>" of <qty> "<sku>" has been allocated`,
		Meaning: "Allocates through the service layer; it must succeed." + stageUnderWhen,
		Example: `Given order "order1" of 10 "SMALL-FORK" has been allocated`,
		Func:    givenAllocated,
	},
	{
		Group: "Stock", Keyword: "Given", Text: `the product "<sku>" is at version <version>`,
		Meaning: "Stores the product's version number as given (the product must exist).",
		Example: `Given the product "LAMP" is at version 7`,
		Func:    givenVersion,
	},
	{
		Group: "Actions", Keyword: "When", Text: `I allocate order "<order>" of <qty> "<sku>"`,
		Meaning: "Allocates through the service layer and keeps what it returned.",
		Example: `When I allocate order "o1" of 10 "POPULAR-CURTAINS"`,
		Func:    whenAllocate,
	},
	{
		Group: "Actions", Keyword: "When", Text: `I add a batch "<ref>" of <qty> "<sku>" ` + whenArriving,
		Meaning: "Adds a batch through the service layer and keeps the error, if any.",
		Example: `When I add a batch "b2" of -1 "LAMP" in the warehouse`,
		Func:    whenAddBatch,
	},
	{
		Group: "What the caller is told", Keyword: "Then", Text: `the allocation returns batch "<ref>"`,
		Meaning: "The last allocation succeeded and returned that batch reference.",
		Example: `Then the allocation returns batch "in-stock-batch"`,
		Func:    thenReturnsBatch,
	},
	{
		Group: "What the caller is told", Keyword: "Then", Text: `<n> [order was|orders were] allocated`,
		Meaning: "Counts the allocations of the last When step that returned a batch.",
		Example: `Then 500 orders were allocated`,
		Func:    thenCountAllocated,
	},
	{
		Group: "The store", Keyword: "Then", Text: `batch "<ref>" has <n> available`,
		Meaning: "The stored batch's available quantity.",
		Example: `Then batch "in-stock-batch" has 90 available`,
		Func:    thenAvailable,
	},
	{
		Group: "The store", Keyword: "Then", Text: `batch "<ref>" holds <n> [order|orders]`,
		Meaning: "How many order lines the stored batch holds.",
		Example: `Then batch "batch1" holds 2 orders`,
		Func:    thenHoldsCount,
	},
	{
		Group: "The store", Keyword: "Then", Text: `batch "<ref>" holds order "<order>"`,
		Meaning: "The stored batch holds a line of that order.",
		Example: `Then batch "b1" holds order "o1"`,
		Func:    thenHoldsOrder,
	},
	{
		Group: "The store", Keyword: "Then", Text: `batch "<ref>" does not hold order "<order>"`,
		Meaning: "The stored batch holds no line of that order.",
		Example: `Then batch "batch1" does not hold order "order2"`,
		Func:    thenDoesNotHoldOrder,
	},
	{
		Group: "The store", Keyword: "Then", Text: `the product "<sku>" has the batches "<refs>", in this order`,
		Meaning: "The references of the stored product's batches, comma separated, in the order they were added.",
		Example: `Then the product "LAMP" has the batches "b1, b2", in this order`,
		Func:    thenProductBatches,
	},
	{
		Group: "The store", Keyword: "Then", Text: `the product "<sku>" is at version <version>`,
		Meaning: "The stored product's version number.",
		Example: `Then the product "LAMP" is at version 8`,
		Func:    thenVersion,
	},
}

const whenArriving = "[in the warehouse|arriving today|arriving tomorrow|arriving later]"

func givenBatch(ctx context.Context, ref string, qty int, sku, when string) error {
	return addBatch(ctx, ref, qty, sku, eta(when))
}

func addBatch(ctx context.Context, ref string, qty int, sku string, eta time.Time) error {
	w := from(ctx)
	if err := service.AddBatch(w.ctx(ctx), w.stack(), ref, sku, qty, eta); err != nil {
		return fmt.Errorf("adding batch %q of %d %q: %w", ref, qty, sku, err)
	}
	return nil
}

func givenBatches(ctx context.Context, t *godog.Table) error {
	rows, err := table(t, "batch", "qty", "sku", "eta")
	if err != nil {
		return err
	}
	for i, r := range rows {
		qty, err := strconv.Atoi(r["qty"])
		if err != nil {
			return fmt.Errorf("row %d: qty %q is not a whole number", i+1, r["qty"])
		}
		arrival, ok := etas[r["eta"]]
		if !ok {
			return fmt.Errorf("row %d: eta %q is none of warehouse, today, tomorrow, later", i+1, r["eta"])
		}
		if err := addBatch(ctx, r["batch"], qty, r["sku"], arrival); err != nil {
			return err
		}
	}
	return nil
}

func givenAllocated(ctx context.Context, order string, qty int, sku string) error {
	o := from(ctx).allocate(ctx, order, sku, qty)
	if o.err != nil {
		return fmt.Errorf("allocating order %q of %d %q: %w", order, qty, sku, o.err)
	}
	return nil
}

func givenVersion(ctx context.Context, sku string, version int) error {
	return changeStored(ctx, sku, func(p *domain.Product) error { p.VersionNumber = version; return nil })
}

// changeStored changes a stored product directly in the store, as a test fixture does, without
// the service layer and without publishing anything.
func changeStored(ctx context.Context, sku string, change func(*domain.Product) error) error {
	w := from(ctx)
	tx, err := w.store.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	p, err := tx.Get(ctx, sku)
	if err != nil {
		return fmt.Errorf("product %q: %w", sku, err)
	}
	if err := change(p); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

func whenAllocate(ctx context.Context, order string, qty int, sku string) error {
	w := from(ctx)
	w.begin(fmt.Sprintf("I allocate order %q of %d %q", order, qty, sku))
	o := w.allocate(ctx, order, sku, qty)
	w.outcomes, w.err = []outcome{o}, o.err
	return nil
}

func whenAddBatch(ctx context.Context, ref string, qty int, sku, when string) error {
	w := from(ctx)
	w.begin(fmt.Sprintf("I add a batch %q of %d %q %s", ref, qty, sku, when))
	w.err = service.AddBatch(w.ctx(ctx), w.stack(), ref, sku, qty, eta(when))
	return nil
}

func thenReturnsBatch(ctx context.Context, ref string) error {
	o, err := from(ctx).last()
	if err != nil {
		return err
	}
	if o.err != nil || o.ref != ref {
		return fmt.Errorf("allocating %s returned batch %q and error %v, want batch %q and no error", o.order, o.ref, o.err, ref)
	}
	return nil
}

func thenCountAllocated(ctx context.Context, n int, _ string) error {
	return from(ctx).checkCount("returned a batch", n, func(o outcome) bool { return o.err == nil && o.ref != "" })
}

func thenAvailable(ctx context.Context, ref string, n int) error {
	_, b, err := from(ctx).batch(ref)
	if err != nil {
		return err
	}
	if got := b.AvailableQuantity(); got != n {
		return fmt.Errorf("batch %q has %d available, want %d", ref, got, n)
	}
	return nil
}

func thenHoldsCount(ctx context.Context, ref string, n int, _ string) error {
	_, b, err := from(ctx).batch(ref)
	if err != nil {
		return err
	}
	if got := b.Allocations(); got != n {
		return fmt.Errorf("batch %q holds %d orders (%v), want %d", ref, got, b.Lines(), n)
	}
	return nil
}

func thenHoldsOrder(ctx context.Context, ref, order string) error {
	p, b, err := from(ctx).batch(ref)
	if err != nil {
		return err
	}
	if _, ok := b.Holds(order, p.SKU); !ok {
		return fmt.Errorf("batch %q does not hold order %q; it holds %v", ref, order, b.Lines())
	}
	return nil
}

func thenDoesNotHoldOrder(ctx context.Context, ref, order string) error {
	p, b, err := from(ctx).batch(ref)
	if err != nil {
		return err
	}
	if _, ok := b.Holds(order, p.SKU); ok {
		return fmt.Errorf("batch %q holds order %q; it holds %v", ref, order, b.Lines())
	}
	return nil
}

func thenProductBatches(ctx context.Context, sku, refs string) error {
	p, ok := from(ctx).store.Product(sku)
	if !ok {
		return fmt.Errorf("no product %q is stored", sku)
	}
	var want, got []string
	for r := range strings.SplitSeq(refs, ",") {
		if r = strings.TrimSpace(r); r != "" {
			want = append(want, r)
		}
	}
	for _, b := range p.Batches {
		got = append(got, b.Reference)
	}
	if !slices.Equal(got, want) {
		return fmt.Errorf("product %q has the batches %v, want %v", sku, got, want)
	}
	return nil
}

func thenVersion(ctx context.Context, sku string, version int) error {
	p, ok := from(ctx).store.Product(sku)
	if !ok {
		return fmt.Errorf("no product %q is stored", sku)
	}
	if p.VersionNumber != version {
		return fmt.Errorf("product %q is at version %d, want %d", sku, p.VersionNumber, version)
	}
	return nil
}

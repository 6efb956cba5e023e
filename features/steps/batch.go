package steps

import (
	"context"
	"fmt"
	"time"

	"github.com/stockbus/stockbus/domain"
)

// batchSteps are the steps about a batch on its own, outside any product and store, as the
// book's batch tests use it.
var batchSteps = []Def{
	{
		Group: "A batch on its own", Keyword: "*", Text: `a batch "<ref>" of <qty> "<sku>" on its own`,
		Meaning: "Makes a batch outside any product and store (the domain's Batch alone, as the book's batch tests use it), for the steps of this group. Nothing is validated, stored or published.",
		Example: `Given a batch "batch-001" of 20 "SMALL-TABLE" on its own`,
		Func:    givenLoneBatch,
	},
	{
		Group: "A batch on its own", Keyword: "*", Text: `batch "<ref>" on its own allocates order "<order>" of <qty> "<sku>"`,
		Meaning: "Allocates the line to the batch on its own; a line that does not fit, or of another sku, is silently left out.",
		Example: `When batch "batch-001" on its own allocates order "order-ref" of 2 "SMALL-TABLE"`,
		Func:    whenLoneAllocates,
	},
	{
		Group: "A batch on its own", Keyword: "*", Text: `batch "<ref>" on its own deallocates order "<order>" of <qty> "<sku>"`,
		Meaning: "Deallocates the line from the batch on its own; a line the batch does not hold is silently ignored.",
		Example: `When batch "batch-001" on its own deallocates order "order-ref" of 2 "SMALL-TABLE"`,
		Func:    whenLoneDeallocates,
	},
	{
		Group: "A batch on its own", Keyword: "Then", Text: `batch "<ref>" on its own [can|cannot] take order "<order>" of <qty> "<sku>"`,
		Meaning: "Whether the batch on its own can allocate the line (the line is valid, of the batch's sku, and fits in what is available).",
		Example: `Then batch "batch-001" on its own cannot take order "order-ref" of 2 "EXPENSIVE-TOASTER"`,
		Func:    thenLoneCanTake,
	},
	{
		Group: "A batch on its own", Keyword: "Then", Text: `batch "<ref>" on its own has <n> available`,
		Meaning: "The available quantity of the batch on its own.",
		Example: `Then batch "batch-001" on its own has 18 available`,
		Func:    thenLoneAvailable,
	},
	{
		Group: "A batch on its own", Keyword: "Then", Text: `batch "<ref>" on its own [holds|does not hold] order "<order>"`,
		Meaning: "Whether the batch on its own holds a line of that order.",
		Example: `Then batch "batch-001" on its own does not hold order "order-ref"`,
		Func:    thenLoneHolds,
	},
}

// lone returns the batch on its own with the reference.
func (w *world) loneBatch(ref string) (*domain.Batch, error) {
	b, ok := w.lone[ref]
	if !ok {
		return nil, fmt.Errorf("there is no batch %q on its own: make it with `Given a batch %q of ... on its own`", ref, ref)
	}
	return b, nil
}

func givenLoneBatch(ctx context.Context, ref string, qty int, sku string) error {
	w := from(ctx)
	if _, ok := w.lone[ref]; ok {
		return fmt.Errorf("there is a batch %q on its own already", ref)
	}
	w.lone[ref] = domain.NewBatch(ref, sku, qty, time.Time{})
	return nil
}

func whenLoneAllocates(ctx context.Context, ref, order string, qty int, sku string) error {
	b, err := from(ctx).loneBatch(ref)
	if err != nil {
		return err
	}
	b.Allocate(domain.OrderLine{OrderID: order, SKU: sku, Qty: qty})
	return nil
}

func whenLoneDeallocates(ctx context.Context, ref, order string, qty int, sku string) error {
	b, err := from(ctx).loneBatch(ref)
	if err != nil {
		return err
	}
	b.Deallocate(domain.OrderLine{OrderID: order, SKU: sku, Qty: qty})
	return nil
}

func thenLoneCanTake(ctx context.Context, ref, can, order string, qty int, sku string) error {
	b, err := from(ctx).loneBatch(ref)
	if err != nil {
		return err
	}
	line := domain.OrderLine{OrderID: order, SKU: sku, Qty: qty}
	if got, want := b.CanAllocate(line), can == "can"; got != want {
		return fmt.Errorf("batch %q of %s with %d available: CanAllocate(%+v) = %v, want %v", ref, b.SKU, b.AvailableQuantity(), line, got, want)
	}
	return nil
}

func thenLoneAvailable(ctx context.Context, ref string, n int) error {
	b, err := from(ctx).loneBatch(ref)
	if err != nil {
		return err
	}
	if got := b.AvailableQuantity(); got != n {
		return fmt.Errorf("batch %q on its own has %d available (it holds %v), want %d", ref, got, b.Lines(), n)
	}
	return nil
}

func thenLoneHolds(ctx context.Context, ref, holds, order string) error {
	b, err := from(ctx).loneBatch(ref)
	if err != nil {
		return err
	}
	_, held := b.Holds(order, b.SKU)
	if want := holds == "holds"; held != want {
		return fmt.Errorf("batch %q on its own holds %v; holding order %q: %v, want %v", ref, b.Lines(), order, held, want)
	}
	return nil
}

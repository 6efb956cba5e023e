package steps

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/service"
)

// badInputSteps are the steps about what a When step returned: success, or an error of some
// kind, and that a refused request changed nothing.
var badInputSteps = []Def{
	{
		Group: "What the caller is told", Keyword: "Then", Text: `it succeeds`,
		Meaning: "The last When step returned no error.",
		Example: `Then it succeeds`,
		Func:    thenSucceeds,
	},
	{
		Group: "What the caller is told", Keyword: "Then", Text: `I am told "<text>"`,
		Meaning: "The error of the last When step contains the text.",
		Example: `Then I am told "invalid sku NONEXISTENTSKU"`,
		Func:    thenTold,
	},
	{
		Group: "What the caller is told", Keyword: "Then", Text: `it fails with ` + failureChoice(),
		Meaning: "The error of the last When step is of that kind (errors.Is on the service layer's and the domain's errors).",
		Example: `Then it fails with exhausted retries`,
		Func:    thenFailsWith,
	},
	{
		Group: "The store", Keyword: "Then", Text: `nothing changed in the store`,
		Meaning: "Every product, batch, allocation, version and store revision is as it was before the last When step.",
		Example: `Then nothing changed in the store`,
		Func:    thenNothingChanged,
	},
	{
		Group: "The store", Keyword: "Then", Text: `there is no product "<sku>"`,
		Meaning: "The store holds no product of that sku.",
		Example: `Then there is no product "NONEXISTENTSKU"`,
		Func:    thenNoProduct,
	},
}

// failures are the kinds of error "it fails with" names, by the words it uses.
var failures = []struct {
	words string
	err   error
}{
	{"out of stock", domain.ErrOutOfStock},
	{"an invalid sku", service.ErrInvalidSKU},
	{"an invalid order line", domain.ErrInvalidOrderLine},
	{"an order conflict", domain.ErrOrderConflict},
	{"an invalid batch", domain.ErrInvalidBatch},
	{"an unknown batch", domain.ErrUnknownBatch},
	{"a duplicate batch", domain.ErrDuplicateBatch},
	{"a concurrent update", service.ErrConcurrentUpdate},
	{"exhausted retries", service.ErrRetriesExhausted},
	{"a publishing error", service.ErrPublish},
	{"no handler", service.ErrNoHandler},
	{"a handler panic", service.ErrHandlerPanic},
}

func failureChoice() string {
	words := make([]string, len(failures))
	for i, f := range failures {
		words[i] = f.words
	}
	return "[" + strings.Join(words, "|") + "]"
}

func thenSucceeds(ctx context.Context) error {
	w := from(ctx)
	if w.err != nil {
		return fmt.Errorf("%s failed: %w", w.action, w.err)
	}
	return nil
}

func thenTold(ctx context.Context, text string) error {
	w := from(ctx)
	if w.err == nil || !strings.Contains(w.err.Error(), text) {
		return fmt.Errorf("%s returned error %v, want an error containing %q", w.action, w.err, text)
	}
	return nil
}

func thenFailsWith(ctx context.Context, kind string) error {
	w := from(ctx)
	for _, f := range failures {
		if f.words == kind {
			if !errors.Is(w.err, f.err) {
				return fmt.Errorf("%s returned error %v, want one that is %q", w.action, w.err, f.err)
			}
			return nil
		}
	}
	return fmt.Errorf("no kind of failure %q", kind)
}

func thenNothingChanged(ctx context.Context) error {
	w := from(ctx)
	if !w.started {
		return errNoWhen
	}
	if now := w.storeState(false); now != w.before {
		return fmt.Errorf("the store changed during %q:\nbefore:\n%safter:\n%s", w.action, indent(w.before), indent(now))
	}
	return nil
}

func thenNoProduct(ctx context.Context, sku string) error {
	if _, ok := from(ctx).store.Product(sku); ok {
		return fmt.Errorf("a product %q is stored", sku)
	}
	return nil
}

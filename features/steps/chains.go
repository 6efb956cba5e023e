package steps

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/cucumber/godog"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/service"
)

// chainSteps are the steps about chains of messages: a batch's quantity changed, a handler that
// allocates, and every message the bus handled, in order.
var chainSteps = []Def{
	{
		Group: "The stack", Keyword: "*", Text: `a handler "<name>" for Note events that, on note "<note>", allocates order "<order>" of <qty> "<sku>"`,
		Meaning: "Subscribes a handler that allocates through the service layer while the bus is handling that note; running out of stock is not a failure of this handler." + stageUnderWhen,
		Example: `Given a handler "clerk" for Note events that, on note "first", allocates order "o1" of 1 "LAMP"`,
		Func:    givenAllocatingHandler,
	},
	{
		Group: "Actions", Keyword: "When", Text: `I change the quantity of batch "<ref>" to <qty>`,
		Meaning: "Sends a ChangeBatchQuantity command on the bus, so it is the first message the bus handles, and keeps the error, if any. Lines that no longer fit are deallocated, most recent first, and allocated again before the step ends.",
		Example: `When I change the quantity of batch "batch1" to 25`,
		Func:    whenChangeQuantity,
	},
	{
		Group: "Actions", Keyword: "When", Text: `the service layer changes the quantity of batch "<ref>" to <qty>`,
		Meaning: "Calls the service layer's entry point ChangeBatchQuantity, which runs the command's handler without sending the command on the bus (the chain starts with the events it records), and keeps the error, if any.",
		Example: `When the service layer changes the quantity of batch "batch1" to 0`,
		Func:    whenServiceChangesQuantity,
	},
	{
		Group: "The bus", Keyword: "Then", Text: `the bus handled these messages, in this order:`,
		Meaning: "Every message the bus handled from the first When step on, commands and events, in the order it finished them, as its trace reports them. One column, message: \"change batch quantity: REF to QTY\", \"allocate: SKU, order ID, qty QTY\", \"create batch: SKU, batch REF, qty QTY\", or an event as in the step above. A call that stops at an error ends with the message that failed.",
		Example: "Then the bus handled these messages, in this order:\n| message |\n| change batch quantity: batch1 to 25 |",
		Func:    thenTracedInOrder,
	},
	{
		Group: "The bus", Keyword: "Then", Text: `handling "<message>" failed with "<text>"`,
		Meaning: "The bus handled that message (written as in the step above) from the first When step on, and its handlers' errors contain the text.",
		Example: `Then handling "deallocated: LAMP, order o2" failed with "handler audit failed"`,
		Func:    thenTracedFailure,
	},
}

func givenAllocatingHandler(ctx context.Context, name, note, order string, qty int, sku string) error {
	return addHandler(ctx, handlerSpec{name: name, event: "Note", kind: allocating, on: note,
		line: domain.OrderLine{OrderID: order, SKU: sku, Qty: qty}})
}

func whenChangeQuantity(ctx context.Context, ref string, qty int) error {
	w := from(ctx)
	w.begin(fmt.Sprintf("I change the quantity of batch %q to %d", ref, qty))
	uow := w.stack()
	w.err = uow.Bus().Handle(w.ctx(ctx), domain.ChangeBatchQuantity{Meta: domain.Meta{ID: w.nextID()}, Ref: ref, Qty: qty})
	return nil
}

func whenServiceChangesQuantity(ctx context.Context, ref string, qty int) error {
	w := from(ctx)
	w.begin(fmt.Sprintf("the service layer changes the quantity of batch %q to %d", ref, qty))
	w.err = service.ChangeBatchQuantity(w.ctx(ctx), w.stack(), ref, qty)
	return nil
}

func thenTracedInOrder(ctx context.Context, t *godog.Table) error {
	rows, err := table(t, "message")
	if err != nil {
		return err
	}
	var want, got []string
	for _, r := range rows {
		want = append(want, r["message"])
	}
	for _, m := range from(ctx).traced() {
		got = append(got, describeMessage(m.msg))
	}
	if !slices.Equal(got, want) {
		return fmt.Errorf("the bus handled these messages, in this order:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	return nil
}

func thenTracedFailure(ctx context.Context, message, text string) error {
	var seen []string
	for _, m := range from(ctx).traced() {
		if describeMessage(m.msg) != message {
			seen = append(seen, describeMessage(m.msg))
			continue
		}
		if m.err == nil || !strings.Contains(m.err.Error(), text) {
			return fmt.Errorf("handling %q returned error %v, want an error containing %q", message, m.err, text)
		}
		return nil
	}
	return fmt.Errorf("the bus did not handle %q; it handled: %s", message, clip(seen, 10))
}

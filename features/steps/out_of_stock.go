package steps

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/cucumber/godog"

	"github.com/stockbus/stockbus/domain"
)

// outOfStockSteps are the steps about running out of stock: what the caller is told and the
// mails the stack sends.
var outOfStockSteps = []Def{
	{
		Group: "The stack", Keyword: "*", Text: `the mailer is down`,
		Meaning: "Every mail the out-of-stock handler sends fails, so that handler returns an error." + stageUnderWhen,
		Example: `Given the mailer is down`,
		Func:    givenMailerDown,
	},
	{
		Group: "What the caller is told", Keyword: "Then", Text: `I am told "<sku>" is out of stock`,
		Meaning: "The last allocation returned no batch and an out-of-stock error that names the sku.",
		Example: `Then I am told "POPULAR-CURTAINS" is out of stock`,
		Func:    thenToldOutOfStock,
	},
	{
		Group: "What the caller is told", Keyword: "Then", Text: `<n> [order was|orders were] told it is out of stock`,
		Meaning: "Counts the allocations of the last When step that returned an out-of-stock error.",
		Example: `Then 500 orders were told it is out of stock`,
		Func:    thenCountOutOfStock,
	},
	{
		Group: "Mails", Keyword: "Then", Text: `no mail was sent`,
		Meaning: "The mailer delivered nothing from the first When step on.",
		Example: `Then no mail was sent`,
		Func:    thenNoMail,
	},
	{
		Group: "Mails", Keyword: "Then", Text: `<n> [mail was|mails were] sent to "<address>"`,
		Meaning: "Counts the mails delivered to the address from the first When step on.",
		Example: `Then 500 mails were sent to "stock@made.com"`,
		Func:    thenMailsTo,
	},
	{
		Group: "Mails", Keyword: "Then", Text: `exactly one mail was sent, to "<address>", saying "<text>"`,
		Meaning: "From the first When step on the mailer delivered one mail, and that is its address and text.",
		Example: `Then exactly one mail was sent, to "stock@made.com", saying "Out of stock for POPULAR-CURTAINS"`,
		Func:    thenOneMail,
	},
	{
		Group: "Mails", Keyword: "Then", Text: `these mails were sent, in this order:`,
		Meaning: "Every mail the mailer delivered from the first When step on, one row each, in the order they were sent. Columns: to, text.",
		Example: "Then these mails were sent, in this order:\n| to | text |\n| stock@made.com | Out of stock for LAMP |",
		Func:    thenMailsInOrder,
	},
	{
		Group: "Mails", Keyword: "Then", Text: `each mail is about a different order that was told it is out of stock`,
		Meaning: "The mails of the last When step and its orders told out of stock match one to one, by the event that caused each mail.",
		Example: `Then each mail is about a different order that was told it is out of stock`,
		Func:    thenMailsMatchOrders,
	},
}

func givenMailerDown(ctx context.Context) error {
	w := from(ctx)
	w.mailerDown = true
	w.reconfigure()
	return nil
}

func thenToldOutOfStock(ctx context.Context, sku string) error {
	o, err := from(ctx).last()
	if err != nil {
		return err
	}
	if !errors.Is(o.err, domain.ErrOutOfStock) || o.ref != "" || !strings.Contains(o.err.Error(), sku) {
		return fmt.Errorf("allocating %s returned batch %q and error %v, want no batch and an out-of-stock error naming %s", o.order, o.ref, o.err, sku)
	}
	return nil
}

func thenCountOutOfStock(ctx context.Context, n int, _ string) error {
	return from(ctx).checkCount("were out of stock", n, func(o outcome) bool { return errors.Is(o.err, domain.ErrOutOfStock) })
}

func thenNoMail(ctx context.Context) error {
	if mails := from(ctx).mails(); len(mails) > 0 {
		return fmt.Errorf("%d mails were sent, want none; the first says %q to %s", len(mails), mails[0].Body, mails[0].To)
	}
	return nil
}

func thenMailsTo(ctx context.Context, n int, _, address string) error {
	got := 0
	for _, m := range from(ctx).mails() {
		if m.To == address {
			got++
		}
	}
	if got != n {
		return fmt.Errorf("%d mails were sent to %s, want %d", got, address, n)
	}
	return nil
}

func thenOneMail(ctx context.Context, address, text string) error {
	mails := from(ctx).mails()
	if len(mails) != 1 {
		var said []string
		for _, m := range mails {
			said = append(said, fmt.Sprintf("%q to %s", m.Body, m.To))
		}
		return fmt.Errorf("%d mails were sent (%s), want exactly one", len(mails), clip(said, 5))
	}
	if m := mails[0]; m.To != address || m.Body != text {
		return fmt.Errorf("the mail says %q to %s, want %q to %s", m.Body, m.To, text, address)
	}
	return nil
}

func thenMailsInOrder(ctx context.Context, t *godog.Table) error {
	rows, err := table(t, "to", "text")
	if err != nil {
		return err
	}
	var want, got []string
	for _, r := range rows {
		want = append(want, fmt.Sprintf("to %s: %q", r["to"], r["text"]))
	}
	for _, m := range from(ctx).mails() {
		got = append(got, fmt.Sprintf("to %s: %q", m.To, m.Body))
	}
	if !slices.Equal(got, want) {
		return fmt.Errorf("these mails were sent, in this order:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	return nil
}

func thenMailsMatchOrders(ctx context.Context) error {
	w := from(ctx)
	if !w.started {
		return errNoWhen
	}
	told := map[string]bool{}
	for _, o := range w.outcomes {
		if errors.Is(o.err, domain.ErrOutOfStock) {
			told[o.order] = true
		}
	}
	mailed := map[string]bool{}
	for _, m := range w.mailer.Mails()[w.atStart.mails:] {
		e, ok := m.Cause.(domain.OutOfStock)
		switch {
		case !ok:
			return fmt.Errorf("a mail to %s saying %q was caused by %T, not by an out-of-stock event", m.To, m.Body, m.Cause)
		case !told[e.OrderID]:
			return fmt.Errorf("a mail is about order %q, which was not told it is out of stock", e.OrderID)
		case mailed[e.OrderID]:
			return fmt.Errorf("two mails are about order %q", e.OrderID)
		}
		mailed[e.OrderID] = true
	}
	if len(mailed) != len(told) {
		return fmt.Errorf("%d orders were told they are out of stock, but mails are about %d of them", len(told), len(mailed))
	}
	return nil
}

package steps

import (
	"fmt"
	"strings"
	"time"
)

// storeState describes every stored product; with lines, the orders each batch holds too.
func (w *world) storeState(lines bool) string {
	var s strings.Builder
	for _, sku := range w.store.SKUs() {
		p, _ := w.store.Product(sku)
		fmt.Fprintf(&s, "%s: version %d, revision %d\n", sku, p.VersionNumber, w.store.Revision(sku))
		for _, b := range p.Batches {
			eta := "in the warehouse"
			if !b.ETA.IsZero() {
				eta = "arriving " + b.ETA.Format(time.DateOnly)
			}
			fmt.Fprintf(&s, "  batch %s (%s): %d bought, %d allocated in %d lines, %d available\n",
				b.Reference, eta, b.PurchasedQuantity(), b.AllocatedQuantity(), b.Allocations(), b.AvailableQuantity())
			if lines && b.Allocations() > 0 {
				var held []string
				for _, l := range b.Lines() {
					held = append(held, fmt.Sprintf("%s×%d", l.OrderID, l.Qty))
				}
				fmt.Fprintf(&s, "    holds %s\n", clip(held, 12))
			}
		}
	}
	if s.Len() == 0 {
		return "(empty)\n"
	}
	return s.String()
}

// report says what the scenario's stack captured, for a reader of a failed scenario.
func (w *world) report() string {
	var s strings.Builder
	fmt.Fprintf(&s, "store: %s\n", w.storeName)
	if w.action != "" {
		fmt.Fprintf(&s, "last action: %s\n", w.action)
	}
	if len(w.outcomes) > 0 {
		var lines []string
		for _, o := range w.outcomes {
			lines = append(lines, o.String())
		}
		fmt.Fprintf(&s, "its allocations (%d): %s\n", len(w.outcomes), clip(lines, 10))
	}
	if w.err != nil {
		fmt.Fprintf(&s, "its error: %v\n", w.err)
	}
	ds := w.journal.since(0)
	fmt.Fprintf(&s, "handler calls (%d, Given steps included):\n", len(ds))
	for i, d := range ds {
		if i == 20 {
			fmt.Fprintf(&s, "  ... and %d more\n", len(ds)-i)
			break
		}
		fmt.Fprintf(&s, "  %d. %s [%s] -> %s: %s\n", i+1, describe(d.event), d.event.Identity().ID, d.handler, d.result)
	}
	ts := w.trace.since(0)
	fmt.Fprintf(&s, "messages the bus handled (%d, Given steps included):\n", len(ts))
	for i, t := range ts {
		if i == 20 {
			fmt.Fprintf(&s, "  ... and %d more\n", len(ts)-i)
			break
		}
		result := "ok"
		if t.err != nil {
			result = "failed: " + t.err.Error()
		}
		fmt.Fprintf(&s, "  %d. %s [%s, caused by %q] -> %s\n", i+1, describeMessage(t.msg), t.msg.Identity().ID, t.msg.Identity().CausationID, result)
	}
	pub := w.publisher.Published()
	fmt.Fprintf(&s, "published (%d, Given steps included):\n", len(pub))
	for i, p := range pub {
		if i == 20 {
			fmt.Fprintf(&s, "  ... and %d more\n", len(pub)-i)
			break
		}
		fmt.Fprintf(&s, "  %d. on %s: %s\n", i+1, p.Channel, describe(p.Event))
	}
	mails := w.mailer.Mails()
	fmt.Fprintf(&s, "mails delivered (%d, Given steps included):\n", len(mails))
	for i, m := range mails {
		if i == 20 {
			fmt.Fprintf(&s, "  ... and %d more\n", len(mails)-i)
			break
		}
		cause := ""
		if m.Cause != nil {
			cause = " (caused by " + m.Cause.Identity().ID + ")"
		}
		fmt.Fprintf(&s, "  %d. to %s: %q%s\n", i+1, m.To, m.Body, cause)
	}
	if st := w.down.Stats(); st.Sends > 0 {
		fmt.Fprintf(&s, "sends refused by the mailer that is down: %d\n", st.Sends)
	}
	fmt.Fprintf(&s, "commit attempts: %d\n", w.commits.Load())
	fmt.Fprintf(&s, "store:\n%s", indent(w.storeState(true)))
	return s.String()
}

func (o outcome) String() string {
	if o.err != nil {
		return fmt.Sprintf("%s -> error %q", o.order, o.err)
	}
	return fmt.Sprintf("%s -> batch %s", o.order, o.ref)
}

func clip(items []string, n int) string {
	if len(items) <= n {
		return strings.Join(items, ", ")
	}
	return fmt.Sprintf("%s, ... and %d more", strings.Join(items[:n], ", "), len(items)-n)
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(strings.TrimSuffix(s, "\n"), "\n", "\n  ") + "\n"
}

package service_test

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/fakes"
	"github.com/stockbus/stockbus/service"
)

// The fuzz tests drive the service entry points with arbitrary input against a small shop: LAMP
// has batch b1 of 10 in the warehouse, of which order "held" holds 2. Whatever comes in, the call
// must not panic, and an input it rejects must change nothing: no stored change, no event, no
// mail. Run them with `go test -fuzz FuzzAllocate ./service/`; the seeds in testdata/fuzz run
// with every `go test`.

func fuzzShop(t *testing.T) (*service.Transactor, *fakes.Store, *fakes.Mailer) {
	t.Helper()
	uow, store, mailer := fakes.New(noBackoff)
	if err := service.AddBatch(ctx, uow, "b1", "LAMP", 10, time.Time{}); err != nil {
		t.Fatalf("AddBatch(b1, LAMP, 10): %v", err)
	}
	if _, err := service.Allocate(ctx, uow, "held", "LAMP", 2); err != nil {
		t.Fatalf("Allocate(held, LAMP, 2): %v", err)
	}
	return uow, store, mailer
}

// unchanged fails the test when the shop differs from fuzzShop's.
func unchanged(t *testing.T, store *fakes.Store, mailer *fakes.Mailer, rev uint64, call string) {
	t.Helper()
	if skus := store.SKUs(); len(skus) != 1 || skus[0] != "LAMP" {
		t.Errorf("%s: store holds skus %v, want only LAMP", call, skus)
	}
	if got := store.Revision("LAMP"); got != rev {
		t.Errorf("%s: LAMP's revision went from %d to %d: something was stored", call, rev, got)
	}
	p, _ := store.Product("LAMP")
	if len(p.Batches) != 1 || p.Allocated() != 2 || p.VersionNumber != 1 {
		t.Errorf("%s: LAMP has %d batches, %d allocated, version %d; want 1, 2, 1", call, len(p.Batches), p.Allocated(), p.VersionNumber)
	}
	if n := mailer.Len(); n != 0 {
		t.Errorf("%s: %d mails sent, want none", call, n)
	}
}

// validID is what an accepted identifier must be: not blank, valid UTF-8, no control characters.
func validID(s string) bool {
	return strings.TrimSpace(s) != "" && utf8.ValidString(s) && !strings.ContainsFunc(s, unicode.IsControl)
}

func FuzzAllocate(f *testing.F) {
	f.Add("o1", "LAMP", 1)
	f.Add("o1", "LAMP", 0)
	f.Add("o1", "LAMP", -3)
	f.Add("o1", "LAMP", domain.MaxQty+1)
	f.Add("o1", "LAMP", math.MaxInt)
	f.Add("", "LAMP", 1)
	f.Add("o1", "", 1)
	f.Add("o1", "NONEXISTENTSKU", 1)
	f.Add("held", "LAMP", 2)
	f.Add("held", "LAMP", 3)
	f.Add("o1", "LAMP", 9)
	f.Fuzz(func(t *testing.T, orderID, sku string, qty int) {
		uow, store, mailer := fuzzShop(t)
		rev := store.Revision("LAMP")
		ref, err := service.Allocate(ctx, uow, orderID, sku, qty)
		call := "Allocate(" + orderID + ", " + sku + ")"
		p, _ := store.Product("LAMP")
		switch {
		case err == nil:
			if !validID(orderID) || !validID(sku) {
				t.Fatalf("%s = %q, nil: accepted an order id %q or sku %q that is not a valid identifier", call, ref, orderID, sku)
			}
			b, ok := p.Batch(ref)
			if !ok {
				t.Fatalf("%s = %q: no such batch", call, ref)
			}
			if line, held := b.Holds(orderID, sku); !held || line.Qty != qty {
				t.Fatalf("%s = %q, nil: batch holds %+v, %v; want qty %d", call, ref, line, held, qty)
			}
			if want := 2 + qty; orderID == "held" && qty == 2 {
				if p.Allocated() != 2 {
					t.Fatalf("%s again: allocated %d, want 2 (no second allocation)", call, p.Allocated())
				}
			} else if p.Allocated() != want {
				t.Fatalf("%s: allocated %d, want %d", call, p.Allocated(), want)
			}
			if mailer.Len() != 0 {
				t.Fatalf("%s succeeded but sent %d mails", call, mailer.Len())
			}
		case errors.Is(err, domain.ErrOutOfStock):
			if !validID(orderID) {
				t.Fatalf("%s: out of stock for an order id %q that is not a valid identifier", call, orderID)
			}
			if qty <= 8 || ref != "" {
				t.Fatalf("%s with qty %d: out of stock with 8 available (ref %q): %v", call, qty, ref, err)
			}
			if p.Allocated() != 2 || mailer.Len() != 1 {
				t.Fatalf("%s out of stock: allocated %d, %d mails; want 2 and 1", call, p.Allocated(), mailer.Len())
			}
		case errors.Is(err, domain.ErrInvalidOrderLine), errors.Is(err, service.ErrInvalidSKU), errors.Is(err, domain.ErrOrderConflict):
			if ref != "" {
				t.Errorf("%s failed (%v) but returned batch %q", call, err, ref)
			}
			if err.Error() == "" {
				t.Errorf("%s: an empty error message", call)
			}
			unchanged(t, store, mailer, rev, call)
		default:
			t.Fatalf("%s: unexpected error %v", call, err)
		}
	})
}

func FuzzAddBatch(f *testing.F) {
	f.Add("b2", "LAMP", 5)
	f.Add("b2", "CHAIR", 0)
	f.Add("b1", "LAMP", 5)
	f.Add("b1", "CHAIR", 5)
	f.Add("", "LAMP", 5)
	f.Add("b2", "", 5)
	f.Add("b2", "LAMP", -1)
	f.Add("b2", "LAMP", domain.MaxQty+1)
	f.Fuzz(func(t *testing.T, ref, sku string, qty int) {
		uow, store, mailer := fuzzShop(t)
		rev := store.Revision("LAMP")
		err := service.AddBatch(ctx, uow, ref, sku, qty, time.Time{})
		call := "AddBatch(" + ref + ", " + sku + ")"
		switch {
		case err == nil:
			if !validID(ref) || !validID(sku) {
				t.Fatalf("%s: accepted a reference %q or sku %q that is not a valid identifier", call, ref, sku)
			}
			p, ok := store.Product(sku)
			if !ok {
				t.Fatalf("%s: no product %s stored", call, sku)
			}
			b, ok := p.Batch(ref)
			if !ok || b.PurchasedQuantity() != qty {
				t.Fatalf("%s with qty %d: stored %v, %v", call, qty, b, ok)
			}
		case errors.Is(err, domain.ErrInvalidBatch), errors.Is(err, domain.ErrDuplicateBatch):
			unchanged(t, store, mailer, rev, call)
		default:
			t.Fatalf("%s: unexpected error %v", call, err)
		}
	})
}

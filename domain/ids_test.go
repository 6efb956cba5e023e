package domain_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockbus/stockbus/domain"
)

// badIDs are identifiers that are not valid as an order id, a sku or a batch reference, with the
// words the error must use.
var badIDs = []struct {
	name, id, says string
}{
	{"empty", "", "empty"},
	{"spaces only", "   ", "only white space"},
	{"no-break space only", "\u00a0", "only white space"},
	{"ideographic space only", "\u3000 ", "only white space"},
	{"NUL", "o\x001", "control character"},
	{"tab", "\t", "control character"},
	{"newline at the end", "LAMP\n", "control character"},
	{"DEL", "b\x7f", "control character"},
	{"C1 control", "o\u0085", "control character"},
	{"invalid UTF-8", "o\xff", "not valid UTF-8"},
	{"lone continuation byte", "o\x80", "not valid UTF-8"},
	{"truncated UTF-8", "caf\xc3", "not valid UTF-8"},
	// Identifiers of 8 bytes or more, whose first 8 the check reads as one word.
	{"long, spaces only", "                ", "only white space"},
	{"long, spaces then a no-break space", "        \u00a0", "only white space"},
	{"control character in the first word", "order-1\x01x", "at byte 7"},
	{"0x1f in the first word", "\x1forder-12", "at byte 0"},
	{"DEL in the second word", "order-123456\x7f789", "at byte 12"},
	{"0x80 in the first word", "ord\x80er-12", "not valid UTF-8"},
	{"0xa0 in the first word", "ord\xa0er-12", "not valid UTF-8"},
	{"0xff in the second word", "order-12order\xff12", "not valid UTF-8"},
	{"C1 control in the first word", "order-\u0085x", "control character"},
	{"invalid UTF-8 in the first word", "ord\xffer-12", "not valid UTF-8"},
}

// goodIDs are unusual identifiers that are valid.
var goodIDs = []string{"o", "order 1", " LAMP", "café", "ランプ", "a-b_c.d/e",
	"order-123", "        x", "x               ", "       x        ", " !~ !~ !~ !~ !~ ", "order-1234-café"}

func TestIdentifiersAreValidated(t *testing.T) {
	for _, tt := range badIDs {
		t.Run(tt.name, func(t *testing.T) {
			checks := []struct {
				what string
				err  error
				want error
			}{
				{"order id", domain.OrderLine{OrderID: tt.id, SKU: "LAMP", Qty: 1}.Validate(), domain.ErrInvalidOrderLine},
				{"sku of a line", domain.OrderLine{OrderID: "o1", SKU: tt.id, Qty: 1}.Validate(), domain.ErrInvalidOrderLine},
				{"batch reference", domain.ValidateBatch(tt.id, "LAMP", 1), domain.ErrInvalidBatch},
				{"sku of a batch", domain.ValidateBatch("b1", tt.id, 1), domain.ErrInvalidBatch},
			}
			for _, c := range checks {
				require.ErrorIs(t, c.err, c.want, "%s %q", c.what, tt.id)
				assert.Contains(t, c.err.Error(), tt.says, "%s %q", c.what, tt.id)
				assert.Contains(t, c.err.Error(), c.what[:3], "the error says which identifier")
			}
		})
	}
	for _, id := range goodIDs {
		assert.NoError(t, domain.OrderLine{OrderID: id, SKU: id, Qty: 1}.Validate(), "line with %q", id)
		assert.NoError(t, domain.ValidateBatch(id, id, 1), "batch with %q", id)
	}
}

func TestABadIdentifierChangesNothing(t *testing.T) {
	for _, tt := range badIDs {
		t.Run(tt.name, func(t *testing.T) {
			p := domain.NewProduct("LAMP", []*domain.Batch{domain.NewBatch("b1", "LAMP", 10, today)})
			_, err := p.Allocate(domain.OrderLine{OrderID: tt.id, SKU: "LAMP", Qty: 1})
			assert.ErrorIs(t, err, domain.ErrInvalidOrderLine)
			assert.ErrorIs(t, p.AddBatch(domain.NewBatch(tt.id, "LAMP", 1, today)), domain.ErrInvalidBatch)
			assert.False(t, p.Batches[0].CanAllocate(domain.OrderLine{OrderID: tt.id, SKU: "LAMP", Qty: 1}))
			p.Batches[0].Allocate(domain.OrderLine{OrderID: tt.id, SKU: "LAMP", Qty: 1})
			assert.Len(t, p.Batches, 1)
			assert.Equal(t, 10, p.Batches[0].AvailableQuantity())
			assert.Zero(t, p.VersionNumber)
			assert.Empty(t, p.Events)
		})
	}
}

// TestEveryByteInEveryPlace puts each byte value at each place of a 10-byte identifier, in the
// first 8 bytes (read as one word) and after them: only printable ASCII is valid there alone.
func TestEveryByteInEveryPlace(t *testing.T) {
	for place := range 10 {
		for b := range 256 {
			id := []byte("abcdefghij")
			id[place] = byte(b)
			err := domain.OrderLine{OrderID: string(id), SKU: "LAMP", Qty: 1}.Validate()
			if b >= 0x20 && b < 0x7f {
				assert.NoError(t, err, "byte %#x at %d", b, place)
			} else {
				assert.ErrorIs(t, err, domain.ErrInvalidOrderLine, "byte %#x at %d", b, place)
			}
		}
	}
}

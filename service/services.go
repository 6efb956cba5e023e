// Package service is the service layer of stockbus: the entry points (AddBatch, Allocate), the
// unit of work that commits and then publishes events, the message bus and its handlers, and
// the ports (Store, Mailer) that adapters such as package fakes implement.
package service

import (
	"context"
	"errors"
	"time"

	"github.com/stockbus/stockbus/domain"
)

// ErrInvalidSKU is wrapped when an order names a sku that has no product: "invalid sku X".
var ErrInvalidSKU = errors.New("invalid sku")

// AddBatch stores a batch of qty units of sku arriving at eta (zero: in the warehouse now). It
// creates the product on first use. An invalid batch (domain.ErrInvalidBatch) or a reference that
// any product already holds (domain.ErrDuplicateBatch) is an error and stores nothing. It runs the
// handler of the CreateBatch command.
func AddBatch(ctx context.Context, uow UnitOfWork, ref, sku string, qty int, eta time.Time) error {
	return createBatch(ctx, uow, domain.CreateBatch{Ref: ref, SKU: sku, Qty: qty, ETA: eta})
}

// Allocate allocates qty of sku to the order and returns the batch reference. It runs the handler
// of the Allocate command.
//
// An invalid line (domain.ErrInvalidOrderLine) or an unknown sku (ErrInvalidSKU) is an error and
// commits nothing. Out of stock commits, so the OutOfStock event is published and the mail sent,
// and then returns "" and an error wrapping domain.ErrOutOfStock: out of stock is a result for the
// command handler, and only this entry point turns it into an error. Sending an allocated order
// again returns its batch. When the error wraps ErrPublish the allocation was committed (batchRef
// is valid) but handling its events failed.
func Allocate(ctx context.Context, uow UnitOfWork, orderID, sku string, qty int) (batchRef string, err error) {
	found, err := allocate(ctx, uow, domain.Allocate{OrderID: orderID, SKU: sku, Qty: qty})
	switch {
	case err != nil && errors.Is(err, ErrPublish):
		return found.batchRef, errors.Join(found.outOfStock, err)
	case err != nil:
		return "", err
	}
	return found.batchRef, found.outOfStock
}

// ChangeBatchQuantity sets the purchased quantity of the batch. Lines that no longer fit are
// deallocated, most recent first, and allocated again, which may send out-of-stock mails; all of
// that is handled before it returns. A negative quantity (domain.ErrInvalidBatch) or an unknown
// reference (domain.ErrUnknownBatch) is an error and changes nothing. It runs the handler of the
// ChangeBatchQuantity command.
func ChangeBatchQuantity(ctx context.Context, uow UnitOfWork, ref string, qty int) error {
	return changeBatchQuantity(ctx, uow, domain.ChangeBatchQuantity{Ref: ref, Qty: qty})
}

// Package service is the service layer of stockbus: the entry points (AddBatch, Allocate), the
// unit of work that commits and then publishes events, the message bus and its handlers, and
// the ports (Store, Mailer) that adapters such as package fakes implement.
package service

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/stockbus/stockbus/domain"
)

// ErrInvalidSKU is wrapped when an order names a sku that has no product: "invalid sku X".
var ErrInvalidSKU = errors.New("invalid sku")

// AddBatch stores a batch of qty units of sku arriving at eta (zero: in the warehouse now). It
// creates the product on first use. An invalid batch (domain.ErrInvalidBatch) or a reference that
// any product already holds (domain.ErrDuplicateBatch) is an error and stores nothing.
func AddBatch(ctx context.Context, uow UnitOfWork, ref, sku string, qty int, eta time.Time) error {
	if err := domain.ValidateBatch(ref, sku, qty); err != nil {
		return fmt.Errorf("add batch %q: %w", ref, err)
	}
	return uow.Do(ctx, func(ctx context.Context, repo Repository) error {
		switch holder, err := repo.GetByBatchRef(ctx, ref); {
		case err == nil:
			return fmt.Errorf("add batch %q: %w: held by %s", ref, domain.ErrDuplicateBatch, holder.SKU)
		case !errors.Is(err, ErrNotFound):
			return err
		}
		p, err := repo.Get(ctx, sku)
		if errors.Is(err, ErrNotFound) {
			p = domain.NewProduct(sku, nil)
			err = repo.Add(ctx, p)
		}
		if err != nil {
			return err
		}
		return p.AddBatch(domain.NewBatch(ref, sku, qty, eta))
	})
}

// Allocate allocates qty of sku to the order and returns the batch reference.
//
// An invalid line (domain.ErrInvalidOrderLine) or an unknown sku (ErrInvalidSKU) is an error and
// commits nothing. Out of stock commits, so the OutOfStock event is published and the mail sent,
// and then returns "" and an error wrapping domain.ErrOutOfStock. Sending an allocated order again
// returns its batch. When the error wraps ErrPublish the allocation was committed (batchRef is
// valid) but handling its events failed.
func Allocate(ctx context.Context, uow UnitOfWork, orderID, sku string, qty int) (batchRef string, err error) {
	line := domain.OrderLine{OrderID: orderID, SKU: sku, Qty: qty}
	if err := line.Validate(); err != nil {
		return "", fmt.Errorf("allocate: %w", err)
	}
	var outOfStock error
	err = uow.Do(ctx, func(ctx context.Context, repo Repository) error {
		batchRef, outOfStock = "", nil
		p, err := repo.Get(ctx, sku)
		if errors.Is(err, ErrNotFound) {
			return fmt.Errorf("%w %s", ErrInvalidSKU, sku)
		}
		if err != nil {
			return err
		}
		batchRef, err = p.Allocate(line)
		if errors.Is(err, domain.ErrOutOfStock) {
			outOfStock = err
			return nil // commit, so that the event is published
		}
		return err
	})
	switch {
	case err != nil && errors.Is(err, ErrPublish):
		return batchRef, errors.Join(outOfStock, err)
	case err != nil:
		return "", err
	}
	return batchRef, outOfStock
}

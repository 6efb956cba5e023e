package service

import (
	"context"
	"errors"
	"fmt"

	"github.com/stockbus/stockbus/domain"
)

// The command handlers. The entry points in services.go call these same functions, so a command
// sent on the bus and a call of the entry point take one path.

// allocation is what allocating a line found: the batch, or that it was out of stock.
type allocation struct {
	batchRef   string
	outOfStock error // wraps domain.ErrOutOfStock; a result, not a failure of the command
}

func allocate(ctx context.Context, uow UnitOfWork, cmd domain.Allocate) (allocation, error) {
	line := domain.OrderLine{OrderID: cmd.OrderID, SKU: cmd.SKU, Qty: cmd.Qty}
	if err := line.Validate(); err != nil {
		return allocation{}, fmt.Errorf("allocate: %w", err)
	}
	a := allocating{line: line}
	var err error
	if t, ok := uow.(*Transactor); ok {
		a.t = t
		err = t.Do(ctx, a.run) // Do keeps no reference to its fn: a stays on the stack
	} else {
		escaping := &allocating{line: line}
		err = uow.Do(ctx, escaping.run)
		a.found = escaping.found
	}
	if err != nil && !errors.Is(err, ErrPublish) {
		return allocation{}, err
	}
	return a.found, err
}

// allocating is the work of an Allocate command: a method value rather than a closure, so that
// allocate can keep it off the heap when the unit of work is a Transactor.
type allocating struct {
	line  domain.OrderLine
	t     *Transactor // the unit of work, when it is a Transactor: the product stamps on record
	found allocation
}

func (a *allocating) run(ctx context.Context, repo Repository) error {
	a.found = allocation{}
	p, err := repo.Get(ctx, a.line.SKU)
	if errors.Is(err, ErrNotFound) {
		return fmt.Errorf("%w %s", ErrInvalidSKU, a.line.SKU)
	}
	if err != nil {
		return err
	}
	if a.t != nil {
		a.t.stampOnRecord(ctx, p)
	}
	a.found.batchRef, err = p.Allocate(a.line)
	p.StampEvents(nil, "")
	if errors.Is(err, domain.ErrOutOfStock) {
		a.found.outOfStock = err
		return nil // commit, so that the event is published
	}
	return err
}

func createBatch(ctx context.Context, uow UnitOfWork, cmd domain.CreateBatch) error {
	if err := domain.ValidateBatch(cmd.Ref, cmd.SKU, cmd.Qty); err != nil {
		return fmt.Errorf("add batch %q: %w", cmd.Ref, err)
	}
	return uow.Do(ctx, func(ctx context.Context, repo Repository) error {
		switch holder, err := repo.GetByBatchRef(ctx, cmd.Ref); {
		case err == nil:
			return fmt.Errorf("add batch %q: %w: held by %s", cmd.Ref, domain.ErrDuplicateBatch, holder.SKU)
		case !errors.Is(err, ErrNotFound):
			return err
		}
		p, err := repo.Get(ctx, cmd.SKU)
		if errors.Is(err, ErrNotFound) {
			p = domain.NewProduct(cmd.SKU, nil)
			err = repo.Add(ctx, p)
		}
		if err != nil {
			return err
		}
		return p.AddBatch(domain.NewBatch(cmd.Ref, cmd.SKU, cmd.Qty, cmd.ETA))
	})
}

func changeBatchQuantity(ctx context.Context, uow UnitOfWork, cmd domain.ChangeBatchQuantity) error {
	if cmd.Qty < 0 || cmd.Qty > domain.MaxQty {
		return fmt.Errorf("change batch %q: %w: qty must be between 0 and %d, got %d", cmd.Ref, domain.ErrInvalidBatch, domain.MaxQty, cmd.Qty)
	}
	return uow.Do(ctx, func(ctx context.Context, repo Repository) error {
		p, err := repo.GetByBatchRef(ctx, cmd.Ref)
		if errors.Is(err, ErrNotFound) {
			return fmt.Errorf("change batch %q: %w", cmd.Ref, domain.ErrUnknownBatch)
		}
		if err != nil {
			return err
		}
		if t, ok := uow.(*Transactor); ok {
			t.stampOnRecord(ctx, p)
			defer p.StampEvents(nil, "")
		}
		return p.ChangeBatchQuantity(cmd.Ref, cmd.Qty)
	})
}

package service_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/fakes"
	"github.com/stockbus/stockbus/service"
)

func TestRoutesListWhatRegisterWired(t *testing.T) {
	uow := service.Bootstrap(fakes.NewStore(), fakes.NewMailer())
	assert.Equal(t, []string{
		"domain.Allocate: command",
		"domain.CreateBatch: command",
		"domain.ChangeBatchQuantity: command",
		"domain.OutOfStock: 1 handler(s)",
		"domain.Allocated: 1 handler(s)",
		"domain.Deallocated: 1 handler(s)",
	}, uow.Bus().Routes())

	service.Subscribe(uow.Bus(), func(context.Context, domain.OutOfStock) error { return nil })
	assert.Contains(t, uow.Bus().Routes(), "domain.OutOfStock: 2 handler(s)", "after a second subscription")
	assert.Empty(t, service.NewBus().Routes(), "a new bus")
}

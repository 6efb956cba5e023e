package fakes_test

import (
	"testing"

	"github.com/stockbus/stockbus/fakes"
	"github.com/stockbus/stockbus/outbox"
	"github.com/stockbus/stockbus/outbox/outboxtest"
	"github.com/stockbus/stockbus/service"
)

func TestOutboxContract(t *testing.T) {
	outboxtest.TestStore(t, func(t *testing.T) (service.Store, outbox.Store) {
		s := fakes.NewStore()
		s.EnableOutbox()
		return s, s
	})
}

package sqlite_test

import (
	"testing"

	"github.com/stockbus/stockbus/outbox"
	"github.com/stockbus/stockbus/outbox/outboxtest"
	"github.com/stockbus/stockbus/service"
)

func TestOutboxContract(t *testing.T) {
	outboxtest.TestStore(t, func(t *testing.T) (service.Store, outbox.Store) {
		s := open(t)
		s.EnableOutbox()
		return s, s
	})
}

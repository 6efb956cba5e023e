package outbox_test

import (
	"testing"

	"github.com/stockbus/stockbus/fakes"
	"github.com/stockbus/stockbus/outbox"
	"github.com/stockbus/stockbus/outbox/outboxtest"
	"github.com/stockbus/stockbus/service"
)

// BenchmarkRelay is outboxtest.BenchmarkRelay on the fake store: the relay's own cost per row.
func BenchmarkRelay(b *testing.B) {
	outboxtest.BenchmarkRelay(b, func(*testing.B) (service.Store, outbox.Store) {
		s := fakes.NewStore()
		s.EnableOutbox()
		return s, s
	})
}

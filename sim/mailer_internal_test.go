package sim

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockbus/stockbus/domain"
	"github.com/stockbus/stockbus/fakes"
	"github.com/stockbus/stockbus/service"
	"github.com/stockbus/stockbus/sim/dispatch"
)

// A real mailer's server de-duplicates exactly when the fake mailer would, with the options the
// strategy asks of it: MailerSpec.Dedup must follow the strategies.
func TestMailerSpecDedupFollowsTheStrategy(t *testing.T) {
	for _, name := range StrategyNames() {
		for _, dedup := range []bool{true, false} {
			c := Default()
			c.Strategy, c.Dedup = name, dedup
			s, err := dispatch.New(name, c.dispatchOptions())
			require.NoError(t, err)
			m := fakes.NewMailer(s.MailerOptions()...)
			mail := service.Mail{To: "stock@made.com", Body: "b", Cause: domain.OutOfStock{Meta: domain.Meta{ID: "e1-1"}, SKU: "S"}}
			for range 2 {
				require.NoError(t, m.Send(context.Background(), mail))
			}
			assert.Equal(t, len(m.DedupHits()) > 0, c.mailerSpec().Dedup, "strategy %s with dedup %v", name, dedup)
		}
	}
}

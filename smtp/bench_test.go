package smtp_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/stockbus/stockbus/smtp"
	"github.com/stockbus/stockbus/smtp/smtptest"
)

// BenchmarkSend measures one real SMTP round trip over 127.0.0.1: connect, EHLO, MAIL, RCPT,
// DATA, the reply and QUIT, against the in-process test server. Beside the mean (ns/op) it
// reports the median and the 99th percentile of the sends' own times.
func BenchmarkSend(b *testing.B) {
	for _, tc := range []struct {
		name string
		tls  bool
	}{{"plain", false}, {"starttls", true}} {
		b.Run(tc.name, func(b *testing.B) {
			cfg := smtptest.Config{}
			mcfg := smtp.Config{From: "stockbus@example.com"}
			if tc.tls {
				server, client, err := smtptest.SelfSigned()
				require.NoError(b, err)
				cfg.TLS, mcfg.TLS = server, client
			}
			srv, err := smtptest.Start(cfg)
			require.NoError(b, err)
			defer srv.Close()
			mcfg.Addr = srv.Addr()
			m, err := smtp.New(mcfg)
			require.NoError(b, err)
			ctx := context.Background()
			var took []time.Duration
			for i := 0; b.Loop(); i++ {
				start := time.Now()
				if err := m.Send(ctx, notice(fmt.Sprint("ev-", i))); err != nil {
					b.Fatalf("send %d: %v", i, err)
				}
				took = append(took, time.Since(start))
			}
			slices.Sort(took)
			b.ReportMetric(float64(took[len(took)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(took[len(took)*99/100].Microseconds()), "p99-µs")
		})
	}
}

package simreal

import (
	"github.com/stockbus/stockbus/sim"
	"github.com/stockbus/stockbus/smtp/smtptest"
)

// ServerOf returns the test server an SMTP mailer of SMTP("") sends to, for tests that
// check the run's accounting against the server's own record.
func ServerOf(m sim.Mailer) *smtptest.Server { return m.(*smtpMailer).srv }

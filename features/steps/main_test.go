package steps_test

import (
	"flag"
	"os"
	"strings"
	"testing"

	"github.com/cucumber/godog"
	"github.com/spf13/pflag"
)

// TestMain accepts godog's flags, which change nothing here, so that a command such as
// go test ./features/... -godog.concurrency=8 runs this package's tests too.
func TestMain(m *testing.M) {
	var ignored godog.Options
	godog.BindCommandLineFlags("godog.", &ignored)
	pflag.CommandLine.VisitAll(func(f *pflag.Flag) {
		if strings.HasPrefix(f.Name, "godog.") {
			flag.Var(f.Value, f.Name, f.Usage)
		}
	})
	flag.Parse()
	os.Exit(m.Run())
}

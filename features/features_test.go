// Package features_test runs the Gherkin specification of stockbus: every *.feature file in this
// folder, against the step library in features/steps, on the store that STOCKBUS_STORE names
// (fakes, the default; sqlite; postgres). See README.md here for how to run and extend it.
package features_test

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"github.com/cucumber/godog"
	"github.com/spf13/pflag"

	"github.com/stockbus/stockbus/features/steps"
)

// defaults are the options every run starts from: strict (an undefined or pending step fails
// the run), several scenarios at once, every feature file of this folder.
func defaults() godog.Options {
	return godog.Options{
		Strict:      true,
		Concurrency: 4,
		Format:      "progress",
		NoColors:    true,
		Paths:       []string{"."},
	}
}

// opts are the options of this run: the defaults, changed by the flags prefixed "godog.", such
// as -godog.tags=@book or -godog.format=junit:report.xml.
var opts = defaults()

// TestMain binds godog's flags under the prefix "godog." to the standard flag set, so that
// `go test ./features -godog.tags=@book` works with one dash or two, next to -run and -v.
// Arguments after the flags (go test ./features -args allocation.feature) are the feature paths.
// STOCKBUS_STORE chooses the store (see stores_test.go); an unknown one stops the run at once.
func TestMain(m *testing.M) {
	godog.BindCommandLineFlags("godog.", &opts)
	pflag.CommandLine.VisitAll(func(f *pflag.Flag) {
		if strings.HasPrefix(f.Name, "godog.") {
			flag.Var(f.Value, f.Name, f.Usage)
		}
	})
	flag.Parse()
	if flag.NArg() > 0 {
		opts.Paths = flag.Args()
	}
	var err error
	if theStore, err = chooseStore(); err != nil {
		fmt.Fprintln(os.Stderr, "features:", err)
		os.Exit(2)
	}
	code := m.Run()
	if err := theStore.close(); err != nil {
		fmt.Fprintln(os.Stderr, "features:", err)
		code = max(code, 1)
	}
	os.Exit(code)
}

// InitializeScenario installs the step library on a scenario, on a new store of the kind
// STOCKBUS_STORE names. It is the one function of these tests that the godog command line looks
// for, so that `godog run` finds the same steps (on the fakes: the godog command runs no TestMain).
func InitializeScenario(sc *godog.ScenarioContext) {
	if theStore == nil {
		steps.Register(sc)
		return
	}
	theStore.register(sc)
}

// seed returns the seed that orders the scenarios: the one given with -godog.random=SEED, or a
// fresh one, so that every run shuffles and any run can be replayed. -godog.random=0 keeps the
// order of the files.
func seed() int64 {
	given := false
	flag.Visit(func(f *flag.Flag) { given = given || f.Name == "godog.random" })
	if given && opts.Randomize >= 0 {
		return opts.Randomize
	}
	return rand.Int64N(99_999) + 1
}

// TestFeatures runs every scenario as a subtest: go test ./features -run 'TestFeatures/<scenario>'.
// Each runs on a new store of the kind STOCKBUS_STORE names.
func TestFeatures(t *testing.T) {
	theStore.ready(t)
	o := opts
	o.TestingT = t
	suite := godog.TestSuite{Name: "stockbus", ScenarioInitializer: InitializeScenario, Options: &o}
	if o.ShowStepDefinitions {
		suite.Run() // prints the step definitions (see them with -v) and runs nothing
		return
	}
	features, err := suite.RetrieveFeatures()
	if err != nil {
		t.Fatal(err)
	}
	selected := 0
	for _, f := range features {
		selected += len(f.Pickles)
	}
	if selected == 0 {
		t.Fatalf("no scenario matches the paths %q and the tags %q: a typo would otherwise pass", o.Paths, o.Tags)
	}
	o.Randomize = seed()
	t.Logf("%d scenarios on the %s store, in random order, seed %d: replay it with %s=%s go test ./features -godog.random=%d",
		selected, theStore.name, o.Randomize, StoreVariable, theStore.name, o.Randomize)
	if status := suite.Run(); status != 0 {
		t.Fatalf("godog exited with status %d on the %s store (seed %d): replay with %s=%s go test ./features -godog.random=%d",
			status, theStore.name, o.Randomize, StoreVariable, theStore.name, o.Randomize)
	}
}

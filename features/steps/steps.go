// Package steps is the step library of the stockbus specification: one vocabulary of Given, When
// and Then steps that runs the real domain, service layer, unit of work and message bus against the
// fakes, so that a team can write Gherkin feature files about the event semantics without Go.
//
// Register installs the vocabulary on a godog scenario. Another module runs its own feature files
// against the same vocabulary with
//
//	godog.TestSuite{ScenarioInitializer: steps.Register, Options: &godog.Options{Strict: true, ...}}.Run()
//
// (features/README.md shows a whole module that does this, with the replace directive it needs
// until stockbus is published.) Each scenario gets its own stack (a fakes.Store, or any Store
// through RegisterOn or RegisterOpening, a fakes.Mailer and a unit of work built by
// service.Bootstrap), kept in the scenario's context.Context, so scenarios may run concurrently.
// The features' own test runs every scenario on the fakes, SQLite or Postgres this way.
// When a scenario fails, what the mailer, the bus and the store captured is logged and attached to
// the report.
//
// Vocabulary lists every step with its meaning and an example; features/README.md shows the same
// table, and a test keeps the two equal. The steps are defined next to their functions, a file per
// concern (allocation.go, out_of_stock.go, publication.go, concurrency.go, chains.go, ...).
// zz_register.go, written by go generate, registers each step from a line that godog reports as
// the step's location: the line of the step's own function.
package steps

//go:generate go run ./internal/gen/genregister

import (
	"context"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"

	"github.com/cucumber/godog"

	"github.com/stockbus/stockbus/fakes"
)

// Def is one step of the vocabulary.
type Def struct {
	// Keyword is "Given", "When", "Then" or "*". A Given, When or Then step matches only under its
	// keyword (And and But take the keyword of the step before them). A "*" step means the same
	// whatever the keyword, and matches under any; the README lists it as "* text".
	Keyword string
	// Text is the step as a writer types it, with placeholders:
	//   "<name>"   a quoted text, passed as a string (it may be empty: "")
	//   <name>     a whole number, possibly negative, passed as an int
	//   [a|b|c]    exactly one of the listed words, passed as a string
	// A Text that ends with ":" takes a data table, passed last as a *godog.Table.
	Text string
	// Meaning says what the step does or checks, for a reader who knows the domain.
	Meaning string
	// Example is the step as used in a feature file; lines after the first are its data table.
	Example string
	// Group is the heading the step is listed under in the README.
	Group string
	// Func implements the step: a func(context.Context, args...) error whose args follow the
	// placeholders of Text in order.
	Func any
}

// Pattern returns the anchored regular expression that Text stands for.
func (d Def) Pattern() *regexp.Regexp {
	re, _, err := compile(d.Text)
	if err != nil {
		panic(fmt.Sprintf("steps: %s %q: %v", d.Keyword, d.Text, err))
	}
	return re
}

// ArgKinds returns what the step passes to Func after the context, in order: "string", "int",
// and "table" for a trailing data table.
func (d Def) ArgKinds() []string {
	_, kinds, err := compile(d.Text)
	if err != nil {
		panic(fmt.Sprintf("steps: %s %q: %v", d.Keyword, d.Text, err))
	}
	return kinds
}

var placeholder = regexp.MustCompile(`"<[a-z][a-z ]*>"|<[a-z][a-z ]*>|\[[^\]|]+(?:\|[^\]|]+)+\]`)

// compile turns a step text template into its regular expression and argument kinds.
func compile(text string) (*regexp.Regexp, []string, error) {
	var re strings.Builder
	var kinds []string
	re.WriteString("^")
	rest := text
	for {
		loc := placeholder.FindStringIndex(rest)
		if loc == nil {
			re.WriteString(regexp.QuoteMeta(rest))
			break
		}
		re.WriteString(regexp.QuoteMeta(rest[:loc[0]]))
		switch p := rest[loc[0]:loc[1]]; p[0] {
		case '"':
			re.WriteString(`"([^"]*)"`)
			kinds = append(kinds, "string")
		case '<':
			re.WriteString(`(-?\d+)`)
			kinds = append(kinds, "int")
		default:
			words := strings.Split(p[1:len(p)-1], "|")
			for i, w := range words {
				words[i] = regexp.QuoteMeta(w)
			}
			re.WriteString("(" + strings.Join(words, "|") + ")")
			kinds = append(kinds, "string")
		}
		rest = rest[loc[1]:]
	}
	re.WriteString("$")
	if strings.ContainsAny(strings.Join(placeholder.Split(text, -1), ""), "<>[]") {
		return nil, nil, fmt.Errorf("stray placeholder bracket")
	}
	if strings.HasSuffix(text, ":") {
		kinds = append(kinds, "table")
	}
	compiled, err := regexp.Compile(re.String())
	return compiled, kinds, err
}

// Vocabulary returns every step of the library, grouped as the README lists them.
func Vocabulary() []Def { return slices.Clone(vocabulary) }

// Register installs the vocabulary on sc: a Before hook that gives the scenario its own stack, the
// steps, and an After hook that, when the scenario failed, logs what the mailer, the bus and the
// store captured and attaches it to the report (cucumber JSON). It is safe to call from scenarios
// that run concurrently.
func Register(sc *godog.ScenarioContext) {
	RegisterOpening("fakes", func(context.Context) (Store, func() error, error) {
		return fakes.NewStore(), nil, nil
	})(sc)
}

// RegisterOn returns a Register whose scenarios each run on a new, empty store from newStore
// instead of a fakes.Store. The rest of the stack (mailer, publisher, bus) stays on the fakes.
func RegisterOn(newStore func() Store) func(*godog.ScenarioContext) {
	return RegisterOpening("given", func(context.Context) (Store, func() error, error) {
		return newStore(), nil, nil
	})
}

// Opener opens a new, empty store for one scenario. It returns the store and a function that
// releases it (closes it, removes its file or drops its database), or nil when there is nothing to
// release. ctx is the scenario's; it is done when the scenario ends.
type Opener func(ctx context.Context) (s Store, release func() error, err error)

// RegisterOpening returns a Register whose scenarios each run on a store that open returns, for
// stores that can fail to open or must be released: a file or a database per scenario. name (such
// as "sqlite") names the store in what a failing scenario reports. When open fails, the scenario
// fails before its first step with an error that names the store. The release function runs after
// the scenario, once its failure report (which reads the store) is written; its error fails the
// scenario.
func RegisterOpening(name string, open Opener) func(*godog.ScenarioContext) {
	return func(sc *godog.ScenarioContext) { register(sc, name, open) }
}

func register(sc *godog.ScenarioContext, name string, open Opener) {
	sc.Before(func(ctx context.Context, _ *godog.Scenario) (context.Context, error) {
		store, release, err := open(ctx)
		if err != nil {
			return ctx, fmt.Errorf("open a %s store for the scenario: %w", name, err)
		}
		w := newWorld(store)
		w.storeName, w.release = name, release
		return context.WithValue(ctx, worldKey{}, w), nil
	})
	sc.After(func(ctx context.Context, _ *godog.Scenario, err error) (context.Context, error) {
		w, ok := ctx.Value(worldKey{}).(*world)
		if !ok {
			return ctx, nil
		}
		if err != nil {
			report := w.report()
			godog.Logf(ctx, "what the stack captured:\n%s", report)
			ctx = godog.Attach(ctx, godog.Attachment{FileName: "captured.txt", MediaType: "text/plain", Body: []byte(report)})
		}
		if err := w.close(); err != nil {
			return ctx, fmt.Errorf("release the scenario's %s store: %w", w.storeName, err)
		}
		return ctx, nil
	})
	if len(registrations) != len(vocabulary) {
		// zz_register.go is out of date; TestRegistrationCodeIsUpToDate says so too.
		panic(fmt.Sprintf("steps: zz_register.go registers %d steps, the vocabulary has %d: run go generate ./features/steps",
			len(registrations), len(vocabulary)))
	}
	for _, r := range registrations {
		r(sc)
	}
}

// funcArgKinds returns the argument kinds a step function takes after its context.
func funcArgKinds(f any) ([]string, error) {
	t := reflect.TypeOf(f)
	if t == nil || t.Kind() != reflect.Func {
		return nil, fmt.Errorf("%T is not a function", f)
	}
	if t.NumIn() == 0 || t.In(0) != reflect.TypeFor[context.Context]() {
		return nil, fmt.Errorf("%v does not take a context.Context first", t)
	}
	if t.NumOut() != 1 || t.Out(0) != reflect.TypeFor[error]() {
		return nil, fmt.Errorf("%v does not return just an error", t)
	}
	var kinds []string
	for i := 1; i < t.NumIn(); i++ {
		switch in := t.In(i); {
		case in.Kind() == reflect.String:
			kinds = append(kinds, "string")
		case in.Kind() == reflect.Int:
			kinds = append(kinds, "int")
		case in == reflect.TypeFor[*godog.Table]():
			kinds = append(kinds, "table")
		default:
			return nil, fmt.Errorf("%v takes a %v", t, in)
		}
	}
	return kinds, nil
}

// Table renders the vocabulary as Markdown, a table per group: the step as a writer types it, its
// meaning, and an example. features/README.md holds this table; a test keeps it up to date.
func Table() string {
	var s strings.Builder
	group := ""
	for _, d := range vocabulary {
		if d.Group != group {
			if group != "" {
				s.WriteString("\n")
			}
			group = d.Group
			fmt.Fprintf(&s, "#### %s\n\n| Step | Meaning | Example |\n| --- | --- | --- |\n", group)
		}
		var example []string
		for line := range strings.SplitSeq(d.Example, "\n") {
			example = append(example, markdownCode(line))
		}
		fmt.Fprintf(&s, "| %s | %s | %s |\n", markdownCode(d.Keyword+" "+d.Text),
			strings.ReplaceAll(d.Meaning, "|", `\|`), strings.Join(example, "<br>"))
	}
	return s.String()
}

// markdownCode is s as code in a Markdown table cell.
func markdownCode(s string) string { return "`" + strings.ReplaceAll(s, "|", `\|`) + "`" }

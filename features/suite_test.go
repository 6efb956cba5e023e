package features_test

import (
	"bytes"
	"encoding/json"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/cucumber/godog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockbus/stockbus/features/steps"
)

// run runs one feature text with the options every run starts from, and returns godog's exit
// status and what its formatter printed. What the steps log goes to logged, if not nil.
// The scenarios run on the store STOCKBUS_STORE names.
func run(t *testing.T, feature string, initialize func(*godog.ScenarioContext), logged ...*string) (int, string) {
	t.Helper()
	theStore.ready(t)
	path := filepath.Join(t.TempDir(), "new.feature")
	require.NoError(t, os.WriteFile(path, []byte(feature), 0o644))
	var out bytes.Buffer
	o := defaults()
	o.Paths, o.Output, o.Randomize = []string{path}, &out, 1
	var status int
	// Without a testing.T, godog logs on stdout.
	printed := stdout(t, func() {
		status = godog.TestSuite{Name: "check", ScenarioInitializer: initialize, Options: &o}.Run()
	})
	for _, l := range logged {
		*l = printed
	}
	return status, out.String()
}

const writtenFromTheTable = `Feature: A new feature
  Scenario: Two orders share a batch
    Given a batch "b1" of 10 "DESK" in the warehouse
    When I allocate order "o1" of 4 "DESK"
    And I allocate order "o2" of 6 "DESK"
    Then the allocation returns batch "b1"
    And batch "b1" has 0 available
`

func TestAnUndefinedStepFailsTheRun(t *testing.T) {
	status, out := run(t, writtenFromTheTable, InitializeScenario)
	require.Equal(t, 0, status, "the feature without the undefined step must pass:\n%s", out)

	status, out = run(t, writtenFromTheTable+"    And the desk is polished\n", InitializeScenario)

	assert.NotEqual(t, 0, status, "a run with an undefined step exited 0:\n%s", out)
	assert.Contains(t, out, "1 undefined")
}

func TestAPendingStepFailsTheRun(t *testing.T) {
	withPending := func(sc *godog.ScenarioContext) {
		InitializeScenario(sc)
		sc.Then(`^the desk is polished$`, func() error { return godog.ErrPending })
	}

	status, out := run(t, writtenFromTheTable+"    And the desk is polished\n", withPending)

	assert.NotEqual(t, 0, status, "a run with a pending step exited 0:\n%s", out)
	assert.Contains(t, out, "1 pending")
}

func TestAFailingScenarioShowsWhatTheStackCaptured(t *testing.T) {
	failing := writtenFromTheTable + "    And exactly one mail was sent, to \"stock@made.com\", saying \"Out of stock for DESK\"\n"
	captured := []string{
		"what the stack captured", "store: " + theStore.name, `last action: I allocate order "o2" of 6 "DESK"`, "mails delivered (0",
		"batch b1 (in the warehouse): 10 bought, 10 allocated in 2 lines, 0 available", "holds o1×4, o2×6",
	}

	var logged string
	status, out := run(t, failing, InitializeScenario, &logged)

	require.NotEqual(t, 0, status)
	assert.Contains(t, out, "0 mails were sent (), want exactly one")
	for _, want := range captured {
		assert.Contains(t, logged, want, "logged (on the subtest's log under go test, on stdout otherwise)")
	}

	report := filepath.Join(t.TempDir(), "report.json")
	path := filepath.Join(t.TempDir(), "failing.feature")
	require.NoError(t, os.WriteFile(path, []byte(failing), 0o644))
	o := defaults()
	o.Paths, o.Format, o.Output = []string{path}, "cucumber:"+report, io.Discard
	stdout(t, func() { godog.TestSuite{ScenarioInitializer: InitializeScenario, Options: &o}.Run() })
	var features []struct {
		Elements []struct {
			Steps []struct {
				Embeddings []struct {
					MimeType string `json:"mime_type"`
					Data     []byte `json:"data"` // base64 in the JSON
				} `json:"embeddings"`
			} `json:"steps"`
		} `json:"elements"`
	}
	raw, err := os.ReadFile(report)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(raw, &features))
	var attached []string
	for _, f := range features {
		for _, e := range f.Elements {
			for _, st := range e.Steps {
				for _, emb := range st.Embeddings {
					attached = append(attached, emb.MimeType+": "+string(emb.Data))
				}
			}
		}
	}
	require.Len(t, attached, 1, "attachments in the cucumber report")
	for _, want := range captured[1:] {
		assert.Contains(t, attached[0], want, "attached to the failing step in the cucumber report")
	}
}

// stdout returns what f printed on os.Stdout.
func stdout(t *testing.T, f func()) string {
	t.Helper()
	r, w, err := os.Pipe()
	require.NoError(t, err)
	old := os.Stdout
	os.Stdout = w
	printed := make(chan string)
	go func() {
		b, _ := io.ReadAll(r)
		printed <- string(b)
	}()
	defer func() { os.Stdout = old }()
	f()
	require.NoError(t, w.Close())
	return <-printed
}

// TestTheREADMEExampleRuns runs the feature that features/README.md shows a newcomer, written
// only from the step table.
func TestTheREADMEExampleRuns(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	require.NoError(t, err)
	blocks := regexp.MustCompile("(?s)```gherkin\n(.*?)```").FindAllStringSubmatch(string(readme), -1)
	require.NotEmpty(t, blocks, "README.md shows a feature in a ```gherkin block")
	for _, b := range blocks {
		status, out := run(t, b[1], InitializeScenario)
		assert.Equal(t, 0, status, "the feature in README.md:\n%s\nfailed:\n%s", b[1], out)
		assert.Regexp(t, `\d+ scenarios? \(\d+ passed\)`, out)
	}
}

// scenarios returns every scenario of the feature files here, outlines expanded.
func scenarios(t *testing.T) []*godog.Scenario {
	t.Helper()
	features, err := godog.TestSuite{Options: &godog.Options{Paths: []string{"."}}}.RetrieveFeatures()
	require.NoError(t, err)
	var all []*godog.Scenario
	for _, f := range features {
		all = append(all, f.Pickles...)
	}
	require.NotEmpty(t, all)
	return all
}

func TestEveryScenarioIsTaggedBookOrBeyond(t *testing.T) {
	for _, sc := range scenarios(t) {
		var tags []string
		for _, tag := range sc.Tags {
			if tag.Name == "@book" || tag.Name == "@beyond" {
				tags = append(tags, tag.Name)
			}
		}
		assert.Len(t, tags, 1, "%s (%s) has %v, want exactly one of @book and @beyond", sc.Name, sc.Uri, tags)
	}
}

func TestScenarioNamesAreUnique(t *testing.T) {
	seen := map[string]string{}
	for _, sc := range scenarios(t) {
		if other, ok := seen[sc.Name]; ok {
			t.Errorf("%q is the name of a scenario in %s and in %s: -run could not tell them apart", sc.Name, other, sc.Uri)
		}
		seen[sc.Name] = sc.Uri
	}
}

// TestEveryStepIsUsed fails when a step of the vocabulary appears in no feature file here, so the
// table shows nothing that the specification does not exercise.
func TestEveryStepIsUsed(t *testing.T) {
	stepType := map[string]string{"Given": "Context", "When": "Action", "Then": "Outcome"}
	var used []string
	for _, sc := range scenarios(t) {
		for _, st := range sc.Steps {
			used = append(used, string(st.Type)+" "+st.Text)
		}
	}
	for _, d := range steps.Vocabulary() {
		pattern := d.Pattern()
		found := slices.ContainsFunc(used, func(u string) bool {
			typ, text, _ := strings.Cut(u, " ")
			return (d.Keyword == "*" || typ == stepType[d.Keyword]) && pattern.MatchString(text)
		})
		assert.True(t, found, "no feature file uses %s %s", d.Keyword, d.Text)
	}
}

// TestOneScenarioInitializer guards the godog command line, which calls every exported function
// of these test files that takes a *godog.ScenarioContext or a *godog.TestSuiteContext.
func TestOneScenarioInitializer(t *testing.T) {
	files, err := filepath.Glob("*_test.go")
	require.NoError(t, err)
	var found []string
	for _, name := range files {
		f, err := parser.ParseFile(token.NewFileSet(), name, nil, 0)
		require.NoError(t, err)
		for _, decl := range f.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok || fn.Recv != nil || !fn.Name.IsExported() {
				continue
			}
			for _, p := range fn.Type.Params.List {
				if star, ok := p.Type.(*ast.StarExpr); ok {
					if sel, ok := star.X.(*ast.SelectorExpr); ok && strings.HasSuffix(sel.Sel.Name, "Context") {
						found = append(found, fn.Name.Name+"(*"+sel.Sel.Name+")")
					}
				}
			}
		}
	}
	assert.Equal(t, []string{"InitializeScenario(*ScenarioContext)"}, found)
}

func TestStockbusStoreChoosesTheStore(t *testing.T) {
	tests := []struct{ name, value, want, err string }{
		{"unset is the fakes", "", "fakes", ""},
		{"fakes", "fakes", "fakes", ""},
		{"sqlite", "sqlite", "sqlite", ""},
		{"postgres", "postgres", "postgres", ""},
		{"an unknown store", "mysql", "", `STOCKBUS_STORE="mysql": want fakes, sqlite or postgres`},
		{"a store's name in capitals", "SQLITE", "", `STOCKBUS_STORE="SQLITE": want fakes, sqlite or postgres`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(StoreVariable, tt.value)

			s, err := chooseStore()

			if tt.err != "" {
				assert.EqualError(t, err, tt.err)
				assert.Nil(t, s)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, s.name)
		})
	}
}

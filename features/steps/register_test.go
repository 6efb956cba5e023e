package steps_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cucumber/godog"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockbus/stockbus/features/steps"
	"github.com/stockbus/stockbus/features/steps/internal/gen"
)

// locationFeature uses three steps whose functions are declared in two files.
const locationFeature = "Feature: locations\n  Scenario: one batch\n" +
	"    Given a batch \"b1\" of 3 \"LAMP\" in the warehouse\n" +
	"    When I allocate order \"o1\" of 1 \"LAMP\"\n" +
	"    Then no mail was sent\n"

// locationSteps are the functions of locationFeature's steps, in order.
var locationSteps = []string{"givenBatch", "whenAllocate", "thenNoMail"}

// declaredAt returns "file.go:line" of the func keyword of each named function of the package,
// read from its source.
func declaredAt(t *testing.T, names ...string) []string {
	t.Helper()
	files, err := filepath.Glob("*.go")
	require.NoError(t, err)
	fset := token.NewFileSet()
	at := map[string]string{}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, parser.SkipObjectResolution)
		require.NoError(t, err)
		for _, d := range f.Decls {
			if fn, ok := d.(*ast.FuncDecl); ok && fn.Recv == nil {
				at[fn.Name.Name] = fmt.Sprintf("%s:%d", name, fset.Position(fn.Pos()).Line)
			}
		}
	}
	var want []string
	for _, n := range names {
		require.Contains(t, at, n, "a function of the step library")
		want = append(want, at[n])
	}
	return want
}

// runFormatted runs locationFeature through Register with the formatter and returns its output.
func runFormatted(t *testing.T, format string) string {
	t.Helper()
	var out bytes.Buffer
	status := godog.TestSuite{
		ScenarioInitializer: steps.Register,
		Options: &godog.Options{Strict: true, Format: format, Output: &out, NoColors: true,
			FeatureContents: []godog.Feature{{Name: "locations.feature", Contents: []byte(locationFeature)}}},
	}.Run()
	require.Zero(t, status, "the scenario failed:\n%s", out.String())
	return out.String()
}

// TestStepLocationsAreTheirFunctions runs a scenario with the cucumber and the pretty formatter
// and checks that godog locates each step at its own function's declaration, not at the code
// that registers the steps.
func TestStepLocationsAreTheirFunctions(t *testing.T) {
	want := declaredAt(t, locationSteps...)
	require.NotEqual(t, want[0], want[2], "the steps are declared at different places")

	t.Run("cucumber", func(t *testing.T) {
		var report []struct {
			Elements []struct {
				Steps []struct {
					Name  string `json:"name"`
					Match struct {
						Location string `json:"location"`
					} `json:"match"`
				} `json:"steps"`
			} `json:"elements"`
		}
		out := runFormatted(t, "cucumber")
		require.NoError(t, json.Unmarshal([]byte(out), &report), "cucumber JSON:\n%s", out)
		require.Len(t, report, 1, "features")
		require.Len(t, report[0].Elements, 1, "scenarios")
		var got []string
		for _, s := range report[0].Elements[0].Steps {
			got = append(got, s.Match.Location)
		}
		assert.Equal(t, want, got, "the locations of the steps in the cucumber JSON")
	})
	t.Run("pretty", func(t *testing.T) {
		out := runFormatted(t, "pretty")
		for i, fn := range locationSteps {
			assert.Contains(t, out, "# "+want[i]+" -> github.com/stockbus/stockbus/features/steps."+fn,
				"the pretty formatter's location of the step of %s", fn)
		}
	})
}

// TestRegistrationCodeIsUpToDate regenerates zz_register.go into a temporary folder and compares
// it with the committed one, so that a step added, moved or changed without go generate fails.
func TestRegistrationCodeIsUpToDate(t *testing.T) {
	path := filepath.Join(t.TempDir(), gen.File)
	require.NoError(t, gen.Write(".", path, steps.Vocabulary()))
	want, err := os.ReadFile(path)
	require.NoError(t, err)
	got, err := os.ReadFile(gen.File)
	require.NoError(t, err)
	assert.Equal(t, string(want), string(got), "%s is out of date: run go generate ./features/steps", gen.File)
}

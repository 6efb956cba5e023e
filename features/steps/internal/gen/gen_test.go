package gen_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/stockbus/stockbus/features/steps"
	"github.com/stockbus/stockbus/features/steps/internal/gen"
)

// library is the step library's folder, from this package's.
const library = "../.."

type stepsHolder struct{}

func (stepsHolder) step(context.Context) error { return nil }

func TestSourceRefusesAStepItCannotPlace(t *testing.T) {
	real := steps.Vocabulary()[0]
	closure := real
	closure.Func = func(context.Context) error { return nil }
	method := real
	method.Func = stepsHolder{}.step
	notFunc := real
	notFunc.Func = "givenBatch"
	keyword := real
	keyword.Keyword = "Maybe"
	elsewhere := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(elsewhere, "other.go"), []byte("package other\n\nfunc other() {}\n"), 0o644))

	tests := []struct {
		name string
		dir  string
		def  steps.Def
		want string
	}{
		{"a closure", library, closure, "not a function declared at the top level"},
		{"a method value", library, method, "not a function declared at the top level"},
		{"not a function", library, notFunc, "its Func is string, not a function"},
		{"an unknown keyword", library, keyword, `keyword "Maybe" is none of Given, When, Then, *`},
		{"a function declared elsewhere", elsewhere, real, "its function givenBatch is not declared in " + elsewhere},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src, err := gen.Source(tt.dir, []steps.Def{real, tt.def})

			require.ErrorIs(t, err, gen.ErrStep, "Source of a step with %s returned %d bytes", tt.name, len(src))
			assert.ErrorContains(t, err, tt.want)
			assert.Nil(t, src)
		})
	}
}

func TestSourceRegistersEachStepAtItsFunction(t *testing.T) {
	defs := steps.Vocabulary()
	src, err := gen.Source(library, defs)
	require.NoError(t, err)

	lines := strings.Split(string(src), "\n")
	var directives, calls []string
	for i, l := range lines {
		if strings.HasPrefix(l, "//line ") {
			directives = append(directives, l)
			require.Less(t, i+1, len(lines), "a line follows the directive %q", l)
			calls = append(calls, lines[i+1])
		}
	}
	require.Len(t, directives, len(defs), "one //line directive per step")
	keywords := map[string]string{"Given": "sc.Given(", "When": "sc.When(", "Then": "sc.Then(", "*": "sc.Step("}
	for i, d := range defs {
		assert.Regexp(t, `^//line \.\./steps/[a-z_]+\.go:\d+$`, directives[i], "the directive of %q", d.Text)
		assert.Contains(t, calls[i], keywords[d.Keyword], "the call that registers %s %q", d.Keyword, d.Text)
	}
	assert.Contains(t, string(src), "// Code generated", "the file says it is generated")
}
